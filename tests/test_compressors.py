"""Every compressor in conf/compressor/*.yaml: round trips, exact bits (from the payload and in
closed form, docs/architecture.md §3), the q-deviate / absolute bounds of comp_ams Remark 1 and hard_threshold,
unbiasedness of the stochastic ones, shared randomness, sign packing and determinism."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from compress_train.compressors import registry
from compress_train.compressors.base import CompressContext, Payload
from compress_train.compressors.mvss import MVSS, mvss_probabilities
from compress_train.compressors.packing import pack_bits, unpack_bits
from compress_train.compressors.randk import RandK
from compress_train.compressors.scope import SCOPES, Message, ScopedCompressor
from compress_train.compressors.topk import TopK
from compress_train.runner.config.check import compressor_params

CONF = Path(__file__).resolve().parents[1] / "conf" / "compressor"
YAMLS = sorted(CONF.glob("*.yaml"))
LAYERS = [7, 300, 64, 1, 1000]
DTYPE_BITS = {
    torch.float32: 32,
    torch.float64: 64,
    torch.int32: 32,
    torch.uint8: 8,
    torch.bfloat16: 16,
    torch.float16: 16,
}


def load(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def params_of(cfg: dict) -> dict:
    """The constructor's arguments as the runner resolves them (no name, scope, lam_rule; ``auto`` values
    left to the compressor's default when no algorithm asks for one)."""
    return compressor_params(cfg)


def build(cfg: dict, **overrides):
    return registry.build(cfg["name"], {**params_of(cfg), **overrides})


CFGS = {p.stem: load(p) for p in YAMLS}
NAMES = sorted(CFGS)
# Extra variants beyond the shipped YAML defaults, so both branches of each option are covered.
VARIANTS = [(n, {}) for n in NAMES] + [
    ("randk", {"shared_seed": False}),
    ("randk", {"unbiased": True}),
    ("topk", {"ratio": None, "k": 5}),
    ("threshold", {"lam": 0.3}),
    ("mvss", {"ratio": 0.2}),
    ("bounded", {"mode": "stochastic"}),
    ("bounded", {"eps": 1e-4}),
    ("qsgd", {"levels": 1}),
    ("qsgd", {"levels": 7}),
]
VARIANT_IDS = [n + "".join(f"-{k}={v}" for k, v in o.items()) for n, o in VARIANTS]


def signal(d: int, seed: int, kind: str = "mixed") -> torch.Tensor:
    """Test vectors: Gaussian, heavy-tailed (Cauchy), or Gaussian with mixed scales and zeros."""
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        x = rng.standard_normal(d)
    elif kind == "cauchy":
        x = rng.standard_cauchy(d)
    else:
        x = rng.standard_normal(d) * 10 ** rng.uniform(-4, 0.5, d)
        x[rng.random(d) < 0.1] = 0.0
    return torch.tensor(x, dtype=torch.float32)


def payload_bits_by_hand(p: Payload) -> int:
    total = 0
    for t in p.tensors.values():
        assert t.dtype in DTYPE_BITS, f"unexpected wire dtype {t.dtype} (docs/architecture.md §3)"
        total += t.numel() * DTYPE_BITS[t.dtype]
    return total


def k_of(d: int, ratio, k) -> int:
    if k is not None:
        return min(int(k), d)
    return max(1, math.floor(Fraction(str(ratio)) * d))


def bounded_width(part: torch.Tensor, decoded: torch.Tensor, eps: float, mode: str) -> int:
    """Bits per code of aiade's quantizer, from its grid step and the largest decoded |x_i|."""
    d = part.numel()
    if mode == "stochastic":
        delta = 2 * math.sqrt(eps / d)
    else:
        u = torch.finfo(part.dtype).eps
        delta = 2 * (eps * (1 - 1e-9) - u * float(part.double().norm())) / (math.sqrt(d) * (1 + u))
    top = round(float(decoded.double().abs().max()) / delta)
    return 1 + top.bit_length() if top else 0


