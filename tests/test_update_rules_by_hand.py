"""Update rules against hand computations over several steps, with data chosen so that
every term of each rule changes the result: AMSGrad's max binds, eps is not negligible, eta != 1,
the server's code falls off its grid, y_k != x_k. The expected values transcribe the papers'
equations (keys of docs/papers.md); none of them calls the implementation. A wrong version of
each rule (scripts/mutation.sh, and the list in its header) fails here."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from compress_train.algorithms.aiade import AIADE
from compress_train.algorithms.amsgrad import AMSGrad
from compress_train.algorithms.base import ParameterError
from compress_train.algorithms.communicator import SimCommunicator
from compress_train.algorithms.comp_ams import CompAMS
from compress_train.algorithms.double_encoding import DoubleEncoding
from compress_train.algorithms.iade import IADE
from compress_train.algorithms.iade_sgd import IADESGD
from compress_train.algorithms.qadam import QAdam
from compress_train.algorithms.wgc_sgd import WGCSGD
from compress_train.compressors.blocksign import BlockSign
from compress_train.compressors.bounded import BoundedQuantizer
from compress_train.compressors.identity import Identity
from compress_train.compressors.randk import RandK
from compress_train.compressors.scope import ScopedCompressor
from compress_train.compressors.topk import TopK

F64 = torch.float64
CONF = Path(__file__).resolve().parents[1] / "conf" / "algo"


def grads(*rows, dtype=torch.float32):
    return {w: torch.tensor(r, dtype=dtype) for w, r in enumerate(rows)}


def close(got: torch.Tensor, want, rel: float = 1e-6) -> bool:
    return got.tolist() == pytest.approx(list(want), rel=rel, abs=1e-7)


# -- comp_ams Algorithm 1: AMSGrad, v_0 = vhat_0 = eps, no eps in the denominator -----------------


def test_amsgrad_three_steps_by_hand():
    """b1 = b2 = 0.5, eps = 0.01, eta = 0.1, n = 2 (mean gradients [2, 0], [0, 1], [0.3, 0]).
    vhat_t = max(vhat_{t-1}, v_t) binds in coordinate 1 at t = 1 (against v_0 = eps), in
    coordinate 0 at t = 2 and in both at t = 3."""
    theta = torch.tensor([1.0, -1.0])
    algo = AMSGrad(theta, SimCommunicator(2), None, lr=0.1, beta1=0.5, beta2=0.5, eps=0.01)
    # t = 1: m = 0.5 g = [1, 0]; v = 0.5 eps + 0.5 g^2 = [2.005, 0.005]; vhat = [2.005, 0.01]
    algo.step(grads([3.0, 0.2], [1.0, -0.2]), 0)
    assert close(algo.vhat, [2.005, 0.01])
    assert close(theta, [1.0 - 0.1 * 1.0 / math.sqrt(2.005), -1.0])
    # t = 2: m = [0.5, 0.5]; v = [1.0025, 0.5025]; vhat = [2.005, 0.5025]
    algo.step(grads([0.1, 1.2], [-0.1, 0.8]), 1)
    theta2 = [1.0 - 0.1 * (1.0 + 0.5) / math.sqrt(2.005), -1.0 - 0.1 * 0.5 / math.sqrt(0.5025)]
    assert close(algo.vhat, [2.005, 0.5025]) and close(theta, theta2)
    # t = 3: m = [0.4, 0.25]; v = [0.54625, 0.25125]; vhat unchanged
    algo.step(grads([0.4, 0.1], [0.2, -0.1]), 2)
    assert close(algo.m, [0.4, 0.25]) and close(algo.v, [0.54625, 0.25125])
    assert close(algo.vhat, [2.005, 0.5025])
    assert close(theta, [theta2[0] - 0.1 * 0.4 / math.sqrt(2.005), theta2[1] - 0.1 * 0.25 / math.sqrt(0.5025)])


# -- comp_ams Algorithm 2: COMP-AMS, m_0 = v_0 = vhat_0 = 0, theta -= eta m / sqrt(vhat + eps) ----


def test_comp_ams_three_steps_by_hand():
    """Top-1 of 2 with classic error feedback (lines 6-9), one worker, b1 = b2 = 0.5, eps = 0.01,
    eta = 0.1: eps moves sqrt(vhat + eps) by 2 % in coordinate 1 and the max binds at t = 2, 3."""
    theta = torch.tensor([1.0, 1.0])
    algo = CompAMS(
        theta,
        SimCommunicator(1),
        ScopedCompressor(TopK(k=1), [2], "model"),
        lr=0.1,
        beta1=0.5,
        beta2=0.5,
        eps=0.01,
        ef="classic",
    )
    # t = 1: g + e = [2, 0.5] -> sent [2, 0], e = [0, 0.5]; m = [1, 0], v = vhat = [2, 0]
    algo.step(grads([2.0, 0.5]), 0)
    assert close(algo.memories[0].error, [0.0, 0.5])
    theta1 = [1.0 - 0.1 * 1.0 / math.sqrt(2.0 + 0.01), 1.0]
    assert close(theta, theta1)
    # t = 2: g + e = [0.1, 0.7] -> sent [0, 0.7], e = [0.1, 0]; m = [0.5, 0.35], v = [1, 0.245],
    # vhat = [2, 0.245]
    algo.step(grads([0.1, 0.2]), 1)
    assert close(algo.memories[0].error, [0.1, 0.0]) and close(algo.vhat, [2.0, 0.245])
    theta2 = [theta1[0] - 0.1 * 0.5 / math.sqrt(2.01), 1.0 - 0.1 * 0.35 / math.sqrt(0.245 + 0.01)]
    assert close(theta, theta2)
    # t = 3: g + e = [0.4, -0.1] -> sent [0.4, 0], e = [0, -0.1]; m = [0.45, 0.175],
    # v = [0.58, 0.1225], vhat = [2, 0.245]
    algo.step(grads([0.3, -0.1]), 2)
    assert close(algo.memories[0].error, [0.0, -0.1]) and close(algo.v, [0.58, 0.1225])
    assert close(theta, [theta2[0] - 0.1 * 0.45 / math.sqrt(2.01), theta2[1] - 0.1 * 0.175 / math.sqrt(0.255)])


# -- QAdam (comp_ams §3.2; the variant of algorithms/qadam.py) ----------------------------------


def block_sign(x: torch.Tensor) -> torch.Tensor:
    """comp_ams Definition 2 on one block: sign(x) ||x||_1 / |B| (sign(0) = +1)."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype) * x.abs().mean()


