"""PSync, partial synchronisation (Xie et al., CSER, NeurIPS 2020, with C1 = 0, H = 1 and C2 = RBGS;
baselines.md C5), as ``def``'s tables run it (anxuthu/DEF ``optimizers/cser.py``).

Each worker i keeps its own model x_i and momentum m_i, and takes a full local step:

    m_i = mu m_i + grad f_i(x_i; xi) + wd x_i ;  x_i <- x_i - eta_t m_i

then every step the shared random block B of each tensor (``compressor=rbgs``) is averaged over
the workers: x_i[B] <- avg_j x_j[B] (one allreduce of the blocks, 32 bits per kept entry). The
momenta and the coordinates outside B stay local. The evaluated model is worker 0's own x_0, as
in the authors' code (rank 0): ``params`` holds each process's first local worker's model.
"""

from __future__ import annotations

import time

from torch import Tensor

from compress_train.algorithms.base import Algorithm, Needs, StepReport
from compress_train.algorithms.detached import check_detached


class PSync(Algorithm):
    name = "psync"
    needs = Needs(decay_mask=True, worker_points=True)
    default_ef = "none"
    allowed_ef = ("none",)

    def __init__(
        self,
        params,
        comm,
        compressor,
        seed=0,
        lr=0.05,
        ef=None,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        decay_norm: bool = True,
        decay_mask: Tensor | None = None,
    ):
        super().__init__(params, comm, compressor, seed, lr, ef)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.decay_mask = None if decay_norm or decay_mask is None else decay_mask
        self.models = {w: params.detach().clone() for w in comm.local_workers}
        self.m = {w: params.new_zeros(params.shape) for w in comm.local_workers}

    @classmethod
    def check(cls, cfg):
        errors = super().check(cfg) + check_detached(cfg, lam=False)
        return errors

    def gradient_points(self) -> dict[int, Tensor]:
        return dict(self.models)

    def step(self, grads, step):
        t0 = time.perf_counter()
        local = []
        for w in self.comm.local_workers:
            x, m = self.models[w], self.m[w]
            d = grads[w]
            if self.weight_decay:
                d = d.add(x if self.decay_mask is None else x * self.decay_mask, alpha=self.weight_decay)
            m.mul_(self.momentum).add_(d)
            x.add_(m, alpha=-self.lr)
            local.append(self.compressor.compress(x, self.seed, step, w))
        t1 = time.perf_counter()
        messages, bits, elements, bits_down = self.exchange(local)
        t2 = time.perf_counter()
        avg = self.average_decoded(messages)
        for w, message in zip(self.comm.local_workers, local):
            x = self.models[w]
            x.sub_(self.compressor.decompress(message)).add_(avg)  # x_i[B] = avg_j x_j[B]; zeros elsewhere
        self.params.copy_(self.models[self.comm.local_workers[0]])
        return StepReport(
            bits_up=bits, bits_down=bits_down, elements_up=elements, time_compress_s=t1 - t0, time_comm_s=t2 - t1
        )

    def load_state_dict(self, state, strict=True):
        super().load_state_dict(state, strict)
        self.params.copy_(self.models[self.comm.local_workers[0]])


IMPLEMENTATION = PSync
