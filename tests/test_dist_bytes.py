"""The torchrun allgather's byte buffer unpacks every payload layout: tensors of mixed dtypes packed back
to back, so a float tensor can start at any byte (after packed sign bytes whose count is not a multiple
of 4)."""

from __future__ import annotations

import torch

from compress_train.compressors.base import Payload
from compress_train.compressors.scope import Message
from compress_train.runner.dist import DistCommunicator, _to_bytes


def test_a_float_tensor_after_an_odd_count_of_sign_bytes_unpacks_exactly():
    signs = torch.arange(5, dtype=torch.uint8)  # 5 bytes: the scale that follows starts unaligned
    scale = torch.tensor([0.25, -3.5], dtype=torch.float32)
    index = torch.tensor([7, 1 << 40], dtype=torch.int64)
    message = Message([Payload({"signs": signs, "scale": scale}, numel=40, elements=40), Payload({"i": index}, 9, 2)])
    tensors = message.tensors
    sizes = [t.numel() * t.element_size() for t in tensors]
    buffer = torch.zeros(sum(sizes) + 3, dtype=torch.uint8)  # padded to a wider worker's message
    buffer[: sum(sizes)] = torch.cat([_to_bytes(t) for t in tensors])
    header = torch.tensor([t.numel() for t in tensors] + [40, 2])
    out = DistCommunicator._unpack(message, header, sizes, buffer)
    for got, sent in zip(out.tensors, tensors):
        assert got.dtype == sent.dtype and torch.equal(got, sent)
    assert [p.elements for p in out.payloads] == [40, 2]
