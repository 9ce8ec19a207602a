"""The quantizers of aiade (compressors/bounded.py, Q(v, eps) of §2) and its QSGD baseline
(compressors/qsgd.py, Alistarh et al. 2017), and the fixed-width bit packing under both:
bit layouts by hand, error bounds, unbiasedness and variance, exact bits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from compress_train.compressors import registry
from compress_train.compressors.base import CompressContext
from compress_train.compressors.bounded import BoundedQuantizer, QuantizerRangeError
from compress_train.compressors.packing import pack_uint, unpack_uint
from compress_train.compressors.qsgd import QSGD

WIDTHS = [0, 1, 3, 7, 8, 13, 31, 62]


def stream_fields(packed: torch.Tensor, width: int, count: int) -> list[int]:
    """Read ``count`` fields of ``width`` bits, MSB first, off the bytes with Python integers."""
    stream = int.from_bytes(bytes(packed.tolist()), "big")
    total = 8 * packed.numel()
    return [(stream >> (total - (i + 1) * width)) & ((1 << width) - 1) for i in range(count)]


def vector(d: int, seed: int, kind: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        x = rng.standard_normal(d)
    elif kind == "cauchy":
        x = rng.standard_cauchy(d)
    elif kind == "zeros":
        x = np.zeros(d)
    else:  # mixed scales over 5 decades, a tenth exactly zero
        x = rng.standard_normal(d) * 10 ** rng.uniform(-4, 1, d)
        x[rng.random(d) < 0.1] = 0.0
    return torch.tensor(x, dtype=dtype)


def err(decoded: torch.Tensor, x: torch.Tensor) -> float:
    return float((decoded.double() - x.double()).norm())


def ctx(step: int = 0, worker: int = 0) -> CompressContext:
    return CompressContext(seed=3, step=step, bucket=0, worker=worker)


def draws(c, x: torch.Tensor, n: int, eps: float | None = None) -> torch.Tensor:
    """n decodes of x, one per step (fresh private coins each)."""
    payloads = (c.compress(x, ctx(s)) if eps is None else c.compress_eps(x, eps, ctx(s)) for s in range(n))
    return torch.stack([c.decompress(p) for p in payloads]).double()


def assert_mean_within(samples: torch.Tensor, target: torch.Tensor, variance: torch.Tensor, z: float = 5.0):
    """Monte-Carlo mean within z standard errors of ``target``, the errors from the exact variance."""
    se = (variance / samples.shape[0]).sqrt()
    bad = (samples.mean(0) - target).abs() > z * se + 1e-12 * (1 + target.abs())
    assert not bad.any(), f"mean {samples.mean(0)[bad]} vs {target[bad]} (se {se[bad]})"


# --------------------------------------------------------------------------- pack_uint / unpack_uint


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("count", [0, 1, 2, 7, 8, 9, 1000])
def test_pack_uint_round_trip(width, count):
    g = torch.Generator().manual_seed(width * 1000 + count)
    values = torch.randint(0, 1 << width, (count,), generator=g, dtype=torch.int64)
    if count >= 2:
        values[0], values[-1] = 0, (1 << width) - 1  # both extremes of the range
    packed = pack_uint(values, width)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(count * width / 8)
    assert torch.equal(unpack_uint(packed, width, count), values)
    if count * width % 8:
        assert int(packed[-1]) & ((1 << (8 - count * width % 8)) - 1) == 0  # zero padding
    assert stream_fields(packed, width, count) == values.tolist()


def test_pack_uint_msb_first_by_hand():
    # 101 001 111 -> 10100111 1(0000000)
    assert pack_uint(torch.tensor([5, 1, 7]), 3).tolist() == [0b10100111, 0b10000000]
    # 13 bits 1101010111100 -> 11010101 11100(000)
    assert pack_uint(torch.tensor([0b1101010111100]), 13).tolist() == [0b11010101, 0b11100000]
    # 62 bits: 1, sixty zeros, 1 -> 0x80, six zero bytes, 00000100
    assert pack_uint(torch.tensor([(1 << 61) + 1]), 62).tolist() == [128, 0, 0, 0, 0, 0, 0, 4]
    assert pack_uint(torch.tensor([1, 0, 1, 1, 0, 0, 0, 0, 1]), 1).tolist() == [0b10110000, 0b10000000]


def test_pack_uint_width_zero():
    packed = pack_uint(torch.zeros(5, dtype=torch.int64), 0)
    assert packed.dtype == torch.uint8 and packed.numel() == 0
    assert torch.equal(unpack_uint(packed, 0, 5), torch.zeros(5, dtype=torch.int64))


def test_pack_uint_large():
    g = torch.Generator().manual_seed(0)
    values = torch.randint(0, 1 << 62, (1_000_000,), generator=g, dtype=torch.int64)
    packed = pack_uint(values, 62)
    assert packed.numel() == 7_750_000
    assert torch.equal(unpack_uint(packed, 62, 1_000_000), values)


@pytest.mark.parametrize("values,width", [([8], 3), ([-1], 4), ([1], 0), ([0], 63), ([0], -1)])
def test_pack_uint_rejects_what_does_not_fit(values, width):
    with pytest.raises(ValueError):
        pack_uint(torch.tensor(values), width)


def test_unpack_uint_rejects_a_wrong_length():
    with pytest.raises(ValueError, match="take 2 bytes"):
        unpack_uint(torch.zeros(3, dtype=torch.uint8), 5, 3)


# --------------------------------------------------------------------------- bounded: config


def test_bounded_check_params_and_flags():
    assert BoundedQuantizer().check() == [] and BoundedQuantizer(eps=2, mode="stochastic").check() == []
    assert BoundedQuantizer(eps=-1).check() == ["`eps` must be a number > 0, but is -1."]
    assert BoundedQuantizer(eps=0.0).check() == ["`eps` must be a number > 0, but is 0.0."]
    assert BoundedQuantizer(eps="1").check() == ["`eps` must be a number > 0, but is '1'."]
    assert BoundedQuantizer(mode="x").check() == ["`mode` must be one of ['deterministic', 'stochastic'], but is 'x'."]
    assert len(BoundedQuantizer(eps=-1, mode="x").check()) == 2
    assert BoundedQuantizer(0.5, "stochastic").params() == {"eps": 0.5, "mode": "stochastic"}
    assert registry.build("bounded", {"eps": 0.1}).params() == {"eps": 0.1, "mode": "deterministic"}
    assert BoundedQuantizer.unbiased is False and BoundedQuantizer().unbiased is False
    assert BoundedQuantizer(mode="stochastic").unbiased is True
    assert BoundedQuantizer.name == "bounded" and not BoundedQuantizer.shared_randomness


# --------------------------------------------------------------------------- bounded: deterministic

REL_EPS = [1e-5, 1e-3, 0.1, 1.0, 30.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 7, 1000])
@pytest.mark.parametrize("kind", ["gauss", "cauchy", "mixed", "zeros"])
def test_bounded_error_at_most_eps(dtype, d, kind):
    c = BoundedQuantizer()
    rels = REL_EPS + ([1e-12] if dtype == torch.float64 else [])
    for seed in range(4):
        x = vector(d, seed, kind, dtype)
        norm = float(x.double().norm())
        for rel in rels:
            eps = rel * norm if norm else rel
            p = c.compress_eps(x, eps, ctx())
            out = c.decompress(p)
            assert out.dtype == dtype and out.shape == (d,)
            assert err(out, x) <= eps, (seed, rel)
            assert p.meta["eps"] == eps and p.numel == p.elements == d


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 7, 1000])
def test_bounded_error_bound_is_tight_at_midpoints(dtype, d):
    """Every coordinate half a step from the grid: the error reaches eps (to rounding) and never
    passes it. A step of exactly 2 eps / sqrt(d) in float32 exceeds eps here by ~1e-5."""
    c, g = BoundedQuantizer(), torch.Generator().manual_seed(d)
    for trial in range(10):
        eps = 10 ** (4 * torch.rand(1, generator=g).item() - 3)
        k = torch.randint(-5000, 5000, (d,), generator=g).double() + 0.5
        x = (k * 2 * eps / math.sqrt(d)).to(dtype)
        for _ in range(2):  # the step depends on ||x|| (rounding margin): settle on it
            x = (k * float(c.compress_eps(x, eps, ctx()).tensors["scale"])).to(dtype)
        e = err(c.decompress(c.compress_eps(x, eps, ctx())), x)
        assert 0.99 * eps <= e <= eps, (trial, e / eps)


def test_bounded_hand_example():
    # delta ~ 0.07: x / delta = [4.29, -17.14, 0.71] -> codes [4, -17, 1]; max 17 = 10001b -> w = 6
    x = torch.tensor([0.3, -1.2, 0.05], dtype=torch.float64)
    eps = 0.07 * math.sqrt(3) / 2
    p = BoundedQuantizer().compress_eps(x, eps, ctx())
    assert list(p.tensors) == ["scale", "width", "codes"]
    delta = float(p.tensors["scale"])
    assert p.tensors["scale"].dtype == torch.float64 and delta == pytest.approx(0.07, rel=1e-8)
    assert delta <= 2 * eps / math.sqrt(3) * (1 - 1e-9)
    assert p.tensors["width"].dtype == torch.uint8 and p.tensors["width"].tolist() == [6]
    # offset binary (+32) in 6 bits: 100100 001111 100001 -> 10010000 11111000 01(000000)
    assert p.tensors["codes"].tolist() == [0b10010000, 0b11111000, 0b01000000]
    assert p.bits == 8 * (8 + 1 + 3) == 96
    out = BoundedQuantizer().decompress(p)
    assert torch.equal(out, torch.tensor([4.0, -17.0, 1.0], dtype=torch.float64) * delta)
    p32 = BoundedQuantizer().compress_eps(x.float(), eps, ctx())
    assert p32.tensors["scale"].dtype == torch.float32 and p32.bits == 8 * (4 + 1 + 3) == 64
    assert p32.tensors["codes"].tolist() == p.tensors["codes"].tolist()


def test_bounded_zero_and_large_eps_send_no_codes():
    c = BoundedQuantizer()
    p = c.compress_eps(torch.zeros(20), 1e-3, ctx())
    assert p.tensors["width"].tolist() == [0] and p.tensors["codes"].numel() == 0 and p.bits == 40
    assert torch.equal(c.decompress(p), torch.zeros(20))
    x = vector(100, 0, "gauss")
    p = c.compress_eps(x, 100 * float(x.norm()), ctx())  # max |x_i| < delta / 2: every code 0
    assert p.bits == 40 and torch.equal(c.decompress(p), torch.zeros(100))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 7, 1000])
def test_bounded_stream_round_trip(dtype, d):
    c, fresh = BoundedQuantizer(eps=0.05), BoundedQuantizer(eps=0.05)
    for seed, kind in enumerate(["gauss", "cauchy", "mixed"]):
        x = vector(d, seed, kind, dtype)
        p = c.compress(x, ctx())
        delta, w = float(p.tensors["scale"]), int(p.tensors["width"])
        codes = (x.double() / delta).round().long()
        top = int(codes.abs().max())
        assert w == (1 + top.bit_length() if top else 0)
        if w:
            assert [f - (1 << (w - 1)) for f in stream_fields(p.tensors["codes"], w, d)] == codes.tolist()
        assert p.bits == 8 * (p.tensors["scale"].element_size() + 1 + math.ceil(d * w / 8))
        expected = (codes.double() * delta).to(dtype)
        assert torch.equal(c.decompress(p), expected) and torch.equal(fresh.decompress(p), expected)


def test_bounded_compress_uses_the_configured_eps():
    x = vector(300, 1, "gauss")
    a, b = BoundedQuantizer(eps=0.2).compress(x, ctx()), BoundedQuantizer().compress_eps(x, 0.2, ctx())
    assert a.meta == b.meta and all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


def test_bounded_rejects_eps_below_the_dtype_resolution():
    x = vector(1000, 0, "gauss")
    with pytest.raises(QuantizerRangeError, match="float64"):
        BoundedQuantizer().compress_eps(x, 1e-8 * float(x.norm()), ctx())
    assert err(BoundedQuantizer().decompress(BoundedQuantizer().compress_eps(x.double(), 1e-8, ctx())), x) <= 1e-8


def test_bits_lemma21_by_hand():
    c = BoundedQuantizer()
    x = torch.tensor([3.0, 4.0])  # ||x|| = 5
    assert c.compress_eps(x, 2.5, ctx()).meta["bits_lemma21"] == 7  # e = 1/2: ceil(2.1 + 2 log2 4)
    assert c.compress_eps(x, 5 / 6, ctx()).meta["bits_lemma21"] == 9  # e = 1/6: ceil(2.1 + 2 log2 8)
    assert c.compress_eps(torch.zeros(100), 0.1, ctx()).meta["bits_lemma21"] == 205  # ceil(2.05 d)
    assert c.compress_eps(torch.zeros(7), 0.1, ctx()).meta["bits_lemma21"] == 15  # ceil(14.35)
    # stochastic: eps bounds the squared error, so sigma = sqrt(eps)
    assert BoundedQuantizer(mode="stochastic").compress_eps(x, 6.25, ctx()).meta["bits_lemma21"] == 7


def test_real_code_exceeds_lemma21_as_documented():
    c, x = BoundedQuantizer(), vector(1000, 0, "gauss")
    for rel in [1e-4, 1e-2, 1.0]:
        p = c.compress_eps(x, rel * float(x.norm()), ctx())
        assert p.meta["bits_lemma21"] < p.bits
        assert p.bits <= 1000 * (math.log2(math.sqrt(1000) / rel) + 2) + 40


# --------------------------------------------------------------------------- bounded: stochastic


def midpoint_vector(eps: float, d: int) -> tuple[torch.Tensor, float]:
    """x half a step off the stochastic grid everywhere (p = 1/2: the largest variance), in float64."""
    delta = 2 * math.sqrt(eps / d)
    k = torch.arange(d, dtype=torch.float64) - d // 2
    return (k + 0.5) * delta, delta


def test_stochastic_unbiased_and_squared_error_at_most_eps():
    eps, d, n = 0.04, 40, 3000
    c = BoundedQuantizer(eps=eps, mode="stochastic")
    x, delta = midpoint_vector(eps, d)
    x[:5] = torch.tensor([0.0, 3 * delta, -7 * delta, 0.1 * delta, -2.9 * delta], dtype=torch.float64)
    samples = draws(c, x, n, eps=eps)
    assert float(c.compress_eps(x, eps, ctx()).tensors["scale"]) == delta
    frac = x / delta - (x / delta).floor()
    variance = delta**2 * frac * (1 - frac)
    assert torch.equal(samples[:, :3], x[:3].expand(n, 3))  # grid points are sent exactly
    assert_mean_within(samples, x, variance)
    sq = (samples - x).pow(2).sum(1)  # variance.sum() <= d delta^2 / 4 = eps: delta is checked above
    assert float(sq.mean()) == pytest.approx(float(variance.sum()), abs=5 * float(sq.std()) / math.sqrt(n))
    assert set(((samples - x) / delta).floor().unique().tolist()) <= {-1.0, 0.0}  # floor or ceil only


def test_stochastic_squared_error_reaches_eps_at_midpoints():
    eps, d, n = 0.5, 200, 400
    c = BoundedQuantizer(eps=eps, mode="stochastic")
    x, _ = midpoint_vector(eps, d)
    sq = (draws(c, x, n, eps=eps) - x).pow(2).sum(1)
    assert torch.allclose(sq, torch.full_like(sq, eps), rtol=1e-9)  # each coordinate off by delta / 2


def test_stochastic_randomness_private_and_reproducible():
    c, x = BoundedQuantizer(eps=1.0, mode="stochastic"), vector(500, 0, "gauss")
    codes = [c.compress(x, ctx(step=1, worker=w)).tensors["codes"] for w in (0, 1)]
    assert not torch.equal(codes[0], codes[1])
    assert torch.equal(codes[0], c.compress(x, ctx(step=1, worker=0)).tensors["codes"])
    assert not torch.equal(codes[0], c.compress(x, ctx(step=2, worker=0)).tensors["codes"])
    state = torch.get_rng_state()
    c.compress(x, ctx())
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is never touched


# --------------------------------------------------------------------------- QSGD


@pytest.mark.parametrize("levels", [0, -2, 2.5, True, "4"])
def test_qsgd_check(levels):
    assert QSGD(levels).check() == [f"`levels` must be an integer >= 1, but is {levels!r}."]


def test_qsgd_config_and_flags():
    assert QSGD().check() == [] and QSGD().params() == {"levels": 4}
    assert QSGD.unbiased and not QSGD.shared_randomness and QSGD.name == "qsgd"


def test_qsgd_hand_example():
    # ||x|| = 5, s = 5: |x_i| s / ||x|| = [3, 4] exactly, so no randomness; 3 bits per level.
    c = QSGD(levels=5)
    p = c.compress(torch.tensor([3.0, -4.0]), ctx())
    assert list(p.tensors) == ["norm", "signs", "levels"]
    assert p.tensors["norm"].tolist() == [5.0] and p.tensors["norm"].dtype == torch.float32
    assert p.tensors["signs"].tolist() == [0b10000000]
    assert p.tensors["levels"].tolist() == [0b01110000]  # 011 100 (00)
    assert p.bits == 32 + 8 + 8
    assert torch.equal(c.decompress(p), torch.tensor([3.0, -4.0]))


@pytest.mark.parametrize(
    "d,levels,dtype,bits",
    [
        (10, 4, torch.float32, 32 + 16 + 32),  # 30 level bits -> 4 bytes
        (9, 1, torch.float32, 32 + 16 + 16),
        (1000, 4, torch.float32, 32 + 1000 + 3000),
        (1000, 7, torch.float32, 32 + 1000 + 3000),
        (1000, 8, torch.float64, 64 + 1000 + 4000),
        (1, 255, torch.float32, 32 + 8 + 8),
    ],
)
def test_qsgd_bits_by_hand(d, levels, dtype, bits):
    p = QSGD(levels).compress(vector(d, 0, "gauss", dtype), ctx())
    assert p.bits == bits and p.numel == p.elements == d


@pytest.mark.parametrize("levels", [1, 2, 4, 16])
@pytest.mark.parametrize("kind", ["gauss", "cauchy", "mixed"])
def test_qsgd_levels_and_decode(levels, kind):
    c, x = QSGD(levels), vector(1000, levels, kind)
    for step in range(3):
        p = c.compress(x, ctx(step))
        norm = float(p.tensors["norm"])
        assert norm >= float(x.double().norm()) and norm == pytest.approx(float(x.double().norm()), rel=1e-7)
        out = c.decompress(p)
        level = (out.double().abs() * levels / norm).round()
        assert torch.equal(out, (torch.sign(x.double()) * level * norm / levels).float())
        assert 0 <= float(level.min()) and float(level.max()) <= levels
        low = (x.double().abs() * levels / norm).floor()
        assert torch.all((level == low) | (level == low + 1))


def test_qsgd_zero_vector():
    p = QSGD().compress(torch.zeros(13), ctx())
    assert p.tensors["norm"].tolist() == [0.0] and not p.tensors["levels"].any()
    assert torch.equal(QSGD().decompress(p), torch.zeros(13))


def qsgd_variance(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Per-coordinate variance of Q_s(x): (||x|| / s)^2 p (1 - p), p the fractional level."""
    norm = float(x.double().norm())
    r = x.double().abs() * levels / norm
    return (norm / levels) ** 2 * (r - r.floor()) * (1 - r + r.floor())


