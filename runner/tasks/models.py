"""Models by name (``model.name`` = module stem under ``models/``), built from their config."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from compress_train.compressors.registry import Registry

MODELS = Registry("compress_train.models", "model.name")


def available() -> list[str]:
    return MODELS.names()


def check(name: str, params: dict[str, Any]) -> list[str]:
    accepted = inspect.signature(MODELS.get(name)).parameters
    return [
        f"`model.{k}` is not a parameter of model {name!r} (it takes {sorted(accepted)})."
        for k in params
        if k not in accepted
    ]


def build(name: str, params: dict[str, Any], num_classes: int) -> nn.Module:
    return MODELS.get(name)(num_classes=num_classes, **params)
