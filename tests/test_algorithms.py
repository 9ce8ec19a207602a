"""One step of each algorithm against a hand computation on a tiny problem (d = 4, n = 2),
plus the reductions every reader expects (identity compression == the uncompressed rule)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from compress_train.algorithms import registry
from compress_train.algorithms.amsgrad import AMSGrad
from compress_train.algorithms.base import AlgorithmContext
from compress_train.algorithms.communicator import SimCommunicator
from compress_train.algorithms.comp_ams import CompAMS
from compress_train.algorithms.ef_sgd import EFSGD
from compress_train.algorithms.sgd import SGD
from compress_train.compressors.identity import Identity
from compress_train.compressors.scope import ScopedCompressor
from compress_train.compressors.threshold import Threshold
from compress_train.compressors.topk import TopK

CONF = Path(__file__).resolve().parents[1] / "conf" / "algo"
T = torch.tensor


def grads(*rows):
    return {w: T(r, dtype=torch.float32) for w, r in enumerate(rows)}


def test_comp_ams_two_steps_by_hand():
    """comp_ams Alg. 2 with Top-2 of 4, classic EF, n = 2."""
    theta = T([1.0, 2.0, 3.0, 4.0])
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    algo = CompAMS(
        theta,
        SimCommunicator(2),
        ScopedCompressor(TopK(ratio=0.5), [4], "model"),
        lr=lr,
        beta1=b1,
        beta2=b2,
        eps=eps,
        ef="classic",
    )
    # Step 1. Worker 0 keeps |-1|, |2| (indices 1, 3); worker 1 keeps |1|, |-3| (indices 0, 2).
    report = algo.step(grads([0.5, -1.0, 0.1, 2.0], [1.0, 0.2, -3.0, 0.1]), 0)
    g_bar = T([0.5, -0.5, -1.5, 1.0])  # ([0,-1,0,2] + [1,0,-3,0]) / 2
    m = 0.1 * g_bar
    v = 0.001 * g_bar**2
    expected = T([1.0, 2.0, 3.0, 4.0]) - lr * m / torch.sqrt(v + eps)
    assert torch.allclose(theta, expected, atol=1e-6)
    assert torch.allclose(algo.memories[0].error, T([0.5, 0.0, 0.1, 0.0]))
    assert torch.allclose(algo.memories[1].error, T([0.0, 0.2, 0.0, 0.1]))
    assert report.bits_up == 2 * 64 and report.elements_up == 2
    assert report.bits_down == 2 * 64  # the other worker's payload (the server is replicated)
    assert report.extra["bits_down_ps_model"] == 32 * 4  # theta_t to each worker (line 5), modelled
    # Step 2. Zero gradients: each worker sends its top-2 residual, the memory empties.
    before = theta.clone()
    algo.step(grads([0.0] * 4, [0.0] * 4), 1)
    g_bar2 = T([0.25, 0.1, 0.05, 0.05])  # ([0.5,0,0.1,0] + [0,0.2,0,0.1]) / 2
    m2 = b1 * m + (1 - b1) * g_bar2
    v2 = b2 * v + (1 - b2) * g_bar2**2
    vhat2 = torch.maximum(v, v2)
    assert torch.allclose(theta, before - lr * m2 / torch.sqrt(vhat2 + eps), atol=1e-6)
    assert algo.memories[0].error.abs().max() == 0 and algo.memories[1].error.abs().max() == 0


def test_comp_ams_without_ef_drops_the_residual():
    theta = torch.zeros(4)
    algo = CompAMS(theta, SimCommunicator(1), ScopedCompressor(TopK(k=1), [4], "model"), lr=0.1, ef=False)
    algo.step(grads([0.5, -1.0, 0.1, 2.0]), 0)
    assert algo.ef == "none" and algo.memories[0].error.abs().max() == 0
    # Only coordinate 3 moved: m = 0.1 * 2, v = 0.001 * 4.
    assert torch.allclose(theta, T([0.0, 0.0, 0.0, -0.1 * 0.2 / math.sqrt(0.004 + 1e-8)]))


def test_ef_sgd_two_steps_by_hand():
    """hard_threshold Alg. 1 with hard threshold lambda = 1, gamma = 0.5, n = 2."""
    x = T([1.0, 1.0, 1.0, 1.0])
    algo = EFSGD(x, SimCommunicator(2), ScopedCompressor(Threshold(lam=1.0), [4], "model"), lr=0.5, ef="scaled")
    report = algo.step(grads([3.0, 0.5, -2.0, 0.1], [0.2, -4.0, 1.0, 0.0]), 0)
    # p_i = gamma g_i; p_i / gamma = g_i; keep |.| >= 1; Delta_i = gamma C(g_i).
    delta0, delta1 = T([1.5, 0.0, -1.0, 0.0]), T([0.0, -2.0, 0.5, 0.0])
    assert torch.allclose(x, T([1.0] * 4) - (delta0 + delta1) / 2)
    assert torch.allclose(algo.memories[0].error, T([0.0, 0.25, 0.0, 0.05]))
    assert torch.allclose(algo.memories[1].error, T([0.1, 0.0, 0.0, 0.0]))
    assert report.bits_up == 2 * 64 and report.bits_down == 2 * 64
    # Step 2: p_0 = e_0 + 0.5 * 0.1 = [0.05, 0.3, 0.05, 0.1]; p_0 / gamma < 1 everywhere: nothing sent.
    before = x.clone()
    report = algo.step(grads([0.1] * 4, [0.0, 0.0, 0.0, 4.0]), 1)
    assert torch.allclose(algo.memories[0].error, T([0.05, 0.3, 0.05, 0.1]))
    # Worker 1: p_1 = [0.1, 0, 0, 2]; p_1 / gamma = [0.2, 0, 0, 4]: sends coordinate 3 only.
    assert torch.allclose(x, before - T([0.0, 0.0, 0.0, 2.0]) / 2)
    assert report.elements_up == 0.5 and report.bits_up == 32.0


def test_amsgrad_step_by_hand():
    """comp_ams Alg. 1: v_0 = eps, no eps in the denominator."""
    theta = T([1.0, -1.0])
    algo = AMSGrad(theta, SimCommunicator(2), None, lr=0.01, eps=1e-8)
    algo.step(grads([1.0, 0.0], [3.0, -2.0]), 0)
    g = T([2.0, -1.0])
    m, v = 0.1 * g, 0.999 * 1e-8 + 0.001 * g**2
    assert torch.allclose(theta, T([1.0, -1.0]) - 0.01 * m / torch.sqrt(torch.maximum(v, T([1e-8, 1e-8]))))


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_torch_optim(nesterov):
    torch.manual_seed(0)
    w = torch.randn(6)
    ref = w.clone().requires_grad_(True)
    opt = torch.optim.SGD([ref], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
    algo = SGD(w, SimCommunicator(2), None, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
    for step in range(4):
        g0, g1 = torch.randn(6), torch.randn(6)
        ref.grad = (g0 + g1) / 2
        opt.step()
        algo.step({0: g0, 1: g1}, step)
    assert torch.allclose(w, ref.detach(), atol=1e-6)


def test_ef_sgd_with_identity_is_sgd():
    torch.manual_seed(1)
    a, b = torch.randn(5), None
    b = a.clone()
    sgd = SGD(a, SimCommunicator(2), None, lr=0.05, momentum=0.9, weight_decay=1e-3)
    ef = EFSGD(
        b,
        SimCommunicator(2),
        ScopedCompressor(Identity(), [5], "model"),
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-3,
        ef="classic",
    )
    for step in range(3):
        g = {0: torch.randn(5), 1: torch.randn(5)}
        sgd.step(g, step)
        ef.step(g, step)
    assert torch.allclose(a, b, atol=1e-7)


def test_ef_sgd_powersgd_nesterov_two_steps_by_hand():
    """PowerSGD-style EF: send C(g + e) (Top-1 here), e = g + e - C(g + e); d = avg + wd x;
    m = d at the first step, else mu m + d; Nesterov d = d + m; x -= lr d. n = 2, d = 3."""
    x = torch.zeros(3)
    algo = EFSGD(
        x,
        SimCommunicator(2),
        ScopedCompressor(TopK(k=1), [3], "model"),
        lr=0.1,
        ef="powersgd",
        momentum=0.9,
        nesterov=True,
        weight_decay=0.1,
    )
    algo.step(grads([1.0, -2.0, 0.5], [0.0, 1.0, 3.0]), 0)
    # sent [0,-2,0] and [0,0,3], avg [0,-1,1.5] = m; Nesterov d = 2 m; x = -0.1 d
    assert torch.allclose(x, T([0.0, 0.2, -0.3]), atol=1e-7)
    assert torch.allclose(algo.memories[0].error, T([1.0, 0.0, 0.5])) and torch.allclose(
        algo.memories[1].error, T([0.0, 1.0, 0.0])
    )
    algo.step(grads([0.5, 0.0, 0.0], [0.0, 0.0, -2.0]), 1)
    # g + e = [1.5,0,0.5] -> [1.5,0,0]; [0,1,-2] -> [0,0,-2]; avg [0.75,0,-1]; d = avg + 0.1 x = [0.75,0.02,-1.03]
    # m = 0.9 [0,-1,1.5] + d = [0.75,-0.88,0.32]; d + m = [1.5,-0.86,-0.71]; x = [0,0.2,-0.3] - 0.1 (d + m)
    assert torch.allclose(x, T([-0.15, 0.286, -0.229]), atol=1e-6)


def test_ef_sgd_adam_with_identity_is_torch_adam():
    """hard_threshold's NCF setting: Adam on the averaged (error-corrected) gradients."""
    torch.manual_seed(2)
    w = torch.randn(6)
    ref = w.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=0.01, betas=(0.25, 0.5), eps=1e-8, weight_decay=1e-3)
    algo = EFSGD(
        w,
        SimCommunicator(2),
        ScopedCompressor(Identity(), [6], "model"),
        lr=0.01,
        ef="powersgd",
        optimizer="adam",
        betas=(0.25, 0.5),
        adam_eps=1e-8,
        weight_decay=1e-3,
    )
    for step in range(5):
        g0, g1 = torch.randn(6), torch.randn(6)
        ref.grad = (g0 + g1) / 2
        opt.step()
        algo.step({0: g0, 1: g1}, step)
    assert torch.allclose(w, ref.detach(), atol=1e-6)


