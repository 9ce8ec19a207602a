"""The fast sign, MVSS, QSGD, bounded and 1-bit RMS codes against the implementations they
replaced, copied here as references: the same payload bytes and bit-identical decodes for the same
input and coins, on zeros, ties, -0.0, odd lengths, float64 and tiny vectors; and the NumPy (CPU)
and pure-torch bit packing agree byte for byte, across chunk boundaries too."""

from __future__ import annotations

import pytest
import torch

from compress_train.compressors import packing, registry
from compress_train.compressors.base import CompressContext, generator_for
from compress_train.compressors.bounded import BoundedQuantizer, cast_toward, code_width, grid_step, offset
from compress_train.compressors.mvss import MVSS, mvss_probabilities
from compress_train.compressors.qsgd import QSGD

# --------------------------------------------------------------------------- references (the old code)

_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def ref_pack_bits(bits):
    d = bits.numel()
    padded = torch.zeros(-(-d // 8) * 8, dtype=torch.uint8)
    padded[:d] = bits.reshape(-1)
    return (padded.view(-1, 8) * _WEIGHTS).sum(1, dtype=torch.uint8)


def ref_unpack_bits(packed, d):
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8)
    return ((packed.unsqueeze(1) >> shifts) & 1).reshape(-1)[:d].bool()


def ref_pack_uint(values, width):
    values = values.reshape(-1).long()
    bits = torch.empty(values.numel(), width, dtype=torch.bool)
    for j in range(width):
        bits[:, j] = (values >> (width - 1 - j)) & 1
    return ref_pack_bits(bits.reshape(-1))


def ref_unpack_uint(packed, width, count):
    bits = ref_unpack_bits(packed, count * width).view(count, width)
    values = torch.zeros(count, dtype=torch.int64)
    for j in range(width):
        values = (values << 1) | bits[:, j]
    return values


def ref_scaled_sign(x):
    scale = (x.abs().sum(dtype=torch.float32) / x.numel()).reshape(1)
    return {"scale": scale, "signs": ref_pack_bits(x >= 0)}


def ref_onebit_rms(x):
    import math

    scale = (x.to(torch.float32).norm() / math.sqrt(x.numel())).reshape(1)
    return {"scale": scale, "signs": ref_pack_bits(x >= 0)}


def ref_sign_decode(tensors, d):
    positive, scale = ref_unpack_bits(tensors["signs"], d), tensors["scale"]
    return torch.where(positive, scale, -scale)


def ref_mvss_probabilities(x, kappa, iterations):
    d = x.numel()
    a = x.abs().to(torch.float64)
    l1 = a.sum()
    if l1 == 0:
        return torch.zeros_like(a)
    p = torch.clamp(kappa * d * a / l1, max=1.0)
    for _ in range(iterations):
        active = p < 1
        mass = p[active].sum()
        if mass <= 0:
            break
        c = (kappa * d - d + active.sum()) / mass
        p = torch.clamp(c * p, max=1.0)
        if c <= 1:
            break
    return p


def ref_mvss(x, kappa, iterations, ctx):
    p = ref_mvss_probabilities(x, kappa, iterations)
    coins = torch.rand(x.numel(), generator=generator_for(ctx.key(shared=False)), dtype=torch.float64)
    idx = (coins < p).nonzero().view(-1)
    return {"values": (x[idx].to(torch.float64) / p[idx]).to(torch.float32), "indices": idx.to(torch.int32)}


def ref_qsgd(x, s, ctx):
    x64 = x.reshape(-1).to(torch.float64)
    norm = cast_toward(float(torch.linalg.vector_norm(x64)), x.dtype, x.device, up=True)
    scaled = x64.abs() / float(norm) * s if float(norm) > 0 else torch.zeros_like(x64)
    scaled.clamp_(max=s)
    coins = torch.rand(x.numel(), generator=generator_for(ctx.key(shared=False)), dtype=torch.float64)
    levels = scaled.floor() + (coins < scaled - scaled.floor())
    return {"norm": norm, "signs": ref_pack_bits(x64 >= 0), "levels": ref_pack_uint(levels.long(), s.bit_length())}


def ref_qsgd_decode(tensors, s, d):
    norm = tensors["norm"]
    levels = ref_unpack_uint(tensors["levels"], s.bit_length(), d).to(torch.float64)
    signed = torch.where(ref_unpack_bits(tensors["signs"], d), levels, -levels)
    return (signed * float(norm) / s).to(norm.dtype)


def ref_bounded(x, eps, mode, ctx):
    d, x64 = x.numel(), x.reshape(-1).to(torch.float64)
    scale = cast_toward(
        grid_step(eps, d, float(torch.linalg.vector_norm(x64)), mode, x.dtype), x.dtype, x.device, up=False
    )
    ratio = x64 / float(scale)
    if mode == "stochastic":
        coins = torch.rand(d, generator=generator_for(ctx.key(shared=False)), dtype=torch.float64)
        codes = ratio.floor() + (coins < ratio - ratio.floor())
    else:
        codes = ratio.round()
    width = code_width(int(float(codes.abs().max())))
    return {
        "scale": scale,
        "width": torch.tensor([width], dtype=torch.uint8),
        "codes": ref_pack_uint(codes.long() + offset(width), width),
    }


def ref_bounded_decode(tensors, d):
    scale, width = tensors["scale"], int(tensors["width"])
    codes = ref_unpack_uint(tensors["codes"], width, d) - offset(width)
    return (codes.to(torch.float64) * float(scale)).to(scale.dtype)


# --------------------------------------------------------------------------- inputs


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal dtype, shape and bytes (so -0.0 != 0.0 and NaN == NaN of the same payload)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))


