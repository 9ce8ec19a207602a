"""EF21 (Richtarik, Sokolov & Fatkhullin 2021, Alg. 1; baselines.md C6): each worker tracks its
gradient with compressed corrections; the shared estimate g moves only by their average.

    init  g_i = grad f_i(x_0) (sent dense once, 32 d bits) ;  g = avg_i g_i
    x_{t+1} = x_t - gamma g
    c_i = C(v_i - g_i) ;  g_i <- g_i + c_i ;  g <- g + avg_i c_i

with v_i = grad f_i(x_{t+1}) (+ wd x_{t+1}). EF21-SGDM (``ef21_sgdm``, Fatkhullin, Tyurin &
Richtarik 2023, Alg. 1) replaces v_i by the momentum v_i <- (1 - eta) v_i + eta grad f_i(x; xi),
with v_i = g_i = the stochastic gradient at x_0; eta = 1 is EF21-SGD. g is never recomputed
locally: every worker adds the same average, so it stays bit-identical on every worker. A step
of this class takes the gradients at x_t: it first updates g from them (t > 0; at t = 0 it
initialises), then moves x. With an ``allreduce`` compressor (RBGS) the corrections are summed by
one allreduce; otherwise allgathered (each worker receives the n - 1 others).
"""

from __future__ import annotations

import time
from typing import ClassVar

from torch import Tensor

from compress_train.algorithms.base import Algorithm, StepReport


class EF21(Algorithm):
    name = "ef21"
    default_ef = "none"
    allowed_ef = ("none",)
    uses_momentum: ClassVar[bool] = False

    def __init__(self, params, comm, compressor, seed=0, lr=0.05, ef=None, weight_decay: float = 0.0, eta: float = 1.0):
        super().__init__(params, comm, compressor, seed, lr, ef)
        self.weight_decay = weight_decay
        self.eta = float(eta) if self.uses_momentum else 1.0
        self.g_local: dict[int, Tensor] | None = None
        self.v: dict[int, Tensor] | None = None
        self.g: Tensor | None = None

    @classmethod
    def check(cls, cfg):
        errors = super().check(cfg)
        wd = cfg.get("weight_decay", 0.0)
        if isinstance(wd, bool) or not isinstance(wd, (int, float)) or wd < 0:
            errors.append(f"`weight_decay` must be a number >= 0, but is {wd!r}.")
        if cls.uses_momentum:
            eta = cfg.get("eta")
            if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0 < eta <= 1:
                errors.append(f"`eta` must be in (0, 1] (EF21-SGDM's momentum; 1 is EF21-SGD), but is {eta!r}.")
        return errors

    def step(self, grads, step):
        if self.weight_decay:
            grads = {w: g.add(self.params, alpha=self.weight_decay) for w, g in grads.items()}
        if self.g is None:
            report = self.initialise(grads)
        else:
            report = self.correct(grads, step)
        self.params.sub_(self.lr * self.g)
        return report

    def initialise(self, grads: dict[int, Tensor]) -> StepReport:
        self.g_local = {w: g.clone() for w, g in grads.items()}
        self.v = {w: g.clone() for w, g in grads.items()} if self.uses_momentum else None
        self.g, report = self.exchange_dense(grads)
        return report

    def correct(self, grads: dict[int, Tensor], step: int) -> StepReport:
        assert self.g is not None and self.g_local is not None  # set by initialise, the first step
        assert self.compressor is not None  # Needs.compressor
        t0 = time.perf_counter()
        local = []
        for w in self.comm.local_workers:
            if self.v is not None:
                target = self.v[w].mul_(1 - self.eta).add_(grads[w], alpha=self.eta)
            else:
                target = grads[w]
            message = self.compressor.compress(target - self.g_local[w], self.seed, step, w)
            self.g_local[w].add_(self.compressor.decompress(message))
            local.append(message)
        t1 = time.perf_counter()
        messages, bits, elements, bits_down = self.exchange(local)
        t2 = time.perf_counter()
        self.g.add_(self.average_decoded(messages))
        return StepReport(
            bits_up=bits, bits_down=bits_down, elements_up=elements, time_compress_s=t1 - t0, time_comm_s=t2 - t1
        )


IMPLEMENTATION = EF21
