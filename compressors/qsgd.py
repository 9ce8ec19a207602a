"""QSGD (Alistarh, Grubic, Li, Tomioka & Vojnovic, NeurIPS 2017, "QSGD: Communication-efficient
SGD via gradient quantization and encoding"), §3.1, the baseline of aiade §1.2.

Q_s(v)_i = ||v||_2 sign(v_i) xi_i(v, s): with l = floor(|v_i| s / ||v||), xi_i = (l + 1) / s with
probability |v_i| s / ||v|| - l and l / s otherwise; coins private to the worker. Unbiased, and
E||Q_s(v) - v||^2 <= min(d / s^2, sqrt(d) / s) ||v||^2 (Lemma 3.1).

This is QSGD's plain fixed-width encoding, not the Elias-coded variant of §3.2: "norm" (1 value
of x's dtype, rounded up so that every |v_i| s / norm <= s and unbiasedness holds for the norm
actually sent), "signs" (d bits, v_i >= 0, packed), "levels" (d integer levels in {0..s},
ceil(log2(s + 1)) bits each, packed with ``pack_uint``). Bits = norm + 8 ceil(d / 8)
+ 8 ceil(d ceil(log2(s + 1)) / 8): 32 + d + 3d for s = 4 in float32, rounded up to bytes.
The decode is exactly norm * sign * level / s (in float64, then cast to the norm's dtype).
Cost: a few float64 passes done in place, the d float64 coins (torch's generator, the largest
single cost on CPU), and packing by whole int64 groups (``pack_uint``); no per-element work.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload, generator_for
from compress_train.compressors.bounded import cast_toward
from compress_train.compressors.packing import pack_nonnegative, pack_uint, unpack_bits, unpack_uint


class QSGD(Compressor):
    name = "qsgd"
    unbiased = True

    def __init__(self, levels: int = 4):
        self.levels = levels

    def check(self) -> list[str]:
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or self.levels < 1:
            return [f"`levels` must be an integer >= 1, but is {self.levels!r}."]
        return []

    def params(self) -> dict[str, Any]:
        return {"levels": self.levels}

    @property
    def width(self) -> int:
        """Bits per level: ceil(log2(s + 1))."""
        return self.levels.bit_length()

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        x64 = x.reshape(-1).to(torch.float64)
        norm = cast_toward(float(torch.linalg.vector_norm(x64)), x.dtype, x.device, up=True)
        if float(norm) > 0:  # |x| in x64's own buffer when it is a copy of x
            scaled = x64.abs_() if x64.data_ptr() != x.data_ptr() else x64.abs()
            scaled.div_(float(norm)).mul_(self.levels).clamp_(max=self.levels)  # norm may round below max |v_i|
        else:
            scaled = torch.zeros_like(x64)
        coins = torch.rand(
            x.numel(), generator=generator_for(ctx.key(shared=False), x.device), dtype=torch.float64, device=x.device
        )
        levels = scaled.floor()
        # floor + Bernoulli(fractional part), all in float64 and in place (adding a bool tensor to a
        # float64 one casts element by element: 5x slower)
        levels.add_(coins.lt_(scaled.sub_(levels)))
        codes = scaled.view(torch.int64).copy_(levels)  # the fractions are spent: their buffer takes .long()
        tensors = {"norm": norm, "signs": pack_nonnegative(x), "levels": pack_uint(codes, self.width)}
        return Payload(tensors, numel=x.numel(), elements=x.numel())

    def decompress(self, payload: Payload) -> Tensor:
        norm, d = payload.tensors["norm"], payload.numel
        levels = unpack_uint(payload.tensors["levels"], self.width, d).to(torch.float64)
        magnitude = levels.mul_(float(norm)).div_(self.levels).to(norm.dtype)
        # negation commutes with the products and the cast (round to nearest is symmetric), so the
        # signs go on last, as sign-bit flips: bit for bit norm * (+-level) / s
        return flip_signs(magnitude, unpack_bits(torch.bitwise_not(payload.tensors["signs"]), d))


_SAME_SIZE_INT = {
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.float32: torch.int32,
    torch.float64: torch.int64,
}


def flip_signs(values: Tensor, negative: Tensor) -> Tensor:
    """-values where ``negative`` (bool), in place, by flipping the IEEE sign bit."""
    as_int = _SAME_SIZE_INT[values.dtype]
    bits = 8 * values.element_size() - 1
    values.view(as_int).bitwise_xor_(negative.view(torch.uint8).to(as_int).bitwise_left_shift_(bits))
    return values


IMPLEMENTATION = QSGD
