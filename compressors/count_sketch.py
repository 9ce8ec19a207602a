"""Count sketch (baselines.md B1; SketchedAMSGrad, Sketched-SGD and FetchSGD's S(.) and U(.)).

A vector x of length d goes into an r x c fp32 table: row i adds sign_i(j) * x_j to cell
(i, bucket_i(j)). The table is linear in x (S(a) + S(b) = S(a + b) for fixed hashes), so the
workers' tables are summed by one allreduce (``allreduce``: ``Communicator.allreduce_sum``) and
decoded once: ``decompress(sum of payloads)`` is the unsketch of the summed table.

Hashes. They depend on (run seed, bucket) only, never on the step or the worker: key
``(seed, "count_sketch", bucket)`` through the project's generator (``compressors/base.py``), so
every worker and the receiver build the same ones, one sketch per bucket (a layer with
``scope: layer``) has its own, and the sketch is the same linear map at every step (FetchSGD
keeps momentum and error in sketch space across steps). Built once per (d, r, c, key, hashing,
device) and cached (``CACHE_BYTES``, least recently used first out). Two families (``hashing``):

- ``random`` (default): bucket_i(j) and sign_i(j) drawn independently for every (i, j) with
  ``torch.randint`` from that generator: a fully independent family (uniform up to the
  generator's modulo bias, below 2c / 2^32), so at least what csvec's 2-wise buckets and 4-wise
  signs give (csvec computes ((a1 j + a2) mod P) mod c with P = 2^61 - 1 in wrapping int64; we do
  not reproduce its numbers bit for bit). Cached as one int64 (r, d) tensor 2 bucket + [sign < 0],
  8 r d bytes (1 GB for d = 25M, r = 5): the encode is ONE ``scatter_add_`` of x (expanded over
  the rows, never copied) into an r x 2c table whose even/odd columns are then subtracted.
- ``block`` (our choice, faster, [U]): coordinates in consecutive blocks of c; in row i block B
  is circularly shifted by a uniform s_i(B) and multiplied by a random sign sigma_i(B) times a
  fixed random +-1 pattern rho_i over the c offsets: bucket_i(j) = (j mod c + s_i(B)) mod c,
  sign_i(j) = sigma_i(B) rho_i(j mod c). Every bucket is uniform, two coordinates of one block
  never collide, two of different blocks collide with probability exactly 1/c and have
  independent signs, and rows are independent: what the count sketch's point-query bound uses
  (Chebyshev on one row, then the median of r rows). It is not 2-wise independent in the strict
  sense (offsets within a block are fixed) and its signs are not 4-wise independent, so the l2
  estimate's variance bound (AMS) does not carry over for structured inputs. Encode: two
  contiguous ``addcmul_`` per (block, row), cache-resident, a few copies' worth of time; hashes
  take O(r (d / c + c)) memory. Meant for c in the thousands and up: the encode and decode loop in
  Python over the d / c blocks.

Estimate: x_j ~ median_i sign_i(j) table[i, bucket_i(j)], the LOWER middle value for even r, as
``torch.median`` (csvec; SketchedAMSGrad uses r = 10), computed by a min/max sorting network on
cache-sized chunks (``lower_median``; equal to ``torch.median(dim=0).values``).

Decode (``decompress``) is the paper's unsketch U(S): the k coordinates with the largest
|estimate| (k = ``k``, or max(1, floor(``ratio`` d)) as top-k), their estimates, zeros elsewhere.
So decompress is not linear; decoding the summed table is what the algorithms do. The module
functions ``estimate``, ``unsketch``, ``heavy_hitters`` and ``l2_estimate`` (sqrt of the lower
median over rows of sum_c table^2) are what the sketch algorithms call (baselines.md A4, B2, B3).

Payload: {"table": (r, c) fp32}: 32 r c bits, ``elements`` r c (the numbers sent, the
SketchedAMSGrad convention: 001 counts numbers); meta: the hash key (the vector length is
``Payload.numel``), receiver-known, free. SketchedAMSGrad / Sketched-SGD use r = 10, c = 100,000,
k = 50,000 at d ~ 25M (``compressor.rows=10 compressor.columns=100000 compressor.ratio=null
compressor.k=50000``); the YAML's default is a smaller 5 x 10,000 table.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload, generator_for
from compress_train.compressors.topk import TopK, topk_count

HASHINGS = ("random", "block")
CACHE_BYTES = 4 << 30  # hashes kept for reuse, least recently used evicted first (the newest always kept)
DECODE_CHUNK = 1 << 16  # coordinates per decode chunk: the r x chunk row estimates stay in cache
SELECT_SAMPLE = 1 << 16  # sample size of the unsketch's top-k threshold (``topk_magnitude``)


# --------------------------------------------------------------------------- hashes


@dataclass(eq=False)
class SketchHashes:
    """The hash functions of one r x c sketch of vectors of length ``numel``.

    ``random``: ``index`` (r, d) int64 = 2 bucket + (sign < 0). ``block``: ``shift`` (r, nB) int64,
    ``block_sign`` (r, nB) fp32, ``pattern`` (r, c) fp32, nB = ceil(d / c) (module docstring).
    """

    rows: int
    columns: int
    numel: int
    hashing: str
    index: Tensor | None = None
    shift: Tensor | None = None
    block_sign: Tensor | None = None
    pattern: Tensor | None = None
    _neg_pattern: Tensor | None = field(default=None, repr=False)
    # block: per block, the r (shift, sign) pairs as Python numbers for the encode loop
    _blocks: list[list[tuple[int, float]]] = field(default_factory=list, repr=False)

    @property
    def nbytes(self) -> int:
        parts = (self.index, self.shift, self.block_sign, self.pattern, self._neg_pattern)
        return sum(t.numel() * t.element_size() for t in parts if t is not None)

    @property
    def device(self) -> torch.device:
        held = self.index if self.index is not None else self.pattern
        assert held is not None, "random hashes hold index, block hashes pattern"
        return held.device

    def buckets(self) -> Tensor:
        """bucket_i(j) as an explicit (r, d) int64 tensor (tests, other uses; the sketch never builds it)."""
        if self.hashing == "random":
            assert self.index is not None
            return self.index // 2
        assert self.shift is not None
        j = torch.arange(self.numel, device=self.device)
        return (j % self.columns + self.shift[:, j // self.columns]) % self.columns

    def signs(self) -> Tensor:
        """sign_i(j) in {-1, +1} as an explicit (r, d) fp32 tensor."""
        if self.hashing == "random":
            assert self.index is not None
            return 1.0 - 2.0 * (self.index % 2).to(torch.float32)
        assert self.block_sign is not None and self.pattern is not None
        j = torch.arange(self.numel, device=self.device)
        return self.block_sign[:, j // self.columns] * self.pattern[:, j % self.columns]


def _pm1(bits: Tensor) -> Tensor:
    return 1.0 - 2.0 * bits.to(torch.float32)


def build_hashes(
    numel: int, rows: int, columns: int, key: tuple, hashing: str = "random", device: torch.device | str = "cpu"
) -> SketchHashes:
    """Draw the hashes from the project generator seeded by ``key`` (on the CPU, so every device
    gets the same ones), then move them to ``device``. Not cached: see ``sketch_hashes``."""
    gen = generator_for(key)
    if hashing == "random":
        # one draw per (row, coordinate) in [0, 2c): bucket = index // 2 and the sign bit index % 2 are
        # independent and uniform
        index = torch.randint(2 * columns, (rows, numel), generator=gen, dtype=torch.int64)
        return SketchHashes(rows, columns, numel, hashing, index=index.to(device))
    if hashing == "block":
        blocks = -(-numel // columns)
        shift = torch.randint(columns, (rows, blocks), generator=gen, dtype=torch.int64)
        block_sign = _pm1(torch.randint(2, (rows, blocks), generator=gen))
        pattern = _pm1(torch.randint(2, (rows, columns), generator=gen))
        per_block = [list(zip(s, g)) for s, g in zip(shift.t().tolist(), block_sign.t().tolist())]
        pattern = pattern.to(device)
        return SketchHashes(
            rows,
            columns,
            numel,
            hashing,
            shift=shift.to(device),
            block_sign=block_sign.to(device),
            pattern=pattern,
            _neg_pattern=-pattern,
            _blocks=per_block,
        )
    raise ValueError(f"`hashing` must be one of {list(HASHINGS)}, but is {hashing!r}.")


_CACHE: OrderedDict[tuple, SketchHashes] = OrderedDict()


def sketch_hashes(
    numel: int, rows: int, columns: int, key: tuple, hashing: str = "random", device: torch.device | str = "cpu"
) -> SketchHashes:
    """``build_hashes``, cached per (numel, rows, columns, key, hashing, device)."""
    device = torch.device(device)
    ident = (numel, rows, columns, tuple(key), hashing, str(device))
    found = _CACHE.get(ident)
    if found is not None:
        _CACHE.move_to_end(ident)
        return found
    found = _CACHE[ident] = build_hashes(numel, rows, columns, key, hashing, device)
    while len(_CACHE) > 1 and sum(h.nbytes for h in _CACHE.values()) > CACHE_BYTES:
        _CACHE.popitem(last=False)
    return found


def clear_cache() -> None:
    _CACHE.clear()


# --------------------------------------------------------------------------- sketch and estimates


def accumulate(x: Tensor, hashes: SketchHashes) -> Tensor:
    """S(x): the (r, c) fp32 table, table[i, bucket_i(j)] += sign_i(j) x_j for all i, j."""
    x = x.reshape(-1).to(torch.float32)
    r, c, d = hashes.rows, hashes.columns, hashes.numel
    if x.numel() != d:
        raise ValueError(f"the hashes are for vectors of length {d}, but x has {x.numel()} entries")
    if hashes.hashing == "random":
        # column 2b collects the +1-signed entries of bucket b, column 2b + 1 the -1-signed ones: one
        # scatter-add for all rows, x expanded (stride 0) rather than repeated r times
        signed = torch.zeros(r, 2 * c, dtype=torch.float32, device=x.device)
        assert hashes.index is not None  # random hashes hold their index
        signed.scatter_add_(1, hashes.index, x.expand(r, d))
        return signed[:, 0::2] - signed[:, 1::2]
    table = torch.zeros(r, c, dtype=torch.float32, device=x.device)
    assert hashes.pattern is not None  # block hashes hold their pattern
    rows, pattern = table.unbind(0), hashes.pattern.unbind(0)
    for b, block in enumerate(hashes._blocks):
        xb = x[b * c : (b + 1) * c]
        n = xb.numel()
        for row, rho, (s, sign) in zip(rows, pattern, block):
            a = min(n, c - s)  # offsets [0, a) land in buckets [s, s + a), the rest wraps to [0, n - a)
            row[s : s + a].addcmul_(xb[:a], rho[:a], value=sign)
            if n > a:
                row[: n - a].addcmul_(xb[a:], rho[a:n], value=sign)
    return table


def _check_table(table: Tensor, hashes: SketchHashes) -> None:
    if tuple(table.shape) != (hashes.rows, hashes.columns):
        raise ValueError(f"table of shape {tuple(table.shape)} for hashes of {hashes.rows} x {hashes.columns}")


def _chunks(hashes: SketchHashes) -> list[tuple[int, int]]:
    """Coordinate ranges of the decode (whole blocks for ``block`` hashing)."""
    d, c = hashes.numel, hashes.columns
    step = DECODE_CHUNK if hashes.hashing == "random" else c * max(1, DECODE_CHUNK // c)
    return [(a, min(d, a + step)) for a in range(0, d, step)]


def _prepared(table: Tensor, hashes: SketchHashes) -> Tensor:
    """What the row estimates are read from, built once per decode: ``random``: the (r, 2c) table
    [+t, -t] interleaved (the index's layout); ``block``: the (r, 2c) table twice over, so that
    bucket (o + s) mod c of offset o < c is column o + s."""
    _check_table(table, hashes)
    r, c = hashes.rows, hashes.columns
    if hashes.hashing == "random":
        return torch.stack((table, -table), dim=2).reshape(r, 2 * c)
    return torch.cat((table, table), dim=1)


def _rows(prepared: Tensor, hashes: SketchHashes, start: int, stop: int, out: Tensor | None = None) -> Tensor:
    """(r, stop - start) row estimates into ``out`` (a fresh tensor if None); ``start`` on a block
    boundary for ``block`` hashing."""
    if out is None:
        out = torch.empty(hashes.rows, stop - start, dtype=prepared.dtype, device=prepared.device)
    if hashes.hashing == "random":
        assert hashes.index is not None
        return torch.gather(prepared, 1, hashes.index[:, start:stop], out=out)
    assert hashes.pattern is not None and hashes._neg_pattern is not None
    c, d = hashes.columns, hashes.numel
    for b in range(start // c, -(-stop // c)):
        lo, n = b * c - start, min(c, d - b * c)
        for i, (s, sign) in enumerate(hashes._blocks[b]):  # one contiguous window of the doubled table per row
            pattern = hashes.pattern[i] if sign > 0 else hashes._neg_pattern[i]
            torch.mul(prepared[i, s : s + n], pattern[:n], out=out[i, lo : lo + n])
    return out


def row_estimates(table: Tensor, hashes: SketchHashes, start: int = 0, stop: int | None = None) -> Tensor:
    """(r, stop - start): sign_i(j) table[i, bucket_i(j)] for j in [start, stop) (for ``block``
    hashing ``start`` must be a multiple of c: whole blocks)."""
    stop = hashes.numel if stop is None else stop
    if hashes.hashing == "block" and start % hashes.columns:
        raise ValueError(
            f"block hashing estimates whole blocks: start {start} is not a multiple of c = {hashes.columns}"
        )
    return _rows(_prepared(table, hashes), hashes, start, stop)


def _sort_pairs(n: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort comparators for n wires (the power-of-two network with the
    comparators that touch a wire >= n dropped: those wires hold +inf, so they are no-ops)."""
    size, pairs, p = 1 << max(0, (n - 1).bit_length()), [], 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def _median3(a: Tensor, b: Tensor, c: Tensor, out: Tensor | None = None) -> Tensor:
    return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c), out=out)