def test_powersgd_memory_is_the_raw_gradient_memory():
    """PowerSGD-style EF: send C(g + e), e <- g + e - C(g + e), no lr: the same as ``classic``."""
    runs = {}
    for ef in ("powersgd", "classic"):
        torch.manual_seed(3)
        w = torch.zeros(8)
        algo = EFSGD(
            w, SimCommunicator(2), ScopedCompressor(TopK(k=2), [8], "model"), lr=0.1, ef=ef, momentum=0.9, nesterov=True
        )
        for step in range(4):
            algo.step({0: torch.randn(8), 1: torch.randn(8)}, step)
        runs[ef] = (w, algo.memories[0].error)
    assert torch.equal(runs["powersgd"][0], runs["classic"][0]) and torch.equal(runs["powersgd"][1], runs["classic"][1])
    assert EFSGD.check({"lr": 0.1, "ef": "powersgd", "momentum": 0.0, "weight_decay": 0.0}) == []


def step_two_compressed(cls, cfg) -> bool:
    """Whether the second step compresses (1-bit Adam's warm-up of full Adam lasts freeze_step steps)."""
    return cfg.get("freeze_step", 0) < 2


def algo_yamls():
    return sorted(CONF.glob("*.yaml"))


def test_every_algorithm_has_a_yaml_and_back():
    assert sorted(p.stem for p in algo_yamls()) == registry.available()


