"""Distributed gradient descent on a convex problem, each worker's gradient compressed.

    x_{k+1} = x_k - eta (1/N) sum_i C(grad f_i(x_k))

With ``compressor=identity`` it is exact GD (the full-precision limit of aiade's methods;
rate (kappa-1)/(kappa+1) at eta = 2/(L+mu)); with ``compressor=qsgd`` it is QSGD (Alistarh et
al. 2017) on full local gradients; with ``compressor=bounded`` (fixed ``compressor.eps``) it is
the "trivial" scheme of aiade section 3 (``algo=qgd``). ``algo.ef`` adds error feedback.
Downlink as implemented: the server is replicated, so a worker receives the n - 1 other payloads
(``bits_down``); a server broadcasting x_{k+1} dense is only modelled (``bits_down_ps_model``).
"""

from __future__ import annotations

from typing import Any

from compress_train.algorithms.base import Algorithm, Needs, tensor_bits
from compress_train.algorithms.iade import check_auto


class GD(Algorithm):
    name = "gd"
    needs = Needs(problem="required", full_gradient=True)
    default_ef = "none"

    def __init__(self, params, comm, compressor, seed=0, lr="auto", ef=None, problem=None):
        self.L, self.mu = float(problem["L"]), float(problem["mu"])
        super().__init__(params, comm, compressor, seed, self.resolve_lr(lr), ef)

    @classmethod
    def check(cls, cfg):
        errors = check_auto(cfg, ("lr",))
        return errors + super().check({**cfg, "lr": 1.0})  # lr checked above; EF as usual

    def resolve_lr(self, lr) -> float:
        return 2 / (self.L + self.mu) if lr == "auto" else float(lr)

    def direction(self, grads, step):
        messages, report = self.compress_and_exchange(grads, step)
        return self.average_decoded(messages), report

    def step(self, grads, step):
        g, report = self.direction(grads, step)
        self.params.add_(g, alpha=-self.lr)
        report.extra["bits_down_ps_model"] = tensor_bits(self.params)
        return report

    def exact(self) -> bool:
        """The gradients reach the update as computed (no compressor, or compressor=identity)."""
        return self.compressor is None or self.compressor.compressor.name == "identity"

    def theory(self) -> dict[str, Any]:
        """Exact GD's rate max |1 - eta lambda| over [mu, L]; none is proven with a compressor."""
        out = {"eta": self.lr, "L": self.L, "mu": self.mu}
        if self.exact():
            out.update(
                rate=max(abs(1 - self.lr * self.mu), abs(1 - self.lr * self.L)),
                rate_of="||x_k - x*|| of exact GD (max |1 - eta lambda|)",
            )
        return out


IMPLEMENTATION = GD
