"""Whole-model or layer-wise application of a compressor (docs/architecture.md §2, "Scope").

A worker's gradient lives in one flat vector; ``layer_sizes`` cut it into the model's parameter
tensors. ``scope="model"`` compresses the flat vector once; ``scope="layer"`` compresses each
parameter tensor on its own (bucket b = layer b), which is what makes Block-Sign's blocks the
layers. A message is the list of per-bucket payloads; its bits are their sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload

SCOPES = ("model", "layer")


@dataclass
class Message:
    """Everything one worker sends at one step."""

    payloads: list[Payload]

    @property
    def bits(self) -> int:
        return sum(p.bits for p in self.payloads)

    @property
    def elements(self) -> int:
        return sum(p.elements for p in self.payloads)

    @property
    def tensors(self) -> list[Tensor]:
        return [t for p in self.payloads for t in p.tensors.values()]


class ScopedCompressor:
    def __init__(self, compressor: Compressor, layer_sizes: list[int], scope: str):
        if scope not in SCOPES:
            raise ValueError(f"`scope` must be one of {list(SCOPES)}, but is {scope!r}.")
        self.compressor, self.scope = compressor, scope
        self.bucket_sizes = list(layer_sizes) if scope == "layer" else [sum(layer_sizes)]
        self.numel = sum(layer_sizes)
        # bucket -> compressor used instead of ``compressor`` (a controller's per-layer choice)
        self.overrides: dict[int, Compressor] = {}

    def compress(self, flat: Tensor, seed: int, step: int, worker: int) -> Message:
        parts = flat.split(self.bucket_sizes)
        return Message(
            [
                self.overrides.get(bucket, self.compressor).compress(part, CompressContext(seed, step, bucket, worker))
                for bucket, part in enumerate(parts)
            ]
        )

    def decompress(self, message: Message) -> Tensor:
        parts = [self.overrides.get(b, self.compressor).decompress(p) for b, p in enumerate(message.payloads)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)