@pytest.mark.parametrize("levels", [1, 4])
def test_qsgd_unbiased(levels):
    g = torch.Generator().manual_seed(1)
    x = torch.logspace(-1.5, 0.5, 50, dtype=torch.float64) * torch.where(torch.rand(50, generator=g) < 0.5, -1, 1)
    x[7] = 0.0
    samples = draws(QSGD(levels), x, 3000)
    assert_mean_within(samples, x, qsgd_variance(x, levels))


@pytest.mark.parametrize("levels", [1, 2, 4, 16])
@pytest.mark.parametrize("kind", ["gauss", "cauchy", "mixed"])
def test_qsgd_variance_lemma_3_1(levels, kind):
    """Alistarh et al. Lemma 3.1: E||Q_s(v) - v||^2 <= min(d / s^2, sqrt(d) / s) ||v||^2, and the
    Monte-Carlo squared error matches the exact variance."""
    d, n = 400, 200
    x = vector(d, 5, kind, torch.float64)
    exact = float(qsgd_variance(x, levels).sum())
    sq = (draws(QSGD(levels), x, n) - x).pow(2).sum(1)
    lemma = min(d / levels**2, math.sqrt(d) / levels) * float(x.norm()) ** 2
    assert float(sq.mean()) <= lemma + 5 * float(sq.std()) / math.sqrt(n)
    assert float(sq.mean()) == pytest.approx(exact, abs=5 * float(sq.std()) / math.sqrt(n))


def test_qsgd_private_randomness():
    c, x = QSGD(), vector(500, 0, "gauss")
    a, b = (c.compress(x, ctx(step=1, worker=w)) for w in (0, 1))
    assert not torch.equal(a.tensors["levels"], b.tensors["levels"])
    assert torch.equal(a.tensors["levels"], c.compress(x, ctx(step=1, worker=0)).tensors["levels"])
