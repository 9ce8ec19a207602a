"""Hard-threshold sparsification (hard_threshold §4): keep every coordinate with |x_i| >= lambda.

An absolute compressor: ||C(x) - x||^2 <= d * lambda^2 (hard_threshold §5). k varies from step to
step; the payload is what was kept at this step (fp32 values + int32 indices).
"""
from __future__ import annotations

from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload, sparse_decode, sparse_payload


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
        return sparse_payload(x, (x.abs() >= self.lam).nonzero().view(-1))

    def decompress(self, payload: Payload) -> Tensor:
        return sparse_decode(payload)


IMPLEMENTATION = Threshold
