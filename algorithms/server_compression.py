"""The server's side of two-way compression (``sketched_ams``'s Efficient-Adam and 1-bit Adam
baselines, baselines.md A2-A3): its own compressor and its own error E, so that the downlink is
compressed too and ``bits_down`` is read off the payload the server really sends.

    Q_s = C(p + E) ;  E <- p + E - Q_s ;  broadcast Q_s        (``error: true``, the default)
    Q_s = C(p)                                                  (``error: false``)

The server's state is replicated on every process: each computes it from the same average p,
so a single process and torchrun give the same numbers. Its compressions use the worker id
``SERVER`` in their context (private randomness stays apart from every worker's).
"""

from __future__ import annotations

import torch
from torch import Tensor

from compress_train.algorithms.state import Stateful
from compress_train.compressors.scope import Message, ScopedCompressor

SERVER = -1


class ServerCompression(Stateful):
    wiring = frozenset({"compressor"})

    def __init__(self, compressor: ScopedCompressor, like: Tensor, error: bool = True):
        self.compressor = compressor
        self.use_error = error
        self.error = torch.zeros_like(like)

    def compress(self, p: Tensor, seed: int, step: int) -> tuple[Tensor, Message]:
        """(the decoded broadcast every worker applies, the message the server sends)."""
        corrected = p + self.error if self.use_error else p
        message = self.compressor.compress(corrected, seed, step, SERVER)
        decoded = self.compressor.decompress(message)
        if self.use_error:
            torch.sub(corrected, decoded, out=self.error)
        return decoded, message

    def norm(self) -> float:
        return float(self.error.norm())