def assert_same_payload(tensors: dict, expected: dict):
    assert list(tensors) == list(expected)
    for name, tensor in expected.items():
        assert same_bits(tensors[name], tensor), name


def inputs():
    """(label, vector): zeros, ties, -0.0, odd lengths, float64, tiny."""
    g = torch.Generator().manual_seed(14)
    out = [("zeros", torch.zeros(13)), ("one", torch.tensor([-2.5])), ("neg_zero", torch.tensor([-0.0, 0.0, 1.0]))]
    for d in (1, 2, 7, 8, 9, 31, 33, 63, 65, 257, 1001):
        out.append((f"gauss{d}", torch.randn(d, generator=g)))
    mixed = torch.randn(777, generator=g) * 10 ** (torch.rand(777, generator=g) * 5 - 4)
    mixed[::10] = 0.0
    mixed[1::37] = -0.0
    out.append(("mixed", mixed))
    out.append(("ties", torch.arange(-20, 21, dtype=torch.float32) / 8))  # many exact halves of a grid
    out.append(("equal", torch.full((40,), 0.75)))
    out.append(("gauss64", torch.randn(301, generator=g, dtype=torch.float64)))
    out.append(("mixed64", mixed.double() * 3))
    return out


INPUTS = inputs()
IDS = [label for label, _ in INPUTS]
CTX = CompressContext(seed=3, step=7, bucket=1, worker=2)


# --------------------------------------------------------------------------- packing


@pytest.mark.parametrize("d", [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099])
def test_pack_bits_numpy_torch_and_reference_agree(d):
    bits = torch.rand(d, generator=torch.Generator().manual_seed(d)) < 0.5
    expected = ref_pack_bits(bits)
    for packed in (packing.pack_bits(bits), packing.pack_bits_torch(bits)):
        assert same_bits(packed, expected)
    for unpacked in (packing.unpack_bits(expected, d), packing.unpack_bits_torch(expected, d)):
        assert same_bits(unpacked, bits)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_pack_nonnegative_is_pack_bits_of_the_comparison(dtype):
    """NumPy's compare (float32/64 on the CPU) and torch's (any other) agree with x >= 0 on -0.0, NaN, inf."""
    x = torch.randn(1003, generator=torch.Generator().manual_seed(5)).to(dtype)
    x[:6] = torch.tensor([-0.0, 0.0, float("nan"), -float("nan"), float("inf"), -float("inf")]).to(dtype)
    assert same_bits(packing.pack_nonnegative(x), ref_pack_bits(x >= 0))
    assert same_bits(packing.pack_nonnegative(x[::2]), ref_pack_bits(x[::2] >= 0))  # not contiguous


@pytest.mark.parametrize("width", [1, 2, 3, 5, 7, 8, 12, 13, 20, 21, 31, 32, 33, 40, 47, 61, 62])
@pytest.mark.parametrize("count", [1, 5, 64, 65, 200, 1031])
def test_pack_uint_matches_reference(width, count):
    g = torch.Generator().manual_seed(width * 1000 + count)
    values = torch.randint(0, 1 << min(width, 62), (count,), generator=g)
    values[0], values[-1] = (1 << width) - 1, 0
    expected = ref_pack_uint(values, width)
    assert same_bits(packing.pack_uint(values, width), expected)
    assert same_bits(packing.unpack_uint(expected, width, count), values)


@pytest.mark.parametrize("width", [3, 20, 61])
def test_pack_uint_across_chunks(monkeypatch, width):
    """Chunks of a few word periods (the 2^20-value default never splits these small vectors)."""
    monkeypatch.setattr(packing, "_CHUNK", 130)
    values = torch.randint(0, 1 << width, (2 * 130 * 64 + 77,), generator=torch.Generator().manual_seed(width))
    expected = ref_pack_uint(values, width)
    assert same_bits(packing.pack_uint(values, width), expected)
    assert same_bits(packing.unpack_uint(expected, width, values.numel()), values)


def test_byte_swap_numpy_matches_torch_flip():
    """The CPU byte swap (NumPy) writes what the pure-torch one (flip) used off the CPU writes."""
    words = torch.arange(-20, 20, dtype=torch.int64) * 0x0102030405060708
    assert same_bits(packing._swap_bytes(words), words.view(torch.uint8).view(-1, 8).flip(1).reshape(-1))
    assert same_bits(packing._words_from_bytes(packing._swap_bytes(words), 41)[:40], words)


