"""No compression: the dense vector in the run's precision (32 bits per element in fp32 runs,
64 in the float64 runs of convex problems)."""

from __future__ import annotations

from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload


class Identity(Compressor):
    name = "identity"
    unbiased = True
    linear = True

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        return Payload({"values": x.clone()}, numel=x.numel(), elements=x.numel())

    def decompress(self, payload: Payload) -> Tensor:
        return payload.tensors["values"]


IMPLEMENTATION = Identity