# Constants a convex task hands to the methods whose step sizes come from the theory (aiade).
PROBLEM = {"L": 1.0, "mu": 0.1, "rho": 2.0, "grad0_norm": 1.0, "x0_dist": 1.0}


def companions(cls):
    """What an algorithm needs beside its YAML (its ``Needs``): dtype, problem constants, compressor."""
    needs = cls.needs
    if needs.compressor_name == "count_sketch":  # the sketch methods: a 3 x 5 table, k = 2
        from compress_train.compressors.count_sketch import CountSketch

        return torch.float32, None, CountSketch(rows=3, columns=5, ratio=None, k=2)
    if needs.problem != "required":
        return torch.float32, None, TopK(ratio=0.2)
    from compress_train.compressors import registry as compressors

    comp = (
        compressors.build(needs.compressor_name, dict(needs.compressor_params))
        if needs.compressor_name
        else TopK(ratio=0.2)
    )
    return torch.float64, PROBLEM, comp


@pytest.mark.parametrize("path", algo_yamls(), ids=lambda p: p.stem)
def test_every_algorithm_steps_and_reports_bits(path):
    cfg = yaml.safe_load(path.read_text())
    cfg.pop("defaults", None)
    cls = registry.get(cfg.pop("name"))
    assert cls.check(cfg) == []
    dtype, problem, comp = companions(cls)
    theta = torch.zeros(10, dtype=dtype)
    layers = [10] if cls.needs.compressor_name else [4, 6]
    built = []
    ctx = AlgorithmContext(theta, layers, problem=problem)
    algo = cls.create(
        ctx, SimCommunicator(3), lambda: built.append(1) or ScopedCompressor(comp, layers, "layer"), **cfg
    )
    # a compressor only for methods that compress, and a second for a compressing server
    assert built == [1] * (int(cls.needs.compressor) + int(cls.needs.server_compressor))
    algo.step({w: torch.randn(10, dtype=dtype) for w in range(3)}, 0)  # EF21's first step is dense
    report = algo.step({w: torch.randn(10, dtype=dtype) for w in range(3)}, 1)
    assert theta.abs().sum() > 0
    if cls.needs.compressor_name == "count_sketch":  # the r x c table (+ a second round), 001's numbers beside
        assert report.bits_up >= 32 * 3 * 5 and report.extra["numbers_sent"] >= 3 * 5 + 2
    elif cls.needs.compressor_name:  # variable-width codes: bits read off the payload, > 0
        assert report.bits_up > 0 and report.elements_up == 10
    else:
        assert report.bits_up == (64 * (1 + 1) if cls.needs.compressor and step_two_compressed(cls, cfg) else 32 * 10)
    bad = dict(cfg, lr=-1)
    assert any("`lr`" in e for e in cls.check(bad))  # its own key name; the runner adds `algo.`