def test_qadam_three_steps_by_hand():
    """Two workers, Block-Sign, eta = 0.5, b1 = b2 = 0.5 and eps = 0.1, as large as sqrt(v_i):
    u_i = eta m_i / (sqrt(v_i) + eps) differs from eta m_i / sqrt(v_i + eps) by ~50 %."""
    lr, b1, b2, eps = 0.5, 0.5, 0.5, 0.1
    steps = [([0.2, -0.1], [0.1, 0.3]), ([-0.3, 0.05], [0.1, 0.1]), ([0.0, 0.2], [-0.2, 0.1])]
    x = torch.tensor([1.0, 1.0])
    algo = QAdam(x, SimCommunicator(2), ScopedCompressor(BlockSign(), [2], "layer"), lr=lr, beta1=b1, beta2=b2, eps=eps)
    want = torch.tensor([1.0, 1.0], dtype=F64)
    m, v, e = ([torch.zeros(2, dtype=F64) for _ in range(2)] for _ in range(3))
    for k, rows in enumerate(steps):
        algo.step(grads(*rows), k)
        q = []
        for i, g in enumerate(torch.tensor(r, dtype=F64) for r in rows):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            p = lr * m[i] / (v[i].sqrt() + eps) + e[i]  # u_i + e_i
            q.append(block_sign(p))
            e[i] = p - q[i]
        want = want - (q[0] + q[1]) / 2
        assert close(x, want.tolist()), k
        assert close(algo.memories[0].error, e[0].tolist()) and close(algo.memories[1].error, e[1].tolist()), k


