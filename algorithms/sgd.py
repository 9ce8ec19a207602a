"""Uncompressed data-parallel SGD: allreduce-mean of fp32 gradients, then torch.optim.SGD's rule
(dampening 0): d = g + wd x; b = mu b + d (b = d at the first step); d = d + mu b if Nesterov
else b; x <- x - lr d.
"""

from __future__ import annotations

from torch import Tensor

from compress_train.algorithms.base import Algorithm, Needs


def check_momentum(cfg) -> list[str]:
    errors = []
    mu, wd = cfg.get("momentum"), cfg.get("weight_decay")
    if not isinstance(mu, (int, float)) or not 0 <= mu < 1:
        errors.append(f"`momentum` must be in [0, 1), but is {mu!r}.")
    if not isinstance(wd, (int, float)) or wd < 0:
        errors.append(f"`weight_decay` must be a number >= 0, but is {wd!r}.")
    if cfg.get("nesterov") and not (isinstance(mu, (int, float)) and mu > 0):
        errors.append("`nesterov` needs `momentum` > 0.")
    return errors


class SGD(Algorithm):
    name = "sgd"
    needs = Needs(compressor=False)

    def __init__(
        self,
        params,
        comm,
        compressor,
        seed=0,
        lr=0.01,
        ef=None,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, comm, None, seed, lr, ef)
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self.buf: Tensor | None = None

    @classmethod
    def check(cls, cfg):
        return super().check(cfg) + check_momentum(cfg)

    def step(self, grads, step):
        g, report = self.exchange_dense(grads)
        d = g.add(self.params, alpha=self.weight_decay) if self.weight_decay else g
        if self.momentum:
            self.buf = d.clone() if self.buf is None else self.buf.mul_(self.momentum).add_(d)
            d = d.add(self.buf, alpha=self.momentum) if self.nesterov else self.buf
        self.params.add_(d, alpha=-self.lr)
        return report


IMPLEMENTATION = SGD
