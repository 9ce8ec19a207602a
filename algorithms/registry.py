"""The algorithm-side extension points (``compressors/registry.py``'s pattern): algorithms
(``algo.name``), error-feedback modes (``algo.ef``) and controllers (``controller.name``)."""

from __future__ import annotations

from compress_train.compressors.registry import Registry

ALGORITHMS = Registry("compress_train.algorithms", "algo.name")
EF_MODES = Registry("compress_train.algorithms.error_feedback", "algo.ef")
CONTROLLERS = Registry("compress_train.algorithms.controllers", "controller.name")


def available() -> list[str]:
    return ALGORITHMS.names()


def get(name: str) -> type:
    return ALGORITHMS.get(name)
