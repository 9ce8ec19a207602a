"""The one registry pattern of every extension point: option name = module stem = the module's
``IMPLEMENTATION``.

``compressor.name=topk`` is ``compressors/topk.py``'s ``IMPLEMENTATION``; the same rule serves
algorithms, error-feedback modes, controllers, models, datasets, tasks, launchers and loggers
(each a ``Registry`` over its package). A new option is one module plus one YAML file; nothing
here needs editing. It lives in the lowest layer (compressors import only torch) so that every
layer can use it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cached_property
from typing import Any

from compress_train.compressors.base import Compressor


class Registry:
    """The options of one extension point: the modules of ``package`` that define ``IMPLEMENTATION``."""

    def __init__(self, package: str, key: str):
        self.package, self.key = package, key

    @cached_property
    def _modules(self) -> dict[str, Any]:
        pkg = importlib.import_module(self.package)
        found = {}
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{self.package}.{info.name}")
            if hasattr(module, "IMPLEMENTATION"):
                found[info.name] = module
        return dict(sorted(found.items()))

    def names(self) -> list[str]:
        return list(self._modules)

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def module(self, name: str):
        if name not in self._modules:
            raise ValueError(f"`{self.key}` must be one of {self.names()}, but is {name!r}.")
        return self._modules[name]

    def get(self, name: str) -> Any:
        """The ``IMPLEMENTATION`` registered as ``name``; ValueError naming the key otherwise."""
        return self.module(name).IMPLEMENTATION


COMPRESSORS = Registry("compress_train.compressors", "compressor.name")


def available() -> list[str]:
    return COMPRESSORS.names()


def build(name: str, params: dict[str, Any]) -> Compressor:
    """Instantiate compressor ``name`` with ``params``."""
    cls = COMPRESSORS.get(name)
    try:
        return cls(**params)
    except TypeError as err:
        raise ValueError(f"compressor {name!r} got an unknown parameter: {err}") from None
