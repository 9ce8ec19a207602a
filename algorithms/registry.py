"""Algorithms by name (``algo.name`` = module stem under ``algorithms/``)."""
from __future__ import annotations

import compress_train.algorithms as package
from compress_train.compressors.registry import implementation, implementations


def available() -> list[str]:
    return implementations(package)


def get(name: str) -> type:
    return implementation(package, "algo.name", name)
