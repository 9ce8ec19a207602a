"""The compressor contract: tensor -> Payload (what really goes on the wire) -> tensor.

docs/architecture.md §2-3: a payload holds exactly the tensors a worker would send (fp32 values, int32
indices, signs packed eight to a byte, fp32 scales); its bit count is read off those tensors,
never from a formula. Anything every receiver already knows (the vector length, a shared
random seed derived from the step) travels in ``meta`` and costs nothing.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor


@dataclass
class Payload:
    """One compressed vector.

    ``tensors``: the arrays sent, in a fixed order per compressor (names and dtypes never vary
    between workers or steps; only lengths may). ``numel``: length of the decoded vector.
    ``elements``: how many coordinates' values the payload conveys (k for a sparsifier, d for
    a dense or sign code): the "density" numerator of the papers. ``meta``: receiver-known
    side information (not counted).
    """

    tensors: dict[str, Tensor]
    numel: int
    elements: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def bits(self) -> int:
        """Exact size of the tensors sent: 8 bits per byte of each array."""
        return 8 * sum(t.numel() * t.element_size() for t in self.tensors.values())


@dataclass(frozen=True)
class CompressContext:
    """Where a compression happens; the source of all its randomness.

    Shared randomness (random-k's support) depends on (seed, step, bucket) only, so every
    worker and the receiver regenerate it; private randomness (MVSS's coin flips) adds the
    worker. Never the global RNG.
    """

    seed: int = 0
    step: int = 0
    bucket: int = 0
    worker: int = 0

    def key(self, shared: bool) -> tuple[int, ...]:
        base = (self.seed, self.step, self.bucket)
        return base if shared else base + (self.worker,)


def generator_for(key: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Generator:
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    gen = torch.Generator(device=device)
    gen.manual_seed(int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF)
    return gen


class Compressor(ABC):
    """C: R^d -> payload -> R^d. Subclasses set the class flags and implement both maps.

    ``unbiased``: E[decompress(compress(x))] = x. ``linear``: C(a) + C(b) = C(a + b), so
    payloads may be summed by an allreduce. ``shared_randomness``: the random choices must be
    the same on all workers (decode regenerates them from ``meta``). ``allreduce``: linear with a
    support every worker shares, and meant to be exchanged that way: the algorithms sum the
    workers' payload tensors with one allreduce (``Communicator.allreduce_sum``) and decode once.
    """

    name: ClassVar[str]
    unbiased: bool = False  # per instance where a parameter decides (randk, bounded)
    linear: ClassVar[bool] = False
    shared_randomness: bool = False
    allreduce: ClassVar[bool] = False

    @abstractmethod
    def compress(self, x: Tensor, ctx: CompressContext) -> Payload: ...

    @abstractmethod
    def decompress(self, payload: Payload) -> Tensor: ...

    def check(self) -> list[str]:
        """Messages for invalid parameters (empty when valid); keys as in the config."""
        return []

    def params(self) -> dict[str, Any]:
        """The parameters that define this compressor, for summaries and plot labels."""
        return {}


def sparse_payload(x: Tensor, idx: Tensor, **meta: Any) -> Payload:
    """fp32 values + int32 indices of the kept coordinates (docs/architecture.md §3: 64 bits each)."""
    return Payload(
        {"values": x[idx].to(torch.float32), "indices": idx.to(torch.int32)},
        numel=x.numel(),
        elements=int(idx.numel()),
        meta=meta,
    )


def sparse_decode(payload: Payload, like_dtype: torch.dtype = torch.float32) -> Tensor:
    values = payload.tensors["values"]
    out = torch.zeros(payload.numel, dtype=values.dtype, device=values.device)
    out[payload.tensors["indices"].long()] = values
    return out
