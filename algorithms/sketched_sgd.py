"""Sketched-SGD (Ivkin et al., NeurIPS 2019, arXiv 1903.04488; baselines.md B2), ``sketched_ams``'s
sketch baseline. Code: github dhroth/sketchedsgd ``sketched_optimizer.py``.

    worker i:  u_i = rho u_i + g_i (+ wd x) ;  v_i = v_i + u_i        (local momentum, then local error)
               send S(v_i)                                             (round 1: one allreduce of the tables)
    server:    S = sum_i S(v_i) ;  cand = top-(P k) of the estimate of S      (P = the code's p2)
    round 2:   workers send v_i[cand] exactly (one allreduce) ;  w = top-k of reduce_i v_i[cand]
    all:       x -= lr w ;  on supp(w): u_i = 0 and v_i = 0 on EVERY worker  (momentum stop + error reset)

- ``reduce`` [U]: ``mean`` (default) or ``sum`` over the workers; the code sums (its losses are divided
  by the number of workers, so its sum is our mean); the two only rescale lr.
- ``candidates_factor: 0``: no second round, w = U(S, k) (the top k of the sketch's estimate).
- ``lr_in_error`` [U]: false (default): lr applied to w after aggregation, as dhroth/sketchedsgd runs
  today (the line of ``_backwardWorker`` that multiplied the gradient by lr before the accumulation is
  commented out in its current code); true: u_i = rho u_i + lr g_i and x -= w (the lr inside momentum
  and error, that line's form). Identical for a constant lr.
- Left out: the code's dense path for parameters that are not sketched (biases by default: summed
  exactly every step, their v zeroed, u kept): every coordinate is sketched here.
- rho is not given by 001: our choice 0.9 [U]. supp(w) = the nonzero coordinates of w (the code's
  ``weightUpdate.nonzero()``).

Bits (ours): up = 32 r c + 32 P k; down (as implemented) = the allreduces' results, the same
sizes; the modelled server's 32 P k + 64 k is ``bits_down_ps_model`` (P = 0: 32 r c up and down, 64 k
modelled).
``numbers_sent`` (001): |S| + P k + k.
"""

from __future__ import annotations

import torch

from compress_train.algorithms.sketching import REDUCES, SketchedAlgorithm, check_choice, check_factor, check_rho


class SketchedSGD(SketchedAlgorithm):
    name = "sketched_sgd"

    def __init__(
        self,
        params,
        comm,
        compressor,
        seed=0,
        lr=0.01,
        ef=None,
        rho: float = 0.9,
        weight_decay: float = 0.0,
        candidates_factor: int = 8,
        reduce: str = "mean",
        lr_in_error: bool = False,
    ):
        super().__init__(params, comm, compressor, seed, lr, ef)
        self.rho, self.weight_decay, self.candidates_factor = rho, weight_decay, candidates_factor
        self.reduce, self.lr_in_error = reduce, lr_in_error
        self.u = {w: torch.zeros_like(params) for w in comm.local_workers}
        self.v = {w: torch.zeros_like(params) for w in comm.local_workers}

    @classmethod
    def check(cls, cfg):
        errors = super().check(cfg) + check_rho(cfg) + check_factor(cfg, minimum=0)
        wd = cfg.get("weight_decay", 0.0)
        if isinstance(wd, bool) or not isinstance(wd, (int, float)) or wd < 0:
            errors.append(f"`weight_decay` must be a number >= 0, but is {wd!r}.")
        return (
            errors
            + check_choice(cfg, "reduce", REDUCES, "mean")
            + check_choice(cfg, "lr_in_error", (False, True), False)
        )

    def step(self, grads, step):
        scale = self.lr if self.lr_in_error else 1.0
        for w, g in grads.items():
            if self.weight_decay:
                g = g.add(self.params, alpha=self.weight_decay)
            self.u[w].mul_(self.rho).add_(g, alpha=scale)
            self.v[w].add_(self.u[w])
        first = self.first_round(self.v, step)
        chosen = self.second_round(self.v, first, self.candidates_factor, self.reduce)
        self.apply(chosen.support, chosen.values, 1.0 if self.lr_in_error else self.lr)
        hit = chosen.support[chosen.values != 0]
        for w in grads:
            self.u[w][hit] = 0
            self.v[w][hit] = 0
        return chosen.traffic.report({w: float(self.v[w].norm()) for w in grads})


IMPLEMENTATION = SketchedSGD
