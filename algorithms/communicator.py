"""The only way workers exchange data (docs/architecture.md §2, "Communicator").

A process runs the workers in ``local_workers`` (all n of them in the simulator, one per rank
under torchrun). Every collective takes the local workers' contributions in that order and
returns what every worker would hold afterwards, in worker order, so the server logic that
follows is the same code in both modes.

Wire accounting (``wire_bytes``, per worker, cumulative) follows what the torch.distributed
implementation really hands to its collectives, and the simulator counts the same bytes with
the same rule:
- allgather of a message: a header of int64 (the length of each payload tensor, and each
  payload's element count), then all tensors as one byte buffer padded to the largest worker's;
- allreduce: the dense tensor's bytes; allreduce_sum of a linear message: its tensors' bytes
  (packed into one buffer).

``collectives`` lists each collective since the trainer last took it (``take_collectives``) as
(kind, bytes one worker contributes): what the network model (``runner/network_model.py``)
turns into projected seconds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace

from torch import Tensor

from compress_train.compressors.scope import Message


def message_nbytes(message: Message) -> int:
    return sum(t.numel() * t.element_size() for t in message.tensors)


def header_numel(message: Message) -> int:
    """int64 entries in the allgather header: one per tensor, one per payload."""
    return len(message.tensors) + len(message.payloads)


def allgather_wire_bytes(messages: list[Message]) -> int:
    """Bytes one worker hands to the collectives to allgather ``messages`` (one per worker)."""
    return 8 * header_numel(messages[0]) + max(message_nbytes(m) for m in messages)


def sum_messages(messages: list[Message]) -> Message:
    """Element-wise sum of the payload tensors, in worker order (the simulator's allreduce)."""
    first = messages[0]
    payloads = []
    for b, p in enumerate(first.payloads):
        tensors = {}
        for name, t in p.tensors.items():
            total = t.clone()
            for m in messages[1:]:
                total += m.payloads[b].tensors[name]
            tensors[name] = total
        payloads.append(replace(p, tensors=tensors))
    return Message(payloads)


class Communicator(ABC):
    world_size: int
    local_workers: list[int]

    def __init__(self) -> None:
        self.wire_bytes = 0
        self.collectives: list[tuple[str, int]] = []

    def count(self, kind: str, nbytes: int) -> None:
        self.wire_bytes += nbytes
        self.collectives.append((kind, nbytes))

    def take_collectives(self) -> list[tuple[str, int]]:
        taken, self.collectives = self.collectives, []
        return taken

    @abstractmethod
    def allgather(self, local: list[Message]) -> list[Message]:
        """All workers' messages, in worker order (variable sizes allowed)."""

    @abstractmethod
    def allreduce_sum(self, local: list[Message]) -> Message:
        """The sum over all workers of messages of one structure (a linear compressor with a shared
        support): each payload tensor summed element-wise, meta and counts from this process's first
        worker's message. One collective over one buffer."""

    @abstractmethod
    def allreduce_mean(self, local: list[Tensor]) -> Tensor:
        """(1/n) sum over all workers of a dense tensor."""

    @abstractmethod
    def gather_floats(self, local: list[float]) -> list[float]:
        """All workers' values, in worker order. A side channel for metrics: not counted."""

    @abstractmethod
    def broadcast_(self, tensor: Tensor, src: int = 0, counted: bool = False) -> None:
        """Overwrite ``tensor`` with worker ``src``'s copy. Not counted by default (model buffers
        that every rank already holds identically); ``counted=True`` for protocol traffic (a
        controller's decision): its bytes go into ``wire_bytes`` on every worker."""

    @property
    def is_writer(self) -> bool:
        """True in the one process that writes metrics and summaries."""
        return 0 in self.local_workers


class SimCommunicator(Communicator):
    """n workers inside one process: collectives are list operations, summed in worker order."""

    def __init__(self, world_size: int):
        super().__init__()
        self.world_size = world_size
        self.local_workers = list(range(world_size))

    def allgather(self, local: list[Message]) -> list[Message]:
        self.count("allgather", allgather_wire_bytes(local))
        return list(local)

    def allreduce_sum(self, local: list[Message]) -> Message:
        self.count("allreduce", message_nbytes(local[0]))
        return sum_messages(local)

    def allreduce_mean(self, local: list[Tensor]) -> Tensor:
        self.count("allreduce", local[0].numel() * local[0].element_size())
        total = local[0].clone()
        for t in local[1:]:
            total += t
        return total / self.world_size

    def gather_floats(self, local: list[float]) -> list[float]:
        return list(local)

    def broadcast_(self, tensor: Tensor, src: int = 0, counted: bool = False) -> None:
        if counted:
            self.count("broadcast", tensor.numel() * tensor.element_size())
