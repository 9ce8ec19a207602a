"""Random-k sparsification: k coordinates drawn uniformly without replacement.

With ``shared_seed`` (default) the support comes from a generator seeded by (run seed, step,
bucket), so every worker picks the same coordinates and the receiver regenerates the indices:
only the k fp32 values are sent (docs/architecture.md §3, indices implied). Without it each worker draws
its own support and sends int32 indices too. ``unbiased`` scales the kept values by d/k so that
E[C(x)] = x; otherwise C is the plain (biased, contractive) random sparsifier.
"""
from __future__ import annotations

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload, generator_for, sparse_decode
from compress_train.compressors.topk import topk_count


class RandK(Compressor):
    name = "randk"

    def __init__(self, ratio: float | None = 0.01, k: int | None = None, shared_seed: bool = True,
                 unbiased: bool = False):
        self.ratio, self.k, self.shared_seed, self.scale_unbiased = ratio, k, shared_seed, unbiased
        self.shared_randomness = shared_seed
        self.unbiased = unbiased

    def check(self) -> list[str]:
        from compress_train.compressors.topk import TopK

        return TopK(self.ratio, self.k).check()

    def params(self) -> dict:
        size = {"ratio": self.ratio} if self.k is None else {"k": self.k}
        return {**size, "shared_seed": self.shared_seed, "unbiased": self.scale_unbiased}

    def _support(self, d: int, key: tuple[int, ...], device) -> Tensor:
        k = topk_count(d, self.ratio, self.k)
        return torch.randperm(d, generator=generator_for(key), device="cpu")[:k].to(device)

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        d = x.numel()
        key = ctx.key(shared=self.shared_seed)
        idx = self._support(d, key, x.device)
        values = x[idx].to(torch.float32)
        if self.scale_unbiased:
            values = values * (d / idx.numel())
        if self.shared_seed:
            return Payload({"values": values}, numel=d, elements=idx.numel(), meta={"key": key})
        return Payload({"values": values, "indices": idx.to(torch.int32)}, numel=d, elements=idx.numel())

    def decompress(self, payload: Payload) -> Tensor:
        if "indices" in payload.tensors:
            return sparse_decode(payload)
        values = payload.tensors["values"]
        out = torch.zeros(payload.numel, dtype=values.dtype, device=values.device)
        out[self._support(payload.numel, payload.meta["key"], values.device)] = values
        return out


IMPLEMENTATION = RandK
