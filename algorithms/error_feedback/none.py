"""No error feedback: the compressor's output is sent as is and nothing is remembered."""

from __future__ import annotations

from torch import Tensor

from compress_train.algorithms.error_feedback import ErrorFeedback


class NoMemory(ErrorFeedback):
    def corrected(self, grad: Tensor, lr: float) -> Tensor:
        return grad

    def update(self, corrected: Tensor, decoded: Tensor, lr: float) -> None:
        pass

    def norm(self) -> float:
        return 0.0


IMPLEMENTATION = NoMemory