# -- aiade Algorithm 1: IADE ---------------------------------------------------------------------


def test_iade_three_steps_by_hand():
    """N = 3, d = 2, L = 1, mu = 0.5, eta = 0.8: c = 1 - eta mu = 0.6, c' = c + (1-c)/4 = 0.7.
    s makes the grid step 2 eps_k / sqrt(d) with eps_k = s c'^(k+1)/2 (Alg. 1 lines 6, 12) equal
    to 0.1 c'^k. With three workers the server's mean s_k is off the grid (s_0 = [0.3, 0.0667])."""
    eta, c_prime = 0.8, 0.7
    s = 0.1 * math.sqrt(2) / c_prime
    delta = [0.1 * c_prime**k for k in range(3)]
    x = torch.zeros(2, dtype=F64)
    algo = IADE(
        x,
        SimCommunicator(3),
        ScopedCompressor(BoundedQuantizer(), [2], "model"),
        lr=eta,
        problem={"L": 1.0, "mu": 0.5, "grad0_norm": 1.0, "x0_dist": 1.0},
        s=s,
    )
    assert algo.c == pytest.approx(0.6) and algo.c_prime == pytest.approx(c_prime)
    # k = 0: codes round(g_i / 0.1) = [3, -1], [5, 3], [1, 0]; s_0 = [0.9, 0.2] / 3;
    # the server codes round(s_0 / 0.1) = [3, 1] (0.667 -> 1); x_1 = -eta v_0
    algo.step(grads([0.33, -0.12], [0.48, 0.26], [0.11, 0.04], dtype=F64), 0)
    assert close(algo.encoding.s_server, [0.3, 0.2 / 3])
    v0 = [3 * delta[0], 1 * delta[0]]
    assert close(algo.encoding.v, v0)
    x1 = [-eta * v0[0], -eta * v0[1]]
    assert close(x, x1)
    # k = 1 (step 0.07): g_i - s_0^i = [-0.1, 0.13], [-0.1, 0], [-0.05, 0.1] -> codes [-1, 2],
    # [-1, 0], [-1, 1]; s_1 = [0.69, 0.41] / 3; s_1 - v_0 = [-0.07, 0.0367] -> codes [-1, 1]
    algo.step(grads([0.20, 0.03], [0.40, 0.30], [0.05, 0.10], dtype=F64), 1)
    assert close(algo.encoding.s_worker[0], [0.3 - delta[1], -0.1 + 2 * delta[1]])
    assert close(algo.encoding.s_server, [0.69 / 3, 0.41 / 3])
    v1 = [v0[0] - delta[1], v0[1] + delta[1]]
    assert close(algo.encoding.v, v1)
    x2 = [x1[0] - eta * v1[0], x1[1] - eta * v1[1]]
    assert close(x, x2)
    # k = 2 (step 0.049): codes [-3, -1], [-3, 1], [-1, -1]; s_2 = [0.347, 0.361] / 3;
    # s_2 - v_1 = [-0.1143, -0.0497] -> codes [-2, -1]
    algo.step(grads([0.10, 0.00], [0.30, 0.35], [0.00, 0.02], dtype=F64), 2)
    assert close(algo.encoding.s_server, [0.347 / 3, 0.361 / 3])
    v2 = [v1[0] - 2 * delta[2], v1[1] - delta[2]]
    assert close(algo.encoding.v, v2)
    assert close(x, [x2[0] - eta * v2[0], x2[1] - eta * v2[1]])


# -- aiade Algorithm 2: AIADE ----------------------------------------------------------------