def closed_form_bits(name: str, params: dict, x: torch.Tensor, sizes: list[int], decoded: torch.Tensor) -> int:
    parts = x.split(sizes)
    if name == "identity":
        return 32 * x.numel()
    if name in ("bf16", "fp16"):  # one 16-bit float per element
        return 16 * x.numel()
    if name == "topk":
        return sum(64 * k_of(d, params.get("ratio"), params.get("k")) for d in sizes)
    if name == "randk":
        per = 32 if params.get("shared_seed", True) else 64
        return sum(per * k_of(d, params.get("ratio"), params.get("k")) for d in sizes)
    if name == "rbgs":  # def Sec. 5: 32 bits per kept entry, max(1, floor(n / R)) per bucket, no indices
        return sum(32 * max(1, d // params["ratio"]) for d in sizes)
    if name == "count_sketch":  # one r x c fp32 table per bucket, whatever its length
        return 32 * params["rows"] * params["columns"] * len(sizes)
    if name == "threshold":
        return 64 * sum(int((part.abs() >= params["lam"]).sum()) for part in parts)
    if name in ("scaled_sign", "blocksign", "onebit_rms"):
        return sum(32 + 8 * math.ceil(d / 8) for d in sizes)
    if name == "mvss":
        return 64 * int((decoded != 0).sum())
    if name == "bounded":  # step (x's dtype) + uint8 width + d codes of w bits
        eps, mode = params["eps"], params.get("mode", "deterministic")
        widths = [bounded_width(part, dec, eps, mode) for part, dec in zip(parts, decoded.split(sizes))]
        return sum(DTYPE_BITS[x.dtype] + 8 + 8 * math.ceil(d * w / 8) for d, w in zip(sizes, widths))
    if name == "qsgd":  # norm (x's dtype) + d sign bits + d levels of ceil(log2(s + 1)) bits
        width = math.ceil(math.log2(params["levels"] + 1))
        return sum(DTYPE_BITS[x.dtype] + 8 * math.ceil(d / 8) + 8 * math.ceil(d * width / 8) for d in sizes)
    raise AssertionError(f"no closed-form bit count for compressor {name!r}: add one to this test")


# --------------------------------------------------------------------------- registry <-> YAML


def test_every_registered_compressor_has_a_yaml_and_vice_versa():
    available = set(registry.available())
    yamls = set(NAMES)
    assert available - yamls == set(), f"registered compressors without conf/compressor/*.yaml: {available - yamls}"
    assert yamls - available == set(), f"conf/compressor/*.yaml without a registered compressor: {yamls - available}"


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
def test_yaml_is_well_formed(path: Path):
    cfg = load(path)
    assert cfg["name"] == path.stem, "the config value is the file stem"
    assert cfg.get("scope") in SCOPES
    c = build(cfg)
    assert c.check() == [], c.check()
    assert ScopedCompressor(c, LAYERS, cfg["scope"]).numel == sum(LAYERS)


def test_closed_forms_cover_every_yaml():
    x = signal(sum(LAYERS), 0)
    for name in NAMES:
        closed_form_bits(name, params_of(CFGS[name]), x, LAYERS, x)  # raises for an unknown name


def test_unknown_compressor_and_parameter_rejected():
    with pytest.raises(ValueError, match="compressor.name"):
        registry.build("bogus", {})
    with pytest.raises(ValueError, match="unknown parameter"):
        registry.build("topk", {"ratioo": 0.1})
    with pytest.raises(ValueError, match="`scope` must be one of"):
        ScopedCompressor(TopK(), LAYERS, "bucket")


# --------------------------------------------------------------------------- round trip and bits


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("name,overrides", VARIANTS, ids=VARIANT_IDS)
def test_round_trip_and_exact_bits(name, overrides, scope):
    cfg = CFGS[name]
    params = {**params_of(cfg), **overrides}
    sc = ScopedCompressor(build(cfg, **overrides), LAYERS, scope)
    fresh = ScopedCompressor(build(cfg, **overrides), LAYERS, scope)
    sizes = sc.bucket_sizes
    for seed in range(3):
        x = signal(sum(LAYERS), seed) * (10.0 if name == "threshold" else 1.0)
        msg = sc.compress(x, seed=seed, step=5 + seed, worker=1)
        assert isinstance(msg, Message) and len(msg.payloads) == len(sizes)
        assert [p.numel for p in msg.payloads] == sizes
        decoded = sc.decompress(msg)
        assert decoded.shape == x.shape and decoded.dtype == torch.float32
        torch.testing.assert_close(fresh.decompress(msg), decoded, rtol=0, atol=0)
        assert msg.bits == sum(payload_bits_by_hand(p) for p in msg.payloads)
        assert msg.bits == sum(p.bits for p in msg.payloads)
        assert msg.bits == closed_form_bits(name, params, x, sizes, decoded)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("name,overrides", VARIANTS, ids=VARIANT_IDS)
def test_deterministic(name, overrides, scope):
    sc = ScopedCompressor(build(CFGS[name], **overrides), LAYERS, scope)
    x = signal(sum(LAYERS), 7)
    a, b = sc.compress(x, 3, 11, 2), sc.compress(x, 3, 11, 2)
    for pa, pb in zip(a.payloads, b.payloads):
        assert (pa.numel, pa.elements, pa.meta) == (pb.numel, pb.elements, pb.meta)
        assert list(pa.tensors) == list(pb.tensors)
        for key in pa.tensors:
            assert pa.tensors[key].dtype == pb.tensors[key].dtype
            assert torch.equal(pa.tensors[key], pb.tensors[key])


@pytest.fixture(scope="module")
def cnn_sizes() -> list[int]:
    from compress_train.models.mnist_cnn import MnistCNN

    sizes = [p.numel() for p in MnistCNN().parameters()]
    assert sum(sizes) == 1_199_882 and len(sizes) == 8
    return sizes


@pytest.mark.parametrize(
    "name,params,scope,expected",
    [
        ("identity", {}, "model", lambda s: 32 * 1_199_882),
        ("topk", {"ratio": 0.01, "k": None}, "model", lambda s: 64 * 11_998),
        ("blocksign", {}, "layer", lambda s: sum(32 + 8 * math.ceil(d / 8) for d in s)),
        ("scaled_sign", {}, "model", lambda s: 32 + 8 * math.ceil(1_199_882 / 8)),
        (
            "qsgd",
            {"levels": 4},
            "model",
            lambda s: 32 + 8 * math.ceil(1_199_882 / 8) + 8 * math.ceil(3 * 1_199_882 / 8),
        ),
    ],
)
def test_bits_on_the_mnist_cnn(cnn_sizes, name, params, scope, expected):
    sc = ScopedCompressor(registry.build(name, params), cnn_sizes, scope)
    msg = sc.compress(torch.randn(sum(cnn_sizes), generator=torch.Generator().manual_seed(0)), 0, 0, 0)
    assert msg.bits == expected(cnn_sizes)
    assert msg.bits == sum(payload_bits_by_hand(p) for p in msg.payloads)


def test_mnist_cnn_hand_numbers(cnn_sizes):
    assert cnn_sizes == [288, 32, 18432, 64, 1179648, 128, 1280, 10]
    assert sum(32 + 8 * math.ceil(d / 8) for d in cnn_sizes) == 8 * 32 + 1_199_888  # fc2 bias pads 10 -> 16
    assert 32 + 8 * math.ceil(1_199_882 / 8) == 1_199_920


# --------------------------------------------------------------------------- Top-k


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "ratio,k", [(0.01, None), (0.1, None), (0.37, None), (1.0, None), (None, 1), (None, 17), (None, 5000)]
)
def test_topk_keeps_the_k_largest(seed, ratio, k):
    d = 1000
    # Distinct magnitudes: a random permutation of 1..d with random signs.
    g = torch.Generator().manual_seed(seed)
    mags = (torch.randperm(d, generator=g) + 1).float() / d
    x = mags * torch.where(torch.rand(d, generator=g) < 0.5, -1.0, 1.0)
    c = TopK(ratio=ratio, k=k)
    assert c.check() == []
    p = c.compress(x, CompressContext())
    kk = k_of(d, ratio, k)
    ref = set(torch.argsort(x.abs(), descending=True)[:kk].tolist())
    assert set(p.tensors["indices"].tolist()) == ref and p.elements == kk
    assert p.tensors["indices"].dtype == torch.int32 and p.tensors["values"].dtype == torch.float32
    out = c.decompress(p)
    mask = torch.zeros(d, dtype=torch.bool)
    mask[list(ref)] = True
    assert torch.equal(out[mask], x[mask])
    assert torch.all(out[~mask] == 0)


def test_topk_k_param_via_registry():
    c = registry.build("topk", {"ratio": None, "k": 5})
    assert c.check() == [] and c.params() == {"k": 5}
    sc = ScopedCompressor(c, LAYERS, "layer")
    msg = sc.compress(signal(sum(LAYERS), 1, "gauss"), 0, 0, 0)
    assert [p.elements for p in msg.payloads] == [5, 5, 5, 1, 5]  # capped at the layer size


@pytest.mark.parametrize("cls", [TopK, RandK])
@pytest.mark.parametrize(
    "ratio,k,key",
    [
        (0.0, None, "`ratio`"),
        (1.5, None, "`ratio`"),
        (-0.1, None, "`ratio`"),
        ("0.1", None, "`ratio`"),
        (None, 0, "`k`"),
        (None, -3, "`k`"),
        (None, 2.5, "`k`"),
        (0.1, 5, "`k`"),
        (None, None, "`ratio`"),
    ],
)
def test_ratio_k_validation(cls, ratio, k, key):
    errors = cls(ratio=ratio, k=k).check()
    assert len(errors) == 1 and key in errors[0], errors


def test_valid_params_pass_check():
    assert TopK(ratio=1).check() == [] and TopK(ratio=None, k=1).check() == []
    assert MVSS(ratio=0.0).check() and "`ratio`" in MVSS(ratio=0.0).check()[0]
    assert "`iterations`" in MVSS(iterations=-1).check()[0]
    assert "`lam`" in registry.build("threshold", {"lam": -1.0}).check()[0]


# --------------------------------------------------------------------------- q-deviate bounds

VECTOR_KINDS = [(s, kind) for s in range(5) for kind in ("gauss", "cauchy", "mixed")]


def sq(v: torch.Tensor) -> float:
    return float(v.double().pow(2).sum())


@pytest.mark.parametrize("ratio", [0.01, 0.05, 0.3])
@pytest.mark.parametrize("scope", SCOPES)
def test_topk_q_deviate(ratio, scope):
    sc = ScopedCompressor(TopK(ratio=ratio), LAYERS, scope)
    q2 = max(1 - k_of(d, ratio, None) / d for d in sc.bucket_sizes)
    for seed, kind in VECTOR_KINDS:
        x = signal(sum(LAYERS), seed, kind)
        out = sc.decompress(sc.compress(x, 0, seed, 0))
        assert sq(out - x) <= q2 * sq(x) * (1 + 1e-6) + 1e-30
        for part, o, d in zip(x.split(sc.bucket_sizes), out.split(sc.bucket_sizes), sc.bucket_sizes):
            assert sq(o - part) <= (1 - k_of(d, ratio, None) / d) * sq(part) * (1 + 1e-6) + 1e-30


@pytest.mark.parametrize("name", ["blocksign", "scaled_sign"])
def test_block_sign_q_deviate_layer_scope(name):
    sc = ScopedCompressor(registry.build(name, {}), LAYERS, "layer")
    q2 = 1 - min(1 / d for d in LAYERS)
    for seed, kind in VECTOR_KINDS:
        x = signal(sum(LAYERS), seed, kind)
        out = sc.decompress(sc.compress(x, 0, seed, 0))
        assert sq(out - x) <= q2 * sq(x) * (1 + 1e-6) + 1e-30
        for part, o, d in zip(x.split(LAYERS), out.split(LAYERS), LAYERS):
            l1 = float(part.double().abs().sum())
            assert sq(o - part) == pytest.approx(sq(part) - l1**2 / d, rel=1e-5, abs=1e-6 * sq(part) + 1e-30)


@pytest.mark.parametrize("lam", [1e-3, 0.05, 0.5, 2.0])
@pytest.mark.parametrize("scope", SCOPES)
def test_threshold_absolute_bound(lam, scope):
    sc = ScopedCompressor(registry.build("threshold", {"lam": lam}), LAYERS, scope)
    d = sum(LAYERS)
    for seed, kind in VECTOR_KINDS:
        x = signal(d, seed, kind)
        out = sc.decompress(sc.compress(x, 0, seed, 0))
        assert sq(out - x) <= d * lam**2
        kept = x.abs() >= lam
        assert torch.equal(out[kept], x[kept]) and torch.all(out[~kept] == 0)


def test_threshold_model_and_layer_scope_agree():
    c = registry.build("threshold", {"lam": 0.05})
    x = signal(sum(LAYERS), 3)
    model, layer = (ScopedCompressor(c, LAYERS, s) for s in SCOPES)
    assert torch.equal(model.decompress(model.compress(x, 0, 0, 0)), layer.decompress(layer.compress(x, 0, 0, 0)))
    assert model.compress(x, 0, 0, 0).bits == layer.compress(x, 0, 0, 0).bits


# --------------------------------------------------------------------------- scaled sign


@pytest.mark.parametrize("name", ["scaled_sign", "blocksign"])
@pytest.mark.parametrize("d", [1, 7, 8, 9, 64, 1001])
def test_scaled_sign_values(name, d):
    c = registry.build(name, {})
    x = signal(d, d, "mixed")
    x[0] = 0.0  # sign(0) is sent as +1 (module docstring)
    p = c.compress(x, CompressContext())
    assert p.tensors["scale"].numel() == 1 and p.tensors["signs"].dtype == torch.uint8
    assert p.tensors["signs"].numel() == math.ceil(d / 8)
    scale = float(x.double().abs().sum()) / d
    out = c.decompress(p)
    expected = torch.where(x >= 0, scale, -scale).float()
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=0)
    assert out[0] > 0 or scale == 0


