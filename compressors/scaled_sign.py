"""Scaled sign, sketched_ams eq. (3): C(x) = (||x||_1 / d) sign(x).

Payload: one fp32 scale + d sign bits packed eight to a byte. sign(0) is sent as +1 (one bit
cannot carry three values); since x_i = 0 contributes nothing to <sign(x), x> this keeps the
Cauchy-Schwarz bound ||C(x) - x||^2 = ||x||^2 - ||x||_1^2 / d <= (1 - 1/d) ||x||^2 of comp_ams
Remark 1. Applied per layer (``scope=layer``) it is Block-Sign with blocks = layers.
Cost: the |x| sum (one temporary) and one compare-and-pack pass to compress; the decode is one
table lookup per byte (the 256 x 8 values +-scale, from :func:`signed_scale`), writing the d float32
once; no host synchronisation, every tensor stays on x's device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload
from compress_train.compressors.packing import pack_nonnegative


def scaled_sign_payload(x: Tensor) -> Payload:
    scale = (x.abs().sum(dtype=torch.float32) / x.numel()).reshape(1)
    return Payload({"scale": scale, "signs": pack_nonnegative(x)}, numel=x.numel(), elements=x.numel())


# byte b -> its eight bits, most significant first, as bools: row b of the decode table
_BYTE_BITS = torch.from_numpy(np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(bool))


def scaled_sign_decode(payload: Payload) -> Tensor:
    """+scale where the sign bit is 1, -scale where it is 0 (float32, length ``numel``): each byte
    selects its row of the 256 x 8 table of +-scale."""
    signs, scale = payload.tensors["signs"], payload.tensors["scale"]
    table = signed_scale(torch.bitwise_not(_BYTE_BITS.to(signs.device)).reshape(-1), scale).view(256, 8)
    return torch.index_select(table, 0, signs.to(torch.int32)).view(-1)[: payload.numel]


def signed_scale(negative: Tensor, scale: Tensor) -> Tensor:
    """``torch.where(negative, -scale, scale)`` for a 1-element float32 ``scale``, in three passes:
    negation flips only the IEEE sign bit, so -scale is scale's bits xor bit 31 (bit-exact,
    NaN and zero included)."""
    flips = negative.view(torch.uint8).to(torch.int32).bitwise_left_shift_(31)
    return flips.bitwise_xor_(scale.view(torch.int32)).view(torch.float32)


class ScaledSign(Compressor):
    name = "scaled_sign"

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        return scaled_sign_payload(x)

    def decompress(self, payload: Payload) -> Tensor:
        return scaled_sign_decode(payload)


IMPLEMENTATION = ScaledSign