def test_aiade_three_steps_by_hand():
    """N = 3, d = 2, L = 2, mu = 0.5: eta = 1/L = 0.5, tau = (sqrt L - sqrt mu)/(sqrt L + sqrt mu)
    = 1/3, c = sqrt(1 - sqrt(mu/L)) = sqrt(0.5); eps = 0.2, so eps_k = eps c^(k+1)/(2k+2)
    (Alg. 2 lines 4, 10) and the grid step 2 eps_k / sqrt(2) is 0.1, sqrt(2)/40, 1/60.
    x_{k+1} = y_k - eta v_k (line 16), y_{k+1} = x_{k+1} + tau (x_{k+1} - x_k) (line 17)."""
    eta, tau = 0.5, 1 / 3
    delta = [0.1, math.sqrt(2) / 40, 1 / 60]
    x = torch.zeros(2, dtype=F64)
    algo = AIADE(
        x,
        SimCommunicator(3),
        ScopedCompressor(BoundedQuantizer(), [2], "model"),
        problem={"L": 2.0, "mu": 0.5, "grad0_norm": 1.0, "x0_dist": 1.0},
        eps=0.2,
    )
    assert (algo.lr, algo.tau, algo.c) == (eta, pytest.approx(tau), pytest.approx(math.sqrt(0.5)))
    # k = 0: as in IADE's k = 0: v_0 = [3, 1] * 0.1; x_1 = y_0 - eta v_0; y_1 = x_1 + tau x_1
    algo.step(grads([0.33, -0.12], [0.48, 0.26], [0.11, 0.04], dtype=F64), 0)
    v0 = [3 * delta[0], delta[0]]
    x1 = [-eta * v0[0], -eta * v0[1]]
    y1 = [x1[0] + tau * x1[0], x1[1] + tau * x1[1]]
    assert close(x, x1) and close(algo.gradient_point(), y1)
    # k = 1: worker codes [-3, 4], [-3, 0], [-1, 3]; s_1 - v_0 = [-2.333, 1.39] steps -> codes [-2, 1]
    algo.step(grads([0.20, 0.03], [0.40, 0.30], [0.05, 0.10], dtype=F64), 1)
    v1 = [v0[0] - 2 * delta[1], v0[1] + delta[1]]
    assert close(algo.encoding.v, v1)
    x2 = [y1[0] - eta * v1[0], y1[1] - eta * v1[1]]
    y2 = [x2[0] + tau * (x2[0] - x1[0]), x2[1] + tau * (x2[1] - x1[1])]
    assert close(x, x2) and close(algo.gradient_point(), y2)
    # k = 2: worker codes [-6, -2], [-6, 3], [-4, -5]; s_2 - v_1 = [-6.04, -0.505] steps -> [-6, -1]
    algo.step(grads([0.10, 0.00], [0.30, 0.35], [0.00, 0.02], dtype=F64), 2)
    v2 = [v1[0] - 6 * delta[2], v1[1] - delta[2]]
    assert close(algo.encoding.v, v2)
    x3 = [y2[0] - eta * v2[0], y2[1] - eta * v2[1]]
    assert close(x, x3)
    assert close(algo.gradient_point(), [x3[0] + tau * (x3[0] - x2[0]), x3[1] + tau * (x3[1] - x2[1])])


# -- aiade Algorithm 3: IADE-SGD ---------------------------------------------------------------


def on_grid_floor_or_ceil(moved: torch.Tensor, target: torch.Tensor, delta: float) -> bool:
    """``moved`` is delta * code with each code floor or ceil of target / delta: the stochastic
    quantizer of §5 (which of the two is the worker's coin; both are checked)."""
    codes = moved / delta
    ratio = target / delta
    return torch.allclose(codes, codes.round(), atol=1e-9) and bool(
        ((codes.round() == ratio.floor()) | (codes.round() == ratio.ceil())).all()
    )


