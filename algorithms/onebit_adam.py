"""1-bit Adam (Tang et al., ICML 2021, arXiv 2102.02888; code microsoft/DeepSpeed
``runtime/fp16/onebit/adam.py``), ``sketched_ams``'s baseline (baselines.md A3).

Warm-up, steps t < T_w (``freeze_step``): uncompressed Adam on the all-reduced gradient, the same
m and v on every worker (no bias correction, as DeepSpeed), 32 d bits each way:

    g = avg_i g_i ;  m = b1 m + (1 - b1) g ;  v = b2 v + (1 - b2) g^2 ;  x <- x - eta m / (sqrt(v) + eps)

Compression, t >= T_w: v frozen at v_{T_w}; each worker's momentum on its LOCAL gradient,
compressed with its error, the server's average compressed with the server's error:

    m_i = b1 m_i + (1 - b1) g_i ;  z_i = m_i + e_i ;  q_i = C(z_i) ;  e_i = z_i - q_i
    zb = avg_i q_i + E ;  mb = C(zb) ;  E = zb - mb ;  broadcast mb
    m_i <- mb (overwritten, so momenta never drift) ;  x <- x - eta mb / (sqrt(v) + eps)

C is ``compressor=onebit_rms`` per tensor (RMS-scaled sign; ``scope: layer``), or ``topk`` for
``sketched_ams``'s Top-k variant (EF kept on both sides, our choice [U]). Residuals start at 0 at
the switch. Weight decay, if > 0, is DeepSpeed's: added to the update after the Adam step,
x <- x - eta (m / (sqrt(v) + eps) + wd x), so it never enters m or v nor is compressed. The downlink is a star
parameter server's message (``bits_down`` = its payload); DeepSpeed's chunked all-to-all with
its padding to n lcm(n, 8) is not reproduced (noted in baselines.md A3). DeepSpeed's dummy first
step is not mirrored.
"""

from __future__ import annotations

import torch

from compress_train.algorithms.amsgrad import check_betas
from compress_train.algorithms.base import Algorithm, Needs
from compress_train.algorithms.server_compression import ServerCompression


class OneBitAdam(Algorithm):
    name = "onebit_adam"
    needs = Needs(server_compressor=True)
    default_ef = "classic"
    allowed_ef = ("classic",)

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
        freeze_step: int = 100,
        weight_decay: float = 0.0,
        server_compressor=None,
    ):
        super().__init__(params, comm, compressor, seed, lr, ef)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.freeze_step, self.weight_decay = freeze_step, weight_decay
        self.m = {w: torch.zeros_like(params) for w in comm.local_workers}
        self.v = torch.zeros_like(params)
        self.server = ServerCompression(server_compressor, params, error=True)

    @classmethod
    def check(cls, cfg):
        errors = super().check(cfg) + check_betas(cfg)
        t = cfg.get("freeze_step")
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            errors.append(f"`freeze_step` must be an integer >= 0 (warm-up steps of full Adam), but is {t!r}.")
        return errors

    def apply(self, m: torch.Tensor) -> None:
        """x <- x - eta (m / (sqrt(v) + eps) + wd x) (DeepSpeed's ``update += weight_decay * p``)."""
        update = m / self.v.sqrt().add_(self.eps)
        if self.weight_decay:
            update.add_(self.params, alpha=self.weight_decay)
        self.params.add_(update, alpha=-self.lr)

    def step(self, grads, step):
        if step < self.freeze_step:
            return self.warmup(grads)
        for w, g in grads.items():
            self.m[w].mul_(self.beta1).add_(g, alpha=1 - self.beta1)
        messages, report = self.compress_and_exchange(self.m, step)
        mb, down = self.server.compress(self.average_decoded(messages), self.seed, step)
        for m in self.m.values():
            m.copy_(mb)
        self.apply(mb)
        report.bits_down = down.bits
        report.extra["numbers_sent"] = report.elements_up + down.elements
        return report

    def warmup(self, grads):
        g, report = self.exchange_dense(grads)
        self.v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        for m in self.m.values():
            m.mul_(self.beta1).add_(g, alpha=1 - self.beta1)
        self.apply(self.m[self.comm.local_workers[0]])
        report.extra["numbers_sent"] = 2.0 * g.numel()
        return report


IMPLEMENTATION = OneBitAdam
