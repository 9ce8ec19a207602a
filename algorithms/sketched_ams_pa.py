"""SketchedAMSGrad, parameter averaging (seed ``sketched_ams`` = 001, Alg. 1; baselines.md A4).

Each worker runs AMSGrad with v_0 = vhat_0 = eps (eps is v's initial value; no eps is added in the
denominator) and error feedback in units of the update:

    worker i:  m_i = b1 m_i + (1 - b1) g_i ;  v_i = b2 v_i + (1 - b2) g_i^2 ;  vhat_i = max(vhat_i, v_i)
               a_i = m_i / sqrt(vhat_i) + r_t e_i            r_t = alpha_{t-1} / alpha_t
               send S(a_i)                                    (round 1: one allreduce of the tables)
    server:    S = avg_i S(a_i) ;  cand = top-(P k) of the estimate of S ;  broadcast cand
    round 2:   worker i sends a_i[cand] exactly (one allreduce of a P k vector)
               I_t = top-k of avg_i a_i[cand] ;  Delta = avg_i a_i on I_t ;  broadcast Delta
    worker i:  e_i = a_i with I_t zeroed ;  all: x -= alpha_t Delta

The listing writes Delta = Top-k(U(S)); the text adds the exact P k second round (as Sketched-SGD),
which is what runs here (``algorithms/sketching.py``, shared with GA and Sketched-SGD). r_t: the trainer
sets ``lr`` before each step under a schedule; the previous step's lr is kept (``prev_lr``), r_t = 1 at
the first step and for a constant lr. k = the compressor's ``k`` / ``ratio`` (over the whole model),
P = ``candidates_factor``.

Bits (ours): up = 32 r c + 32 P k; down (as implemented) = the allreduces' results, the same sizes;
the modelled server's 32 P k (candidate indices) + 64 k (Delta's values and indices) is
``bits_down_ps_model``. ``numbers_sent`` (001): |S| + P k + k.
"""

from __future__ import annotations

import torch

from compress_train.algorithms.amsgrad import amsgrad_moments_, check_betas
from compress_train.algorithms.sketching import SketchedAlgorithm, check_factor


class SketchedAMSGradPA(SketchedAlgorithm):
    name = "sketched_ams_pa"

    def __init__(
        self,
        params,
        comm,
        compressor,
        seed=0,
        lr=1e-3,
        ef=None,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-4,
        candidates_factor: int = 8,
    ):
        super().__init__(params, comm, compressor, seed, lr, ef)
        self.beta1, self.beta2, self.candidates_factor = beta1, beta2, candidates_factor
        workers = comm.local_workers
        self.m = {w: torch.zeros_like(params) for w in workers}
        self.v = {w: torch.full_like(params, eps) for w in workers}
        self.vhat = {w: torch.full_like(params, eps) for w in workers}
        self.e = {w: torch.zeros_like(params) for w in workers}  # e_i; holds a_i during a step
        self.prev_lr: float | None = None

    @classmethod
    def check(cls, cfg):
        return super().check(cfg) + check_betas(cfg) + check_factor(cfg)

    def step(self, grads, step):
        r = self.rescale(self.prev_lr)
        for w, g in grads.items():
            amsgrad_moments_(self.m[w], self.v[w], self.vhat[w], g, self.beta1, self.beta2)
            if r != 1.0:
                self.e[w].mul_(r)
            self.e[w].addcdiv_(self.m[w], self.vhat[w].sqrt())  # a_i = m_i / sqrt(vhat_i) + r_t e_i
        first = self.first_round(self.e, step)
        chosen = self.second_round(self.e, first, self.candidates_factor, "mean")
        self.apply(chosen.support, chosen.values, self.lr)
        for w in grads:
            self.e[w][chosen.support] = 0
        self.prev_lr = self.lr
        return chosen.traffic.report({w: float(self.e[w].norm()) for w in grads})


IMPLEMENTATION = SketchedAMSGradPA