def test_iade_sgd_four_steps_by_hand():
    """L = 1, mu = 0.25, rho = 2: eta = 1/(rho L) = 0.5; c' = 0.9 and s = 0.0025/0.9, so
    eps_k = rho^2 L^2 s c'^(k+1)/2 (Alg. 3 lines 6, 12) and the stochastic grid step
    2 sqrt(eps_k / d) is 0.1 c'^(k/2). Every vector quantized is off its grid, so each code is
    a coin's choice of floor or ceil: the test checks every encoding against both, and
    x_{k+1} = x_k - eta v_k exactly."""
    eta, c_prime = 0.5, 0.9
    problem = {"L": 1.0, "mu": 0.25, "rho": 2.0, "grad0_norm": 1.0, "x0_dist": 1.0}
    x = torch.zeros(2, dtype=F64)
    algo = IADESGD(
        x,
        SimCommunicator(2),
        ScopedCompressor(BoundedQuantizer(mode="stochastic"), [2], "model"),
        problem=problem,
        c_prime=c_prime,
        s=0.0025 / c_prime,
        seed=3,
    )
    enc = algo.encoding
    steps = [
        ([0.337, -0.121], [0.482, 0.263]),
        ([0.205, 0.034], [0.411, 0.298]),
        ([0.107, 0.013], [0.296, 0.351]),
        ([0.052, -0.044], [0.153, 0.177]),
    ]
    for k, rows in enumerate(steps):
        delta = 0.1 * c_prime ** (k / 2)
        x_k, v_prev = x.clone(), enc.v.clone()
        s_prev = {w: enc.s_worker[w].clone() for w in (0, 1)}
        g = grads(*rows, dtype=F64)
        algo.step(g, k)
        for w in (0, 1):  # d_k^i = Q(g_k^i - s_{k-1}^i, eps_k); s_k^i = s_{k-1}^i + d_k^i
            assert on_grid_floor_or_ceil(enc.s_worker[w] - s_prev[w], g[w] - s_prev[w], delta), (k, w)
        assert close(enc.s_server, ((enc.s_worker[0] + enc.s_worker[1]) / 2).tolist()), k
        assert on_grid_floor_or_ceil(enc.v - v_prev, enc.s_server - v_prev, delta), k  # u_k = Q(s_k - v_{k-1})
        assert close(x, (x_k - eta * enc.v).tolist()), k


def test_wgc_sgd_three_steps_by_hand():
    """aiade Lemma 9.1, eq. (5): x_{k+1} = x_k - eta (1/N) sum_i g_i with eta = 1/(rho L) = 1/(2.5 x 2) =
    0.2 (L = 2, so a rule that used 1/rho or 1/L would be off), the workers' gradients exact
    (compressor=identity); the theory's rate on E||x - x*||^2 is 1 - eta mu = 0.9 (mu = 0.5), its
    bound0 ||x_0 - x*||^2 = 1.44."""
    problem = {"L": 2.0, "mu": 0.5, "rho": 2.5, "grad0_norm": 1.0, "x0_dist": 1.2}
    x = torch.tensor([1.0, -0.5], dtype=F64)
    algo = WGCSGD(x, SimCommunicator(2), ScopedCompressor(Identity(), [2], "model"), problem=problem)
    want = [1.0, -0.5]
    for rows in (([0.3, -0.7], [0.5, 0.1]), ([-0.2, 0.4], [0.6, 0.0]), ([0.05, 0.05], [-0.15, 0.25])):
        algo.step(grads(*rows, dtype=F64), 0)
        want = [w - 0.2 * (a + b) / 2 for w, a, b in zip(want, *rows)]
        assert close(x, want, rel=1e-12)
    assert close(x, [0.89, -0.51], rel=1e-12)  # mean gradients (0.4, -0.3), (0.2, 0.2), (-0.05, 0.15)
    theory = algo.theory()
    assert theory["eta"] == pytest.approx(0.2) and theory["rate"] == pytest.approx(0.9)
    assert theory["bound0"] == pytest.approx(1.44)
    with pytest.raises(ParameterError, match=r"^algo=wgc_sgd needs the WGC constant rho"):
        WGCSGD(torch.zeros(2, dtype=F64), SimCommunicator(1), None, problem={"L": 1.0, "mu": 0.1, "x0_dist": 1.0})


