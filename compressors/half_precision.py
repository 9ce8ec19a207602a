"""Dense 16-bit baselines: every coordinate sent, rounded to a 16-bit float (round to nearest even).

The baseline recent evaluations ask for beside dense fp32: comparing a compressor only against
32-bit training flatters it (a 16-bit dense exchange already halves the traffic at no tuning
cost). ``compressor=bf16`` (8 exponent bits, fp32's range) and ``compressor=fp16`` (IEEE half:
5 exponent bits; values beyond +-65504 become inf, tiny ones flush towards 0) each send one
16-bit value per element, so ``bits`` = 16 d read off the payload. The receiver casts back to
the run's dtype (recorded in ``meta``, which costs nothing). Exchanged as the field's dense 16-bit
baseline is (DDP's bf16/fp16 hooks, NCCL): one ``allreduce`` of the 16-bit payloads, the sum formed
in the wire dtype (``allreduce = True``: every worker's support is every coordinate; the map is
not exactly linear, the sum rounds in 16 bits at each addition, as on the wire), then decoded
once and divided by n. Under torchrun the gloo/NCCL reduction order equals the simulator's
worker-order sum for 2 processes; for more, 16-bit sums may round differently. Error feedback
(``algo.ef``) keeps each worker's own rounding error like any other compression error.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload


class HalfPrecision(Compressor):
    """x -> x rounded to ``wire_dtype`` (one 16-bit value per element) -> back to x's dtype."""

    wire_dtype: ClassVar[torch.dtype]
    allreduce = True

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        return Payload({"values": x.to(self.wire_dtype)}, numel=x.numel(), elements=x.numel(), meta={"dtype": x.dtype})

    def decompress(self, payload: Payload) -> Tensor:
        return payload.tensors["values"].to(payload.meta["dtype"])
