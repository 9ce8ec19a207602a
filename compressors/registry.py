"""Components by name: the config value is the module stem (``compressor.name=topk`` ->
``compressors/topk.py``), and the module's ``IMPLEMENTATION`` is the class.

A new compressor (or algorithm, model) is one module plus one YAML file; nothing here needs
editing.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

import compress_train.compressors as package
from compress_train.compressors.base import Compressor


def implementations(pkg: ModuleType) -> list[str]:
    """Module stems in ``pkg`` that define ``IMPLEMENTATION`` (helper modules do not)."""
    names = []
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if hasattr(module, "IMPLEMENTATION"):
            names.append(info.name)
    return sorted(names)


def implementation(pkg: ModuleType, key: str, name: str) -> type:
    """The class registered as ``name`` in ``pkg``; ValueError naming ``key`` otherwise."""
    allowed = implementations(pkg)
    if name not in allowed:
        raise ValueError(f"`{key}` must be one of {allowed}, but is {name!r}.")
    return importlib.import_module(f"{pkg.__name__}.{name}").IMPLEMENTATION


def available() -> list[str]:
    return implementations(package)


def build(name: str, params: dict[str, Any]) -> Compressor:
    """Instantiate compressor ``name`` with ``params``."""
    cls = implementation(package, "compressor.name", name)
    try:
        return cls(**params)
    except TypeError as err:
        raise ValueError(f"compressor {name!r} got an unknown parameter: {err}") from None
