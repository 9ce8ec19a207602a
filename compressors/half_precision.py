"""Dense 16-bit baselines: every coordinate sent, rounded to a 16-bit float (round to nearest even).

The baseline recent evaluations ask for beside dense fp32: comparing a compressor only against
32-bit training flatters it (a 16-bit dense exchange already halves the traffic at no tuning
cost). ``compressor=bf16`` (8 exponent bits, fp32's range) and ``compressor=fp16`` (IEEE half:
5 exponent bits; values beyond +-65504 become inf, tiny ones flush towards 0) each send one
16-bit value per element, so ``bits`` = 16 d read off the payload. The receiver casts back to
the run's dtype (recorded in ``meta``, which costs nothing). Not linear (rounding), so payloads
are allgathered and each is decoded, as any other compressor's; error feedback (``algo.ef``)
keeps the rounding error like any other compression error.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload


class HalfPrecision(Compressor):
    """x -> x rounded to ``wire_dtype`` (one 16-bit value per element) -> back to x's dtype."""

    wire_dtype: ClassVar[torch.dtype]

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        return Payload({"values": x.to(self.wire_dtype)}, numel=x.numel(), elements=x.numel(),
                       meta={"dtype": x.dtype})

    def decompress(self, payload: Payload) -> Tensor:
        return payload.tensors["values"].to(payload.meta["dtype"])
