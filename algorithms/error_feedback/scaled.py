"""Scaled error feedback, ``hard_threshold`` Alg. 1, in step units: p = e + gamma g;
Delta = gamma C(p / gamma); e <- p - Delta.

The vector handed to the compressor is p / gamma, so the message decodes to C(p / gamma) in
gradient units and the server applies gamma times the average (= avg Delta). With a constant
gamma this equals ``classic``; they differ when the step size changes, since the memory is not
rescaled. This matters for absolute compressors such as the hard threshold.
"""

from __future__ import annotations

import torch
from torch import Tensor

from compress_train.algorithms.error_feedback import ErrorFeedback


class ScaledMemory(ErrorFeedback):
    raw_gradient = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._p: Tensor | None = None

    def corrected(self, grad: Tensor, lr: float) -> Tensor:
        self._p = self.error + lr * grad
        return self._p / lr

    def update(self, corrected: Tensor, decoded: Tensor, lr: float) -> None:
        assert self._p is not None  # set by corrected(), which every step calls first
        torch.sub(self._p, lr * decoded, out=self.error)
        self._p = None


IMPLEMENTATION = ScaledMemory
