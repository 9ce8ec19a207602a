"""Increasing accuracy and double encoding: the exchange shared by aiade's Algorithms 1-3.

Every worker i keeps s^i (the running sum of what it sent), the server keeps s (the running
mean of those) and every node keeps v (the running sum of what the server sent). At iteration
k, with the error budget eps_k given by the algorithm:

    worker i:  d_k^i = Q(g_k^i - s_{k-1}^i, eps_k);  s_k^i = d_k^i + s_{k-1}^i;  send d_k^i
    server:    s_k = (1/N) sum_i d_k^i + s_{k-1};     u_k = Q(s_k - v_{k-1}, eps_k);  send u_k
    everyone:  v_k = u_k + v_{k-1}

(Alg. 1 lines 4-16; the same lines in Alg. 2 and 3). Only differences of slowly changing
vectors are quantized, so the vectors shrink with the error budget and the bits per message
stay bounded. Q is the bounded-error quantizer (``compressors/bounded.py``): deterministic
(||Q(x) - x|| <= eps) for Alg. 1 and 2, unbiased stochastic (E||Q(x) - x||^2 <= eps) for Alg. 3.

The server's state is replicated in every process (each decodes every worker's payload and
re-encodes s_k - v_{k-1} with the same randomness, worker id -1), so one process and many
give the same v_k. Bits: uplink = worker i's payload, downlink = u_k's payload; beside them
the Lemma 2.1 figure for the same vectors and budgets (``bits_lemma21`` up, ``bits_lemma21_down``).
"""

from __future__ import annotations

import time
from typing import cast

import torch
from torch import Tensor

from compress_train.algorithms.base import StepReport
from compress_train.algorithms.communicator import Communicator
from compress_train.algorithms.state import Stateful
from compress_train.compressors.base import CompressContext
from compress_train.compressors.bounded import BoundedQuantizer
from compress_train.compressors.scope import Message, ScopedCompressor

SERVER = -1  # the server's id in the randomness key of its (stochastic) re-encoding


class DoubleEncoding(Stateful):
    """s^i, s and v are the state (``algorithms/state.py``); the quantizer is wiring."""

    wiring = Stateful.wiring | {"quantizer"}

    def __init__(self, params: Tensor, comm: Communicator, compressor: ScopedCompressor, seed: int):
        if len(compressor.bucket_sizes) != 1:
            raise ValueError("double encoding quantizes the whole vector: convex models have one parameter block")
        self.quantizer = cast(BoundedQuantizer, compressor.compressor)
        self.comm, self.seed = comm, seed
        self.s_worker = {w: torch.zeros_like(params) for w in comm.local_workers}
        self.s_server = torch.zeros_like(params)
        self.v = torch.zeros_like(params)

    def _encode(self, x: Tensor, eps: float, step: int, worker: int) -> Message:
        return Message([self.quantizer.compress_eps(x, eps, CompressContext(self.seed, step, 0, worker))])

    def exchange(self, grads: dict[int, Tensor], eps: float, step: int) -> tuple[Tensor, StepReport]:
        """One round with error budget ``eps``; returns v_k (every node's estimate of grad f)."""
        t0 = time.perf_counter()
        local = [self._encode(grads[w] - self.s_worker[w], eps, step, w) for w in self.comm.local_workers]
        t1 = time.perf_counter()
        messages = self.comm.allgather(local)
        t2 = time.perf_counter()
        decoded = [self.quantizer.decompress(m.payloads[0]) for m in messages]  # once each, worker order
        for w in self.comm.local_workers:
            self.s_worker[w] += decoded[w]
        total = decoded[0].clone()
        for d in decoded[1:]:
            total += d
        self.s_server += total / len(messages)
        down = self._encode(self.s_server - self.v, eps, step, SERVER)
        self.v += self.quantizer.decompress(down.payloads[0])
        n = len(messages)
        # the Lemma 2.1 figure is a number beside the payload, not part of it: an uncounted side channel
        lemma = self.comm.gather_floats([float(m.payloads[0].meta["bits_lemma21"]) for m in local])
        report = StepReport(
            bits_up=sum(m.bits for m in messages) / n,
            bits_down=down.bits,
            elements_up=sum(m.elements for m in messages) / n,
            time_compress_s=(t1 - t0) + (time.perf_counter() - t2),
            time_comm_s=t2 - t1,
            extra={"bits_lemma21": sum(lemma) / n, "bits_lemma21_down": down.payloads[0].meta["bits_lemma21"]},
        )
        return self.v, report