def test_aiade_fixes_eta_to_1_over_L():
    """Alg. 2 has no step size to choose: eta = 1/L (to 1e-12 relative), unless algo.unsafe."""
    problem = {"L": 2.0, "mu": 0.5, "grad0_norm": 1.0, "x0_dist": 1.0}

    def build(**kw):
        return AIADE(
            torch.zeros(2, dtype=F64),
            SimCommunicator(1),
            ScopedCompressor(BoundedQuantizer(), [2], "model"),
            problem=problem,
            **kw,
        )

    assert build(lr=0.5).lr == 0.5
    for lr in (0.5 + 1e-12, 0.9, 0.25):
        with pytest.raises(ParameterError, match=r"`lr` \(eta\) must be 1/L = 0\.5 for algo=aiade .* but is "):
            build(lr=lr)
    assert build(lr=0.9, unsafe=True).lr == 0.9  # the user's call


@pytest.mark.parametrize("cls", [CompAMS, QAdam])
def test_random_compressor_draws_a_fresh_support_every_step(cls):
    """The step index reaches the compressor (CompressContext.step): Random-1 of 8 on a constant
    gradient without error feedback moves a different coordinate from one step to the next
    (beta1 = 0, so COMP-AMS moves only where this step's g_bar is non-zero)."""
    x = torch.zeros(8)
    algo = cls(x, SimCommunicator(1), ScopedCompressor(RandK(k=1), [8], "model"), lr=0.1, ef="none", seed=5, beta1=0.0)
    moved = []
    for k in range(6):
        before = x.clone()
        algo.step({0: torch.ones(8)}, k)
        moved.append(int((x != before).nonzero()[0]))
    assert len(set(moved)) > 1, moved


@pytest.mark.parametrize("cls", [AMSGrad, CompAMS, QAdam])
def test_constructor_defaults_are_the_config_defaults(cls):
    """Built from Python without hyper-parameters, an algorithm steps as conf/algo/<name>.yaml
    configures it (the values the CLI passes)."""
    cfg = yaml.safe_load((CONF / f"{cls.name}.yaml").read_text())
    hyper = {k: cfg[k] for k in ("lr", "beta1", "beta2", "eps")}
    runs = []
    for kw in ({}, hyper):
        x = torch.tensor([1.0, -2.0, 0.5])
        algo = cls(x, SimCommunicator(1), ScopedCompressor(TopK(k=2), [3], "model"), **kw)
        for k, g in enumerate(([0.3, -0.02, 1.5], [0.01, 0.4, -0.2])):
            algo.step({0: torch.tensor(g)}, k)
        runs.append(x)
    assert torch.equal(runs[0], runs[1])


def test_iade_sgd_takes_a_given_step_size():
    """An eta below 1/(rho L) is used as given, with c = 1 - eta mu (Alg. 3's c at eta = 1/(rho L));
    one above it breaks Theorem 5.2 and is refused unless algo.unsafe."""
    problem = {"L": 1.0, "mu": 0.25, "rho": 2.0, "grad0_norm": 1.0, "x0_dist": 1.0}

    def build(**kw):
        return IADESGD(
            torch.zeros(2, dtype=F64),
            SimCommunicator(1),
            ScopedCompressor(BoundedQuantizer(mode="stochastic"), [2], "model"),
            problem=problem,
            **kw,
        )

    algo = build(lr=0.25, s=0.01)
    assert algo.lr == 0.25 and algo.c == pytest.approx(1 - 0.25 * 0.25)
    algo.step({0: torch.tensor([0.337, -0.121], dtype=F64)}, 0)
    assert algo.encoding.v.abs().sum() > 0 and close(algo.params, (-0.25 * algo.encoding.v).tolist())
    with pytest.raises(ParameterError, match=r"`lr` \(eta\) must be in \(0, 1/\(rho L\)\] = \(0, 0\.5\]"):
        build(lr=0.6)
    assert build(lr=0.6, unsafe=True).lr == 0.6


@pytest.mark.parametrize("cls", [IADE, AIADE, IADESGD])
def test_increasing_accuracy_config_check(cls):
    """The double encoding is its own memory (ef must be none); step sizes are 'auto' or > 0."""
    ok = {"lr": "auto", "c_prime": "auto", "s": "auto", "eps": "auto"}
    for ef in (None, False, "none"):
        assert cls.check({**ok, "ef": ef}) == []
    assert cls.check({**ok, "ef": "classic"}) == [
        f"`ef` must be 'none' for algo={cls.name} (the double encoding is its own memory), but is 'classic'."
    ]
    for lr in (0, -1.0, True, "fast"):
        assert cls.check({**ok, "lr": lr}) == [f"`lr` must be 'auto' or a number > 0, but is {lr!r}."]
    assert cls.check({**ok, "lr": 1e-3}) == []


