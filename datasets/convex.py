"""Convex problems with a KNOWN optimum, for aiade's setting (and hard_threshold's logistic regression).

f(x) = (1/N) sum_i f_i(x), worker i holding f_i (aiade, eq. (1)). Every builder returns a
``ConvexProblem`` carrying the theorems' constants: L, the largest smoothness constant of the f_i
(Def. 1.1), mu, a strong-convexity constant of f (Def. 1.2), kappa = L/mu (Def. 1.3), so that
Assumption 1.4 holds with exactly these numbers; x* and f* = f(x*), always computed in float64
(then cast to ``dtype``); and, where it is defined, the WGC constant rho (Assumption 5.1).
Builders: ``quadratic_problem`` (generated, heterogeneous), ``logistic_problem``,
``least_squares_problem`` (on any samples), ``lsq_interp_problem`` (generated, interpolating),
(``mnist.mnist_binary`` gives two MNIST digits as samples.) Nothing here touches a global RNG.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from compress_train.datasets.errors import DataSizeError

F64 = torch.float64
EPS = torch.finfo(F64).eps


@dataclass
class ConvexProblem:
    """f(x) = (1/N) sum_i f_i(x); worker i holds f_i (aiade, eq. (1), Def. 1.3).

    quadratic: f_i(x) = 1/2 x'A_i x - b_i'x + (l2/2)||x||^2. logistic / least_squares: f_i is the
    mean over worker i's shard (X[i], y[i], all shards the same size, ``dropped`` samples left out)
    of log(1 + exp(-y a'x)) resp. 1/2 (a'x - y)^2, plus (l2/2)||x||^2. ``L`` is the max over
    workers of f_i's smoothness constant (Def. 1.1), ``mu`` a strong-convexity constant of f
    (Def. 1.2), so Assumption 1.4 holds with kappa = L/mu; ``rho`` is the WGC constant
    (Assumption 5.1) of single-sample stochastic gradients where defined, else None. ``x_star``
    and ``f_star`` were computed in float64 (then cast); tensors are in one dtype.
    """

    kind: str
    name: str
    description: str
    source: str
    workers: int
    dim: int
    l2: float
    A: list[Tensor] | None
    b: list[Tensor] | None
    X: list[Tensor] | None
    y: list[Tensor] | None
    L: float
    mu: float
    x_star: Tensor
    f_star: float
    rho: float | None = None
    dropped: int = 0

    @property
    def kappa(self) -> float:
        return self.L / self.mu

    def shard_size(self, i: int) -> int:
        return 0 if self.X is None else int(self.X[i].shape[0])

    def worker_loss_grad(self, i: int, x: Tensor, idx: Tensor | None = None) -> tuple[float, Tensor]:
        """f_i(x) and grad f_i(x); with ``idx`` (int64 rows of worker i's shard) the minibatch loss
        and gradient (mean over those rows, plus the l2 term). For quadratic, idx must be None."""
        if self.kind == "quadratic":
            if idx is not None:
                raise ValueError(f"{self.name}: a quadratic problem has no samples, so idx must be None.")
            assert self.A is not None and self.b is not None  # a quadratic problem holds A_i, b_i
            ax = self.A[i] @ x
            loss, grad = 0.5 * x.dot(ax) - self.b[i].dot(x), ax - self.b[i]
        else:
            assert self.X is not None and self.y is not None  # a sample problem holds X_i, y_i
            X, y = self.X[i], self.y[i]
            if idx is not None:
                if idx.numel() == 0:
                    raise ValueError(f"{self.name}: idx must select at least one row of worker {i}'s shard.")
                X, y = X[idx], y[idx]
            loss, grad = _sample_loss_grad(self.kind, X, y, x)
        return float(loss) + 0.5 * self.l2 * float(x.dot(x)), grad + self.l2 * x

    def loss(self, x: Tensor) -> float:
        return sum(self.worker_loss_grad(i, x)[0] for i in range(self.workers)) / self.workers

    def grad(self, x: Tensor) -> Tensor:
        return torch.stack([self.worker_loss_grad(i, x)[1] for i in range(self.workers)]).mean(0)

    def constants(self) -> dict:
        return {
            "kind": self.kind,
            "dim": self.dim,
            "workers": self.workers,
            "L": float(self.L),
            "mu": float(self.mu),
            "kappa": float(self.kappa),
            "f_star": float(self.f_star),
            "rho": None if self.rho is None else float(self.rho),
            "dropped": int(self.dropped),
            "l2": float(self.l2),
        }


def _sample_loss_grad(kind: str, X: Tensor, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean over rows of the logistic loss log(1 + exp(-y a'x)) or of 1/2 (a'x - y)^2, and its gradient."""
    z, n = X @ x, y.shape[0]
    if kind == "logistic":
        m = y * z  # log(1 + e^-m) = relu(-m) + log1p(e^-|m|): exact in float64 for every m
        loss = (torch.relu(-m) + torch.log1p(torch.exp(-m.abs()))).mean()
        return loss, X.T @ (-y * torch.sigmoid(-m)) / n
    r = z - y
    return 0.5 * r.dot(r) / n, X.T @ r / n


def _cast(p: ConvexProblem, dtype: torch.dtype) -> ConvexProblem:
    """The same problem with every tensor in ``dtype`` (constants, x* and f* stay the float64 ones)."""
    conv = lambda ts: None if ts is None else [t.to(dtype) for t in ts]
    return dataclasses.replace(p, A=conv(p.A), b=conv(p.b), X=conv(p.X), y=conv(p.y), x_star=p.x_star.to(dtype))


def _lam_max(X: Tensor) -> float:
    """An upper bound on lambda_max(X'X): the computed one (from the smaller of the two Gram matrices,
    same nonzero spectrum) raised by the float64 rounding bound (n + d) eps of Gram and eigensolver."""
    gram = X.T @ X if X.shape[0] >= X.shape[1] else X @ X.T
    return float(torch.linalg.eigvalsh(gram)[-1]) * (1 + sum(X.shape) * EPS)


def _shards(X: Tensor, y: Tensor, workers: int, name: str) -> tuple[list[Tensor], list[Tensor], int]:
    """Equal contiguous shards of the first (n // workers) * workers rows, in float64; and how many were dropped."""
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: need X of shape n x d and y of length n, got {tuple(X.shape)} and {tuple(y.shape)}.")
    if not 1 <= workers <= X.shape[0]:
        raise DataSizeError(
            f"`workers` ({workers}) is more than the training samples of {name} ({X.shape[0]}): "
            "every worker needs a non-empty shard; use fewer workers."
        )
    size = X.shape[0] // workers
    X, y = X.detach().to(F64), y.detach().to(F64)
    return (
        [X[i * size : (i + 1) * size] for i in range(workers)],
        [y[i * size : (i + 1) * size] for i in range(workers)],
        X.shape[0] - size * workers,
    )


def data_smoothness(kind: str, X: Tensor, workers: int) -> float:
    """max_i of the smoothness of worker i's data term alone (no l2): lambda_max(X_i'X_i)/n_i, over 4
    for the logistic loss. hard_threshold sets its regulariser from it (l2 = L/1e4)."""
    Xs, _, _ = _shards(X, torch.zeros(X.shape[0]), workers, kind)
    return max(_lam_max(xi) / ((4 if kind == "logistic" else 1) * xi.shape[0]) for xi in Xs)


# --- quadratics -----------------------------------------------------------------------------


def _sym(m: Tensor) -> Tensor:
    return 0.5 * (m + m.transpose(-1, -2))  # also batched


def _random_orthogonal(dim: int, gen: torch.Generator) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=F64))
    return q * torch.where(r.diagonal() < 0, -1.0, 1.0)  # sign fix: Haar-distributed


