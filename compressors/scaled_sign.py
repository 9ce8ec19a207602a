"""Scaled sign, sketched_ams eq. (3): C(x) = (||x||_1 / d) sign(x).

Payload: one fp32 scale + d sign bits packed eight to a byte. sign(0) is sent as +1 (one bit
cannot carry three values); since x_i = 0 contributes nothing to <sign(x), x> this keeps the
Cauchy-Schwarz bound ||C(x) - x||^2 = ||x||^2 - ||x||_1^2 / d <= (1 - 1/d) ||x||^2 of comp_ams
Remark 1. Applied per layer (``scope=layer``) it is Block-Sign with blocks = layers.
"""
from __future__ import annotations

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload
from compress_train.compressors.packing import pack_bits, unpack_bits


def scaled_sign_payload(x: Tensor) -> Payload:
    scale = (x.abs().sum(dtype=torch.float32) / x.numel()).reshape(1)
    return Payload({"scale": scale, "signs": pack_bits(x >= 0)}, numel=x.numel(), elements=x.numel())


def scaled_sign_decode(payload: Payload) -> Tensor:
    positive = unpack_bits(payload.tensors["signs"], payload.numel)
    scale = payload.tensors["scale"]
    return torch.where(positive, scale, -scale)


class ScaledSign(Compressor):
    name = "scaled_sign"

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        return scaled_sign_payload(x)

    def decompress(self, payload: Payload) -> Tensor:
        return scaled_sign_decode(payload)


IMPLEMENTATION = ScaledSign
