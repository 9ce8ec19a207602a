"""IADE: aiade Algorithm 1, gradient descent on doubly encoded gradient differences.

    eta in (0, 2/(L+mu)],  c = 1 - eta mu,  c < c' < 1,  s the quantization level
    error budget at iteration k: eps_k = s c'^(k+1) / 2            (Alg. 1 lines 6 and 12)
    v_k = double_encoding(grad f_i(x_k), eps_k)                      (lines 5-16)
    x_{k+1} = x_k - eta v_k                                         (line 18)

Theorem 3.1 as PROVED (App. 7.1): ||v_k - grad f(x_k)|| <= s c'^(k+1), so by Lemma 7.2
||x_{k+1} - x*|| <= c ||x_k - x*|| + eta s c'^(k+1), and Lemma 7.1 applied to this recursion (its
"s" is eta s) gives ||x_k - x*|| <= c'^k xi with xi = ``lemma_7_1_xi(||x_0 - x*||, c, c', eta s)``
= max{0, ||x_0 - x*|| - c eta s/(c'-c)} + c' eta s/(c'-c). The paper's STATEMENT of Theorem 3.1
(and the proof's "xi_s") uses s where the recursion has eta s: the two agree only at eta = 1, and at
the default eta = 2/(L+mu) (about 2 when L + mu is about 1) the stated bound is about half the proved
one and not implied by the proof. ``theory()`` logs the proved bound as ``xi_s`` and the paper's
printed one as ``xi_s_as_stated``. A constant number of bits per message. Defaults: eta = 2/(L+mu)
(the end of the interval, where 1 - eta mu is GD's own rate (kappa-1)/(kappa+1); the theorem's
contraction holds there too), c' = c + (1-c)/4, s = ||grad f(x_0)||. A value that breaks the
theorem's conditions is rejected unless ``algo.unsafe=true``. Requires ``compressor=bounded``
(deterministic).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from compress_train.algorithms.base import Algorithm, Needs, ParameterError
from compress_train.algorithms.double_encoding import DoubleEncoding


def is_auto_or_number(value: Any, low: float = 0.0) -> bool:
    return value == "auto" or (isinstance(value, (int, float)) and not isinstance(value, bool) and value > low)


def lemma_7_1_xi(x0: float, c: float, c_prime: float, s: float) -> float:
    """aiade Lemma 7.1: x_{k+1} <= c x_k + s c'^(k+1) (c < c' < 1) gives x_k <= c'^k xi with this xi,
    max{0, x0 - c s/(c'-c)} + c' s/(c'-c) (the lemma's statement; its proof has c' for c in the max,
    a slightly smaller xi that the statement's implies)."""
    gap = c_prime - c
    return max(0.0, x0 - c * s / gap) + c_prime * s / gap


def check_auto(cfg: dict, keys: tuple[str, ...]) -> list[str]:
    return [
        f"`{k}` must be 'auto' or a number > 0, but is {cfg.get(k)!r}."
        for k in keys
        if not is_auto_or_number(cfg.get(k))
    ]


class IncreasingAccuracy(Algorithm):
    """Shared by IADE, AIADE and IADE-SGD: the theory's constants and the double encoding."""

    needs = Needs(problem="required", compressor_name="bounded", compressor_params={"mode": "deterministic"})
    allowed_ef = ("none",)
    default_ef = "none"

    def __init__(self, params, comm, compressor, seed=0, lr="auto", ef=None, problem=None, unsafe=False, **hyper):
        self.problem = problem or {}
        self.L, self.mu = float(self.problem["L"]), float(self.problem["mu"])
        super().__init__(params, comm, compressor, seed, self.resolve_lr(lr), "none")
        self.unsafe = unsafe
        self.encoding = DoubleEncoding(params, comm, compressor, seed)

    @classmethod
    def check(cls, cfg):
        return check_auto(cfg, ("lr",)) + cls.check_ef(cfg)

    @classmethod
    def check_ef(cls, cfg):
        ef = cfg.get("ef")
        return (
            []
            if ef in (None, False, "none")
            else [f"`ef` must be 'none' for algo={cls.name} (the double encoding is its own memory), but is {ef!r}."]
        )

    def resolve_lr(self, lr):
        return lr

    def require(self, ok: bool, message: str) -> None:
        """A theorem's condition: ValueError naming the key unless ``algo.unsafe``."""
        if not ok and not self.unsafe:
            raise ParameterError(message + " (set algo.unsafe=true to run anyway)")

    def step(self, grads, step):
        v, report = self.encoding.exchange(grads, self.budget(step), step)
        self.update(v)
        return report


class IADE(IncreasingAccuracy):
    name = "iade"
    needs = replace(IncreasingAccuracy.needs, full_gradient=True)

    def __init__(
        self, params, comm, compressor, seed=0, lr="auto", ef=None, problem=None, unsafe=False, c_prime="auto", s="auto"
    ):
        super().__init__(params, comm, compressor, seed, lr, ef, problem, unsafe)
        bound = 2 / (self.L + self.mu)
        self.require(
            0 < self.lr <= bound * (1 + 1e-12),
            f"`lr` (eta) must be in (0, 2/(L+mu)] = (0, {bound:.6g}] for algo=iade, but is {self.lr!r}.",
        )
        self.c = 1 - self.lr * self.mu
        self.c_prime = self.c + (1 - self.c) / 4 if c_prime == "auto" else float(c_prime)
        self.require(
            self.c < self.c_prime < 1,
            f"`c_prime` must be in (c, 1) = ({self.c:.6g}, 1) for algo=iade, but is {c_prime!r}.",
        )
        self.s = float(self.problem["grad0_norm"]) if s == "auto" else float(s)

    @classmethod
    def check(cls, cfg):
        return super().check(cfg) + check_auto(cfg, ("c_prime", "s"))

    def resolve_lr(self, lr):
        return 2 / (self.L + self.mu) if lr == "auto" else float(lr)

    def budget(self, k: int) -> float:
        return self.s * self.c_prime ** (k + 1) / 2

    def update(self, v) -> None:
        self.params.add_(v, alpha=-self.lr)

    def theory(self) -> dict[str, Any]:
        x0 = self.problem["x0_dist"]
        return {
            "rate": self.c_prime,
            "rate_of": "||x_k - x*|| (Theorem 3.1 as proved)",
            "eta": self.lr,
            "c": self.c,
            "c_prime": self.c_prime,
            "s": self.s,
            "xi_s": lemma_7_1_xi(x0, self.c, self.c_prime, self.lr * self.s),
            "xi_s_as_stated": lemma_7_1_xi(x0, self.c, self.c_prime, self.s),
            "L": self.L,
            "mu": self.mu,
        }


IMPLEMENTATION = IADE