def _log_spectrum(dim: int, mu: float, L: float) -> Tensor:
    lam = torch.logspace(math.log10(mu), math.log10(L), dim, dtype=F64)
    lam[0], lam[-1] = mu, L  # exactly, whatever logspace rounds to
    return lam


def _heterogeneity(Q: Tensor, lam: Tensor, H: list[Tensor], L: float, iters: int = 30) -> float:
    """The largest t in [0, 1] (bisection to 1e-9) with every spectrum of A + t H_i inside [0, L].

    A = Q diag(lam) Q' and each H_i kills A's top eigenvector Q[:, -1], so A + t H_i keeps the
    eigenvalue L there and its other eigenvalues are those of diag(lam[:-1]) + t (Q'H_iQ)[:-1, :-1]
    (checked in that deflated block, so the exact L on top cannot trip the test by rounding).
    lambda_max is convex and lambda_min concave in t, so the feasible set is an interval [0, t_max].
    """
    if Q.shape[0] == 1:
        return 1.0  # H_i = 0
    K = _sym(torch.stack([(Q.T @ h @ Q)[:-1, :-1] for h in H]))
    base = torch.diag(lam[:-1])

    def feasible(t: float) -> bool:
        ev = torch.linalg.eigvalsh(base + t * K)
        return bool(ev.min() >= 0 and ev.max() <= L)

    if feasible(1.0):
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if feasible(mid) else (lo, mid)
    return lo


