"""ACCORDION (Agarwal et al., MLSys 2021) as hard_threshold runs it for its Table 1:
per layer, switch Top-k between k_max (low compression) and k_min (high compression) by
whether the layer is in a "critical regime".

Every ``interval`` epochs, at the first step of the epoch, worker 0 (rank 0) measures each
layer's local mini-batch gradient norm D_l (hard_threshold's port; ``signal: minibatch``) and decides

    r_l = | ||D_l(prev)|| - ||D_l(now)|| | / ||D_l(prev)||;  k_max if r_l >= eta, else k_min

(all layers k_max at the first decision, prev initialised to 1e-8, and all k_max for the next
period after any learning-rate decay since the previous decision). The decision is broadcast,
so every worker compresses with the same per-layer k. The error-feedback memory is the
algorithm's and is kept across switches (the original code's reducer never wrote it: EF was
silently off; here it is on). Needs Top-k with ``scope=layer``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from compress_train.algorithms.communicator import Communicator
from compress_train.algorithms.controllers import Controller
from compress_train.compressors.scope import ScopedCompressor
from compress_train.compressors.topk import TopK


class Accordion(Controller):
    def __init__(
        self,
        comm: Communicator,
        compressor: ScopedCompressor,
        steps_per_epoch: int,
        interval: int = 10,
        eta: float = 0.5,
        k_max: float = 0.01,
        k_min: float = 0.001,
    ):
        if compressor is None or compressor.scope != "layer" or not isinstance(compressor.compressor, TopK):
            raise ValueError(
                "controller=accordion switches a per-layer Top-k: it needs compressor=topk with compressor.scope=layer."
            )
        self.comm, self.compressor, self.steps_per_epoch = comm, compressor, steps_per_epoch
        self.interval, self.eta, self.k_max, self.k_min = interval, eta, k_max, k_min
        self.prev = torch.full((len(compressor.bucket_sizes),), 1e-8, dtype=torch.float64)
        self.high = torch.ones(len(compressor.bucket_sizes), dtype=torch.float64)
        self.lr_at_check: float | None = None
        self.decisions = 0
        self.apply()

    def decide(self, norms: Tensor, lr: float) -> Tensor:
        """1.0 for the layers that get k_max: the rule of the module docstring (pure; tested)."""
        first = self.decisions == 0
        decayed = self.lr_at_check is not None and lr < self.lr_at_check
        critical = (self.prev - norms).abs() / self.prev >= self.eta
        return torch.ones_like(norms) if first or decayed else critical.to(norms.dtype)

    @classmethod
    def check(cls, params, compressor):
        errors = []
        interval = params.get("interval")
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            errors.append(f"`interval` must be an integer >= 1, but is {interval!r}.")
        for key in ("eta", "k_max", "k_min"):
            v = params.get(key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 1:
                errors.append(f"`{key}` must be in (0, 1], but is {v!r}.")
        if not errors and params["k_min"] > params["k_max"]:
            errors.append(f"`k_min` must be <= `k_max` ({params['k_max']}), but is {params['k_min']}.")
        if compressor["name"] != "topk" or compressor["scope"] != "layer":
            errors.append(
                "`name` 'accordion' switches a per-layer Top-k: it needs compressor=topk and "
                f"compressor.scope=layer, but they are {compressor['name']!r} and {compressor['scope']!r}."
            )
        return errors

    def before_step(self, step: int, grads: dict[int, Tensor], lr: float) -> None:
        if step % self.steps_per_epoch or (step // self.steps_per_epoch) % self.interval:
            return
        high = torch.zeros_like(self.high)
        norms = self.prev.clone()
        if 0 in grads:  # worker 0's process decides; the broadcast gives every process its choice
            norms = torch.stack([p.norm() for p in grads[0].split(self.compressor.bucket_sizes)]).to(torch.float64)
            high = self.decide(norms, lr)
        self.comm.broadcast_(high, src=0, counted=True)  # protocol traffic: in every worker's wire_bytes
        self.comm.broadcast_(norms, src=0, counted=True)
        self.high, self.prev, self.lr_at_check = high, norms, lr
        self.decisions += 1
        self.apply()

    def load_state_dict(self, state, strict: bool = True) -> None:
        super().load_state_dict(state, strict)
        self.apply()  # the compressor's per-layer k follows the restored decision

    def apply(self) -> None:
        self.compressor.overrides = {
            b: TopK(ratio=self.k_max if h else self.k_min) for b, h in enumerate(self.high.tolist())
        }

    def metrics(self) -> dict[str, float]:
        return {"accordion_high_layers": float(self.high.mean())}


IMPLEMENTATION = Accordion