# --------------------------------------------------------------------------- compressors


@pytest.mark.parametrize("label,x", INPUTS, ids=IDS)
@pytest.mark.parametrize("name", ["scaled_sign", "blocksign", "onebit_rms"])
def test_sign_codes_match_reference(name, label, x):
    c = registry.build(name, {})
    payload = c.compress(x, CTX)
    expected = (ref_onebit_rms if name == "onebit_rms" else ref_scaled_sign)(x)
    assert_same_payload(payload.tensors, expected)
    assert same_bits(c.decompress(payload), ref_sign_decode(expected, x.numel()))


def test_sign_decode_negates_special_scales():
    """-scale, bit for bit, for zero, inf and NaN scales too."""
    from compress_train.compressors.scaled_sign import signed_scale

    positive = torch.tensor([True, False, False, True, False])
    for value in (0.0, -0.0, float("inf"), float("nan"), 3.5e-45, 1.5):
        scale = torch.tensor([value])
        assert same_bits(signed_scale(~positive, scale), torch.where(positive, scale, -scale)), value


@pytest.mark.parametrize("d", [1, 7, 8, 9, 64, 1001])
def test_sign_table_decode_matches_reference_for_special_scales(d):
    """The 256 x 8 table decode writes +-scale bit for bit, whatever the scale (0, -0, inf, NaN, subnormal)."""
    from compress_train.compressors.base import Payload
    from compress_train.compressors.scaled_sign import scaled_sign_decode

    signs = ref_pack_bits(torch.rand(d, generator=torch.Generator().manual_seed(d)) < 0.5)
    for value in (0.0, -0.0, float("inf"), float("nan"), 3.5e-45, 1.5):
        tensors = {"scale": torch.tensor([value]), "signs": signs}
        decoded = scaled_sign_decode(Payload(tensors, numel=d, elements=d))
        assert decoded.shape == (d,) and same_bits(decoded, ref_sign_decode(tensors, d)), value


@pytest.mark.parametrize("label,x", INPUTS, ids=IDS)
@pytest.mark.parametrize("kappa,iterations", [(0.01, 2), (0.3, 2), (0.5, 0), (1.0, 3)])
def test_mvss_matches_reference(label, x, kappa, iterations):
    assert same_bits(mvss_probabilities(x, kappa, iterations), ref_mvss_probabilities(x, kappa, iterations))
    c = MVSS(ratio=kappa, iterations=iterations)
    payload = c.compress(x, CTX)
    assert_same_payload(payload.tensors, ref_mvss(x, kappa, iterations, CTX))


def test_mvss_probabilities_leave_float64_input_alone():
    x = torch.randn(50, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    before = x.clone()
    mvss_probabilities(x, 0.2, 2)
    assert same_bits(x, before)


@pytest.mark.parametrize("label,x", INPUTS, ids=IDS)
@pytest.mark.parametrize("levels", [1, 4, 7, 255])
def test_qsgd_matches_reference(label, x, levels):
    c = QSGD(levels=levels)
    payload = c.compress(x, CTX)
    expected = ref_qsgd(x, levels, CTX)
    assert_same_payload(payload.tensors, expected)
    assert same_bits(c.decompress(payload), ref_qsgd_decode(expected, levels, x.numel()))


@pytest.mark.parametrize("label,x", [case for case in INPUTS if case[0] != "zeros"], ids=IDS[1:])
@pytest.mark.parametrize("mode", ["deterministic", "stochastic"])
@pytest.mark.parametrize("eps", [1e-2, 0.5, 1e-4])
def test_bounded_matches_reference(label, x, mode, eps):
    c = BoundedQuantizer(eps=eps, mode=mode)
    payload = c.compress(x, CTX)
    expected = ref_bounded(x, eps, mode, CTX)
    assert_same_payload(payload.tensors, expected)
    assert same_bits(c.decompress(payload), ref_bounded_decode(expected, x.numel()))


@pytest.mark.parametrize("mode", ["deterministic", "stochastic"])
def test_bounded_zeros_match_reference(mode):
    x = torch.zeros(17)
    payload = BoundedQuantizer(eps=0.01, mode=mode).compress(x, CTX)
    assert_same_payload(payload.tensors, ref_bounded(x, 0.01, mode, CTX))
    assert int(payload.tensors["width"]) == 0 and payload.tensors["codes"].numel() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "name,params",
    [
        ("scaled_sign", {}),
        ("onebit_rms", {}),
        ("mvss", {"ratio": 0.3}),
        ("qsgd", {}),
        ("bounded", {"mode": "deterministic"}),
        ("bounded", {"mode": "stochastic"}),
    ],
)
def test_compress_leaves_its_input_alone(name, params, dtype):
    """The in-place passes work on copies: x itself, float64 (no copy made) or not, is untouched."""
    x = torch.randn(99, dtype=dtype, generator=torch.Generator().manual_seed(4))
    before = x.clone()
    c = registry.build(name, params)
    c.decompress(c.compress(x, CTX))
    assert same_bits(x, before)
