"""COMP-AMS: comp_ams Algorithm 2, distributed AMSGrad on compressed, error-corrected gradients.

Workers (lines 6-9): g_tilde_i = C(g_i + e_i); e_i <- e_i + g_i - g_tilde_i; send g_tilde_i
(``ef=classic``; ``ef=none``/``false`` sends C(g_i), the no-EF curves of Fig. 1; ``ef=scaled``
uses hard_threshold's step-unit memory instead). Server (lines 12-16), with m_0 = v_0 = vhat_0 = 0:
    g_bar = (1/n) sum_i g_tilde_i
    m = b1 m + (1 - b1) g_bar;  v = b2 v + (1 - b2) g_bar^2;  vhat = max(v, vhat)
    theta <- theta - eta m / sqrt(vhat + eps)
The server state is replicated on every process (each one decodes every worker's payload), so
one process and many give the same numbers. Downlink as implemented: each worker receives the
n - 1 other workers' payloads of the allgather (``bits_down``); the paper's parameter server,
which would send theta_t to each worker (line 5, 32 bits per parameter), is not what runs, so its
cost is logged apart as the model ``bits_down_ps_model`` (never on a plot's bits axis unless a
preset asks for it).
"""

from __future__ import annotations

import torch

from compress_train.algorithms.amsgrad import amsgrad_moments_, check_betas
from compress_train.algorithms.base import Algorithm, tensor_bits


class CompAMS(Algorithm):
    name = "comp_ams"
    default_ef = "classic"

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
        super().__init__(params, comm, compressor, seed, lr, ef)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = torch.zeros_like(params)
        self.v = torch.zeros_like(params)
        self.vhat = torch.zeros_like(params)

    @classmethod
    def check(cls, cfg):
        return super().check(cfg) + check_betas(cfg)

    def step(self, grads, step):
        messages, report = self.compress_and_exchange(grads, step)
        g_bar = self.average_decoded(messages)
        amsgrad_moments_(self.m, self.v, self.vhat, g_bar, self.beta1, self.beta2)
        self.params.addcdiv_(self.m, (self.vhat + self.eps).sqrt_(), value=-self.lr)
        report.extra["bits_down_ps_model"] = tensor_bits(self.params)
        return report


IMPLEMENTATION = CompAMS
