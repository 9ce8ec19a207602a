"""aiade's algorithms against hand computations and against their theorems, on problems
with a known optimum: IADE (Alg. 1, Theorem 3.1), AIADE (Alg. 2, Theorem 4.1), IADE-SGD
(Alg. 3, Theorem 5.2), and the baselines GD, AGD, QGD, QSGD."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from compress_train.algorithms.agd import AGD
from compress_train.algorithms.aiade import AIADE
from compress_train.algorithms.base import ParameterError
from compress_train.algorithms.communicator import SimCommunicator
from compress_train.algorithms.gd import GD
from compress_train.algorithms.iade import IADE
from compress_train.algorithms.iade_sgd import IADESGD
from compress_train.algorithms.qgd import QGD
from compress_train.compressors.bounded import BoundedQuantizer
from compress_train.compressors.identity import Identity
from compress_train.compressors.qsgd import QSGD
from compress_train.compressors.scope import ScopedCompressor
from compress_train.datasets.convex import lsq_interp_problem, quadratic_problem

F64 = torch.float64


def constants(problem) -> dict:
    x0 = torch.zeros(problem.dim, dtype=F64)
    return {
        **problem.constants(),
        "grad0_norm": float(problem.grad(x0).norm()),
        "x0_dist": float(problem.x_star.norm()),
    }


def build(cls, problem, compressor=None, **kw):
    scoped = ScopedCompressor(compressor or BoundedQuantizer(), [problem.dim], "model")
    x = torch.zeros(problem.dim, dtype=F64)
    return cls(x, SimCommunicator(problem.workers), scoped, problem=constants(problem), **kw)


def full_grads(problem, point):
    return {w: problem.worker_loss_grad(w, point)[1] for w in range(problem.workers)}


def trajectory(algo, problem, steps: int):
    """||x_k - x*|| for k = 0..steps and the step reports."""
    dists, reports = [float((algo.params - problem.x_star).norm())], []
    for k in range(steps):
        reports.append(algo.step(full_grads(problem, algo.gradient_point()), k))
        dists.append(float((algo.params - problem.x_star).norm()))
    return np.array(dists), reports


def fitted_rate(dists: np.ndarray, lo: int, hi: int) -> float:
    k = np.arange(lo, hi)
    return float(np.exp(np.polyfit(k, np.log(dists[lo:hi]), 1)[0]))


# -- IADE: two steps by hand -------------------------------------------------------------------


def test_iade_two_steps_by_hand():
    """N = 2, d = 2, mu = 0.5, L = 1, eta = 1: c = 0.5, c' = c + (1-c)/4 = 0.625. s is chosen so
    the first grid step delta_0 = 2 eps_0 / sqrt(2) is 0.1 (eps_0 = s c'/2), then 0.0625."""
    c_prime = 0.625
    s = 0.2 / (math.sqrt(2) * c_prime)
    problem = {"L": 1.0, "mu": 0.5, "grad0_norm": 1.0, "x0_dist": 1.0}
    x = torch.zeros(2, dtype=F64)
    algo = IADE(x, SimCommunicator(2), ScopedCompressor(BoundedQuantizer(), [2], "model"), lr=1.0, problem=problem, s=s)
    assert algo.c == 0.5 and algo.c_prime == c_prime
    # k = 0: codes round(g / 0.1): [3, -1] and [5, 3]; server mean [0.4, 0.1] -> codes [4, 1]
    report = algo.step({0: torch.tensor([0.33, -0.12], dtype=F64), 1: torch.tensor([0.48, 0.26], dtype=F64)}, 0)
    assert x.tolist() == pytest.approx([-0.4, -0.1], rel=1e-8)
    # 64-bit delta + 8-bit width + 2 codes of 3 resp. 4 bits in one byte; server codes 4, 1 -> 4 bits
    assert report.bits_up == 80 and report.bits_down == 80 and report.elements_up == 2
    # k = 1 (delta 0.0625): differences g - s_i = [-0.1, 0.13] and [-0.1, 0] -> codes [-2, 2], [-2, 0];
    # server: s_1 - v_0 = mean([-0.125, 0.125], [-0.125, 0]) = [-0.125, 0.0625] -> codes [-2, 1]
    algo.step({0: torch.tensor([0.20, 0.03], dtype=F64), 1: torch.tensor([0.40, 0.30], dtype=F64)}, 1)
    assert algo.encoding.v.tolist() == pytest.approx([0.275, 0.1625], rel=1e-8)
    assert x.tolist() == pytest.approx([-0.675, -0.2625], rel=1e-8)


# -- IADE: Theorem 3.1 at every iterate ----------------------------------------------------------


def test_iade_obeys_theorem_3_1_and_its_bit_bound():
    problem = quadratic_problem(dim=10, kappa=20, workers=3, seed=1)
    algo = build(IADE, problem)
    c1, s, L, d = algo.c_prime, algo.s, algo.L, problem.dim
    xi = algo.theory()["xi_s"]
    # the proof's vector sizes over the error budget eps_k = s c'^(k+1)/2 are bounded by constants:
    # uplink ||g_k^i - s_{k-1}^i|| <= L ||x_k - x_{k-1}|| + eps_{k-1}, and ||x_k - x_{k-1}|| <=
    # (c'^k + c'^(k-1)) xi; downlink ||s_k - v_{k-1}|| <= eps_k + L ||x_k - x_{k-1}|| + s c'^k.
    ratio_up = (2 * L * (1 + 1 / c1) * xi / s + 1) / c1
    ratio_down = 1 + (2 * L * (1 + 1 / c1) * xi / s + 2) / c1

    def bit_bound(ratio):  # max code <= ||v|| sqrt(d) / (2 eps) (grid step ~ 2 eps / sqrt d) + 1/2
        width = 1 + math.ceil(math.log2(ratio * math.sqrt(d) / 2 * (1 + 1e-6) + 1.5))
        return 64 + 8 + 8 * math.ceil(d * width / 8)

    for k in range(400):
        x_k = algo.params.clone()
        grads = full_grads(problem, x_k)
        report = algo.step(grads, k)
        v_err = float((algo.encoding.v - torch.stack(list(grads.values())).mean(0)).norm())
        assert v_err <= s * c1 ** (k + 1) * (1 + 1e-9), k
        assert float((algo.params - problem.x_star).norm()) <= c1 ** (k + 1) * xi * (1 + 1e-9), k
        if k >= 1:
            assert report.bits_up <= bit_bound(ratio_up) and report.bits_down <= bit_bound(ratio_down), k
    assert float((algo.params - problem.x_star).norm()) < 1e-6 * problem.x_star.norm()


def test_iade_rejects_parameters_that_break_theorem_3_1():
    problem = quadratic_problem(dim=5, kappa=10, workers=2, seed=0)
    with pytest.raises(ParameterError, match=r"`c_prime` must be in \(c, 1\)"):
        build(IADE, problem, c_prime=0.5)
    with pytest.raises(ParameterError, match=r"`lr` \(eta\) must be in \(0, 2/\(L\+mu\)\]"):
        build(IADE, problem, lr=1.9)
    build(IADE, problem, c_prime=0.5, unsafe=True)  # the user's call


# -- AIADE: Theorem 4.1's rate ---------------------------------------------------------------


def test_aiade_converges_at_rate_c_and_beats_iade():
    problem = quadratic_problem(dim=20, kappa=400, workers=2, seed=2)
    aiade = build(AIADE, problem)
    dists, _ = trajectory(aiade, problem, 600)
    rate = fitted_rate(dists, 300, 600)
    c = aiade.c  # sqrt(1 - 1/sqrt(kappa)) = 0.9747: Theorem 4.1's rate, up to its O(ln k) factor
    # no slower than c (the error budget decays like c^k / k), no faster than the rate of exact
    # Nesterov on a quadratic with these parameters, about 1 - 1/sqrt(kappa) = 0.95
    assert 1 - 1 / math.sqrt(400) <= rate <= c * (1 + 1e-3), (rate, c)
    iade_dists, _ = trajectory(build(IADE, problem), problem, 600)
    assert dists[-1] < 1e-3 * iade_dists[-1]  # sqrt(kappa) vs kappa iterations


def test_agd_and_gd_are_the_full_precision_limits():
    problem = quadratic_problem(dim=20, kappa=100, workers=3, seed=3)
    gd = build(GD, problem, Identity())
    dists, reports = trajectory(gd, problem, 200)
    rate = gd.theory()["rate"]  # (kappa-1)/(kappa+1) at eta = 2/(L+mu)
    assert np.all(dists <= rate ** np.arange(201) * dists[0] * (1 + 1e-9))
    assert reports[0].bits_up == 64 * problem.dim  # dense float64
    agd_dists, _ = trajectory(build(AGD, problem, Identity()), problem, 200)
    assert agd_dists[-1] < 1e-3 * dists[-1]


def test_qgd_and_qsgd_stall_where_iade_converges():
    """Constant quantization error (QGD) or non-vanishing unbiased noise (QSGD on heterogeneous
    workers, grad f_i(x*) != 0) leave an error floor; IADE's shrinking budget does not."""
    problem = quadratic_problem(dim=20, kappa=10, workers=4, seed=4)
    x0 = float(problem.x_star.norm())
    iade, _ = trajectory(build(IADE, problem), problem, 300)
    qgd, _ = trajectory(build(QGD, problem, BoundedQuantizer(eps=1e-2)), problem, 300)
    qsgd, _ = trajectory(build(GD, problem, QSGD(levels=4)), problem, 300)
    assert iade[-1] < 1e-9 * x0
    for floor in (qgd, qsgd):
        assert floor[-1] > 1e-6 * x0 and floor[-100:].min() > 0.1 * floor[-100:].max()


# -- IADE-SGD: Theorem 5.2 -------------------------------------------------------------------


def test_iade_sgd_mean_square_distance_under_theorem_5_2():
    problem = lsq_interp_problem(samples=200, dim=8, workers=2, seed=0)
    steps, seeds = 400, 5
    sq = np.zeros((seeds, steps + 1))
    for seed in range(seeds):
        algo = build(IADESGD, problem, BoundedQuantizer(mode="stochastic"), seed=seed)
        gen = torch.Generator().manual_seed(seed)
        sq[seed, 0] = float((algo.params - problem.x_star).norm()) ** 2
        for k in range(steps):
            grads = {
                w: problem.worker_loss_grad(w, algo.params, torch.randint(100, (5,), generator=gen))[1]
                for w in range(2)
            }
            algo.step(grads, k)
            sq[seed, k + 1] = float((algo.params - problem.x_star).norm()) ** 2
    theory = algo.theory()
    bound = theory["rate"] ** np.arange(steps + 1) * theory["bound0"]
    assert np.all(sq.mean(0) <= bound)
    assert sq.mean(0)[-1] < 1e-3 * sq[0, 0]


def test_iade_sgd_needs_the_wgc_constant():
    problem = quadratic_problem(dim=5, kappa=10, workers=2, seed=0)  # rho undefined
    with pytest.raises(ParameterError, match="rho"):
        build(IADESGD, problem, BoundedQuantizer(mode="stochastic"))


def test_aiade_one_step_by_hand():
    """Alg. 2 with L = 1, mu = 0.25: eta = 1, tau = (1 - 0.5)/(1 + 0.5) = 1/3, c = sqrt(0.5); with
    eps = 0.2 the first budget is eps c / 2 = 0.0707, so the grid step 2 eps_0 / sqrt(2) is 0.1.
    One worker, g(y_0) = [0.33, -0.12] -> codes [3, -1]; the server re-encodes s_0 - v_{-1} = [0.3, -0.1]
    exactly; x_1 = y_0 - v_0 = [-0.3, 0.1]; y_1 = x_1 + (x_1 - x_0)/3 = [-0.4, 0.1333]."""
    x = torch.zeros(2, dtype=F64)
    algo = AIADE(
        x,
        SimCommunicator(1),
        ScopedCompressor(BoundedQuantizer(), [2], "model"),
        problem={"L": 1.0, "mu": 0.25, "grad0_norm": 1.0, "x0_dist": 1.0},
        eps=0.2,
    )
    assert (algo.lr, algo.tau, algo.c) == (1.0, pytest.approx(1 / 3), pytest.approx(math.sqrt(0.5)))
    assert algo.budget(0) == pytest.approx(0.2 * math.sqrt(0.5) / 2) and algo.budget(1) == pytest.approx(0.2 * 0.5 / 4)
    assert torch.equal(algo.gradient_point(), torch.zeros(2, dtype=F64))
    algo.step({0: torch.tensor([0.33, -0.12], dtype=F64)}, 0)
    assert x.tolist() == pytest.approx([-0.3, 0.1], rel=1e-8)
    assert algo.gradient_point().tolist() == pytest.approx([-0.4, 0.1 + 0.1 / 3], rel=1e-8)


def test_iade_sgd_constants_and_budget_by_hand():
    """Alg. 3: eta = 1/(rho L), c = 1 - mu/(rho L), budget rho^2 L^2 s c'^(k+1) / 2."""
    problem = {"L": 2.0, "mu": 0.5, "rho": 4.0, "grad0_norm": 1.0, "x0_dist": 1.0}
    algo = IADESGD(
        torch.zeros(3, dtype=F64),
        SimCommunicator(1),
        ScopedCompressor(BoundedQuantizer(mode="stochastic"), [3], "model"),
        problem=problem,
        c_prime=0.97,
        s=0.5,
    )
    assert algo.lr == pytest.approx(1 / 8) and algo.c == pytest.approx(1 - 0.5 / 8)
    assert algo.budget(2) == pytest.approx(16 * 4 * 0.5 * 0.97**3 / 2)


def test_agd_one_step_by_hand():
    """Nesterov with L = 1, mu = 0.25 on one worker: x_1 = y_0 - g/L, y_1 = x_1 + tau (x_1 - x_0)."""
    x = torch.zeros(2, dtype=F64)
    algo = AGD(x, SimCommunicator(1), ScopedCompressor(Identity(), [2], "model"), problem={"L": 1.0, "mu": 0.25})
    algo.step({0: torch.tensor([0.6, -0.3], dtype=F64)}, 0)
    assert x.tolist() == pytest.approx([-0.6, 0.3]) and algo.gradient_point().tolist() == pytest.approx([-0.8, 0.4])