# --------------------------------------------------------------------------- packing


@pytest.mark.parametrize("d", range(18))
def test_pack_round_trip_small(d):
    for seed in range(4):
        bits = torch.rand(d, generator=torch.Generator().manual_seed(seed)) < 0.5
        packed = pack_bits(bits)
        assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(d / 8)
        assert torch.equal(unpack_bits(packed, d), bits)
    assert torch.equal(unpack_bits(pack_bits(torch.ones(d, dtype=torch.bool)), d), torch.ones(d, dtype=torch.bool))


def test_pack_msb_first_and_large():
    assert pack_bits(torch.tensor([True] + [False] * 7 + [False, True])).tolist() == [128, 64]
    bits = torch.rand(1000, generator=torch.Generator().manual_seed(9)) < 0.3
    packed = pack_bits(bits)
    assert packed.numel() == 125
    assert torch.equal(unpack_bits(packed, 1000), bits)


# --------------------------------------------------------------------------- stochastic compressors


def mvss_vector() -> torch.Tensor:
    """d = 50, magnitudes over 1.4 decades, two saturating outliers and one zero."""
    g = torch.Generator().manual_seed(1)
    mags = torch.cat([torch.logspace(-0.7, 0.7, 47), torch.tensor([25.0, 40.0, 0.0])])
    signs = torch.where(torch.rand(50, generator=g) < 0.5, -1.0, 1.0)
    return (mags * signs)[torch.randperm(50, generator=g)]


