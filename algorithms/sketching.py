"""What the count-sketch protocols share (baselines.md A4, B1-B3): SketchedAMSGrad PA / GA
(``sketched_ams_pa``, ``sketched_ams_ga``), Sketched-SGD (``sketched_sgd``) and FetchSGD (``fetchsgd``).
Not an algorithm itself (no ``IMPLEMENTATION``).

Round 1 (``first_round``): each worker sends S(x_i), its r x c count-sketch table (one per bucket of the
compressor's scope), and the tables are summed by ONE allreduce (``Communicator.allreduce_sum``; the
sketch is linear with hashes shared by all workers). A method may let a small dense vector ride in the
same collective (``extra``: GA's h_i): one buffer, one collective.

Round 2 (``second_round``, the Sketched-SGD mechanism that PA, GA and Sketched-SGD all use; one code
path): from the summed table the server estimates every coordinate (the lower median over rows, the
compressor's ``estimate``), optionally divides by a per-coordinate ``divisor`` (GA's sqrt(vhat)), and
picks the P k coordinates of largest magnitude (the candidates; P = ``candidates_factor``; at most d);
each worker sends its exact values on the candidates, summed by one allreduce of a dense P k fp32 vector; the
support I is the k largest of those (mean or sum over workers, divided by the divisor where given), the
values are those exact aggregates on I. With P = 0 (Sketched-SGD only) there is no round 2: I and the
values are the top k of the estimate itself (= U(S, k)).

Where k and P live: k is the compressor's (``compressor.k``, or ``compressor.ratio`` times d:
``CountSketch.k_for(d)`` over the WHOLE model), P is the algorithm's ``candidates_factor``. The selection
is global in either scope: ``scope: layer`` only gives each parameter tensor its own table (and hashes),
the estimate is their concatenation.

Traffic (our bits rule, baselines.md header): up = the tables (32 r c per bucket) + 32 P k (round 2) +
any extra. Down, as implemented (``bits_down``): what each worker receives, the results of the two
allreduces (the summed tables, the extra and the P k summed exact values, read off those messages);
no server exists, every process computes the same candidates and update from the same sums (in the
simulator as under torchrun), so only the two allreduces reach the wire counters. The parameter
server of 001's Alg. 2-3 (broadcasting the P k candidate indices, int32, and the update's k values and
indices, fp32 + int32) is only modelled: ``bits_down_ps_model``, on no plot's bits axis.
``numbers_sent`` (001's convention: numbers up + down, values only, no indices) = |S| + P k + k (+ the
extra's values): the server model's count, kept as the paper counts.

Hashes: the compressor's, key (seed, "count_sketch", bucket) for every worker and step
(``CountSketch.key``), so the server side can rebuild them for any table (FetchSGD's sketch-space
state) with ``bucket_hashes``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import Tensor

from compress_train.algorithms.base import Algorithm, Needs, StepReport
from compress_train.compressors.base import CompressContext, Payload
from compress_train.compressors.count_sketch import CountSketch, SketchHashes, estimate, topk_magnitude
from compress_train.compressors.scope import Message, ScopedCompressor

REDUCES = ("mean", "sum")


def fp32_payload(values: Tensor) -> Payload:
    """A dense fp32 vector as one payload (32 bits per value; the indices are known to all)."""
    values = values.reshape(-1).to(torch.float32)
    return Payload({"values": values}, numel=values.numel(), elements=values.numel())


def top(x: Tensor, k: int) -> Tensor:
    """Indices of the k largest |x_j|, in increasing index order (the order never matters for the set)."""
    k = min(int(k), x.numel())
    if k == 0:
        return torch.zeros(0, dtype=torch.int64, device=x.device)
    return torch.sort(topk_magnitude(x, k)).values


def cells(hashes: SketchHashes, idx: Tensor) -> Tensor:
    """(r, len(idx)) int64: bucket_i(j) for the coordinates ``idx`` of one sketch (the cells they hit)."""
    if hashes.hashing == "random":
        assert hashes.index is not None  # random hashing keeps its index table
        return hashes.index[:, idx] // 2
    c = hashes.columns
    assert hashes.shift is not None  # block hashing keeps its shifts
    return (idx % c + hashes.shift[:, idx // c]) % c


@dataclass
class Traffic:
    """One step's traffic per worker, in our bits and in 001's numbers."""

    bits_up: float = 0.0
    bits_down: float = 0.0
    bits_down_ps_model: float = 0.0
    numbers_up: float = 0.0
    numbers_down: float = 0.0
    time_compress_s: float = 0.0
    time_comm_s: float = 0.0

    def report(self, error_norms: dict[int, float] | None = None) -> StepReport:
        return StepReport(
            bits_up=self.bits_up,
            bits_down=self.bits_down,
            elements_up=self.numbers_up,
            error_norms=error_norms or {},
            time_compress_s=self.time_compress_s,
            time_comm_s=self.time_comm_s,
            extra={"numbers_sent": self.numbers_up + self.numbers_down, "bits_down_ps_model": self.bits_down_ps_model},
        )


@dataclass
class FirstRound:
    """The summed tables (one (r, c) per bucket), the summed extra vector (or None) and the traffic so far."""

    tables: list[Tensor]
    extra: Tensor | None
    traffic: Traffic = field(default_factory=Traffic)


@dataclass
class Selection:
    """The update's support I (increasing indices) and its values (fp32), and the step's traffic."""

    support: Tensor
    values: Tensor
    traffic: Traffic


class SketchedAlgorithm(Algorithm):
    """Base of the count-sketch methods: the compressor must be a ``CountSketch``; no ``algo.ef``
    memory (each method keeps its own residual)."""

    needs = Needs(compressor_name="count_sketch")
    default_ef = "none"
    allowed_ef = ("none",)

    def __init__(self, params, comm, compressor, seed=0, lr=1e-3, ef=None):
        super().__init__(params, comm, compressor, seed, lr, ef)
        if compressor is None or not isinstance(compressor.compressor, CountSketch):
            found = None if compressor is None else type(compressor.compressor).__name__
            raise ValueError(
                f"algo={self.name} sketches with the count sketch: it needs compressor=count_sketch, not {found}."
            )
        self.memories = {}  # the methods' own residuals replace the EF memory: none is allocated

    # -- configuration ------------------------------------------------------------------------

    @property
    def scoped(self) -> ScopedCompressor:
        """The count sketch with its scope (every sketch method needs one: ``Needs.compressor``)."""
        assert self.compressor is not None
        return self.compressor

    @property
    def sketch(self) -> CountSketch:
        return cast(CountSketch, self.scoped.compressor)

    @property
    def k(self) -> int:
        """Coordinates in the update: the compressor's ``k`` / ``ratio`` over the whole model."""
        return self.sketch.k_for(self.params.numel())

    def bucket_hashes(self, bucket: int) -> SketchHashes:
        size = self.scoped.bucket_sizes[bucket]
        key = CountSketch.key(CompressContext(self.seed, 0, bucket))
        return self.sketch.hashes(size, key, self.params.device)

    def bucket_starts(self) -> list[int]:
        starts, offset = [], 0
        for size in self.scoped.bucket_sizes:
            starts.append(offset)
            offset += size
        return starts

    def estimate(self, tables: list[Tensor]) -> Tensor:
        """The (d,) fp32 point estimates of the vector whose per-bucket tables are ``tables``."""
        parts = [estimate(t, self.bucket_hashes(b)) for b, t in enumerate(tables)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    # -- the two rounds ----------------------------------------------------------------------

    def first_round(self, vectors: dict[int, Tensor], step: int, extra: dict[int, Tensor] | None = None) -> FirstRound:
        """Sketch each local worker's vector; ONE allreduce sums the tables (and ``extra``, fp32)."""
        t0 = time.perf_counter()
        workers = self.comm.local_workers
        local = [self.scoped.compress(vectors[w], self.seed, step, w) for w in workers]
        buckets = len(local[0].payloads)
        if extra is not None:
            local = [Message(m.payloads + [fp32_payload(extra[w])]) for m, w in zip(local, workers)]
        t1 = time.perf_counter()
        summed = self.comm.allreduce_sum(local)
        t2 = time.perf_counter()
        tables = [p.tensors["table"] for p in summed.payloads[:buckets]]
        extra_sum = summed.payloads[buckets].tensors["values"] if extra is not None else None
        traffic = Traffic(
            bits_up=local[0].bits,
            bits_down=summed.bits,
            numbers_up=local[0].elements,
            time_compress_s=t1 - t0,
            time_comm_s=t2 - t1,
        )
        return FirstRound(tables, extra_sum, traffic)

    def exact_sum(self, values: list[Tensor]) -> tuple[Payload, Payload]:
        """Round 2's upload: the local workers' exact values (fp32 on the wire) summed by one allreduce;
        (one worker's payload as sent, the summed payload each worker receives)."""
        local = [Message([fp32_payload(v)]) for v in values]
        return local[0].payloads[0], self.comm.allreduce_sum(local).payloads[0]

    def second_round(
        self,
        vectors: dict[int, Tensor],
        first: FirstRound,
        factor: int,
        reduce: str = "mean",
        divisor: Tensor | None = None,
    ) -> Selection:
        """Candidates from the summed sketch, then exact values (module docstring). ``vectors``: what was
        sketched; ``reduce``: ``mean`` (over n) or ``sum`` of the workers' vectors; ``divisor``: per
        coordinate, applied to the estimate and to the exact aggregate before each top-k."""
        t0 = time.perf_counter()
        traffic = first.traffic
        n = self.comm.world_size
        k = self.k
        est = self.estimate(first.tables)
        if reduce == "mean":
            est /= n
        key = est if divisor is None else est / divisor
        if factor == 0:
            support = top(key, k)
            values = key[support]
            t1 = t2 = time.perf_counter()
        else:
            cand = top(key, min(self.params.numel(), factor * k))
            t1 = time.perf_counter()
            sent, received = self.exact_sum([vectors[w][cand] for w in self.comm.local_workers])
            exact = received.tensors["values"]
            t2 = time.perf_counter()
            if reduce == "mean":
                exact /= n
            if divisor is not None:
                exact = exact / divisor[cand].to(exact.dtype)
            chosen = top(exact, k)
            support, values = cand[chosen], exact[chosen]
            traffic.bits_up += sent.bits
            traffic.numbers_up += sent.elements
            traffic.bits_down += received.bits
            traffic.bits_down_ps_model += 32 * cand.numel()  # the candidate indices (int32), broadcast
        traffic.bits_down_ps_model += 64 * support.numel()  # the update: fp32 values + int32 indices
        traffic.numbers_down += support.numel()
        traffic.time_compress_s += (t1 - t0) + (time.perf_counter() - t2)
        traffic.time_comm_s += t2 - t1
        return Selection(support, values, traffic)

    def apply(self, support: Tensor, values: Tensor, scale: float) -> None:
        """x[I] -= scale * values."""
        self.params.index_add_(0, support, values.to(self.params.dtype), alpha=-scale)

    def rescale(self, prev_lr: float | None) -> float:
        """r_t = alpha_{t-1} / alpha_t (1 at the first step and for a constant lr)."""
        return 1.0 if prev_lr is None or prev_lr == self.lr else prev_lr / self.lr


# -- shared checks ----------------------------------------------------------------------------


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_factor(cfg, minimum: int = 1) -> list[str]:
    p = cfg.get("candidates_factor")
    if not is_int(p) or p < minimum:
        what = "P: the second round fetches the exact values of P k candidates; 001's P = 8"
        return [f"`candidates_factor` must be an integer >= {minimum} ({what}), but is {p!r}."]
    return []


def check_choice(cfg, key: str, allowed: tuple, default=None) -> list[str]:
    value = cfg.get(key, default)
    if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
        return [f"`{key}` must be one of {list(allowed)}, but is {value!r}."]
    return []


def check_rho(cfg) -> list[str]:
    rho = cfg.get("rho")
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 <= rho < 1:
        return [f"`rho` must be in [0, 1), but is {rho!r}."]
    return []
