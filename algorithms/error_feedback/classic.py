"""Classic error feedback, ``comp_ams`` Alg. 2 lines 7-8, in gradient units:
send C(g + e), then e <- (g + e) - C(g + e)."""

from __future__ import annotations

import torch
from torch import Tensor

from compress_train.algorithms.error_feedback import ErrorFeedback


class ClassicMemory(ErrorFeedback):
    def corrected(self, grad: Tensor, lr: float) -> Tensor:
        return grad + self.error

    def update(self, corrected: Tensor, decoded: Tensor, lr: float) -> None:
        torch.sub(corrected, decoded, out=self.error)


IMPLEMENTATION = ClassicMemory
