"""Random-k sparsification: k coordinates drawn uniformly without replacement.

With ``shared_seed`` (default) the support comes from a generator seeded by (run seed, step,
bucket), so every worker picks the same coordinates and the receiver regenerates the indices:
only the k fp32 values are sent (docs/architecture.md §3, indices implied). Without it each worker draws
its own support and sends int32 indices too. ``unbiased`` scales the kept values by d/k so that
E[C(x)] = x; otherwise C is the plain (biased, contractive) random sparsifier.

The support (``distinct_sample``), on the CPU from the project's generator (``base.generator_for``)
whatever the device, so every device draws the same one: the first k distinct values of a stream of
i.i.d. uniform draws from {0, ..., d-1}, i.e. sequential sampling without replacement, a uniform
k-subset; no permutation of d. Sent in increasing index order. For k > d / 2 the stream would be
long, so it draws the d - k coordinates left out instead. Supports are kept for reuse
(``SUPPORT_CACHE_BYTES``, least recently used out): the decode of a payload regenerates nothing.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload, generator_for
from compress_train.compressors.topk import scatter_decode, topk_count

SUPPORT_CACHE_BYTES = 1 << 25  # supports kept per (d, k, key, device); the newest is always kept


def distinct_sample(d: int, k: int, gen: torch.Generator) -> Tensor:
    """k distinct int64 values of {0, ..., d-1}, increasing: a uniform k-subset drawn from ``gen``."""
    if 2 * k > d:
        left_out = distinct_sample(d, d - k, gen)
        keep = torch.ones(d, dtype=torch.bool)
        keep[left_out] = False
        return keep.nonzero().view(-1)
    if k == 0:
        return torch.empty(0, dtype=torch.int64)
    # draws needed for k distinct on average: d (H_d - H_{d-k}) ~ d log(d / (d - k)); a margin of a few
    # standard deviations so that one batch nearly always suffices
    need = d * (math.log(d) - math.log(d - k))
    draws = torch.randint(d, (math.ceil(need + 4 * math.sqrt(need) + 16),), generator=gen).numpy()
    while True:
        n = draws.shape[0]
        # sort (value, draw position) pairs; the first of each run of equal values is its earliest draw
        values, drawn_at = np.divmod(np.sort(draws * n + np.arange(n)), n)
        first = np.empty(n, dtype=bool)
        first[0] = True
        np.not_equal(values[1:], values[:-1], out=first[1:])
        values, drawn_at = values[first], drawn_at[first]
        if values.shape[0] >= k:
            break
        more = torch.randint(d, (2 * max(16, k - values.shape[0]),), generator=gen).numpy()
        draws = np.concatenate([draws, more])
    if values.shape[0] > k:  # keep the values whose first draw is among the first k distinct
        values = values[drawn_at <= np.partition(drawn_at, k - 1)[k - 1]]
    return torch.from_numpy(values)


class RandK(Compressor):
    name = "randk"

    def __init__(
        self, ratio: float | None = 0.01, k: int | None = None, shared_seed: bool = True, unbiased: bool = False
    ):
        self.ratio, self.k, self.shared_seed, self.scale_unbiased = ratio, k, shared_seed, unbiased
        self.shared_randomness = shared_seed
        self.unbiased = unbiased
        self._supports: OrderedDict[tuple, Tensor] = OrderedDict()

    def check(self) -> list[str]:
        from compress_train.compressors.topk import TopK

        return TopK(self.ratio, self.k).check()

    def params(self) -> dict:
        size = {"ratio": self.ratio} if self.k is None else {"k": self.k}
        return {**size, "shared_seed": self.shared_seed, "unbiased": self.scale_unbiased}

    def _support(self, d: int, key: tuple[int, ...], device) -> Tensor:
        k = topk_count(d, self.ratio, self.k)
        ident = (d, k, key, str(device))
        found = self._supports.get(ident)
        if found is None:
            found = self._supports[ident] = distinct_sample(d, k, generator_for(key)).to(device)
            while (
                len(self._supports) > 1
                and sum(t.numel() * t.element_size() for t in self._supports.values()) > SUPPORT_CACHE_BYTES
            ):
                self._supports.popitem(last=False)
        else:
            self._supports.move_to_end(ident)
        return found

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        d = x.numel()
        key = ctx.key(shared=self.shared_seed)
        idx = self._support(d, key, x.device)
        values = x.reshape(-1).index_select(0, idx).to(torch.float32)  # several times faster than x[idx]
        if self.scale_unbiased:
            values = values * (d / idx.numel())
        if self.shared_seed:
            return Payload({"values": values}, numel=d, elements=idx.numel(), meta={"key": key})
        return Payload({"values": values, "indices": idx.to(torch.int32)}, numel=d, elements=idx.numel())

    def decompress(self, payload: Payload) -> Tensor:
        if "indices" in payload.tensors:
            return scatter_decode(payload)
        values = payload.tensors["values"]
        support = self._support(payload.numel, payload.meta["key"], values.device)
        return scatter_decode(Payload({"values": values, "indices": support}, payload.numel, values.numel()))


IMPLEMENTATION = RandK
