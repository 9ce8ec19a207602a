"""Error feedback: per-worker memory that turns a compressor into a corrected one.

Kept apart from the compressor so any compressor pairs with any memory (design.md §3).
Modes, each in the units its paper uses:

- ``none``: send C(g); no memory.
- ``classic`` (seed 000 Alg. 2 lines 7-8, gradient units): send C(g + e); e <- e + g - C(g + e).
- ``powersgd`` (seed 002's network code, baselines.md C1(b)): the same memory on the raw
  gradient, named apart because with ``ef_sgd`` it comes with global momentum and weight decay
  applied after averaging (the PowerSGD scheme), which the summary should say.
- ``scaled`` (seed 002 Alg. 1, step units): p = e + gamma g; Delta = gamma C(p / gamma);
  e <- p - Delta. The vector handed to the compressor is p / gamma, so the message decodes to
  C(p / gamma) in gradient units and the server applies gamma times the average (= avg Delta).
  With a constant gamma this equals ``classic``; they differ when the step size changes, since
  the memory is not rescaled.

Invariant (tested): decoded + e_new == corrected input + e_old in the memory's units.
"""
from __future__ import annotations

import torch
from torch import Tensor

EF_MODES = ("none", "classic", "scaled", "powersgd")
RAW_GRADIENT = ("classic", "powersgd")  # memory in gradient units, no lr


def normalize_ef(value, default: str) -> str:
    """``algo.ef`` accepts a mode name or a boolean (true = the algorithm's own EF, false = none)."""
    if value is True:
        return default
    if value is False or value is None:
        return "none"
    return value


class ErrorFeedback:
    def __init__(self, mode: str, numel: int, device: torch.device | str = "cpu", dtype=torch.float32):
        if mode not in EF_MODES:
            raise ValueError(f"`algo.ef` must be one of {list(EF_MODES)} or true/false, but is {mode!r}.")
        self.mode = mode
        self.error = torch.zeros(numel, device=device, dtype=dtype)
        self._p: Tensor | None = None

    def corrected(self, grad: Tensor, lr: float) -> Tensor:
        """The vector to compress this step, in gradient units."""
        if self.mode == "none":
            return grad
        if self.mode in RAW_GRADIENT:
            return grad + self.error
        self._p = self.error + lr * grad
        return self._p / lr

    def update(self, corrected: Tensor, decoded: Tensor, lr: float) -> None:
        """Store what the compressor dropped; ``decoded`` is C(corrected) as the receiver sees it."""
        if self.mode in RAW_GRADIENT:
            torch.sub(corrected, decoded, out=self.error)
        elif self.mode == "scaled":
            torch.sub(self._p, lr * decoded, out=self.error)
            self._p = None

    def norm(self) -> float:
        return float(self.error.norm()) if self.mode != "none" else 0.0