def monte_carlo(c, x: torch.Tensor, draws: int, worker: int = 0) -> torch.Tensor:
    return torch.stack(
        [c.decompress(c.compress(x, CompressContext(seed=4, step=s, worker=worker))) for s in range(draws)]
    ).double()


def assert_unbiased(samples: torch.Tensor, x: torch.Tensor):
    mean = samples.mean(0)
    se = samples.std(0) / math.sqrt(samples.shape[0])
    bad = (mean - x.double()).abs() > 5 * se + 1e-6
    assert not bad.any(), f"biased at {bad.nonzero().view(-1).tolist()}: mean {mean[bad]}, x {x[bad]}, se {se[bad]}"


def test_mvss_unbiased():
    x = mvss_vector()
    c = MVSS(ratio=0.2)
    p = mvss_probabilities(x, 0.2, 2)
    assert (p == 1).sum() >= 2 and p[x != 0].min() > 0.01  # the greedy saturates; all others get sampled
    samples = monte_carlo(c, x, 4000)
    assert ((samples != 0).sum(0)[x != 0] >= 30).all()  # every nonzero coordinate was drawn often
    assert torch.all(samples[:, x == 0] == 0)
    assert_unbiased(samples, x)
    assert float((samples != 0).sum(1).double().mean()) == pytest.approx(0.2 * 50, rel=0.05)


