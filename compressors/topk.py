"""Top-k sparsification, comp_ams Definition 1: keep the k coordinates of largest |x_i|.

Payload: k fp32 values + k int32 indices. k is given directly (``k``) or as a fraction of the
vector (``ratio``: k = max(1, floor(ratio * d)), applied per vector, i.e. per layer when
``scope=layer``). A delta-contraction: ||C(x) - x||^2 <= (1 - k/d) ||x||^2 (comp_ams Remark 1).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload, sparse_decode, sparse_payload


def topk_count(d: int, ratio: float | None, k: int | None) -> int:
    """Number of coordinates kept out of d: ``k`` capped at d, else max(1, floor(ratio * d))."""
    if k is not None:
        return min(int(k), d)
    return min(d, max(1, math.floor(ratio * d + 1e-9)))


def topk_indices(x: Tensor, k: int) -> Tensor:
    return torch.topk(x.abs(), k, sorted=False).indices


class TopK(Compressor):
    name = "topk"

    def __init__(self, ratio: float | None = 0.01, k: int | None = None):
        self.ratio, self.k = ratio, k

    def check(self) -> list[str]:
        if (self.ratio is None) == (self.k is None):
            return [f"exactly one of `ratio` and `k` must be set, but ratio={self.ratio} and k={self.k}."]
        if self.k is not None and (not isinstance(self.k, int) or self.k < 1):
            return [f"`k` must be an integer >= 1, but is {self.k!r}."]
        if self.ratio is not None and not (isinstance(self.ratio, (int, float)) and 0 < self.ratio <= 1):
            return [f"`ratio` must be in (0, 1], but is {self.ratio!r}."]
        return []

    def params(self) -> dict:
        return {"ratio": self.ratio} if self.k is None else {"k": self.k}

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        return sparse_payload(x, topk_indices(x, topk_count(x.numel(), self.ratio, self.k)))

    def decompress(self, payload: Payload) -> Tensor:
        return sparse_decode(payload)


IMPLEMENTATION = TopK
