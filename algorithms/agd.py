"""Distributed Nesterov accelerated gradient (constant momentum, strongly convex form), each
worker's gradient compressed: the full-precision limit of AIADE (aiade Alg. 2 without Q).

    x_{k+1} = y_k - eta (1/N) sum_i C(grad f_i(y_k)),  eta = 1/L
    y_{k+1} = x_{k+1} + tau (x_{k+1} - x_k),           tau = (sqrt L - sqrt mu)/(sqrt L + sqrt mu)

Rate c = sqrt(1 - sqrt(mu/L)) in distance. Downlink as implemented: the n - 1 other payloads
(``bits_down``); a dense broadcast of x_{k+1} is only modelled (``bits_down_ps_model``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch

from compress_train.algorithms.base import tensor_bits
from compress_train.algorithms.gd import GD


class AGD(GD):
    name = "agd"
    needs = replace(GD.needs, gradient_point=True)

    def __init__(self, params, comm, compressor, seed=0, lr="auto", ef=None, problem=None):
        super().__init__(params, comm, compressor, seed, lr, ef, problem)
        root_l, root_mu = math.sqrt(self.L), math.sqrt(self.mu)
        self.tau = (root_l - root_mu) / (root_l + root_mu)
        self.y = params.clone()

    def resolve_lr(self, lr) -> float:
        return 1 / self.L if lr == "auto" else float(lr)

    def gradient_point(self) -> torch.Tensor:
        return self.y

    def step(self, grads, step):
        g, report = self.direction(grads, step)
        x_next = self.y - self.lr * g
        self.y = x_next + self.tau * (x_next - self.params)
        self.params.copy_(x_next)
        report.extra["bits_down_ps_model"] = tensor_bits(self.params)
        return report

    def theory(self) -> dict[str, Any]:
        out = {"eta": self.lr, "tau": self.tau, "L": self.L, "mu": self.mu}
        if self.compressor is None or self.compressor.compressor.name == "identity":
            out.update(rate=math.sqrt(1 - math.sqrt(self.mu / self.L)), rate_of="||x_k - x*|| (Nesterov)")
        return out


IMPLEMENTATION = AGD