@pytest.mark.parametrize("kind", ["gauss", "mixed", "cauchy"])
def test_mvss_expected_count(kind):
    x = signal(1000, 2, kind)
    x = x + (x == 0).float() * 1e-3  # all nonzero, so the budget kappa*d is reachable
    c = MVSS(ratio=0.1)
    counts = [c.compress(x, CompressContext(step=s)).elements for s in range(200)]
    assert float(mvss_probabilities(x, 0.1, 2).sum()) == pytest.approx(100, rel=0.02)
    assert np.mean(counts) == pytest.approx(100, rel=0.03)


def test_mvss_private_randomness_differs_per_worker():
    c, x = MVSS(ratio=0.2), mvss_vector()
    a = c.compress(x, CompressContext(step=1, worker=0)).tensors["indices"]
    b = c.compress(x, CompressContext(step=1, worker=1)).tensors["indices"]
    assert not torch.equal(a, b)


def test_randk_unbiased_monte_carlo():
    x = mvss_vector()
    c = RandK(ratio=0.2, unbiased=True)
    assert c.unbiased
    samples = monte_carlo(c, x, 4000)
    assert_unbiased(samples, x)
    torch.testing.assert_close(samples.mean(0), x.double(), rtol=0.1, atol=0.5)


def test_randk_biased_default_is_scaled_down():
    x = mvss_vector()
    samples = monte_carlo(RandK(ratio=0.2), x, 2000)
    torch.testing.assert_close(samples.mean(0), 0.2 * x.double(), rtol=0.2, atol=0.3)