@pytest.mark.parametrize("cls", [AMSGrad, CompAMS, QAdam])
def test_adam_type_config_check(cls):
    """beta1, beta2 in [0, 1) and eps > 0 (comp_ams Alg. 1-2), each refusal naming its key."""
    ok = {"lr": 0.1, "beta1": 0.0, "beta2": 0.5, "eps": 1e-8}
    assert cls.check(ok) == []
    for key, bad in (("beta1", 1.0), ("beta2", 1.5), ("beta1", -0.1), ("beta2", "0.9")):
        assert cls.check({**ok, key: bad}) == [f"`{key}` must be in [0, 1), but is {bad!r}."]
    for bad in (0.0, -1e-8, "1e-8"):
        assert cls.check({**ok, "eps": bad}) == [f"`eps` must be a number > 0, but is {bad!r}."]


def test_iade_sgd_defaults_and_theorem_5_2_bounds():
    """Defaults c' = c + (1-c)/4 and s = ||x_0 - x*||^2 / 10; eta in (0, 1/(rho L)] and c' in (c, 1)
    at their edges; no rho, no run; the seed keys the quantizer's coins."""
    problem = {"L": 1.0, "mu": 0.25, "rho": 2.0, "grad0_norm": 1.0, "x0_dist": 3.0}

    def build(problem=problem, d=2, **kw):
        return IADESGD(
            torch.zeros(d, dtype=F64),
            SimCommunicator(1),
            ScopedCompressor(BoundedQuantizer(mode="stochastic"), [d], "model"),
            problem=problem,
            **kw,
        )

    algo = build(lr=0.25)  # c = 1 - eta mu = 0.9375
    assert algo.c_prime == pytest.approx(0.9375 + 0.0625 / 4) and algo.s == pytest.approx(0.9)
    assert build(lr=0.5).lr == 0.5  # eta = 1/(rho L) itself is allowed
    for kw in (
        {"lr": 0.0},
        {"lr": 0.25, "c_prime": 0.9375},
        {"lr": 0.25, "c_prime": 1.0},
        {"lr": 0.25, "c_prime": 1.5},
    ):
        with pytest.raises(ParameterError, match="must be in"):
            build(**kw)
    with pytest.raises(
        ParameterError,
        match=r"^algo=iade_sgd needs the WGC constant rho \(aiade Ass\. 5\.1\), "
        r"which this problem does not define; use dataset=lsq_interp "
        r"model=least_squares\.$",
    ):
        build(problem={k: v for k, v in problem.items() if k != "rho"})
    g = {0: torch.linspace(-1, 1, 16, dtype=F64) / 3}
    runs = [build(d=16, seed=seed) for seed in (3, 4)]
    for algo in runs:
        algo.step(g, 0)
    assert not torch.equal(runs[0].params, runs[1].params)


def test_iade_theorem_3_1_bounds_at_their_edges():
    """eta in (0, 2/(L+mu)] (2/(L+mu) itself allowed) and c' in (c, 1), for Alg. 1."""
    problem = {"L": 1.0, "mu": 0.5, "grad0_norm": 1.0, "x0_dist": 1.0}

    def build(**kw):
        return IADE(
            torch.zeros(2, dtype=F64),
            SimCommunicator(1),
            ScopedCompressor(BoundedQuantizer(), [2], "model"),
            problem=problem,
            **kw,
        )

    assert build(lr=2 / 1.5).lr == pytest.approx(2 / 1.5)
    for kw in ({"lr": 0.0}, {"lr": 1.0, "c_prime": 0.5}, {"lr": 1.0, "c_prime": 1.0}, {"lr": 1.0, "c_prime": 1.5}):
        with pytest.raises(ParameterError, match="must be in"):
            build(**kw)


