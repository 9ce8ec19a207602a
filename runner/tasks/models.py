"""Models by name (``model.name`` = module stem under ``models/``), built from their config."""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn

import compress_train.models as package
from compress_train.compressors.registry import implementation, implementations


def available() -> list[str]:
    return implementations(package)


def check(name: str, params: dict[str, Any]) -> list[str]:
    accepted = inspect.signature(implementation(package, "model.name", name)).parameters
    return [f"`model.{k}` is not a parameter of model {name!r} (it takes {sorted(accepted)})."
            for k in params if k not in accepted]


def build(name: str, params: dict[str, Any], num_classes: int) -> nn.Module:
    return implementation(package, "model.name", name)(num_classes=num_classes, **params)
