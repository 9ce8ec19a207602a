"""Distributed AMSGrad without compression: comp_ams Algorithm 1 fed with the workers' mean
gradient (an allreduce).

Algorithm 1 (Reddi et al. 2018 as written in comp_ams): v_0 = eps * 1, m_0 = 0, and
    m_t = b1 m_{t-1} + (1 - b1) g_t                      (line 5)
    v_t = b2 v_{t-1} + (1 - b2) g_t^2                    (line 6)
    vhat_t = max(vhat_{t-1}, v_t)                        (line 7)
    theta_{t+1} = theta_t - eta m_t / sqrt(vhat_t)       (line 8)
no bias correction and no eps in the denominator (eps enters through v_0).
"""

from __future__ import annotations

import torch
from torch import Tensor

from compress_train.algorithms.base import Algorithm, Needs


def amsgrad_moments_(m: Tensor, v: Tensor, vhat: Tensor, g: Tensor, beta1: float, beta2: float) -> None:
    """Lines 5-7 of Alg. 1 (= lines 13-15 of Alg. 2), in place."""
    m.mul_(beta1).add_(g, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    torch.maximum(vhat, v, out=vhat)


class AMSGrad(Algorithm):
    name = "amsgrad"
    needs = Needs(compressor=False)

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
        eps: float = 1e-8,
    ):
        super().__init__(params, comm, None, seed, lr, ef)
        self.beta1, self.beta2 = beta1, beta2
        self.m = torch.zeros_like(params)
        self.v = torch.full_like(params, eps)
        self.vhat = torch.full_like(params, eps)

    @classmethod
    def check(cls, cfg):
        return super().check(cfg) + check_betas(cfg)

    def step(self, grads, step):
        g, report = self.exchange_dense(grads)
        amsgrad_moments_(self.m, self.v, self.vhat, g, self.beta1, self.beta2)
        self.params.addcdiv_(self.m, self.vhat.sqrt(), value=-self.lr)
        return report


def check_betas(cfg) -> list[str]:
    errors = []
    for key in ("beta1", "beta2"):
        b = cfg.get(key)
        if not isinstance(b, (int, float)) or not 0 <= b < 1:
            errors.append(f"`{key}` must be in [0, 1), but is {b!r}.")
    eps = cfg.get("eps")
    if not isinstance(eps, (int, float)) or eps <= 0:
        errors.append(f"`eps` must be a number > 0, but is {eps!r}.")
    return errors


IMPLEMENTATION = AMSGrad
