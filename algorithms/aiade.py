"""AIADE: aiade Algorithm 2, Nesterov's accelerated gradient on doubly encoded differences.

    eta = 1/L,  tau = (sqrt L - sqrt mu)/(sqrt L + sqrt mu),  c = sqrt(1 - sqrt(mu/L))
    error budget at iteration k: eps_k = eps c^(k+1) / (2k + 2)      (Alg. 2 lines 4 and 10)
    v_k = double_encoding(grad f_i(y_k), eps_k)                        (lines 3-14)
    x_{k+1} = y_k - eta v_k                                           (line 16)
    y_{k+1} = x_{k+1} + tau (x_{k+1} - x_k)                           (line 17)

with x_0 = y_0 = 0. Theorem 4.1: ||x_k - x*|| <= c^k G(k), G(k) = O(ln k), and O(Nd ln(k ln k))
bits at iteration k. The parameters are the paper's (fixed: no eta or tau to choose); ``algo.eps``
scales the budget (auto = ||grad f(x_0)||). Requires ``compressor=bounded`` (deterministic).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch

from compress_train.algorithms.iade import IncreasingAccuracy, check_auto


class AIADE(IncreasingAccuracy):
    name = "aiade"
    needs = replace(IncreasingAccuracy.needs, full_gradient=True, gradient_point=True)

    def __init__(self, params, comm, compressor, seed=0, lr="auto", ef=None, problem=None, unsafe=False, eps="auto"):
        super().__init__(params, comm, compressor, seed, lr, ef, problem, unsafe)
        self.require(
            abs(self.lr - 1 / self.L) <= 1e-12 / self.L,
            f"`lr` (eta) must be 1/L = {1 / self.L:.6g} for algo=aiade (Alg. 2 fixes it), but is {lr!r}.",
        )
        root_l, root_mu = math.sqrt(self.L), math.sqrt(self.mu)
        self.tau = (root_l - root_mu) / (root_l + root_mu)
        self.c = math.sqrt(1 - math.sqrt(self.mu / self.L))
        self.eps = float(self.problem["grad0_norm"]) if eps == "auto" else float(eps)
        self.y = params.clone()

    @classmethod
    def check(cls, cfg):
        return super().check(cfg) + check_auto(cfg, ("eps",))

    def resolve_lr(self, lr):
        return 1 / self.L if lr == "auto" else float(lr)

    def gradient_point(self) -> torch.Tensor:
        return self.y

    def budget(self, k: int) -> float:
        return self.eps * self.c ** (k + 1) / (2 * k + 2)

    def update(self, v) -> None:
        x_next = self.y - self.lr * v
        self.y = x_next + self.tau * (x_next - self.params)
        self.params.copy_(x_next)

    def theory(self) -> dict[str, Any]:
        return {
            "rate": self.c,
            "rate_of": "||x_k - x*|| up to a O(ln k) factor (Theorem 4.1)",
            "eta": self.lr,
            "tau": self.tau,
            "c": self.c,
            "eps": self.eps,
            "L": self.L,
            "mu": self.mu,
        }


IMPLEMENTATION = AIADE
