"""Distributed error-feedback SGD, seed 002 Algorithm 1, with the momentum of the PowerSGD
error-feedback scheme that seed 002's network code follows (baselines.md C1(b), C2).

Workers: ``ef=scaled`` (default, Alg. 1): p_i = e_i + gamma g_i; Delta_i = gamma C(p_i / gamma);
e_i = p_i - Delta_i; ``ef=classic`` (PowerSGD memory, gradient units): send C(g_i + e_i),
e_i = g_i + e_i - C(g_i + e_i); ``ef=none``: send C(g_i). Messages are allgathered (variable
sizes padded on the wire), so each worker receives every other worker's payload.
Server step, identical on every worker, in gradient units: d = (1/n) sum_i decode_i + wd x;
with momentum mu > 0: m = d at the first step, else m = mu m + d; d = d + m if Nesterov
(PowerSGD's form, + m not + mu m) else m; x <- x - gamma d. With mu = wd = 0 and ``ef=scaled``
this is exactly Alg. 1's x_{t+1} = x_t - (1/n) sum_i Delta_i.
"""
from __future__ import annotations

from torch import Tensor

from compress_train.algorithms.base import Algorithm
from compress_train.algorithms.sgd import check_momentum


class EFSGD(Algorithm):
    name = "ef_sgd"
    default_ef = "scaled"

    def __init__(self, params, comm, compressor, seed=0, lr=0.01, ef=None,
                 momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, comm, compressor, seed, lr, ef)
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self.m: Tensor | None = None

    @classmethod
    def check(cls, cfg):
        return super().check(cfg) + check_momentum(cfg)

    def step(self, grads, step):
        messages, report = self.compress_and_exchange(grads, step)
        d = self.average_decoded(messages)
        if self.weight_decay:
            d.add_(self.params, alpha=self.weight_decay)
        if self.momentum:
            self.m = d.clone() if self.m is None else self.m.mul_(self.momentum).add_(d)
            d = d + self.m if self.nesterov else self.m
        self.params.add_(d, alpha=-self.lr)
        # Each worker receives the n - 1 other payloads of the allgather (mean over workers).
        report.bits_down = report.bits_up * (len(messages) - 1)
        return report


IMPLEMENTATION = EFSGD
