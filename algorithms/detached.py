"""Detached error feedback, ``def`` Alg. 1 with the momentum of Eq. 11 (baselines.md C3): the
mechanism behind ``def``, ``def_a``, ``saef`` and ``ef_sgd algo.ef=local_momentum``.

Per worker i (state: momentum m_i and error e_i, in step units: ``error_feedback/local_momentum.py``):

    z_i = x_t - lambda e_i                          # the detached point (Alg. 1 line 3)
    d_i = grad f_i(z_i; xi) + wd z_i                # weight decay at that same point
    m_i = mu m_i + d_i ;  p_i = eta_t m_i + e_i     # Eq. 11 (mu = 0: Alg. 1)
    e_i = p_i - C(p_i)                              # Alg. 1 line 5
    x_{t+1} = x_t - avg_i C(p_i)                    # one allreduce of the RBGS blocks (line 6)

lambda = 0 is ``def``'s EF baseline (C1(a)), lambda = 1 SAEF's step-ahead point (C4). The output
differs: DEF evaluates y_t = x_t - avg_i e_i (Alg. 1 output; one allreduce of the errors, 32 d
bits, counted as ``bits_eval``, never in ``bits_up``), DEF-A, SAEF and EF evaluate x_t.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, cast

from torch import Tensor

from compress_train.algorithms.base import Algorithm, Needs, StepReport, tensor_bits
from compress_train.algorithms.error_feedback.local_momentum import LocalMomentumMemory


def check_detached(cfg, lam: bool = True) -> list[str]:
    from compress_train.algorithms.sgd import check_momentum

    errors = check_momentum({**cfg, "nesterov": False})
    if lam:
        value = cfg.get("lam")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            errors.append(f"`lam` must be a number in [0, 1] (def's lambda; 0.3 in the paper), but is {value!r}.")
    return errors


class _Decaying(Protocol):
    """What ``local_momentum_step`` reads of the family's algorithms beyond ``Algorithm``."""

    weight_decay: float
    decay_mask: Tensor | None


def local_momentum_step(
    algo: Algorithm, grads: dict[int, Tensor], step: int, points: dict[int, Tensor] | None
) -> StepReport:
    """One step of the family for ``algo`` (attributes ``weight_decay``, ``decay_mask`` and memories
    of mode ``local_momentum``): weight decay at each worker's point (the iterate where ``points``
    is None), the memory's momentum and error, the exchange, x <- x - avg_i C(p_i)."""
    decaying = cast(_Decaying, algo)
    if decaying.weight_decay:
        mask = decaying.decay_mask
        grads = {
            w: g.add(z if mask is None else z * mask, alpha=decaying.weight_decay)
            for w, g in grads.items()
            for z in [algo.params if points is None else points[w]]
        }
    messages, report = algo.compress_and_exchange(grads, step)
    # avg_i C(p_i) = eta avg_i C(p_i / eta): the compressor sees gradient units (the memory contract)
    algo.params.sub_(algo.lr * algo.average_decoded(messages))
    return report


class DetachedErrorFeedback(Algorithm):
    """Base of the family; subclasses set ``name``, ``evaluate_at`` ("average": y = x - avg e;
    "iterate": x) and, where fixed, ``fixed_lam``."""

    needs = Needs(decay_mask=True, worker_points=True)
    default_ef = "local_momentum"
    allowed_ef = ("local_momentum",)
    evaluate_at: ClassVar[str] = "iterate"
    fixed_lam: ClassVar[float | None] = None

    def __init__(
        self,
        params,
        comm,
        compressor,
        seed=0,
        lr=0.05,
        ef=None,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        lam: float = 0.3,
        decay_norm: bool = True,
        decay_mask: Tensor | None = None,
    ):
        super().__init__(params, comm, compressor, seed, lr, ef)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.lam = float(self.fixed_lam if self.fixed_lam is not None else lam)
        self.decay_mask = None if decay_norm or decay_mask is None else decay_mask
        for memory in self.memories.values():
            if isinstance(memory, LocalMomentumMemory):
                memory.mu = momentum

    @classmethod
    def check(cls, cfg):
        return super().check(cfg) + check_detached(cfg, lam=cls.fixed_lam is None)

    def gradient_points(self) -> dict[int, Tensor] | None:
        """z_i = x - lambda e_i for each local worker (None at lambda = 0: the iterate)."""
        if self.lam == 0:
            return None
        return {w: self.params - self.lam * self.memories[w].error for w in self.comm.local_workers}

    def step(self, grads, step):
        return local_momentum_step(self, grads, step, self.gradient_points())

    def evaluation_point(self) -> tuple[Tensor, int] | None:
        """DEF's output y = x - avg_i e_i and the bits of the allreduce it costs; None: evaluate x."""
        if self.evaluate_at != "average":
            return None
        errors = [self.memories[w].error for w in self.comm.local_workers]
        avg = self.comm.allreduce_mean(errors)
        return self.params - avg, tensor_bits(avg)