def test_double_encoding_coins_are_keyed_by_seed_step_and_worker():
    """Alg. 3's quantizer is random: its coins must differ between steps, workers and seeds (and be
    the same for the same ones), or the errors of successive steps and workers correlate."""
    d = 16
    g = torch.linspace(-1, 1, d, dtype=F64) / 3  # off the grid 2 sqrt(eps / d) = 0.05 almost everywhere

    def v_after(seed=0, step=0, workers=2):
        enc = DoubleEncoding(
            torch.zeros(d, dtype=F64),
            SimCommunicator(workers),
            ScopedCompressor(BoundedQuantizer(mode="stochastic"), [d], "model"),
            seed,
        )
        v, _ = enc.exchange({w: g.clone() for w in range(workers)}, 0.01, step)
        return v.clone(), enc

    base, enc = v_after()
    assert torch.equal(base, v_after()[0])
    assert not torch.equal(base, v_after(step=1)[0]) and not torch.equal(base, v_after(seed=1)[0])
    assert not torch.equal(enc.s_worker[0], enc.s_worker[1])  # same vector, private coins


@pytest.mark.parametrize("cls", [IADE, AIADE, IADESGD])
def test_exchange_gets_the_step_and_its_budget(cls):
    problem = {"L": 1.0, "mu": 0.25, "rho": 2.0, "grad0_norm": 1.0, "x0_dist": 1.0}
    mode = "stochastic" if cls is IADESGD else "deterministic"
    algo = cls(
        torch.zeros(2, dtype=F64),
        SimCommunicator(1),
        ScopedCompressor(BoundedQuantizer(mode=mode), [2], "model"),
        problem=problem,
    )
    calls, exchange = [], algo.encoding.exchange
    algo.encoding.exchange = lambda grads, eps, step: calls.append((eps, step)) or exchange(grads, eps, step)
    for k in range(3):
        algo.step({0: torch.tensor([0.3, -0.1], dtype=F64)}, k)
    assert calls == [(algo.budget(k), k) for k in range(3)]


def test_double_encoding_hands_the_step_to_every_encoding(monkeypatch):
    """Both the workers' and the server's (stochastic) encodings are keyed by the step: a step that
    reached only one of them would replay the other's coins every round (mutation survivors)."""
    d = 8
    enc = DoubleEncoding(
        torch.zeros(d, dtype=F64),
        SimCommunicator(2),
        ScopedCompressor(BoundedQuantizer(mode="stochastic"), [d], "model"),
        0,
    )
    calls = []
    real = enc._encode
    monkeypatch.setattr(enc, "_encode", lambda x, eps, step, who: calls.append((who, step)) or real(x, eps, step, who))
    g = torch.linspace(-1, 1, d, dtype=F64) / 3
    for step in (0, 1):
        enc.exchange({0: g.clone(), 1: -g.clone()}, 0.01, step)
    assert calls == [(0, 0), (1, 0), (-1, 0), (0, 1), (1, 1), (-1, 1)]


def test_iade_sgd_step_bound_is_one_over_rho_l_with_l_not_one():
    """Theorem 5.2's eta <= 1/(rho L) with L = 2, rho = 2 (bound 0.25; rho / L or L / rho would be 1),
    and eta = 0 refused by that same rule, not by a later one."""
    problem = {"L": 2.0, "mu": 0.5, "rho": 2.0, "grad0_norm": 1.0, "x0_dist": 1.0}

    def build(lr):
        return IADESGD(
            torch.zeros(2, dtype=F64),
            SimCommunicator(1),
            ScopedCompressor(BoundedQuantizer(mode="stochastic"), [2], "model"),
            problem=problem,
            lr=lr,
            s=0.01,
        )

    assert build(0.25).lr == 0.25 and build("auto").lr == pytest.approx(0.25)
    for bad in (0.3, 0.0):
        with pytest.raises(ParameterError, match=r"`lr` \(eta\) must be in \(0, 1/\(rho L\)\] = \(0, 0\.25\]"):
            build(bad)