def support(decoded: torch.Tensor) -> set[int]:
    return set(decoded.nonzero().view(-1).tolist())


@pytest.mark.parametrize("scope", SCOPES)
def test_randk_shared_seed_support(scope):
    sc = ScopedCompressor(RandK(ratio=0.05, shared_seed=True), LAYERS, scope)
    d = sum(LAYERS)
    x0, x1 = signal(d, 0, "gauss"), signal(d, 1, "gauss")  # no zeros: support = nonzeros
    m0, m1 = sc.compress(x0, 3, 10, 0), sc.compress(x1, 3, 10, 1)
    assert all("indices" not in p.tensors for p in m0.payloads)
    s0, s1 = support(sc.decompress(m0)), support(sc.decompress(m1))
    assert s0 == s1 and len(s0) == sum(k_of(b, 0.05, None) for b in sc.bucket_sizes)
    assert support(sc.decompress(sc.compress(x0, 3, 11, 0))) != s0  # another step
    assert support(sc.decompress(sc.compress(x0, 4, 10, 0))) != s0  # another run seed
    if scope == "model":
        # Same size, another bucket: a different draw.
        c = RandK(ratio=0.05)
        a = c.compress(x0, CompressContext(3, 10, 0, 0))
        b = c.compress(x0, CompressContext(3, 10, 1, 0))
        assert support(c.decompress(a)) != support(c.decompress(b))


def test_randk_private_support_differs_per_worker():
    sc = ScopedCompressor(RandK(ratio=0.05, shared_seed=False), LAYERS, "model")
    x = signal(sum(LAYERS), 0, "gauss")
    m0, m1 = sc.compress(x, 3, 10, 0), sc.compress(x, 3, 10, 1)
    assert all(p.tensors["indices"].dtype == torch.int32 for p in m0.payloads)
    out0 = sc.decompress(m0)
    assert support(out0) != support(sc.decompress(m1))
    kept = sorted(support(out0))
    assert len(kept) == k_of(sum(LAYERS), 0.05, None) and torch.equal(out0[kept], x[kept])
