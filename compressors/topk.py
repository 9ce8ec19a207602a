"""Top-k sparsification, comp_ams Definition 1: keep the k coordinates of largest |x_i|.

Payload: k fp32 values + k int32 indices. k is given directly (``k``) or as a fraction of the
vector (``ratio``: k = max(1, floor(ratio * d)), applied per vector, i.e. per layer when
``scope=layer``). A delta-contraction: ||C(x) - x||^2 <= (1 - k/d) ||x||^2 (comp_ams Remark 1).

Selection (``topk_indices``) is exact: always the set of ``torch.topk(x.abs(), k)``, ties and NaN
included (topk ranks NaN above every number; among equal magnitudes at the k-th place its choice is
deterministic but its own, so wherever that choice matters topk itself makes it). Two paths:

- ``topk_full``: ``torch.topk(x.abs(), k, sorted=False)``, indices in topk's order. Vectors under
  ``SAMPLED_MIN_NUMEL`` entries (``scope: layer``'s many small tensors), k > d / 8, CUDA tensors
  (no host sync) and other dtypes.
- ``topk_sampled`` (float32 CPU vectors): a threshold tau read off a strided sample of ``SAMPLE``
  magnitudes, set so that a few percent more than k entries pass; one chunked pass collects the
  entries with |x_i| >= tau and their values (``entries_at_least``: numpy's bitwise-and, compare
  and flatnonzero on cache-sized chunks, several times faster than torch.nonzero on one thread);
  the k-th largest magnitude among those few candidates by a partition. Indices increasing. Falls
  back to ``topk_full`` when fewer than k pass even after ``RETRIES`` lowered thresholds (a sample
  that misjudged) and when several entries share the k-th magnitude (a tie topk must settle).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload, sparse_payload

SAMPLED_MIN_NUMEL = 1 << 20  # below: one torch.topk (cheap enough, and no host sync)
SAMPLE = 1 << 16  # strided sample the threshold is read from
CHUNK = 1 << 17  # entries per pass chunk: the chunk's temporaries stay in cache
RETRIES = 2  # lowered thresholds tried before the full topk
_LOW31 = (1 << 31) - 1
_ABS_MASK = 0x7FFF_FFFF  # float32 bits without the sign: ordered as |x| (NaN above inf)
_INF_BITS = 0x7F80_0000


def dense_zeros(numel: int, device: torch.device | str = "cpu") -> Tensor:
    """A float32 zero vector to decode into. On the CPU from numpy's allocator: calloc'd pages
    that the kernel zeroes on first touch and that numpy backs with transparent huge pages, so a
    sparse decode pays for the pages it writes, not a memset and a page fault per 4 KiB of a fresh
    d-sized buffer (without huge pages torch.zeros costs several copies of d floats)."""
    if torch.device(device).type == "cpu":
        return torch.from_numpy(np.zeros(numel, dtype=np.float32))
    return torch.zeros(numel, dtype=torch.float32, device=device)


def scatter_decode(payload: Payload) -> Tensor:
    """``base.sparse_decode`` (distinct indices): the values at their int32 indices, zeros elsewhere."""
    values, indices = payload.tensors["values"], payload.tensors["indices"]
    out = dense_zeros(payload.numel, values.device)
    if values.device.type == "cpu":  # int64 indices from numpy's allocator (huge pages) for scatter_
        out.scatter_(0, torch.from_numpy(indices.numpy().astype(np.int64)), values.to(torch.float32))
    else:
        out[indices.long()] = values.to(torch.float32)
    return out


def topk_count(d: int, ratio: float | None, k: int | None) -> int:
    """Number of coordinates kept out of d: ``k`` capped at d, else max(1, floor(ratio * d))."""
    if k is not None:
        return min(int(k), d)
    assert ratio is not None, "ratio or k must be given (the compressor's check says so first)"
    return min(d, max(1, math.floor(ratio * d + 1e-9)))


def topk_full(x: Tensor, k: int) -> Tensor:
    """``torch.topk(x.abs(), k, sorted=False).indices`` of the flattened x (int64, in topk's order)."""
    return torch.topk(x.detach().reshape(-1).abs(), k, sorted=False).indices


def entries_at_least(x: np.ndarray, tau: float, bits: bool) -> tuple[np.ndarray, np.ndarray]:
    """(indices, entries) of the float32 vector ``x`` (at most 2^31 - 1 entries) with |x_i| >= tau:
    increasing int32 indices and the entries x_i themselves, read chunk by chunk (``CHUNK``) while
    each chunk is in cache.

    ``bits``: tau is an int32 magnitude bit pattern and |x_i| is compared as bits (NaN passes any
    tau, as the largest magnitude), and the entries are returned as their int32 bits; otherwise tau
    is a float and the float compare of ``x.abs() >= tau`` is reproduced (NaN never passes).
    """
    n = x.shape[0]
    threshold: np.generic
    if bits:
        x, threshold = x.view(np.int32), np.int32(tau)
    else:
        threshold = np.float32(tau)
    work = np.empty(min(n, CHUNK), dtype=x.dtype)
    mask = np.empty(min(n, CHUNK), dtype=bool)
    # written in place: capacity n, of which only the pages written are ever touched (no per-chunk arrays
    # to allocate, fault in and concatenate)
    indices, entries = np.empty(n, dtype=np.int32), np.empty(n, dtype=x.dtype)
    found = 0
    for start in range(0, n, CHUNK):
        part = x[start : start + CHUNK]
        m = part.shape[0]
        if bits:
            np.bitwise_and(part, _ABS_MASK, out=work[:m])
        else:
            np.abs(part, out=work[:m])
        np.greater_equal(work[:m], threshold, out=mask[:m])
        hits = np.flatnonzero(mask[:m])
        h = hits.shape[0]
        if h:
            np.take(part, hits, out=entries[found : found + h])
            np.add(hits, start, out=indices[found : found + h], casting="unsafe")
            found += h
    if 2 * found < n:  # a sparse result: do not keep the n-entry buffers alive
        return indices[:found].copy(), entries[:found].copy()
    return indices[:found], entries[:found]


def _sample_threshold(bits: np.ndarray, k: int, rank_scale: int) -> int:
    """Magnitude bits of the sample's ``rank``-th largest, rank set so that about k (1 + a few
    percent) entries of the whole vector reach it; ``rank_scale`` widens it on retries."""
    d = bits.shape[0]
    sample = np.bitwise_and(bits[:: max(1, d // SAMPLE)], _ABS_MASK)
    m = sample.shape[0]
    expected = k * m / d
    rank = min(m, math.ceil(rank_scale * (expected + 4 * math.sqrt(expected) + 8)))
    return int(np.partition(sample, m - rank)[m - rank])


def topk_sampled(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(indices, values) of ``topk_indices`` for a contiguous float32 CPU vector, via a sampled
    threshold (module docstring): increasing int32 indices and their float32 entries."""
    flat = x.detach().reshape(-1)
    bits = flat.numpy().view(np.int32)
    for attempt in range(RETRIES + 1):
        tau = _sample_threshold(bits, k, 4**attempt)
        indices, entries = entries_at_least(bits, tau, bits=True)
        if indices.shape[0] >= k:
            break
    else:
        return _full_sorted(flat, k)
    if indices.shape[0] > k:
        magnitude = entries & _ABS_MASK
        cut = magnitude.shape[0] - k
        kth = np.partition(magnitude, cut)[cut]
        keep = magnitude >= kth
        if kth > _INF_BITS or np.count_nonzero(keep) != k:
            return _full_sorted(flat, k)  # ties at the k-th magnitude (or NaN there): topk's own choice
        indices, entries = indices[keep], entries[keep]
    return torch.from_numpy(indices), torch.from_numpy(entries.view(np.float32))


def _full_sorted(flat: Tensor, k: int) -> tuple[Tensor, Tensor]:
    indices = topk_full(flat, k).sort().values
    return indices.to(torch.int32), flat[indices]


def _uses_sampled(x: Tensor, k: int) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.is_contiguous()
        and SAMPLED_MIN_NUMEL <= x.numel() <= _LOW31
        and 8 * k <= x.numel()
    )


def topk_indices(x: Tensor, k: int) -> Tensor:
    """int64 indices of the k largest |x_i| of the flattened x: the set of ``torch.topk(x.abs(), k)``
    (increasing on the sampled path, in topk's order otherwise)."""
    return topk_sampled(x, k)[0].long() if _uses_sampled(x, k) else topk_full(x, k)


def topk_payload(x: Tensor, k: int) -> Payload:
    """``sparse_payload(x, topk_indices(x, k))``, the sampled path reusing the entries its pass read."""
    if not _uses_sampled(x, k):
        return sparse_payload(x, topk_full(x, k))
    indices, values = topk_sampled(x, k)
    return Payload({"values": values, "indices": indices}, numel=x.numel(), elements=k)


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
        return topk_payload(x, topk_count(x.numel(), self.ratio, self.k))

    def decompress(self, payload: Payload) -> Tensor:
        return scatter_decode(payload)


IMPLEMENTATION = TopK
