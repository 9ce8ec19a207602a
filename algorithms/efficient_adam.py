"""Efficient-Adam (Chen et al., arXiv 2205.14473, IEEE TSP 2023), ``sketched_ams``'s baseline:
two-way compression with two-way error feedback (baselines.md A2; no official code, the formulas
are our reading, marked [U] there).

    worker i:  m_i = b1 m_i + (1 - b1) g_i ;  v_i = b2 v_i + (1 - b2) g_i^2     (local moments)
               u_i = eta m_i / (sqrt(v_i) + eps)
               q_i = Q(u_i + e_i) ;  e_i = u_i + e_i - q_i ;  send q_i          (QAdam's worker)
    server:    p = avg_i q_i ;  Q_s = Q(p + E) ;  E = p + E - Q_s ;  broadcast Q_s
    all:       x <- x - Q_s            (workers apply the update; no model is sent)

The same compressor both ways (our choice [U]; ``sketched_ams`` runs ``scaled_sign`` and
``topk``). ``bits_down`` is the server message's size; ``numbers_sent`` counts values up + down
without indices, ``sketched_ams``'s own convention.
"""

from __future__ import annotations

from compress_train.algorithms.base import Needs
from compress_train.algorithms.qadam import QAdam
from compress_train.algorithms.server_compression import ServerCompression


class EfficientAdam(QAdam):
    name = "efficient_adam"
    needs = Needs(server_compressor=True)

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
        server_ef: bool = True,
        server_compressor=None,
    ):
        super().__init__(params, comm, compressor, seed, lr, ef, beta1, beta2, eps)
        self.server = ServerCompression(server_compressor, params, error=server_ef)

    def step(self, grads, step):
        steps = {w: self.local_step(w, g) for w, g in grads.items()}
        messages, report = self.compress_and_exchange(steps, step)
        update, down = self.server.compress(self.average_decoded(messages), self.seed, step)
        self.params.sub_(update)
        report.bits_down = down.bits
        report.extra["numbers_sent"] = report.elements_up + down.elements
        return report


IMPLEMENTATION = EfficientAdam
