"""aiade's bounds as the appendix proves them: Lemma 7.1's xi, Theorem 3.1 with the recursion's eta s
(not the statement's s), and IADE-SGD's constants derived for any eta <= 1/(rho L)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from compress_train.algorithms.communicator import SimCommunicator
from compress_train.algorithms.iade import IADE, lemma_7_1_xi
from compress_train.algorithms.iade_sgd import IADESGD
from compress_train.compressors.bounded import BoundedQuantizer
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


def scoped(mode: str, dim: int) -> ScopedCompressor:
    return ScopedCompressor(BoundedQuantizer(mode=mode), [dim], "model")


def worst_case(x0: float, c: float, c_prime: float, s: float, steps: int) -> np.ndarray:
    """The recursion x_{k+1} = c x_k + s c'^(k+1) with equality: the largest sequence Lemma 7.1 covers."""
    x = [x0]
    for k in range(steps):
        x.append(c * x[-1] + s * c_prime ** (k + 1))
    return np.array(x)


@pytest.mark.parametrize("x0, c, c_prime, s", [(1.0, 0.5, 0.625, 0.2), (0.0, 0.9, 0.95, 1.0), (5.0, 0.2, 0.9, 0.01)])
def test_lemma_7_1_xi_bounds_the_worst_case_recursion(x0, c, c_prime, s):
    x = worst_case(x0, c, c_prime, s, 300)
    xi = lemma_7_1_xi(x0, c, c_prime, s)
    bound = c_prime ** np.arange(301) * xi
    assert np.all(x <= bound * (1 + 1e-12))
    if x0 == 0:  # from x* on, the recursion approaches the bound: xi is not loose
        assert x[-1] / bound[-1] > 0.5


def test_theorem_3_1_is_logged_with_the_proofs_eta_s():
    problem = quadratic_problem(dim=10, kappa=20, workers=3, seed=1)
    algo = IADE(
        torch.zeros(problem.dim, dtype=F64),
        SimCommunicator(problem.workers),
        scoped("deterministic", 10),
        problem=constants(problem),
    )
    th = algo.theory()
    assert th["eta"] == pytest.approx(2 / (algo.L + algo.mu))
    assert th["xi_s"] == lemma_7_1_xi(problem.x_star.norm().item(), algo.c, algo.c_prime, algo.lr * algo.s)
    assert th["xi_s_as_stated"] == lemma_7_1_xi(problem.x_star.norm().item(), algo.c, algo.c_prime, algo.s)
    ratio = th["xi_s"] / th["xi_s_as_stated"]
    assert ratio > 1.5 and ratio == pytest.approx(algo.lr, rel=0.1)  # eta ~ 2 here: about twice
    dists = [float(problem.x_star.norm())]
    for k in range(300):
        grads = {w: problem.worker_loss_grad(w, algo.params)[1] for w in range(problem.workers)}
        algo.step(grads, k)
        dists.append(float((algo.params - problem.x_star).norm()))
    assert np.all(np.array(dists) <= algo.c_prime ** np.arange(301) * th["xi_s"] * (1 + 1e-9))


def test_the_stated_theorem_3_1_fails_where_the_proof_allows_it():
    """f(x) = mu x^2 / 2 in one dimension, eta = 1.9 (L = mu = 0.5: eta <= 2/(L+mu) = 2), and a gradient
    whose error is the largest the proof allows (||v_k - grad f(x_k)|| = s c'^(k+1), pointing away from
    x* = 0), started at x*: the distance follows c x_k + eta s c'^(k+1) exactly. It stays under the
    proved c'^k xi_s but exceeds the statement's c'^k xi_s (built on s)."""
    mu, eta, s, steps = 0.5, 1.9, 0.1, 200
    c = 1 - eta * mu
    c_prime = c + (1 - c) / 4
    x = [0.0]
    for k in range(steps):
        v = mu * x[-1] - s * c_prime ** (k + 1)  # the allowed error, pointing away from x*
        x.append(x[-1] - eta * v)
    dist = np.abs(np.array(x))
    k = np.arange(steps + 1)
    proved = c_prime**k * lemma_7_1_xi(0.0, c, c_prime, eta * s)
    stated = c_prime**k * lemma_7_1_xi(0.0, c, c_prime, s)
    assert np.all(dist <= proved * (1 + 1e-12))
    assert np.any(dist > stated)


def test_iade_sgd_constants_are_derived_for_its_eta():
    problem = {"L": 2.0, "mu": 0.5, "rho": 4.0, "grad0_norm": 1.0, "x0_dist": 1.0}
    eta = 1 / 32  # a quarter of 1/(rho L)
    algo = IADESGD(
        torch.zeros(3, dtype=F64), SimCommunicator(1), scoped("stochastic", 3), problem=problem, lr=eta, s=0.5
    )
    assert algo.c == pytest.approx(1 - eta * 0.5) and algo.c_prime == pytest.approx(algo.c + (1 - algo.c) / 4)
    th = algo.theory()
    assert th["recursion_s"] == pytest.approx((eta * 4.0 * 2.0) ** 2 * 0.5)
    assert th["bound0"] == pytest.approx(lemma_7_1_xi(1.0, algo.c, algo.c_prime, th["recursion_s"]))
    paper = IADESGD(torch.zeros(3, dtype=F64), SimCommunicator(1), scoped("stochastic", 3), problem=problem, s=0.5)
    assert paper.c == pytest.approx(1 - 0.5 / 8) and paper.theory()["recursion_s"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"`lr` \(eta\) must be in \(0, 1/\(rho L\)\]"):
        IADESGD(torch.zeros(3, dtype=F64), SimCommunicator(1), scoped("stochastic", 3), problem=problem, lr=0.2)


def test_iade_sgd_at_a_smaller_eta_obeys_its_own_bound_not_the_papers_constants():
    """eta = 1/(4 rho L): the mean square distance over 5 seeds stays under c'^k bound0 with c = 1 - eta mu,
    and crosses the bound that the eta = 1/(rho L) constants (c = 1 - mu/(rho L)) would claim."""
    problem = lsq_interp_problem(samples=200, dim=8, workers=2, seed=0)
    cons = constants(problem)
    eta = 0.25 / (cons["rho"] * cons["L"])
    steps, seeds = 600, 5
    sq = np.zeros((seeds, steps + 1))
    for seed in range(seeds):
        algo = IADESGD(
            torch.zeros(8, dtype=F64), SimCommunicator(2), scoped("stochastic", 8), seed=seed, problem=cons, lr=eta
        )
        gen = torch.Generator().manual_seed(seed)
        sq[seed, 0] = cons["x0_dist"] ** 2
        for k in range(steps):
            grads = {
                w: problem.worker_loss_grad(w, algo.params, torch.randint(100, (5,), generator=gen))[1]
                for w in range(2)
            }
            algo.step(grads, k)
            sq[seed, k + 1] = float((algo.params - problem.x_star).norm()) ** 2
    th, k, mean = algo.theory(), np.arange(steps + 1), sq.mean(0)
    assert np.all(mean <= th["rate"] ** k * th["bound0"])
    c_paper = 1 - cons["mu"] / (cons["rho"] * cons["L"])
    cp_paper = c_paper + (1 - c_paper) / 4
    paper_bound = cp_paper**k * lemma_7_1_xi(cons["x0_dist"] ** 2, c_paper, cp_paper, th["s"])
    assert np.any(mean > paper_bound)
    assert math.isclose(th["c"], 1 - eta * cons["mu"])