def test_qadam_step_by_hand():
    """Baselines A1: local Adam moments, 1-bit (Block-Sign) step with error feedback, n = 2."""
    from compress_train.algorithms.qadam import QAdam
    from compress_train.compressors.blocksign import BlockSign

    x = T([1.0, 1.0, 1.0])
    algo = QAdam(x, SimCommunicator(2), ScopedCompressor(BlockSign(), [3], "layer"), lr=0.1, eps=1e-8)
    report = algo.step(grads([1.0, -3.0, 0.0], [2.0, 2.0, 2.0]), 0)
    # Without bias correction the first step is eta * 0.1 g / (sqrt(0.001) |g| + eps) = +-a.
    a = 0.1 * 0.1 / (math.sqrt(0.001) + 1e-8)
    a3 = 0.1 * 0.3 / (math.sqrt(0.009) + 1e-8)
    # Worker 0: u = [a, -a3, 0] -> scale (a + a3) / 3, signs [+, -, +(zero)].
    s0 = (a + a3) / 3
    q0 = T([s0, -s0, s0])
    assert torch.allclose(algo.memories[0].error, T([a, -a3, 0.0]) - q0, atol=1e-6)
    # Worker 1: u = [b, b, b] with b = 0.1 * 0.2 / (sqrt(0.004) + eps): sent exactly.
    b = 0.1 * 0.2 / (math.sqrt(0.004) + 1e-8)
    assert algo.memories[1].error.abs().max() < 1e-6
    assert torch.allclose(x, T([1.0] * 3) - (q0 + T([b, b, b])) / 2, atol=1e-6)
    assert torch.allclose(algo.m[0], T([0.1, -0.3, 0.0])) and torch.allclose(algo.v[1], T([0.004] * 3))
    assert report.bits_up == 32 + 8 and report.bits_down == 32 + 8  # the other worker's payload
    assert report.extra["bits_down_ps_model"] == 32 * 3


def test_no_weight_decay_on_batchnorm_when_asked():
    """hard_threshold's CIFAR code: wd 1e-4 on every parameter but BatchNorm's (``decay_norm: false``)."""
    from compress_train.models.resnet18_cifar import ResNet18CIFAR
    from compress_train.runner.tasks.flat import FlatModel

    flat = FlatModel(ResNet18CIFAR())
    mask = flat.norm_mask()
    bn = sum(p.numel() for m in flat.model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters())
    assert bn > 0 and int(mask.sum()) == flat.numel - bn
    x = torch.ones(4)
    algo = EFSGD(
        x,
        SimCommunicator(1),
        ScopedCompressor(Identity(), [4], "model"),
        lr=0.1,
        ef="none",
        weight_decay=0.5,
        decay_norm=False,
        decay_mask=T([1.0, 0.0, 1.0, 0.0]),
    )
    algo.step({0: torch.zeros(4)}, 0)
    assert torch.allclose(x, T([0.95, 1.0, 0.95, 1.0]))


@pytest.mark.parametrize("cls", [CompAMS, EFSGD])
def test_each_message_is_decoded_once_per_step(cls, monkeypatch):
    """One decode per message: the decode made for the error memory is the one the average uses (4 workers,
    4 decodes a step), and the result equals decoding every message afresh."""
    scoped = ScopedCompressor(TopK(ratio=0.25), [8], "model")
    calls = []
    real = scoped.decompress
    monkeypatch.setattr(scoped, "decompress", lambda m: calls.append(1) or real(m))
    algo = cls(torch.zeros(8), SimCommunicator(4), scoped, lr=0.1)
    torch.manual_seed(0)
    g = {w: torch.randn(8) for w in range(4)}
    messages, _ = algo.compress_and_exchange(g, 0)
    fresh = sum(real(m) for m in messages) / 4
    calls.clear()
    assert torch.equal(algo.average_decoded(messages), fresh) and calls == []
    algo.step(g, 1)
    assert len(calls) == 4
