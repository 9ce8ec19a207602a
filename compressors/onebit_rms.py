"""1-bit Adam's compressor (Tang et al., ICML 2021; DeepSpeed ``onebit/adam.py``; baselines.md A3):
C(x) = s sgn(x) with the RMS scale s = ||x||_2 / sqrt(numel) (not ||x||_1 / d as ``scaled_sign``),
sgn(0) = +1. Payload: one fp32 scale + the signs packed eight to a byte. Per parameter tensor
with ``scope: layer`` (DeepSpeed's granularity)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload
from compress_train.compressors.packing import pack_nonnegative
from compress_train.compressors.scaled_sign import scaled_sign_decode


class OneBitRMS(Compressor):
    name = "onebit_rms"

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        scale = (x.to(torch.float32).norm() / math.sqrt(x.numel())).reshape(1)
        return Payload({"scale": scale, "signs": pack_nonnegative(x)}, numel=x.numel(), elements=x.numel())

    def decompress(self, payload: Payload) -> Tensor:
        return scaled_sign_decode(payload)


IMPLEMENTATION = OneBitRMS