def _centred_projected(M: list[Tensor], top: Tensor) -> list[Tensor]:
    """H_i = P (M_i - mean_j M_j) P, P = I - top top'; the last is minus the sum of the others (sum H_i = 0 exactly)."""
    P = torch.eye(top.shape[0], dtype=F64) - torch.outer(top, top)
    mbar = torch.stack(M).mean(0)
    H = [_sym(P @ (m - mbar) @ P) for m in M[:-1]]
    return H + [-torch.stack(H).sum(0) if H else torch.zeros_like(M[0])]


def quadratic_problem(
    dim: int, kappa: float, workers: int, seed: int, L: float = 1.0, dtype: torch.dtype = F64
) -> ConvexProblem:
    """Heterogeneous quadratics f_i(x) = 1/2 x'A_i x - b_i'x with average A = Q diag(lam) Q' (aiade §3).

    lam is log-spaced from mu = L/kappa to L, endpoints exact, Q a seeded Haar orthogonal matrix,
    so f is mu-strongly convex and kappa is the true condition number (Def. 1.2-1.3). A_i = A + t H_i
    with H_i = P (M_i - mean_j M_j) P (M_i random symmetric, P the projector off A's top
    eigenvector): sum_i H_i = 0, each A_i keeps eigenvalue L, and t in [0, 1] is the largest with
    every A_i's spectrum in [0, L] (each f_i convex and L-smooth, Def. 1.1; t = 0 when kappa = 1).
    b_i are seeded Gaussians, one per worker, so no worker's minimiser is x* = A^-1 mean_i b_i.
    Deterministic given (dim, kappa, workers, seed, L).
    """
    if dim < 1 or workers < 1 or not kappa >= 1 or not L > 0 or (dim == 1 and kappa != 1):
        raise ValueError(
            f"quadratic_problem: need dim >= 1, workers >= 1, kappa >= 1 (= 1 when dim = 1), "
            f"L > 0, but got dim={dim}, workers={workers}, kappa={kappa}, L={L}."
        )
    mu = L / kappa
    gen = torch.Generator().manual_seed(seed)
    Q, lam = _random_orthogonal(dim, gen), _log_spectrum(dim, mu, L)
    A = _sym((Q * lam) @ Q.T)
    scale = L / math.sqrt(2 * dim)  # spectral norm of each M_i about L
    M = [_sym(torch.randn(dim, dim, generator=gen, dtype=F64)) * scale for _ in range(workers)]
    b = [torch.randn(dim, generator=gen, dtype=F64) for _ in range(workers)]
    H = _centred_projected(M, Q[:, -1])
    t = _heterogeneity(Q, lam, H, L) if workers > 1 else 0.0
    x_star = torch.linalg.solve(A, torch.stack(b).mean(0))
    desc = (
        f"GENERATED heterogeneous quadratics: {workers} workers, d={dim}, kappa={kappa:g} "
        f"(mu={mu:g}, L={L:g}), heterogeneity t={t:.4g} (seed {seed})"
    )
    p = ConvexProblem(
        "quadratic",
        f"quadratic-d{dim}-k{kappa:g}",
        desc,
        f"generated (seed {seed})",
        workers,
        dim,
        0.0,
        [A + t * h for h in H],
        b,
        None,
        None,
        float(L),
        float(mu),
        x_star,
        0.0,
    )
    p.f_star = p.loss(x_star)
    return _cast(p, dtype)


# --- logistic regression --------------------------------------------------------------------


