"""Hard-threshold sparsification (hard_threshold §4): keep every coordinate with |x_i| >= lambda.

An absolute compressor: ||C(x) - x||^2 <= d * lambda^2 (hard_threshold §5). k varies from step to
step; the payload is what was kept at this step (fp32 values + int32 indices, increasing), exactly
the coordinates of ``(x.abs() >= lam).nonzero()`` (a NaN is never kept).

One pass: float32 CPU vectors of at least ``SAMPLED_MIN_NUMEL`` entries go through
``topk.entries_at_least`` (numpy compare + flatnonzero on cache-sized chunks, the kept values read
while the chunk is in cache); others through torch (``x.abs() >= lam``, nonzero), which is also the
CUDA path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload, sparse_payload
from compress_train.compressors.topk import SAMPLED_MIN_NUMEL, entries_at_least, scatter_decode


class Threshold(Compressor):
    name = "threshold"

    def __init__(self, lam: float = 1e-3):
        self.lam = lam

    def check(self) -> list[str]:
        if not isinstance(self.lam, (int, float)) or self.lam < 0:
            return [f"`lam` must be a number >= 0, but is {self.lam!r}."]
        return []

    def params(self) -> dict:
        return {"lam": self.lam}

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        if x.device.type == "cpu" and x.dtype == torch.float32 and SAMPLED_MIN_NUMEL <= x.numel() < 1 << 31:
            indices, values = entries_at_least(x.detach().reshape(-1).numpy(), self.lam, bits=False)
            return Payload(
                {"values": torch.from_numpy(values), "indices": torch.from_numpy(indices)},
                numel=x.numel(),
                elements=indices.shape[0],
            )
        return sparse_payload(x, (x.abs() >= self.lam).nonzero().view(-1))

    def decompress(self, payload: Payload) -> Tensor:
        return scatter_decode(payload)


IMPLEMENTATION = Threshold
