"""What every distributed optimizer shares (design.md §3, "Algorithm").

An algorithm owns the flat parameter vector (updated in place), the per-worker state of the
workers this process runs, and a view of the network through a Communicator. ``step`` takes
the local workers' raw gradients and applies one synchronous iteration; it returns the
protocol's bits, read off the payloads produced.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor

from compress_train.algorithms.communicator import Communicator
from compress_train.algorithms.error_feedback import ErrorFeedback, normalize_ef
from compress_train.compressors.scope import Message, ScopedCompressor


@dataclass
class StepReport:
    """One iteration's traffic, per worker (mean over workers), and local EF state."""

    bits_up: float
    bits_down: float
    elements_up: float
    error_norms: dict[int, float] = field(default_factory=dict)
    time_compress_s: float = 0.0
    time_comm_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)  # per-step counts the trainer also sums


class ParameterError(ValueError):
    """An ``algo.*`` value that only the built problem can refute (a theorem's condition on
    L and mu): raised before the first step, reported like a config error (exit code 2)."""


def tensor_bits(t: Tensor) -> int:
    return 8 * t.numel() * t.element_size()


class Algorithm(ABC):
    """Base: subclasses set ``name``, ``uses_compressor``, ``default_ef`` and implement ``step``.

    ``needs_problem``: the constructor takes ``problem`` (the convex task's constants: L, mu,
    rho, grad0_norm, ...), for methods whose step sizes come from the theory (seed 003).
    ``full_gradient``: on a convex task each worker uses its whole shard (GD-type methods);
    otherwise mini-batches of ``train.batch_size``. ``required_compressor``: the one compressor
    the method is defined with (IADE's bounded-error quantizer).
    """

    name: ClassVar[str]
    uses_compressor: ClassVar[bool] = True
    needs_problem: ClassVar[bool] = False
    uses_problem: ClassVar[bool] = False  # takes ``problem`` when the task has one (e.g. lr: auto)
    uses_decay_mask: ClassVar[bool] = False  # takes ``decay_mask`` (0 on normalisation layers) when the task has one
    full_gradient: ClassVar[bool] = False
    required_compressor: ClassVar[str | None] = None
    required_compressor_params: ClassVar[dict[str, Any]] = {}
    default_ef: ClassVar[str] = "classic"
    allowed_ef: ClassVar[tuple[str, ...]] = ("none", "classic", "scaled")

    def __init__(self, params: Tensor, comm: Communicator, compressor: ScopedCompressor | None,
                 seed: int = 0, lr: float = 1e-3, ef: Any = None, **hyper: Any):
        self.params, self.comm, self.compressor, self.seed, self.lr = params, comm, compressor, seed, lr
        self.ef = normalize_ef(self.default_ef if ef is None else ef, self.default_ef) if self.uses_compressor else "none"
        self.hyper = hyper
        self.memories = {w: ErrorFeedback(self.ef, params.numel(), params.device, params.dtype)
                         for w in comm.local_workers} \
            if self.uses_compressor else {}

    @classmethod
    def check(cls, cfg: dict[str, Any]) -> list[str]:
        """Messages for invalid ``algo.*`` values (empty when valid)."""
        errors = []
        lr = cfg.get("lr")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0:
            errors.append(f"`algo.lr` must be a number > 0, but is {lr!r}.")
        if cls.uses_compressor:
            ef = normalize_ef(cfg.get("ef", cls.default_ef), cls.default_ef)
            if ef not in cls.allowed_ef:
                errors.append(f"`algo.ef` must be one of {list(cls.allowed_ef)} or true/false for algo={cls.name}, but is {cfg.get('ef')!r}.")
        return errors

    @abstractmethod
    def step(self, grads: dict[int, Tensor], step: int) -> StepReport: ...

    def gradient_point(self) -> Tensor:
        """Where the workers evaluate their next gradients: the iterate, unless the method
        extrapolates (Nesterov's y_k)."""
        return self.params

    def theory(self) -> dict[str, Any]:
        """The resolved constants and the rate the paper proves (summary ``theory``); {} if none."""
        return {}

    # -- shared worker/server pieces -------------------------------------------------------

    def compress_and_exchange(self, grads: dict[int, Tensor], step: int) -> tuple[list[Message], StepReport]:
        """Worker side of every compressed protocol: memory -> C -> message; then allgather.

        Returns all workers' messages (worker order) and a report with uplink bits/elements
        (mean over workers) and the local EF norms; ``bits_down`` is left for the caller.
        """
        t0 = time.perf_counter()
        local = []
        for w in self.comm.local_workers:
            memory = self.memories[w]
            corrected = memory.corrected(grads[w], self.lr)
            message = self.compressor.compress(corrected, self.seed, step, w)
            memory.update(corrected, self.compressor.decompress(message), self.lr)
            local.append(message)
        t1 = time.perf_counter()
        messages = self.comm.allgather(local)
        t2 = time.perf_counter()
        n = len(messages)
        return messages, StepReport(
            bits_up=sum(m.bits for m in messages) / n,
            bits_down=0.0,
            elements_up=sum(m.elements for m in messages) / n,
            error_norms={w: self.memories[w].norm() for w in self.comm.local_workers},
            time_compress_s=t1 - t0, time_comm_s=t2 - t1,
        )

    def average_decoded(self, messages: list[Message]) -> Tensor:
        """(1/n) sum_i decode(message_i), summed in worker order (identical in every mode)."""
        total = self.compressor.decompress(messages[0]).clone()
        for m in messages[1:]:
            total += self.compressor.decompress(m)
        return total / len(messages)

    def exchange_dense(self, grads: dict[int, Tensor]) -> tuple[Tensor, StepReport]:
        """Uncompressed data parallelism: allreduce-mean of fp32 gradients."""
        t0 = time.perf_counter()
        local = [grads[w] for w in self.comm.local_workers]
        avg = self.comm.allreduce_mean(local)
        bits = tensor_bits(local[0])
        return avg, StepReport(bits_up=bits, bits_down=bits, elements_up=local[0].numel(),
                               time_comm_s=time.perf_counter() - t0)