def lower_median(values: Tensor, out: Tensor | None = None) -> Tensor:
    """Median over dim 0 of an (r, m) tensor, the lower middle value for even r: the values of
    ``torch.median(values, dim=0)``, by a min/max network (several times faster than torch.median
    on the CPU); written into ``out`` when given."""
    r = values.shape[0]
    rows = list(values.unbind(0))
    if r == 3:
        return _median3(rows[0], rows[1], rows[2], out=out)
    if r == 5:  # median5(a..e) = median3(max(min(a,b), min(c,d)), min(max(a,b), max(c,d)), e)
        a, b, c, d, e = rows
        return _median3(
            torch.maximum(torch.minimum(a, b), torch.minimum(c, d)),
            torch.minimum(torch.maximum(a, b), torch.maximum(c, d)),
            e,
            out=out,
        )
    for i, j in _sort_pairs(r):
        rows[i], rows[j] = torch.minimum(rows[i], rows[j]), torch.maximum(rows[i], rows[j])
    median = rows[(r - 1) // 2]
    return median.clone() if out is None else out.copy_(median)


def estimate(table: Tensor, hashes: SketchHashes) -> Tensor:
    """The dense (d,) estimate: x_j ~ lower median over rows of sign_i(j) table[i, bucket_i(j)]."""
    prepared = _prepared(table, hashes)
    out = torch.empty(hashes.numel, dtype=torch.float32, device=table.device)
    chunks = _chunks(hashes)
    if not chunks:
        return out
    buffer = torch.empty(hashes.rows, chunks[0][1] - chunks[0][0], dtype=torch.float32, device=table.device)
    for a, b in chunks:
        rows = _rows(prepared, hashes, a, b, buffer if b - a == buffer.shape[1] else None)
        lower_median(rows, out=out[a:b])
    return out


def topk_magnitude(x: Tensor, k: int) -> Tensor:
    """Indices of the k largest |x_j| of the 1-D ``x``: the set ``torch.topk(x.abs(), k)`` selects (up
    to ties at the k-th value), found among the entries with |x_j| >= a threshold read off a strided
    sample of ``SELECT_SAMPLE`` entries (about 2k candidates; the full ``torch.topk`` if fewer than k
    pass). |x| is never built in full: no d-sized temporary but a mask."""
    d, k = x.numel(), min(int(k), x.numel())
    if d <= 4 * SELECT_SAMPLE or 8 * k > d:
        return torch.topk(x.abs(), k, sorted=False).indices
    sample = x[:: d // SELECT_SAMPLE].abs()
    m = sample.numel()
    rank = min(m, math.ceil(2 * k * m / d) + 16)  # about 2k entries at or above the sample's rank-th largest
    tau = torch.kthvalue(sample, m - rank + 1).values
    mask = x >= tau
    mask |= x <= -tau
    candidates = torch.nonzero(mask).view(-1)
    if candidates.numel() < k:
        return torch.topk(x.abs(), k, sorted=False).indices
    return candidates[torch.topk(x[candidates].abs(), k, sorted=False).indices]


def heavy_hitters(table: Tensor, hashes: SketchHashes, k: int) -> Tensor:
    """Indices (int64) of the k largest |estimate|, in decreasing order of |estimate|."""
    est = estimate(table, hashes)
    idx = topk_magnitude(est, k)
    return idx[torch.sort(est[idx].abs(), descending=True, stable=True).indices]


def unsketch(table: Tensor, hashes: SketchHashes, k: int) -> Tensor:
    """U(S): dense (d,) vector holding the estimates of the k largest |estimate|, zeros elsewhere."""
    est = estimate(table, hashes)
    if k >= est.numel():
        return est
    idx = topk_magnitude(est, k)
    kept = est[idx]
    est.zero_()  # the estimate's own storage becomes the output: no second d-sized allocation
    est[idx] = kept
    return est


def l2_estimate(table: Tensor) -> Tensor:
    """||x||_2 ~ sqrt(lower median over rows of sum_c table[i, c]^2) (csvec ``l2estimate``), 0-dim."""
    sums = table.to(torch.float64).pow(2).sum(dim=1)
    return torch.median(sums).sqrt().to(table.dtype)


# --------------------------------------------------------------------------- the compressor


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class CountSketch(Compressor):
    name = "count_sketch"
    linear = True
    shared_randomness = True
    allreduce = True  # workers' tables are summed by one allreduce and the sum is decoded once

    def __init__(
        self,
        rows: int = 5,
        columns: int = 10_000,
        ratio: float | None = 0.002,
        k: int | None = None,
        hashing: str = "random",
    ):
        self.rows, self.columns, self.ratio, self.k, self.hashing = rows, columns, ratio, k, hashing

    def check(self) -> list[str]:
        errors = []
        if not _is_int(self.rows) or self.rows < 1:
            errors.append(
                f"`rows` must be an integer >= 1 (r, the sketch's rows; SketchedAMSGrad: 10), but is {self.rows!r}."
            )
        if not _is_int(self.columns) or self.columns < 1:
            errors.append(
                f"`columns` must be an integer >= 1 (c, the sketch's columns; SketchedAMSGrad: "
                f"100000), but is {self.columns!r}."
            )
        if self.hashing not in HASHINGS:
            errors.append(f"`hashing` must be one of {list(HASHINGS)}, but is {self.hashing!r}.")
        return errors + TopK(self.ratio, self.k).check()

    def params(self) -> dict:
        size = {"ratio": self.ratio} if self.k is None else {"k": self.k}
        return {"rows": self.rows, "columns": self.columns, **size, "hashing": self.hashing}

    @staticmethod
    def key(ctx: CompressContext) -> tuple:
        """(seed, "count_sketch", bucket): no step, no worker (module docstring)."""
        return (ctx.seed, "count_sketch", ctx.bucket)

    def hashes(
        self,
        numel: int,
        key: tuple,
        device: torch.device | str = "cpu",
        rows: int | None = None,
        columns: int | None = None,
    ) -> SketchHashes:
        return sketch_hashes(numel, rows or self.rows, columns or self.columns, key, self.hashing, device)

    def _payload_hashes(self, payload: Payload) -> tuple[Tensor, SketchHashes]:
        table = payload.tensors["table"]
        r, c = table.shape
        return table, self.hashes(payload.numel, payload.meta["key"], table.device, r, c)

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        key = self.key(ctx)
        table = accumulate(x, self.hashes(x.numel(), key, x.device))
        return Payload({"table": table}, numel=x.numel(), elements=table.numel(), meta={"key": key})

    def k_for(self, numel: int) -> int:
        return topk_count(numel, self.ratio, self.k)

    def decompress(self, payload: Payload) -> Tensor:
        table, hashes = self._payload_hashes(payload)
        return unsketch(table, hashes, self.k_for(payload.numel))

    # what the sketch algorithms call on a (summed) payload
    def estimate(self, payload: Payload) -> Tensor:
        return estimate(*self._payload_hashes(payload))

    def heavy_hitters(self, payload: Payload, k: int) -> Tensor:
        return heavy_hitters(*self._payload_hashes(payload), k)

    def unsketch(self, payload: Payload, k: int) -> Tensor:
        return unsketch(*self._payload_hashes(payload), k)

    def l2_estimate(self, payload: Payload) -> Tensor:
        return l2_estimate(payload.tensors["table"])


IMPLEMENTATION = CountSketch
