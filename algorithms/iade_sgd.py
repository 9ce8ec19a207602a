"""IADE-SGD: aiade Algorithm 3, SGD on doubly encoded stochastic-gradient differences.

    eta in (0, 1/(rho L)] (Alg. 3: eta = 1/(rho L)),  c = 1 - eta mu,  c < c' < 1,  s the level
    error budget at iteration k: eps_k = rho^2 L^2 s c'^(k+1) / 2     (Alg. 3 lines 6 and 12)
    v_k = double_encoding(stochastic grad f_i(x_k), eps_k)            (lines 4-16)
    x_{k+1} = x_k - eta v_k

Q is the unbiased stochastic quantizer with E||Q(x) - x||^2 <= eps_k (``compressor.mode:
stochastic``), so E||v_k - g_k||^2 <= rho^2 L^2 s c'^(k+1) for the mean stochastic gradient g_k.
Assumption 5.1 (WGC with constant rho) must hold: the task computes rho for ``dataset=lsq_interp``
(an interpolating least-squares problem). Theorem 5.2 (proof sketch and Cor. 9.2) is proved for
eta = 1/(rho L) only. For any eta in (0, 1/(rho L)] the same steps (strong convexity
<grad f(x), x - x*> >= f(x) - f* + mu/2 ||x - x*||^2, WGC) give
    E||x_{k+1} - x*||^2 <= (1 - eta mu) ||x_k - x*||^2 - 2 eta (1 - eta rho L)(f(x_k) - f*)
                           + eta^2 rho^2 L^2 s c'^(k+1),
and the middle term is <= 0, so the recursion of Lemma 7.1 holds with c = 1 - eta mu and level
(eta rho L)^2 s: E||x_k - x*||^2 <= c'^k bound0, bound0 = ``lemma_7_1_xi(||x_0 - x*||^2, c, c',
(eta rho L)^2 s)``. At eta = 1/(rho L) these are the paper's c = 1 - mu/(rho L) and level s.
Defaults: eta = 1/(rho L), c' = c + (1-c)/4, s = ||x_0 - x*||^2 / 10 (the theorem's bound is in
squared distance, so s is in those units). Larger eta is rejected unless ``algo.unsafe=true``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from compress_train.algorithms.base import ParameterError
from compress_train.algorithms.iade import IncreasingAccuracy, check_auto, lemma_7_1_xi


class IADESGD(IncreasingAccuracy):
    name = "iade_sgd"
    needs = replace(IncreasingAccuracy.needs, full_gradient=False, compressor_params={"mode": "stochastic"})

    def __init__(
        self, params, comm, compressor, seed=0, lr="auto", ef=None, problem=None, unsafe=False, c_prime="auto", s="auto"
    ):
        rho = (problem or {}).get("rho")
        if rho is None:
            raise ParameterError(
                "algo=iade_sgd needs the WGC constant rho (aiade Ass. 5.1), which this problem "
                "does not define; use dataset=lsq_interp model=least_squares."
            )
        self.rho = float(rho)
        super().__init__(params, comm, compressor, seed, lr, ef, problem, unsafe)
        bound = 1 / (self.rho * self.L)
        self.require(
            0 < self.lr <= bound * (1 + 1e-12),
            f"`lr` (eta) must be in (0, 1/(rho L)] = (0, {bound:.6g}] for algo=iade_sgd, but is {lr!r}.",
        )
        self.c = 1 - self.lr * self.mu  # 1 - mu/(rho L) at the paper's eta = 1/(rho L)
        self.level = (self.lr * self.rho * self.L) ** 2  # the recursion's s is level * s
        self.c_prime = self.c + (1 - self.c) / 4 if c_prime == "auto" else float(c_prime)
        self.require(
            self.c < self.c_prime < 1,
            f"`c_prime` must be in (c, 1) = ({self.c:.6g}, 1) for algo=iade_sgd, but is {c_prime!r}.",
        )
        self.s = float(self.problem["x0_dist"]) ** 2 / 10 if s == "auto" else float(s)

    @classmethod
    def check(cls, cfg):
        return super().check(cfg) + check_auto(cfg, ("c_prime", "s"))

    def resolve_lr(self, lr):
        return 1 / (self.rho * self.L) if lr == "auto" else float(lr)

    def budget(self, k: int) -> float:
        return self.rho**2 * self.L**2 * self.s * self.c_prime ** (k + 1) / 2

    def update(self, v) -> None:
        self.params.add_(v, alpha=-self.lr)

    def theory(self) -> dict[str, Any]:
        recursion_s = self.level * self.s
        bound0 = lemma_7_1_xi(self.problem["x0_dist"] ** 2, self.c, self.c_prime, recursion_s)
        return {
            "rate": self.c_prime,
            "rate_of": "E||x_k - x*||^2 (Theorem 5.2, constants for this eta)",
            "eta": self.lr,
            "c": self.c,
            "c_prime": self.c_prime,
            "s": self.s,
            "recursion_s": recursion_s,
            "bound0": bound0,
            "rho": self.rho,
            "L": self.L,
            "mu": self.mu,
        }


IMPLEMENTATION = IADESGD
