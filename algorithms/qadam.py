"""QAdam: quantized Adam with error feedback (Chen, Shen, Huang, Liu, arXiv 2004.14180), the
baseline of comp_ams §5.3 ("1-bit QAdam"), in its gradient-quantization form.

Variant implemented, and why: comp_ams §3.2 describes QAdam as each worker keeping its own
Adam moments m_i, v_i and compressing the ratio m_i / sqrt(v_i) as a whole, with error
feedback, to a parameter server that averages and broadcasts the model; that is the variant
the COMP-AMS paper compares against, so it is the one we implement. Our copy of the QAdam
paper's own pseudo-code could not be consulted; the details it would fix are our choices,
marked [U] and listed here:

    worker i:  m_i = b1 m_i + (1 - b1) g_i ;  v_i = b2 v_i + (1 - b2) g_i^2    (LOCAL moments)
               u_i = eta m_i / (sqrt(v_i) + eps)                               (lr inside u [U])
               q_i = C(u_i + e_i) ;  e_i = u_i + e_i - q_i ;  send q_i
    server:    x <- x - (1/n) sum_i q_i   (replicated: every process decodes every q_i)

Downlink as implemented: the n - 1 other workers' payloads of the allgather (``bits_down``); a
parameter server broadcasting x in fp32 is only modelled (``bits_down_ps_model`` = 32 d).

No bias correction and no AMSGrad max [U]; the residual e_i is in parameter (step) units, so
a changing lr needs no rescaling. "1-bit" = ``compressor=blocksign`` (one sign per coordinate
+ one fp32 scale per layer), as the COMP-AMS presets set it.
"""

from __future__ import annotations

import torch

from compress_train.algorithms.amsgrad import check_betas
from compress_train.algorithms.base import Algorithm, tensor_bits


class QAdam(Algorithm):
    name = "qadam"
    default_ef = "classic"
    allowed_ef = ("none", "classic")  # the memory acts on u_i, already in step units

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
        self.m = {w: torch.zeros_like(params) for w in comm.local_workers}
        self.v = {w: torch.zeros_like(params) for w in comm.local_workers}

    @classmethod
    def check(cls, cfg):
        return super().check(cfg) + check_betas(cfg)

    def local_step(self, w: int, g: torch.Tensor) -> torch.Tensor:
        """u_i = eta m_i / (sqrt(v_i) + eps) after updating worker w's moments with g."""
        m, v = self.m[w], self.v[w]
        m.mul_(self.beta1).add_(g, alpha=1 - self.beta1)
        v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        return self.lr * m / (v.sqrt() + self.eps)

    def step(self, grads, step):
        steps = {w: self.local_step(w, g) for w, g in grads.items()}
        messages, report = self.compress_and_exchange(steps, step)
        self.params.sub_(self.average_decoded(messages))
        report.extra["bits_down_ps_model"] = tensor_bits(self.params)
        return report


IMPLEMENTATION = QAdam
