"""Distributed error-feedback SGD, hard_threshold Algorithm 1, with the momentum of the PowerSGD
error-feedback scheme that hard_threshold's network code follows.

Workers: ``ef=scaled`` (default, Alg. 1): p_i = e_i + gamma g_i; Delta_i = gamma C(p_i / gamma);
e_i = p_i - Delta_i (the compressor sees gradient units, so a hard threshold lambda keeps
|p_j| >= gamma lambda); ``ef=powersgd`` (the authors' network code) or ``classic`` (the same
memory under comp_ams's name): send C(g_i + e_i), e_i = g_i + e_i - C(g_i + e_i), raw gradient
units; ``ef=none``: send C(g_i); ``ef=local_momentum`` (``def``'s EF baseline, baselines.md C1(a)): each
worker's own momentum and weight decay before the memory, error in step units, x <- x - avg C(p_i)
(``algorithms/detached.py`` with lambda = 0; no global momentum). Messages are allgathered (variable sizes padded on the wire),
so each worker receives every other worker's payload.

Server step, identical on every worker, in gradient units: d = (1/n) sum_i decode_i + wd x (with
``decay_norm: false``, no decay on BatchNorm/LayerNorm parameters, as hard_threshold's CIFAR code), then
- ``optimizer=sgd``: with momentum mu > 0, m = d at the first step, else m = mu m + d; d = d + m
  if Nesterov (PowerSGD's form, + m not + mu m) else m; x <- x - gamma d. With mu = wd = 0 and
  ``ef=scaled`` this is exactly Alg. 1's x_{t+1} = x_t - (1/n) sum_i Delta_i.
- ``optimizer=adam`` (hard_threshold's NCF setting: EF memory on raw gradients before Adam):
  torch.optim.Adam's rule on d, m = b1 m + (1-b1) d, v = b2 v + (1-b2) d^2,
  x <- x - gamma (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).

``lr: auto`` on a convex task: gamma = 1/(L + l2) with L the data term's smoothness (hard_threshold
Fig. 1's step size; the problem's L already includes l2, so gamma = 1/L there).
"""

from __future__ import annotations

import torch
from torch import Tensor

from compress_train.algorithms.base import Algorithm, Needs, ParameterError
from compress_train.algorithms.detached import local_momentum_step
from compress_train.algorithms.error_feedback.local_momentum import LocalMomentumMemory
from compress_train.algorithms.sgd import check_momentum

OPTIMIZERS = ("sgd", "adam")


class EFSGD(Algorithm):
    name = "ef_sgd"
    default_ef = "scaled"
    allowed_ef = ("none", "classic", "scaled", "powersgd", "local_momentum")
    needs = Needs(problem="optional", decay_mask=True)

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
        optimizer: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        decay_norm: bool = True,
        decay_mask: Tensor | None = None,
        problem: dict | None = None,
    ):
        if lr == "auto":
            if problem is None:
                raise ParameterError("`lr` is 'auto', which only convex models define (gamma = 1/L); give a number.")
            lr = 1 / float(problem["L"])
        super().__init__(params, comm, compressor, seed, float(lr), ef)
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        # decay_norm false: no weight decay on normalisation layers (the task's decay_mask)
        self.decay_mask = None if decay_norm or decay_mask is None else decay_mask
        self.optimizer, self.betas, self.adam_eps = optimizer, tuple(betas), adam_eps
        self.m: Tensor | None = None
        self.v: Tensor | None = None
        self.t = 0
        if self.ef == "local_momentum":  # def's EF baseline: the momentum is each worker's own
            for memory in self.memories.values():
                if isinstance(memory, LocalMomentumMemory):
                    memory.mu = momentum

    @classmethod
    def check(cls, cfg):
        errors = check_momentum(cfg)
        errors += super().check({**cfg, "lr": 1.0}) if cfg.get("lr") == "auto" else super().check(cfg)
        opt = cfg.get("optimizer", "sgd")
        if opt not in OPTIMIZERS:
            errors.append(f"`optimizer` must be one of {list(OPTIMIZERS)}, but is {opt!r}.")
        elif opt == "adam":
            b = cfg.get("betas", (0.9, 0.999))
            if not (len(b) == 2 and all(isinstance(x, (int, float)) and 0 <= x < 1 for x in b)):
                errors.append(f"`betas` must be two numbers in [0, 1), but is {b!r}.")
            if cfg.get("momentum"):
                errors.append("`momentum` must be 0 with algo.optimizer=adam (Adam has its own moments).")
        if cfg.get("ef") == "local_momentum" and (opt != "sgd" or cfg.get("nesterov")):
            errors.append(
                "`ef` local_momentum (def's EF baseline) takes algo.optimizer=sgd without nesterov: "
                "its momentum is each worker's own."
            )
        return errors

    def step(self, grads, step):
        if self.ef == "local_momentum":
            return local_momentum_step(self, grads, step, None)
        messages, report = self.compress_and_exchange(grads, step)
        d = self.average_decoded(messages)
        if self.weight_decay:
            decayed = self.params if self.decay_mask is None else self.params * self.decay_mask
            d.add_(decayed, alpha=self.weight_decay)
        if self.optimizer == "adam":
            self.adam_step(d)
        else:
            if self.momentum:
                self.m = d.clone() if self.m is None else self.m.mul_(self.momentum).add_(d)
                d = d + self.m if self.nesterov else self.m
            self.params.add_(d, alpha=-self.lr)
        return report

    def adam_step(self, d: Tensor) -> None:
        b1, b2 = self.betas
        if self.m is None:
            self.m, self.v = torch.zeros_like(d), torch.zeros_like(d)
        self.t += 1
        assert self.v is not None  # set together with self.m
        self.m.mul_(b1).add_(d, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(d, d, value=1 - b2)
        denom = (self.v / (1 - b2**self.t)).sqrt_().add_(self.adam_eps)
        self.params.addcdiv_(self.m, denom, value=-self.lr / (1 - b1**self.t))


IMPLEMENTATION = EFSGD
