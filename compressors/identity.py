"""No compression: the dense fp32 vector (32 bits per element)."""
from __future__ import annotations

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload


class Identity(Compressor):
    name = "identity"
    unbiased = True
    linear = True

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        return Payload({"values": x.to(torch.float32).clone()}, numel=x.numel(), elements=x.numel())

    def decompress(self, payload: Payload) -> Tensor:
        return payload.tensors["values"]


IMPLEMENTATION = Identity
