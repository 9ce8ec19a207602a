"""Non-quantized distributed SGD under the Weak Growth Condition: the baseline that aiade compares
IADE-SGD with ("a similar convergence rate to the non-quantized version of SGD", Sec. 1.1).

    x_{k+1} = x_k - eta (1/N) sum_i grad_i f_i(x_k)        (each worker's mini-batch gradient)
    eta = 1/(rho L):  E[||x_{k+1} - x*||^2 | x_k] <= (1 - mu/(rho L)) ||x_k - x*||^2

(``aiade`` Lemma 9.1, eq. (5), which is Vaswani et al. 2019, Thm. 5; the paper folds eta into
the stochastic gradient). For any eta in (0, 1/(rho L)] the same proof gives the rate 1 - eta mu
(the recursion in ``iade_sgd``'s docstring with no quantization error). The gradients go through
the compressor, so ``compressor=identity`` sends them as they are (32-bit values): the paper's
non-quantized SGD. rho is the problem's WGC constant (``dataset=lsq_interp`` computes it).
"""

from __future__ import annotations

from typing import Any

from compress_train.algorithms.base import Needs, ParameterError
from compress_train.algorithms.gd import GD


class WGCSGD(GD):
    name = "wgc_sgd"
    needs = Needs(problem="required")  # mini-batch gradients, unlike GD's full ones

    def __init__(self, params, comm, compressor, seed=0, lr="auto", ef=None, problem=None):
        rho = (problem or {}).get("rho")
        if rho is None:
            raise ParameterError(
                "algo=wgc_sgd needs the WGC constant rho (aiade Ass. 5.1), which this problem "
                "does not define; use dataset=lsq_interp model=least_squares."
            )
        self.rho, self.x0_dist = float(rho), float(problem["x0_dist"])
        super().__init__(params, comm, compressor, seed, lr, ef, problem)

    def resolve_lr(self, lr) -> float:
        return 1 / (self.rho * self.L) if lr == "auto" else float(lr)

    def theory(self) -> dict[str, Any]:
        """Lemma 9.1's rate on E||x_k - x*||^2 where it holds (eta <= 1/(rho L), no compressor error),
        iterated from x_0: E||x_k - x*||^2 <= c^k ||x_0 - x*||^2 (``bound0``, as IADE-SGD's)."""
        out = {"eta": self.lr, "L": self.L, "mu": self.mu, "rho": self.rho}
        if self.exact() and self.lr <= 1 / (self.rho * self.L) * (1 + 1e-12):
            out.update(
                rate=1 - self.lr * self.mu,
                rate_of="E||x_k - x*||^2 (aiade Lemma 9.1, constants for this eta)",
                bound0=self.x0_dist**2,
            )
        return out


IMPLEMENTATION = WGCSGD
