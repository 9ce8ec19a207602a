"""Random block gradient sparsification (RBGS), ``def`` Sec. 5 (baselines.md C8).

Per bucket of n entries (with ``scope: layer``, the default, a bucket is one parameter tensor):
one contiguous block of k = max(1, floor(n / R)) entries starting at an offset drawn uniformly
from {0, ..., n - 1}, wrapping to index 0. The offset comes from the project's generator seeded
by (run seed, step, bucket) (``compressors/base.py``'s shared randomness), the same on every
worker, so no index is sent: the payload is the k fp32 values (32 k bits).

C is linear in x for a fixed (seed, step, bucket): C(a) + C(b) = C(a + b), so workers sum their
block buffers with one allreduce (``allreduce``: the Communicator's ``allreduce_sum``) and
nobody decodes n messages. E||C(v) - v||^2 = (1 - k/n) ||v||^2. Tiny tensors still send one
entry, so the effective ratio is below the nominal R.
"""

from __future__ import annotations

import torch
from torch import Tensor

from compress_train.compressors.base import CompressContext, Compressor, Payload, generator_for
from compress_train.compressors.topk import dense_zeros


def block_size(n: int, ratio: int) -> int:
    """max(1, floor(n / R)) entries (the authors' ``max(1, int(n / R))``)."""
    return max(1, n // ratio)


class RBGS(Compressor):
    name = "rbgs"
    linear = True
    shared_randomness = True
    allreduce = True  # payloads are summed by one allreduce, not allgathered

    def __init__(self, ratio: int = 64):
        self.ratio = ratio

    def check(self) -> list[str]:
        r = self.ratio
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            return [
                f"`ratio` must be an integer >= 1 (the compression ratio R; the paper uses 16..1024), but is {r!r}."
            ]
        return []

    def params(self) -> dict:
        return {"ratio": self.ratio}

    def start(self, n: int, key: tuple[int, ...]) -> int:
        return int(torch.randint(n, (1,), generator=generator_for(key)))

    def compress(self, x: Tensor, ctx: CompressContext) -> Payload:
        n = x.numel()
        k = block_size(n, self.ratio)
        key = ctx.key(shared=True)
        s = self.start(n, key)
        end = s + k
        if end <= n:
            values = x[s:end].to(torch.float32)
        else:
            values = torch.cat([x[s:], x[: end - n]]).to(torch.float32)
        return Payload({"values": values}, numel=n, elements=k, meta={"key": key, "start": s})

    def decompress(self, payload: Payload) -> Tensor:
        values = payload.tensors["values"]
        n, k, s = payload.numel, values.numel(), payload.meta["start"]
        out = (
            dense_zeros(n, values.device)
            if values.dtype == torch.float32
            else torch.zeros(n, dtype=values.dtype, device=values.device)
        )
        end = s + k
        if end <= n:
            out[s:end] = values
        else:
            out[s:] = values[: n - s]
            out[: end - n] = values[n - s :]
        return out


IMPLEMENTATION = RBGS
