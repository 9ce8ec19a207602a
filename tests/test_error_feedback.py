"""Error feedback (every mode registered in algorithms/error_feedback/) paired with every compressor in
conf/compressor/*.yaml: the conservation invariant in each mode's units, the equivalence of
classic and scaled EF at a constant step size (hard_threshold Remark 1), and the difference hard_threshold
Alg. 1 makes for the hard threshold when the step size changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from compress_train.algorithms.error_feedback import ErrorFeedback, build, modes, normalize_ef
from compress_train.compressors import registry
from compress_train.compressors.scope import ScopedCompressor
from compress_train.runner.config.check import compressor_params

CONF = Path(__file__).resolve().parents[1] / "conf" / "compressor"
YAMLS = sorted(CONF.glob("*.yaml"))
LAYERS = [7, 300, 64, 1, 1000]
D = sum(LAYERS)


def load(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def scoped(cfg: dict, scope: str | None = None) -> ScopedCompressor:
    params = compressor_params(cfg)
    return ScopedCompressor(registry.build(cfg["name"], params), LAYERS, scope or cfg["scope"])


def gradient(rng: np.random.Generator) -> torch.Tensor:
    """Mixed scales (1e-4 .. 3) so the hard threshold keeps some coordinates and drops others."""
    g = rng.standard_normal(D) * 10 ** rng.uniform(-4, 0.5, D)
    return torch.tensor(g, dtype=torch.float32)


def run(ef: ErrorFeedback, sc: ScopedCompressor, grads, lrs, seed: int = 0):
    """EF loop as the algorithms run it; yields (g, lr, e_old, corrected, decoded, e_new)."""
    for step, (g, lr) in enumerate(zip(grads, lrs)):
        e_old = ef.error.clone()
        corrected = ef.corrected(g, lr)
        decoded = sc.decompress(sc.compress(corrected, seed, step, 0))
        ef.update(corrected, decoded, lr)
        yield g, lr, e_old, corrected, decoded, ef.error.clone()


LRS = [0.1, 0.05, 0.3, 0.01, 0.1, 1.0]


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
@pytest.mark.parametrize("mode", modes())
def test_conservation(mode, path):
    cfg = load(path)
    sc = scoped(cfg)
    rng = np.random.default_rng(len(path.stem))
    grads = [gradient(rng) for _ in LRS]
    ef = build(mode, D)
    for g, lr, e_old, corrected, decoded, e_new in run(ef, sc, grads, LRS):
        assert decoded.shape == g.shape
        if mode == "none":
            assert torch.equal(corrected, g)
            assert torch.all(e_new == 0) and ef.norm() == 0.0
            continue
        if ef.raw_gradient:  # classic, powersgd: memory in gradient units
            lhs, rhs = decoded + e_new, g + e_old
            torch.testing.assert_close(corrected, g + e_old, rtol=1e-6, atol=1e-6)
        else:
            lhs, rhs = lr * decoded + e_new, lr * g + e_old
            torch.testing.assert_close(lr * corrected, lr * g + e_old, rtol=1e-5, atol=1e-6)
        scale = float(
            torch.max(
                g.abs().max() * max(lr, 1.0) + e_old.abs().max(), (lr * decoded).abs().max() + decoded.abs().max()
            )
        )
        torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-5 * max(scale, 1.0))
        assert ef.norm() == pytest.approx(float(e_new.norm()))


@pytest.mark.parametrize("name", ["topk", "threshold", "identity", "scaled_sign", "blocksign"])
@pytest.mark.parametrize("scope", ["model", "layer"])
def test_scaled_equals_classic_at_constant_lr(name, scope):
    """hard_threshold Remark 1: with a constant step size, scaled EF's memory is gamma times classic's
    and the messages are the same."""
    cfg = load(CONF / f"{name}.yaml")
    rng = np.random.default_rng(5)
    grads = [gradient(rng) for _ in range(6)]
    lr = 0.05
    classic = run(build("classic", D), scoped(cfg, scope), grads, [lr] * 6)
    scaled = run(build("scaled", D), scoped(cfg, scope), grads, [lr] * 6)
    for (_, _, _, _, dec_c, e_c), (_, _, _, _, dec_s, e_s) in zip(classic, scaled):
        torch.testing.assert_close(dec_s, dec_c, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(e_s, lr * e_c, rtol=1e-5, atol=1e-7)


def hard_threshold(v: torch.Tensor, lam: float) -> torch.Tensor:
    return torch.where(v.abs() >= lam, v, torch.zeros_like(v))


def test_threshold_scaled_follows_alg1_when_lr_changes():
    """hard_threshold Alg. 1: p = e + gamma g; Delta = gamma C(p / gamma), i.e. p_i is sent iff
    |p_i| >= gamma * lam; e = p - Delta. Classic EF thresholds g + e at lam instead, so the two
    part ways as soon as gamma changes."""
    lam = 0.05
    sc = ScopedCompressor(registry.build("threshold", {"lam": lam}), LAYERS, "model")
    rng = np.random.default_rng(11)
    grads = [gradient(rng) for _ in range(6)]
    lrs = [0.1, 0.1, 0.01, 0.5, 0.02, 0.2]
    e_c, e_s = torch.zeros(D), torch.zeros(D)
    differ = False
    classic = run(build("classic", D), sc, grads, lrs)
    scaled = run(build("scaled", D), sc, grads, lrs)
    for (g, lr, _, _, dec_c, ef_c), (_, _, _, _, dec_s, ef_s) in zip(classic, scaled):
        q = g + e_c  # classic reference
        ref_c = hard_threshold(q, lam)
        e_c = q - ref_c
        p = e_s + lr * g  # Alg. 1 reference
        delta = torch.where(p.abs() >= lr * lam, p, torch.zeros_like(p))
        e_s = p - delta
        torch.testing.assert_close(dec_c, ref_c, rtol=0, atol=0)
        torch.testing.assert_close(ef_c, e_c, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(lr * dec_s, delta, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(ef_s, e_s, rtol=1e-5, atol=1e-7)
        differ |= not torch.equal(dec_c != 0, dec_s != 0)
    assert differ, "scaled and classic EF should send different coordinates once gamma changes"


def test_threshold_lr_drop_by_hand():
    """Step 0 (gamma = 1) leaves e = g below lam; step 1 sends no gradient with gamma = 0.1.
    Classic sees e < lam and sends nothing; scaled compresses p / gamma = 10 e and sends it."""
    lam = 1.0
    sc = ScopedCompressor(registry.build("threshold", {"lam": lam}), [4], "model")
    g0 = torch.tensor([0.5, -0.05, 2.0, 0.2])
    grads, lrs = [g0, torch.zeros(4)], [1.0, 0.1]
    (*_, c0, _), (*_, c1, ec1) = run(build("classic", 4), sc, grads, lrs)
    (*_, s0, _), (*_, s1, es1) = run(build("scaled", 4), sc, grads, lrs)
    assert c0.tolist() == s0.tolist() == [0.0, 0.0, 2.0, 0.0]
    assert c1.tolist() == [0.0, 0.0, 0.0, 0.0] and ec1.tolist() == pytest.approx([0.5, -0.05, 0.0, 0.2])
    assert s1.tolist() == pytest.approx([5.0, 0.0, 0.0, 2.0])  # p / gamma = [5, -0.5, 0, 2]
    assert es1.tolist() == pytest.approx([0.0, -0.05, 0.0, 0.0])


def test_bad_mode_names_the_key():
    with pytest.raises(ValueError, match="algo.ef"):
        build("bogus", 10)


def test_normalize_ef():
    assert normalize_ef(True, "scaled") == "scaled"
    assert normalize_ef(False, "scaled") == normalize_ef(None, "classic") == "none"
    assert normalize_ef("classic", "scaled") == "classic"
