"""Error feedback: per-worker memory that turns a compressor into a corrected one.

Kept apart from the compressor so any compressor pairs with any memory
(docs/architecture.md §2). One module per mode (``algo.ef`` = module stem, registered like every
extension point), each in the units its paper uses:

- ``none``: send C(g); no memory.
- ``classic`` (``comp_ams`` Alg. 2 lines 7-8, gradient units): send C(g + e); e <- g + e - C(g + e).
- ``powersgd`` (``hard_threshold``'s network code): the classic memory, named apart because with
  ``ef_sgd`` it comes with global momentum and weight decay after averaging (the PowerSGD scheme).
- ``scaled`` (``hard_threshold`` Alg. 1, step units): p = e + gamma g; Delta = gamma C(p / gamma).

Contract of a mode (tested for every registered one): ``corrected(g, lr)`` is the vector handed to
the compressor, in gradient units; ``update(corrected, decoded, lr)`` stores what the compressor
dropped, so that decoded + e_new == corrected input + e_old in the memory's units
(``raw_gradient``: gradient units; otherwise units of the step, lr x gradient).
"""

from __future__ import annotations

import torch
from torch import Tensor

from compress_train.algorithms.state import Stateful


class ErrorFeedback(Stateful):
    """Base of every mode: the error tensor ``error`` (zeros at the start) and its norm; its
    attributes are its checkpointed state (``algorithms/state.py``)."""

    raw_gradient = True  # the memory is in gradient units (False: in step units, lr x gradient)

    def __init__(self, numel: int, device: torch.device | str = "cpu", dtype=torch.float32):
        self.error = torch.zeros(numel, device=device, dtype=dtype)

    def corrected(self, grad: Tensor, lr: float) -> Tensor:
        raise NotImplementedError

    def update(self, corrected: Tensor, decoded: Tensor, lr: float) -> None:
        raise NotImplementedError

    def norm(self) -> float:
        return float(self.error.norm())


def modes() -> list[str]:
    from compress_train.algorithms.registry import EF_MODES

    return EF_MODES.names()


def build(mode: str, numel: int, device: torch.device | str = "cpu", dtype=torch.float32) -> ErrorFeedback:
    """The memory of mode ``mode`` (``algo.ef``) for a vector of ``numel`` entries."""
    from compress_train.algorithms.registry import EF_MODES

    return EF_MODES.get(mode)(numel, device, dtype)


def normalize_ef(value, default: str) -> str:
    """``algo.ef`` accepts a mode name or a boolean (true = the algorithm's own EF, false = none)."""
    if value is True:
        return default
    if value is False or value is None:
        return "none"
    return value