def _logistic_full(X: Tensor, y: Tensor, l2: float, x: Tensor) -> tuple[Tensor, Tensor]:
    loss, grad = _sample_loss_grad("logistic", X, y, x)
    return loss + 0.5 * l2 * x.dot(x), grad + l2 * x


def _newton_logistic(X: Tensor, y: Tensor, l2: float, tol: float = 1e-12, max_iter: int = 100) -> Tensor:
    """argmin (1/n) sum log(1 + exp(-y a'x)) + (l2/2)||x||^2 by damped Newton (Armijo backtracking) from 0."""
    n, d = X.shape
    full = lambda v: _logistic_full(X, y, l2, v)
    x = torch.zeros(d, dtype=F64)
    f, g = full(x)
    for _ in range(max_iter):
        if g.norm() < tol:
            return x
        m = y * (X @ x)
        w = torch.sigmoid(m) * torch.sigmoid(-m) / n
        hess = X.T @ (w[:, None] * X) + l2 * torch.eye(d, dtype=F64)
        p = -torch.cholesky_solve(g[:, None], torch.linalg.cholesky(hess))[:, 0]
        slope, t = float(g.dot(p)), 1.0
        while True:  # below f's rounding level (-slope tiny) Armijo is noise: take the full step
            f_new, g_new = full(x + t * p)
            if f_new <= f + 1e-4 * t * slope or -slope <= 8 * EPS * max(1.0, abs(float(f))) or t < 1e-10:
                break
            t *= 0.5
        x, f, g = x + t * p, f_new, g_new
    raise RuntimeError(
        f"logistic Newton did not reach ||grad f|| < {tol:g} in {max_iter} iterations (last {float(g.norm()):.3g})."
    )


def logistic_problem(
    X: Tensor, y: Tensor, workers: int, l2: float, name: str, description: str, source: str, dtype: torch.dtype = F64
) -> ConvexProblem:
    """L2-regularised logistic regression, f_i = mean over shard i of log(1 + exp(-y a'x)) + (l2/2)||x||^2.

    Labels must be +-1. Worker i gets the i-th of N equal contiguous shards of the first
    (n // N) * N rows (``dropped`` = the rest). Each f_i is L-smooth with L = max_i
    lambda_max(X_i'X_i)/(4 n_i) + l2 (the logistic curvature is at most 1/4, Def. 1.1; lambda_max
    rounded up by its float64 error bound, as in ``least_squares_problem``); f is only
    certifiably l2-strongly convex globally, so mu = l2 (must be > 0). x* by Newton's method to
    ||grad f(x*)|| < 1e-12 in float64 (RuntimeError if 100 iterations do not reach it). rho = None.
    """
    Xs, ys, dropped = _shards(X, y, workers, name)
    if not torch.all((y == 1) | (y == -1)):
        found = y.unique().tolist()[:10]
        raise ValueError(f"{name}: logistic labels must be -1 or +1, but found {found}.")
    if not l2 > 0:
        raise ValueError(f"{name}: logistic l2 must be > 0 (it is the only global strong convexity), but is {l2}.")
    L = max(_lam_max(xi) / (4 * xi.shape[0]) for xi in Xs) + l2
    x_star = _newton_logistic(torch.cat(Xs), torch.cat(ys), l2)
    p = ConvexProblem(
        "logistic",
        name,
        description,
        source,
        workers,
        X.shape[1],
        float(l2),
        None,
        None,
        Xs,
        ys,
        L,
        float(l2),
        x_star,
        0.0,
        None,
        dropped,
    )
    p.f_star = p.loss(x_star)
    return _cast(p, dtype)


# --- least squares ----------------------------------------------------------------------------


def _lsq_solve(X: Tensor, y: Tensor, l2: float) -> Tensor:
    """The solution of the normal equations (X'X/n + l2 I) x = X'y/n, via an SVD least-squares solve
    of the stacked system [X/sqrt(n); sqrt(l2) I] x = [y/sqrt(n); 0] (no squared condition number)."""
    n, d = X.shape
    if l2 > 0:
        X = torch.cat([X / math.sqrt(n), math.sqrt(l2) * torch.eye(d, dtype=F64)])
        y = torch.cat([y / math.sqrt(n), torch.zeros(d, dtype=F64)])
    return torch.linalg.lstsq(X, y[:, None], driver="gelsd").solution[:, 0]


