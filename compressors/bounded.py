"""Bounded-error quantizer Q(v, eps) of aiade §2 (AIADE, Ye, Xiao & Sun 2020), the
encoder of IADE / AIADE (Alg. 1-2: deterministic) and IADE-SGD (Alg. 3: stochastic).

Contract. ``compress_eps(x, eps, ctx)`` rounds x to the grid delta * Z^d:
- ``deterministic``: delta = 2 (eps (1 - 1e-9) - u ||x||) / (sqrt(d) (1 + u)), the nearest grid
  point. Each coordinate is then off by <= delta (1 + u) / 2 + u |x_i| after every rounding
  (encoding in float64, decoding in float64 and casting to x's dtype, whose machine epsilon
  is u), so ||decode - x||_2 <= eps holds always, for every x and every call. In float64 delta is
  2 eps / sqrt(d) (1 - 1e-9) up to ~1e-16 ||x|| / eps; an eps below what x's dtype resolves
  (eps <= u ||x||) raises QuantizerRangeError.
- ``stochastic``: delta = 2 sqrt(eps / d), code = floor(x / delta) + Bernoulli(frac), coins
  private to the worker; unbiased and E||decode - x||^2 <= d delta^2 / 4 = eps ("an unbiased
  random quantization whose error's square is bounded by eps", §5). The bound holds in
  expectation over the coins only: one draw may miss it, each coordinate being off by up to
  delta, so ||decode - x||^2 can reach nearly d delta^2 = 4 eps.
``compress(x, ctx)`` uses the fixed ``eps`` of the config: the "trivial" quantized GD of §3.

Bit stream (every bit counted, docs/architecture.md §3): "scale" = delta (1 value of x's dtype), "width"
= w (1 uint8), "codes" = the d integer codes in offset binary (code + 2^(w-1)), w bits each,
MSB first, packed (``pack_uint``); w = 1 + bit_length(max |code|), 0 when every code is 0.
So bits = 8 * (bytes of delta + 1 + ceil(d w / 8)): delta costs 32 bits for float32 x, 64 for
float64 x (the scale keeps x's dtype), plus 8 for w.
Cost: a fixed number of vectorised passes over x (no per-element or per-bit work); the coins of
the stochastic mode are torch's generator, drawn as before.

Lemma 2.1 says some encoder needs only ceil(1.05 d + d log2((1 + 2e) / e)) bits for the ball
||x|| <= M, e = sigma / M. Our fixed-width code pays about d log2(sqrt(d) / e) bits instead (the
largest code is up to ||x|| / delta ~ sqrt(d) / (2e)); the lemma's figure for M = ||x|| (and
sigma = eps, or sqrt(eps) for the stochastic RMS error) is logged beside it as
``meta["bits_lemma21"]``, not sent.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload, generator_for
from compress_train.compressors.packing import pack_uint, unpack_uint

MODES = ("deterministic", "stochastic")


class QuantizerRangeError(OverflowError):
    """The budget eps cannot be met in x's precision, or the codes outgrow 62 bits: what a
    diverging run (||x|| huge) or one run past float resolution (eps tiny) hits. The trainer
    ends the run with a status instead of a traceback."""


MAX_CODE_BITS = 61  # w = 1 + bit_length <= 62, the widest pack_uint writes


def cast_toward(value: float, dtype: torch.dtype, device: torch.device, up: bool) -> Tensor:
    """``value`` as a 1-element tensor of ``dtype``, rounded up (or down) instead of to nearest."""
    t = torch.tensor([value], dtype=dtype, device=device)
    if (float(t) < value) if up else (float(t) > value):
        t = torch.nextafter(t, torch.full_like(t, math.inf if up else -math.inf))
    return t


def lemma21_bits(d: int, norm: float, sigma: float) -> int:
    """ceil(1.05 d + d log2((1 + 2e) / e)), e = sigma / ||x|| (e -> inf when x = 0: ceil(2.05 d))."""
    return math.ceil(Fraction(21, 20) * d + Fraction(d * math.log2(2 + norm / sigma)))


def grid_step(eps: float, d: int, norm: float, mode: str, dtype: torch.dtype) -> float:
    """The grid step delta of the module docstring (before rounding down to ``dtype``)."""
    if mode == "stochastic":
        return 2 * math.sqrt(eps / d)
    u = torch.finfo(dtype).eps
    return 2 * (eps * (1 - 1e-9) - u * norm) / (math.sqrt(d) * (1 + u))


def code_width(max_code: int) -> int:
    """Bits per code in offset binary: 0 when every code is 0, else 1 + bit_length(max |code|)."""
    return 1 + max_code.bit_length() if max_code else 0


def offset(width: int) -> int:
    """What offset binary adds to a code of ``width`` bits: 2^(width - 1) (0 for width 0)."""
    return 1 << (width - 1) if width else 0


class BoundedQuantizer(Compressor):
    name = "bounded"
    unbiased = False

    def __init__(self, eps: float = 0.01, mode: str = "deterministic"):
        self.eps, self.mode = eps, mode
        self.unbiased = mode == "stochastic"

    def check(self) -> list[str]:
        errors = []
        if not isinstance(self.eps, (int, float)) or not self.eps > 0:
            errors.append(f"`eps` must be a number > 0, but is {self.eps!r}.")
        if self.mode not in MODES:
            errors.append(f"`mode` must be one of {list(MODES)}, but is {self.mode!r}.")
        return errors

    def params(self) -> dict[str, Any]:
        return {"eps": self.eps, "mode": self.mode}

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        return self.compress_eps(x, self.eps, ctx)

    def compress_eps(self, x: Tensor, eps: float, ctx: CompressContext) -> Payload:
        """Q(x, eps): the payload of the grid point chosen for x (see the module docstring)."""
        d, x64 = x.numel(), x.reshape(-1).to(torch.float64)
        norm = float(torch.linalg.vector_norm(x64))
        step = grid_step(eps, d, norm, self.mode, x.dtype)
        if not step > 0:
            raise QuantizerRangeError(
                f"eps={eps} is below what {x.dtype} resolves for ||x||={norm:.6g}: "
                f"it needs eps > {torch.finfo(x.dtype).eps:.3g} * ||x||; quantize in float64."
            )
        scale = cast_toward(step, x.dtype, x.device, up=False)
        ratio = x64.div_(float(scale)) if x64.data_ptr() != x.data_ptr() else x64 / float(scale)
        if self.mode == "stochastic":
            coins = torch.rand(
                d, generator=generator_for(ctx.key(shared=False), x.device), dtype=torch.float64, device=x.device
            )
            codes = ratio.floor()
            codes.add_(coins < ratio.sub_(codes))  # floor + Bernoulli(fractional part), in place
        else:
            codes = ratio.round_()
        lowest, highest = torch.aminmax(codes)
        max_code = max(-float(lowest), float(highest))
        if not max_code < 2**MAX_CODE_BITS:
            raise QuantizerRangeError(
                f"cannot code x (||x||={norm:.6g}) with eps={eps}: the largest code, "
                f"{max_code:.6g}, needs more than {MAX_CODE_BITS + 1} bits."
            )
        width = code_width(int(max_code))
        sigma = math.sqrt(eps) if self.mode == "stochastic" else eps
        return Payload(
            {
                "scale": scale,
                "width": torch.tensor([width], dtype=torch.uint8, device=x.device),
                "codes": pack_uint(codes.long().add_(offset(width)), width),
            },
            numel=d,
            elements=d,
            meta={"eps": eps, "bits_lemma21": lemma21_bits(d, norm, sigma)},
        )

    def decompress(self, payload: Payload) -> Tensor:
        scale, width = payload.tensors["scale"], int(payload.tensors["width"])
        codes = unpack_uint(payload.tensors["codes"], width, payload.numel).sub_(offset(width))
        return codes.to(torch.float64).mul_(float(scale)).to(scale.dtype)


IMPLEMENTATION = BoundedQuantizer
