"""Controllers: components that adjust the compressor while training runs (``controller.name``
= module stem, registered like every extension point).

A controller is built as ``IMPLEMENTATION(comm, compressor, steps_per_epoch, **params)``;
before every step the trainer calls ``before_step(step, grads, lr)`` and logs ``metrics()``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from compress_train.algorithms.state import Stateful


class Controller(Stateful):
    """No control: the compressor's parameters stay as configured. Its attributes but the
    communicator and the compressor are its checkpointed state (``algorithms/state.py``)."""

    def __init__(self, comm, compressor, steps_per_epoch: int, **params: Any):
        self.comm, self.compressor, self.steps_per_epoch = comm, compressor, steps_per_epoch

    @classmethod
    def check(cls, params: dict[str, Any], compressor: dict[str, Any]) -> list[str]:
        """Messages for invalid parameters (its own key names) or an unfit compressor; empty when valid."""
        return []

    def before_step(self, step: int, grads: dict[int, Tensor], lr: float) -> None:
        pass

    def metrics(self) -> dict[str, float]:
        return {}