def least_squares_problem(
    X: Tensor, y: Tensor, workers: int, l2: float, name: str, description: str, source: str, dtype: torch.dtype = F64
) -> ConvexProblem:
    """Least squares, f_i(x) = 1/(2 n_i) ||X_i x - y_i||^2 + (l2/2)||x||^2, on equal shards as in
    ``logistic_problem``. L = max_i lambda_max(X_i'X_i)/n_i + l2 (Def. 1.1); mu = lambda_min(X'X)/n'
    + l2 over the n' kept rows (Def. 1.2), lowered by the float64 rounding bound (n' + d) eps
    lambda_max so it is certified, never below l2; with l2 = 0 it must be clearly positive
    (ValueError naming the problem otherwise). x* solves the normal equations in float64.

    rho (WGC, aiade Assumption 5.1) is defined only when the problem interpolates (l2 = 0 and
    f* <= 1e-20 f(0)), i.e. y_j = a_j'x* for every kept row. Then worker i's single-sample gradient
    g_i = a_j a_j'(x - x*), j uniform over shard i, is unbiased for grad f_i(x), and
    E||g_i||^2 = (1/n_i) sum_j (a_j'(x - x*))^2 ||a_j||^2 <= max_j ||a_j||^2 * 2 f_i(x); averaging
    over workers, with f* = 0, (1/N) sum_i E||g_i||^2 <= max_j ||a_j||^2 * 2 (f(x) - f*)
    = 2 rho L (f(x) - f*) for rho = max_j ||a_j||^2 / L (>= 1). Otherwise rho = None.
    """
    Xs, ys, dropped = _shards(X, y, workers, name)
    if not l2 >= 0:
        raise ValueError(f"{name}: least-squares l2 must be >= 0, but is {l2}.")
    Xk, yk = torch.cat(Xs), torch.cat(ys)
    n, d = Xk.shape
    lam = torch.linalg.eigvalsh(Xk.T @ Xk / n)
    err = (n + d) * EPS * float(lam[-1])  # rounding of the Gram matrix and its eigenvalues
    mu = max(float(lam[0]) - err, 0.0) + l2  # X'X is PSD: a certified lower bound
    if l2 == 0 and mu <= 100 * err:
        raise ValueError(
            f"{name}: least squares is not strongly convex: lambda_min(X'X/n) + l2 = {mu:.3g} over "
            f"{n} kept rows x {d} features (need full column rank, or l2 > 0)."
        )
    L = max(_lam_max(xi) / xi.shape[0] for xi in Xs) + l2
    x_star = _lsq_solve(Xk, yk, l2)
    p = ConvexProblem(
        "least_squares",
        name,
        description,
        source,
        workers,
        d,
        float(l2),
        None,
        None,
        Xs,
        ys,
        L,
        mu,
        x_star,
        0.0,
        None,
        dropped,
    )
    p.f_star = p.loss(x_star)
    if l2 == 0 and p.f_star <= 1e-20 * p.loss(torch.zeros(d, dtype=F64)):
        p.rho = float((Xk * Xk).sum(1).max()) / L
    return _cast(p, dtype)


def lsq_interp_problem(samples: int, dim: int, workers: int, seed: int, dtype: torch.dtype = F64) -> ConvexProblem:
    """A GENERATED consistent system y = X x_true (X, x_true seeded Gaussians, samples >= dim), as least
    squares with l2 = 0: it interpolates, so single-sample SGD satisfies the WGC (aiade Ass. 5.1)
    with the rho that ``least_squares_problem`` derives, and x* = x_true."""
    if not samples >= dim >= 1:
        raise ValueError(f"lsq_interp_problem: need samples >= dim >= 1, but got samples={samples}, dim={dim}.")
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(samples, dim, generator=gen, dtype=F64)
    y = X @ torch.randn(dim, generator=gen, dtype=F64)
    desc = (
        f"SYNTHETIC consistent least squares y = X x_true: {samples:,} Gaussian samples x {dim} "
        f"features, {workers} workers, interpolating (seed {seed})"
    )
    return least_squares_problem(
        X, y, workers, 0.0, f"lsq-interp-synthetic-n{samples}-d{dim}", desc, f"generated (seed {seed})", dtype
    )
