"""torch.distributed behind the Communicator interface: one worker per process.

The only module (with ``launch.py``) that touches ``torch.distributed``. Variable-size messages
are allgathered as one byte buffer per worker: an int64 header (each tensor's length and each
payload's element count) first, then the tensors' bytes padded to the largest worker's. The
tensor names, dtypes and order come from this worker's own message, which every worker builds
with the same compressor.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

from compress_train.algorithms.communicator import Communicator, header_numel
from compress_train.compressors.scope import Message


def _to_bytes(t: Tensor) -> Tensor:
    return t.contiguous().reshape(-1).view(torch.uint8)


class DistCommunicator(Communicator):
    def __init__(self, device: torch.device):
        super().__init__()
        self.world_size = dist.get_world_size()
        self.local_workers = [dist.get_rank()]
        self.device = device

    def allgather(self, local: list[Message]) -> list[Message]:
        (message,) = local
        tensors = message.tensors
        header = torch.tensor(
            [t.numel() for t in tensors] + [p.elements for p in message.payloads], dtype=torch.int64, device=self.device
        )
        headers = [torch.empty_like(header) for _ in range(self.world_size)]
        dist.all_gather(headers, header)
        sizes = [[int(n) * t.element_size() for n, t in zip(h[: len(tensors)].tolist(), tensors)] for h in headers]
        width = max(sum(s) for s in sizes)
        buffer = torch.zeros(width, dtype=torch.uint8, device=self.device)
        buffers = [buffer] * self.world_size
        if width:  # every rank knows the width from the headers: all skip an empty exchange
            mine = torch.cat([_to_bytes(t) for t in tensors])
            buffer[: mine.numel()] = mine
            buffers = [torch.empty_like(buffer) for _ in range(self.world_size)]
            dist.all_gather(buffers, buffer)
        self.count("allgather", header.numel() * 8 + buffer.numel())
        assert header.numel() == header_numel(message)
        rank = self.local_workers[0]  # its own message comes back byte-identical: keep the object
        return [
            message if r == rank else self._unpack(message, h, s, b)
            for r, (h, s, b) in enumerate(zip(headers, sizes, buffers))
        ]

    @staticmethod
    def _unpack(template: Message, header: Tensor, sizes: list[int], buffer: Tensor) -> Message:
        chunks = iter(buffer[: sum(sizes)].split(sizes))
        elements = header[len(sizes) :].tolist()
        payloads = []
        for p, n_elements in zip(template.payloads, elements):
            # clone first: a chunk after packed sign bytes whose count is not a multiple of 4 cannot be
            # viewed as floats in place (its storage offset is unaligned)
            tensors = {name: next(chunks).clone().view(t.dtype) for name, t in p.tensors.items()}
            payloads.append(replace(p, tensors=tensors, elements=int(n_elements)))
        return Message(payloads)

    def allreduce_sum(self, local: list[Message]) -> Message:
        (message,) = local
        tensors = message.tensors
        if len({t.dtype for t in tensors}) != 1:
            raise TypeError("allreduce_sum needs payload tensors of one dtype")
        buffer = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(buffer)
        self.count("allreduce", buffer.numel() * buffer.element_size())
        chunks = iter(buffer.split([t.numel() for t in tensors]))
        payloads = [
            replace(p, tensors={name: next(chunks).view_as(t) for name, t in p.tensors.items()})
            for p in message.payloads
        ]
        return Message(payloads)

    def allreduce_mean(self, local: list[Tensor]) -> Tensor:
        (t,) = local
        total = t.clone()
        dist.all_reduce(total)
        self.count("allreduce", total.numel() * total.element_size())
        return total / self.world_size

    def gather_floats(self, local: list[float]) -> list[float]:
        t = torch.tensor(local, dtype=torch.float64, device=self.device)
        out = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(out, t)
        return torch.cat(out).tolist()

    def broadcast_(self, tensor: Tensor, src: int = 0, counted: bool = False) -> None:
        dist.broadcast(tensor, src=src)
        if counted:
            self.count("broadcast", tensor.numel() * tensor.element_size())


def init_process_group(backend: str, timeout_s: float = 60, device: str = "auto") -> torch.device:
    """Join the group torchrun set up (env://); returns this rank's device. A collective that waits
    longer than ``timeout_s`` (a dead peer) raises instead of hanging for torch's default 30 minutes.
    The backend follows the device: NCCL on CUDA, gloo on CPU (``device=cpu`` on a CUDA machine too)."""
    use_cuda = torch.cuda.is_available() and device != "cpu" and backend in ("auto", "nccl")
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        rank_device = torch.device("cuda", local_rank)
    else:
        rank_device = torch.device("cpu")
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return rank_device


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
