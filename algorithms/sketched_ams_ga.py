"""SketchedAMSGrad, gradient averaging (seed ``sketched_ams`` = 001, Algs. 2-3; baselines.md A4).

Workers keep m_i and e_i only; the second moment lives at the server (replicated on every process,
computed from the same averages), refreshed from the raw gradients on the PREVIOUS step's support:

    worker i:  m_i = b1 m_i + (1 - b1) g_i ;  h_i = g_i on I_{t-1}      (I_0 = {}: nothing at t = 1)
               a_i = m_i + r_t e_i ;  send S(a_i) and h_i            (one allreduce: h rides with the tables)
    server:    h = avg_i h_i ;  v = b2 v + (1 - b2) h^2 on I_{t-1}, v = b2 v elsewhere ;  vhat = max(vhat, v)
               cand = top-(P k) of est(avg_i a_i) / sqrt(vhat)        (Alg. 3, our reading below)
    round 2:   exact a_i[cand] (one allreduce) ;  I_t = top-k of vhat^{-1/2} avg_i a_i over cand
               Delta = vhat^{-1/2} avg_i a_i on I_t ;  broadcast Delta
    worker i:  e_i = a_i with I_t zeroed (``ga_residual: unscaled``) ;  all: x -= alpha_t Delta

- v_0 = vhat_0 = eps (the listing only says v_0 = vhat_0; our choice, as Alg. 1 [U]); no eps in the
  denominator.
- Alg. 3 divides each cell S[j, h_j(i)] by sqrt(vhat_i) for every i, which taken literally divides a
  shared cell many times; 001 says it is meant to equal unsketching S(vhat^{-1/2} a). Our choice [U]:
  estimate every coordinate of avg_i a_i (lower median over rows), divide by sqrt(vhat), take the top
  P k as candidates, then the exact second round (``algorithms/sketching.py``).
- Residual [U], ``ga_residual``: ``unscaled`` (default) subtracts the unscaled a_i on I_t, so e_i stays in
  units of a_i; ``literal`` subtracts the listing's Delta_t^(i) = vhat^{-1/2} a_i on I_t
  (e_i = a_i (1 - vhat^{-1/2}) on I_t).
- r_t = alpha_{t-1} / alpha_t from the previous step's lr (1 for a constant lr).

Bits (ours): up = 32 r c + 32 P k + 32 |I_{t-1}| (h's values; indices implied by I_{t-1}); down (as
implemented) = the allreduces' results, the same sizes; the modelled server's 32 P k + 64 k is
``bits_down_ps_model``. ``numbers_sent`` (001): |S| + P k + 2 k (|S| + P k + k at the first step).
"""

from __future__ import annotations

import torch

from compress_train.algorithms.amsgrad import check_betas
from compress_train.algorithms.sketching import SketchedAlgorithm, check_choice, check_factor

GA_RESIDUALS = ("unscaled", "literal")


class SketchedAMSGradGA(SketchedAlgorithm):
    name = "sketched_ams_ga"

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
        ga_residual: str = "unscaled",
    ):
        super().__init__(params, comm, compressor, seed, lr, ef)
        self.beta1, self.beta2, self.candidates_factor = beta1, beta2, candidates_factor
        self.ga_residual = ga_residual
        workers = comm.local_workers
        self.m = {w: torch.zeros_like(params) for w in workers}
        self.e = {w: torch.zeros_like(params) for w in workers}  # e_i; holds a_i during a step
        # the server's, replicated on every process
        self.v = torch.full_like(params, eps)
        self.vhat = torch.full_like(params, eps)
        self.last_support: torch.Tensor | None = None  # I_{t-1} (int64, increasing); None = I_0 = {}
        self.prev_lr: float | None = None

    @classmethod
    def check(cls, cfg):
        return (
            super().check(cfg)
            + check_betas(cfg)
            + check_factor(cfg)
            + check_choice(cfg, "ga_residual", GA_RESIDUALS, "unscaled")
        )

    def step(self, grads, step):
        r = self.rescale(self.prev_lr)
        prev = self.last_support
        h = None if prev is None else {w: g[prev] for w, g in grads.items()}
        for w, g in grads.items():
            self.m[w].mul_(self.beta1).add_(g, alpha=1 - self.beta1)
            if r != 1.0:
                self.e[w].mul_(r)
            self.e[w].add_(self.m[w])  # a_i = m_i + r_t e_i
        first = self.first_round(self.e, step, extra=h)
        # the server's second moment, from h on I_{t-1}: decay everywhere, refresh on I_{t-1}
        self.v.mul_(self.beta2)
        if prev is not None:
            h_avg = (first.extra / self.comm.world_size).to(self.v.dtype)
            self.v.index_add_(0, prev, h_avg * h_avg, alpha=1 - self.beta2)
        torch.maximum(self.vhat, self.v, out=self.vhat)
        denom = self.vhat.sqrt()
        chosen = self.second_round(self.e, first, self.candidates_factor, "mean", divisor=denom)
        support = chosen.support
        self.apply(support, chosen.values, self.lr)
        for w in grads:
            if self.ga_residual == "literal":
                a = self.e[w][support]
                self.e[w][support] = a - a / denom[support]
            else:
                self.e[w][support] = 0
        self.last_support = support
        self.prev_lr = self.lr
        return chosen.traffic.report({w: float(self.e[w].norm()) for w in grads})


IMPLEMENTATION = SketchedAMSGradGA
