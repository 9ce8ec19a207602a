"""Checkpointable state, declared once: ``Stateful.state_dict`` / ``load_state_dict``.

An object's state is every instance attribute (``vars(self)``) that is a tensor, a plain
Python scalar (int, float, bool), a str, None, or a list / tuple / dict (str or int keys) of
those, recursively; an owned object that is itself ``Stateful`` (an EF memory, the double
encoding, a controller) contributes its own state dict in its place; a ``torch.Generator``
contributes ``get_state()``. Left out, as wiring rather than state: the names in ``wiring``
(the parameter vector, which the checkpoint stores itself; the communicator; the compressor;
the raw hyper-parameters) and anything callable or a module. Any other object is an error
naming the attribute, so an algorithm cannot hold state that a checkpoint would silently drop:
make it ``Stateful`` or declare it in ``wiring``.

A state dict holds only what ``torch.load(path, weights_only=True)`` reads back. Its tensors
are the live ones (as torch's own ``state_dict``): save or clone it before the next step.
Loading copies each tensor into the tensor the attribute already holds (``copy_``: the
algorithm keeps writing into the same objects, the parameter vector included) and assigns a
copy where the attribute holds none (a lazily created moment), placed on ``state_device()``.
"""

from __future__ import annotations

import numbers
import types
from typing import Any, ClassVar

import torch
from torch import Tensor


class Stateful:
    """The generic ``state_dict`` / ``load_state_dict`` pair over ``vars(self)``."""

    wiring: ClassVar[frozenset[str]] = frozenset({"params", "comm", "compressor", "hyper"})

    def state_names(self) -> list[str]:
        """The attributes that are state: all but the wiring, callables and modules."""
        return [
            name
            for name, value in vars(self).items()
            if name not in self.wiring and not callable(value) and not isinstance(value, types.ModuleType)
        ]

    def state_device(self) -> torch.device | None:
        """Where a loaded tensor goes when the attribute holds none yet (None: where it was loaded)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {name: capture(getattr(self, name), f"{type(self).__name__}.{name}") for name in self.state_names()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        names = self.state_names()
        if strict:
            missing, unexpected = sorted(set(names) - set(state)), sorted(set(state) - set(names))
            if missing or unexpected:
                raise KeyError(
                    f"state of {type(self).__name__} does not match: missing {missing}, unexpected {unexpected}"
                )
        for name, value in state.items():
            where = f"{type(self).__name__}.{name}"
            setattr(self, name, restore(getattr(self, name, None), value, where, self.state_device(), strict))


def capture(value: Any, where: str) -> Any:
    """``value`` as weights-only-loadable state (tensors detached, not copied)."""
    if isinstance(value, Stateful):
        return value.state_dict()
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, torch.Generator):
        return value.get_state()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, (str, int)) or isinstance(k, bool)]
        if bad:
            raise TypeError(f"{where}: state dict keys must be str or int, not {bad!r}")
        return {k: capture(v, f"{where}[{k!r}]") for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(capture(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise TypeError(
        f"{where}: a {type(value).__name__} is not checkpointable state; make it Stateful "
        "or name the attribute in its class's `wiring`"
    )


def restore(current: Any, value: Any, where: str, device: torch.device | None = None, strict: bool = True) -> Any:
    """What the attribute holding ``current`` holds after loading ``value``: the same tensors,
    dicts, lists and owned objects where there are some, filled in place."""
    if isinstance(current, Stateful):
        if not isinstance(value, dict):
            raise TypeError(f"{where}: the state of a {type(current).__name__} is a dict, not {type(value).__name__}")
        current.load_state_dict(value, strict)
        return current
    if isinstance(current, torch.Generator):
        current.set_state(value)
        return current
    if isinstance(value, Tensor):
        if not isinstance(current, Tensor):
            return value.detach().to(device=device, copy=True)
        if current.shape != value.shape or current.dtype != value.dtype:
            raise ValueError(
                f"{where}: the state holds a {value.dtype} tensor of shape {tuple(value.shape)}, "
                f"the object a {current.dtype} one of shape {tuple(current.shape)}"
            )
        return current.copy_(value)
    if isinstance(value, dict):
        old = current if isinstance(current, dict) else {}
        lost = [k for k, v in old.items() if isinstance(v, Stateful) and k not in value]
        if lost:
            raise KeyError(f"{where}: the state has no entry for {lost}")
        new = {k: restore(old.get(k), v, f"{where}[{k!r}]", device, strict) for k, v in value.items()}
        if not isinstance(current, dict):
            return new
        current.clear()
        current.update(new)
        return current
    if isinstance(value, (list, tuple)):
        olds = current if isinstance(current, (list, tuple)) and len(current) == len(value) else [None] * len(value)
        items = [restore(o, v, f"{where}[{i}]", device, strict) for i, (o, v) in enumerate(zip(olds, value))]
        if isinstance(current, list) and isinstance(value, list):
            current[:] = items
            return current
        return type(value)(items)
    return value
