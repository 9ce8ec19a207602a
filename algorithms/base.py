"""What every distributed optimizer shares (docs/architecture.md §2, "Algorithm").

An algorithm owns the flat parameter vector (updated in place), the per-worker state of the
workers this process runs, and a view of the network through a Communicator. ``step`` takes
the local workers' raw gradients and applies one synchronous iteration; it returns the
protocol's bits, read off the payloads produced.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import torch
from torch import Tensor

from compress_train.algorithms.communicator import Communicator
from compress_train.algorithms.error_feedback import build as build_memory
from compress_train.algorithms.error_feedback import normalize_ef
from compress_train.algorithms.state import Stateful
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


@dataclass(frozen=True)
class Needs:
    """What an algorithm asks of the task and the runner, declared once per class.

    ``compressor``: it compresses (False: dense allreduce; no compressor is built).
    ``problem``: ``"required"`` when its step sizes come from a convex problem's constants
    (L, mu, rho, grad0_norm, ...; ``aiade``), ``"optional"`` when it uses them if the task has
    them (``lr: auto``), ``"no"`` otherwise. ``decay_mask``: it takes the task's mask that is 0 on
    normalisation layers. ``gradient_point``: it evaluates gradients away from the iterate
    (Nesterov's y_k; only convex tasks can). ``full_gradient``: on a convex task each worker uses
    its whole shard (GD-type methods). ``compressor_name`` / ``compressor_params``: the one
    compressor the method is defined with (IADE's bounded-error quantizer); the config selects it.
    ``worker_points``: each worker's gradient is taken at its own point (``gradient_points``: def's
    detached point, PSync's local models), which network and convex tasks support.
    ``server_compressor``: the server compresses its broadcast too (two-way compression): a second
    compressor of the same config is built for it (``server_compression.py``).
    """

    compressor: bool = True
    problem: str = "no"
    decay_mask: bool = False
    gradient_point: bool = False
    full_gradient: bool = False
    compressor_name: str | None = None
    compressor_params: Mapping[str, Any] = field(default_factory=dict)
    worker_points: bool = False
    server_compressor: bool = False


@dataclass(frozen=True)
class AlgorithmContext:
    """What a task hands an algorithm, built by the task from the algorithm's ``Needs``: the flat
    parameter vector (updated in place), its layer sizes, and what was asked for."""

    params: Tensor
    layer_sizes: list[int]
    problem: dict[str, Any] | None = None
    decay_mask: Tensor | None = None


class Algorithm(Stateful, ABC):
    """Base: subclasses set ``name``, ``needs``, ``default_ef`` and implement ``step``.

    ``state_dict()`` / ``load_state_dict(state)`` (``algorithms/state.py``, nothing to write in a
    subclass): every attribute but ``params``, ``comm``, ``compressor`` and ``hyper``, the EF
    memories and any other owned ``Stateful`` object included, so a resumed run is the same run.
    """

    name: ClassVar[str]
    needs: ClassVar[Needs] = Needs()
    default_ef: ClassVar[str] = "classic"
    allowed_ef: ClassVar[tuple[str, ...]] = ("none", "classic", "scaled")
    wiring: ClassVar[frozenset[str]] = Stateful.wiring | {"_decoded"}  # this step's decodes, not state
    _decoded: list[tuple[Message, Tensor]] = []  # replaced per instance in compress_and_exchange

    def __init__(
        self,
        params: Tensor,
        comm: Communicator,
        compressor: ScopedCompressor | None,
        seed: int = 0,
        lr: float = 1e-3,
        ef: Any = None,
        **hyper: Any,
    ):
        self.params, self.comm, self.compressor, self.seed, self.lr = params, comm, compressor, seed, lr
        uses = self.needs.compressor
        self.ef = normalize_ef(self.default_ef if ef is None else ef, self.default_ef) if uses else "none"
        self.hyper = hyper
        self.memories = (
            {w: build_memory(self.ef, params.numel(), params.device, params.dtype) for w in comm.local_workers}
            if uses
            else {}
        )

    @classmethod
    def create(
        cls,
        ctx: AlgorithmContext,
        comm: Communicator,
        make_compressor: Callable[[], ScopedCompressor],
        seed: int = 0,
        **hyper: Any,
    ) -> "Algorithm":
        """Build from a task's context: the compressor only if the method compresses, and the
        problem constants and decay mask only if ``needs`` asks for them."""
        extra: dict[str, Any] = {}
        if cls.needs.problem != "no" and ctx.problem is not None:
            extra["problem"] = ctx.problem
        elif cls.needs.problem == "required":
            raise ParameterError(
                f"algo={cls.name} takes its step sizes from a convex problem's L and mu: "
                "it needs a convex model (model=logreg|least_squares|quadratic)."
            )
        if cls.needs.decay_mask and ctx.decay_mask is not None:
            extra["decay_mask"] = ctx.decay_mask
        if cls.needs.server_compressor:  # first: the last one built is the workers' (a controller acts on it)
            extra["server_compressor"] = make_compressor()
        compressor = make_compressor() if cls.needs.compressor else None
        return cls(ctx.params, comm, compressor, seed=seed, **hyper, **extra)

    @classmethod
    def check(cls, cfg: dict[str, Any]) -> list[str]:
        """Messages for invalid ``algo.*`` values (empty when valid)."""
        errors = []
        lr = cfg.get("lr")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0:
            errors.append(f"`lr` must be a number > 0, but is {lr!r}.")
        if cls.needs.compressor:
            ef = normalize_ef(cfg.get("ef", cls.default_ef), cls.default_ef)
            if ef not in cls.allowed_ef:
                errors.append(
                    f"`ef` must be one of {list(cls.allowed_ef)} or true/false for algo={cls.name}, but is {cfg.get('ef')!r}."
                )
        return errors

    @abstractmethod
    def step(self, grads: dict[int, Tensor], step: int) -> StepReport: ...

    def state_device(self) -> torch.device:
        return self.params.device

    def gradient_point(self) -> Tensor:
        """Where the workers evaluate their next gradients: the iterate, unless the method
        extrapolates (Nesterov's y_k)."""
        return self.params

    def gradient_points(self) -> dict[int, Tensor] | None:
        """Where each local worker evaluates its next gradient, when workers differ (``def``'s detached
        point x - lambda e_i, PSync's local models); None: every worker at ``gradient_point()``."""
        return None

    def evaluation_point(self) -> tuple[Tensor, int] | None:
        """The model to evaluate when it is not the iterate (``def``'s y = x - avg_i e_i), with the bits
        of the communication it cost (``bits_eval``). Called on every process (it may be collective);
        None: evaluate ``params``."""
        return None

    def theory(self) -> dict[str, Any]:
        """The resolved constants and the rate the paper proves (summary ``theory``); {} if none."""
        return {}

    # -- shared worker/server pieces -------------------------------------------------------

    @property
    def allreduces(self) -> bool:
        """The compressor's payloads are summed by one allreduce (``Compressor.allreduce``: linear,
        shared support) instead of allgathered."""
        return self.compressor is not None and getattr(self.compressor.compressor, "allreduce", False)

    def compress_and_exchange(self, grads: dict[int, Tensor], step: int) -> tuple[list[Message], StepReport]:
        """Worker side of every compressed protocol: memory -> C -> message; then the exchange.

        Allgather (the default): all workers' messages (worker order). With an ``allreduce``
        compressor: one message, the workers' payloads summed by one allreduce, and ``bits_down``
        its size. The report has uplink bits/elements (mean over workers), ``bits_down`` = what a
        worker receives in that exchange (allgather: the n - 1 other payloads; allreduce: the
        reduced payload) and the local EF norms. An algorithm that sends something more overrides
        ``bits_down`` with that payload's bits; one that replicates its server sends nothing more.
        ``average_decoded`` turns either into the workers' mean.
        """
        assert self.compressor is not None  # only a method that compresses (needs.compressor) exchanges messages
        t0 = time.perf_counter()
        local = []
        self._decoded = []
        for w in self.comm.local_workers:
            memory = self.memories[w]
            corrected = memory.corrected(grads[w], self.lr)
            message = self.compressor.compress(corrected, self.seed, step, w)
            decoded = self.compressor.decompress(message)
            memory.update(corrected, decoded, self.lr)
            local.append(message)
            self._decoded.append((message, decoded))  # average_decoded reuses it: one decode per message
        t1 = time.perf_counter()
        messages, bits, elements, bits_down = self.exchange(local)
        t2 = time.perf_counter()
        return messages, StepReport(
            bits_up=bits,
            bits_down=bits_down,
            elements_up=elements,
            error_norms={w: self.memories[w].norm() for w in self.comm.local_workers},
            time_compress_s=t1 - t0,
            time_comm_s=t2 - t1,
        )

    def exchange(self, local: list[Message]) -> tuple[list[Message], float, float, float]:
        """The local workers' messages exchanged: (messages, bits_up, elements_up, bits_down) per
        worker. With an ``allreduce`` compressor one summed message and ``bits_down`` its size;
        otherwise the allgathered messages and ``bits_down`` the n - 1 others'. Bits and elements
        up are the mean over all workers' messages (the same figure in every process)."""
        if self.allreduces:
            messages = [self.comm.allreduce_sum(local)]
            # every worker sends the same support: the mean of the local messages is every worker's
            bits, elements = sum(m.bits for m in local) / len(local), sum(m.elements for m in local) / len(local)
            return messages, bits, elements, float(messages[0].bits)
        messages = self.comm.allgather(local)
        n = len(messages)
        bits, elements = sum(m.bits for m in messages) / n, sum(m.elements for m in messages) / n
        return messages, bits, elements, bits * (n - 1)

    def decoded(self, message: Message) -> Tensor:
        """decode(message); a local message of this step's ``compress_and_exchange`` is not decoded
        again (its decode for the error memory is reused; the communicators hand the local objects
        back from the exchange)."""
        for sent, dense in self._decoded:
            if sent is message:
                return dense
        assert self.compressor is not None  # a message exists only where a compressor made it
        return self.compressor.decompress(message)

    def average_decoded(self, messages: list[Message]) -> Tensor:
        """(1/n) sum_i decode(message_i), summed in worker order (identical in every mode); with an
        allreduce the one summed message decoded, over n. Each message is decoded once per step."""
        total = self.decoded(messages[0]).clone()
        for m in messages[1:]:
            total += self.decoded(m)
        self.__dict__.pop("_decoded", None)  # the step's decodes are spent (and never state)
        return total / self.comm.world_size

    def exchange_dense(self, grads: dict[int, Tensor]) -> tuple[Tensor, StepReport]:
        """Uncompressed data parallelism: allreduce-mean of fp32 gradients."""
        t0 = time.perf_counter()
        local = [grads[w] for w in self.comm.local_workers]
        avg = self.comm.allreduce_mean(local)
        bits = tensor_bits(local[0])
        return avg, StepReport(
            bits_up=bits, bits_down=bits, elements_up=local[0].numel(), time_comm_s=time.perf_counter() - t0
        )
