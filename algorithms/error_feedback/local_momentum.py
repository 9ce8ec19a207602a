"""Error feedback with local momentum, ``def``'s EF baseline (baselines.md C1(a); Karimireddy et
al. 2019, Zheng et al. 2019), error in step units (learning-rate units):

    m <- mu m + d ;  p = eta m + e ;  send C(p) ;  e <- p - C(p)

with d the worker's gradient plus weight decay (the algorithm adds it). The momentum ``m`` is the
worker's own, never sent, without dampening; ``mu`` is set by the algorithm (``algo.momentum``;
0 here gives Karimireddy's EF-SGD). The error is not rescaled when eta changes: an lr decay
shrinks new contributions only. The compressor is handed p / eta (gradient units, the memory
contract of ``error_feedback/__init__.py``), so the server applies eta x avg C(p / eta), which
is avg C(p) for a linear compressor such as RBGS. ``def`` evaluates the gradient at x - lambda e
(``algorithms/detached.py``); lambda = 0 is this baseline.
"""

from __future__ import annotations

import torch
from torch import Tensor

from compress_train.algorithms.error_feedback import ErrorFeedback


class LocalMomentumMemory(ErrorFeedback):
    raw_gradient = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mu = 0.0
        self.m = torch.zeros_like(self.error)
        self._p: Tensor | None = None

    def corrected(self, grad: Tensor, lr: float) -> Tensor:
        self.m.mul_(self.mu).add_(grad)
        self._p = self.error + lr * self.m
        return self._p / lr

    def update(self, corrected: Tensor, decoded: Tensor, lr: float) -> None:
        assert self._p is not None  # set by corrected(), which every step calls first
        torch.sub(self._p, lr * decoded, out=self.error)
        self._p = None


IMPLEMENTATION = LocalMomentumMemory
