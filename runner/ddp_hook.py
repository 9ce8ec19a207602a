"""Our compressors and error-feedback modes as a PyTorch DDP communication hook.

``ddp_hook(compressor, params, ef=..., lr=...)`` (also ``compress_train.ddp_hook``) returns
``(state, hook)`` for ``DistributedDataParallel.register_comm_hook(state, hook)``. On every
gradient bucket DDP hands over, each rank does what a worker of ``algo=ef_sgd`` does (``algorithms/ef_sgd.py``,
``hard_threshold`` Alg. 1 lines 4-6 with ``ef=scaled``; ``comp_ams`` Alg. 2 lines 7-8 with
``ef=classic``): p = memory.corrected(g), send C(p), memory.update(p, decode C(p)); then it
returns (1/n) sum_i decode(message_i), summed in worker order, as the bucket's gradient. DDP does
not divide a hook's result by the world size: the hook returns the average itself.

Defaults: ``ef="scaled"``, ``scope="layer"``, i.e. the runner's ``algo=ef_sgd compressor.scope=layer``
(the runner's own scope default is ``model``: pass ``scope="model"`` and put the model in one DDP
bucket for ``algo=ef_sgd`` as it stands). Layer scope is the hook's default because it works with
any bucketing.

Contract:
- ``compressor``: a ``Compressor`` object, or a registry name (``compressors/registry.py``) with
  its parameters in ``compressor_params``; ``ef``: an ``algo.ef`` mode (``algorithms/error_feedback/``,
  its classes are used as they are). The memories live in ``state.memories``, one per parameter
  tensor (layer scope) or one for the model (model scope).
- ``scope="layer"`` (default): each parameter tensor is compressed on its own, bucket index =
  its position in ``params`` (what the runner's ``compressor.scope=layer`` does, including the
  shared randomness of random-k and RBGS), however DDP groups tensors into buckets.
  ``scope="model"``: the whole model's gradient, in ``params`` order, compressed once (the
  runner's ``compressor.scope=model``); DDP must then put every parameter in one bucket
  (``bucket_cap_mb`` above the model's size), else the hook raises.
- The exchange is the runner's own ``DistCommunicator`` (``runner/dist.py``): the same wire
  format, one allgather (header + padded byte buffer) per DDP bucket, or one allreduce of the
  payloads for an ``allreduce`` compressor (RBGS, count sketch), decoded once. It runs on the
  default process group, synchronously inside the hook (the returned future is already done).
  With several DDP buckets a step costs one header and one padding per bucket, so
  ``state.wire_bytes`` exceeds the runner's single allgather; the payload bits do not change.
- Bits, from the payloads produced: ``state.bits_up`` (this rank's payloads), ``state.bits_down``
  (the other ranks' payloads it received; with an allreduce, the summed payload), totals since
  the start; ``state.elements_up``; ``state.wire_bytes`` (bytes handed to the collectives);
  ``state.step`` (iterations done, the compressors' ``step``).
- ``lr``: the step size the step-unit memories (``scaled``, ``local_momentum``) work in; a number
  or a callable returning the current one (``lambda: opt.param_groups[0]["lr"]``). Unused by
  ``none``, ``classic`` and ``powersgd``.

With ``ef`` none/classic/scaled/powersgd and ``torch.optim.SGD(lr, momentum, weight_decay)``
(no Nesterov) or ``torch.optim.Adam(lr, betas, eps, weight_decay)`` this is ``algo=ef_sgd`` with
``algo.optimizer=sgd|adam``: the same server step on the averaged gradient. With
``ef=local_momentum`` (``def``'s EF baseline) the momentum and weight decay are each worker's,
before the memory: give them to ``ddp_hook(momentum=..., weight_decay=...)`` and use a plain
``torch.optim.SGD(lr)``. ``tests/test_ddp_hook.py`` checks this: 2 gloo ranks give the CLI run's
parameters bit for bit, and its bits; Adam and local_momentum agree to rounding (torch's Adam and
SGD round their updates differently from ``EFSGD``).

Example, one process per rank (``torchrun --nproc-per-node 2 train.py``)::

    import torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from compress_train.compressors.topk import TopK
    from compress_train.runner.ddp_hook import ddp_hook

    dist.init_process_group("gloo")
    model = DDP(make_model(), bucket_cap_mb=25)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    state, hook = ddp_hook(TopK(ratio=0.01), model.parameters(), ef="scaled",
                           lr=lambda: opt.param_groups[0]["lr"])
    model.register_comm_hook(state, hook)
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()  # the hook runs here
        opt.step()
    print(state.bits_up, state.bits_down)  # this rank's totals
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from compress_train.algorithms.error_feedback import ErrorFeedback, modes
from compress_train.algorithms.error_feedback import build as build_memory
from compress_train.algorithms.error_feedback.local_momentum import LocalMomentumMemory
from compress_train.algorithms.registry import EF_MODES
from compress_train.compressors import registry
from compress_train.compressors.base import CompressContext, Compressor
from compress_train.compressors.scope import SCOPES, Message
from compress_train.runner.dist import DistCommunicator

STEP_UNIT_EF = ("scaled", "local_momentum")  # memories kept in lr x gradient units: they need ``lr``


@dataclass
class HookState:
    """What the hook keeps between calls: the compressor, the EF memories, the counters."""

    compressor: Compressor
    ef: str
    scope: str
    layer_of: dict[int, int]  # id(parameter) -> its index in ``params`` (the runner's layer)
    layer_sizes: list[int]
    lr: float | Callable[[], float] = 1.0
    seed: int = 0
    momentum: float = 0.0
    weight_decay: float = 0.0
    memories: dict[int, ErrorFeedback] = field(default_factory=dict)
    step: int = 0
    bits_up: int = 0
    bits_down: int = 0
    elements_up: int = 0
    comm: DistCommunicator | None = None

    @property
    def wire_bytes(self) -> int:
        return 0 if self.comm is None else self.comm.wire_bytes

    def current_lr(self) -> float:
        return float(self.lr() if callable(self.lr) else self.lr)

    def memory(self, key: int, like: Tensor) -> ErrorFeedback:
        if key not in self.memories:
            memory = build_memory(self.ef, like.numel(), like.device, like.dtype)
            if isinstance(memory, LocalMomentumMemory):
                memory.mu = self.momentum
            self.memories[key] = memory
        return self.memories[key]


def ddp_hook(
    compressor: Compressor | str,
    params: Iterable[Tensor],
    ef: str = "scaled",
    lr: Any = None,
    seed: int = 0,
    scope: str = "layer",
    compressor_params: dict[str, Any] | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    process_group: Any = None,
) -> tuple[HookState, Callable]:
    """``(state, hook)`` for ``model.register_comm_hook(state, hook)``: see the module docstring.
    ``params``: the model's parameters in the model's order (``model.parameters()``); ``seed``:
    the run seed of the compressors' shared randomness."""
    if isinstance(compressor, str):
        compressor = registry.build(compressor, dict(compressor_params or {}))
    elif compressor_params:
        raise ValueError(
            "`compressor_params` is only for a compressor given by name, but a "
            f"{type(compressor).__name__} object was given."
        )
    if not isinstance(compressor, Compressor):
        raise TypeError(f"`compressor` must be a Compressor or one of {registry.available()}, but is {compressor!r}.")
    errors = list(compressor.check())
    if ef not in EF_MODES:
        errors.append(f"`ef` must be one of {modes()}, but is {ef!r}.")
    if scope not in SCOPES:
        errors.append(f"`scope` must be one of {list(SCOPES)}, but is {scope!r}.")
    if lr is not None and not callable(lr) and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
        errors.append(f"`lr` must be a number > 0 or a callable returning the current lr, but is {lr!r}.")
    if ef in STEP_UNIT_EF and lr is None:
        errors.append(
            f"`lr` must be given with ef={ef!r} (its memory is in step units): a number or a "
            "callable returning the optimizer's current lr."
        )
    if ef != "local_momentum" and (momentum or weight_decay):
        errors.append(
            "`momentum` and `weight_decay` are local_momentum's (each worker's, before the memory); "
            f"with ef={ef!r} give them to the optimizer."
        )
    if process_group is not None:
        errors.append(
            "`process_group` must be None: the hook exchanges on the default group "
            "(runner/dist.py's DistCommunicator takes no group)."
        )
    plist = [p for p in params if p.requires_grad]
    if not plist:
        errors.append("`params` is empty: pass the model's parameters (model.parameters()).")
    if errors:
        raise ValueError("ddp_hook: " + " ".join(errors))
    state = HookState(
        compressor,
        ef,
        scope,
        {id(p): i for i, p in enumerate(plist)},
        [p.numel() for p in plist],
        lr=1.0 if lr is None else lr,
        seed=seed,
        momentum=momentum,
        weight_decay=weight_decay,
    )
    return state, compressed_allreduce_hook


def compressed_allreduce_hook(state: HookState, bucket):  # no annotations: DDP checks them as objects
    """DDP comm hook: compress this bucket's gradients with EF, exchange, and return their average,
    a ``torch.futures.Future[torch.Tensor]`` of the bucket buffer's shape."""
    if state.comm is None:
        state.comm = DistCommunicator(bucket.buffer().device)
    lr = state.current_lr()
    layers, grads = bucket_layers(state, bucket)
    if state.weight_decay:  # local_momentum: weight decay at the worker, before the memory
        grads = [g.add(p.detach().reshape(-1), alpha=state.weight_decay) for g, p in zip(grads, bucket.parameters())]
    if state.scope == "model":
        order = sorted(range(len(layers)), key=layers.__getitem__)
        parts = [torch.cat([grads[j] for j in order])]
        keys = [0]
    else:
        parts, keys = grads, layers
    rank = state.comm.local_workers[0]
    payloads = []
    for key, g in zip(keys, parts):
        memory = state.memory(key, g)
        p = memory.corrected(g, lr)
        payload = state.compressor.compress(p, CompressContext(state.seed, state.step, key, rank))
        memory.update(p, state.compressor.decompress(payload), lr)
        payloads.append(payload)
    mine = Message(payloads)
    averaged = exchange_and_average(state, mine)
    if state.scope == "model":
        pieces = averaged[0].split([state.layer_sizes[layers[j]] for j in order])
        by_position = dict(zip(order, pieces))
        averaged = [by_position[j] for j in range(len(layers))]
    if bucket.is_last():
        state.step += 1
    out = torch.cat([a.to(bucket.buffer().dtype) for a in averaged]).view_as(bucket.buffer())
    fut: torch.futures.Future = torch.futures.Future()
    fut.set_result(out)
    return fut


def bucket_layers(state: HookState, bucket) -> tuple[list[int], list[Tensor]]:
    """The layer indices (positions in ``params``) of the bucket's tensors and their flat gradients,
    in the bucket's order; in model scope the bucket must hold the whole model."""
    layers = []
    for p in bucket.parameters():
        if id(p) not in state.layer_of:
            raise ValueError(
                f"ddp_hook: a parameter of shape {tuple(p.shape)} in DDP bucket {bucket.index()} "
                "is not in `params`: pass the wrapped model's parameters()."
            )
        layers.append(state.layer_of[id(p)])
    if state.scope == "model" and len(layers) != len(state.layer_sizes):
        raise ValueError(
            f"ddp_hook: scope='model' compresses the whole model at once, but DDP bucket "
            f"{bucket.index()} holds {len(layers)} of its {len(state.layer_sizes)} parameter tensors: "
            "raise DistributedDataParallel's `bucket_cap_mb` above the model's size, or use scope='layer'."
        )
    return layers, [g.reshape(-1) for g in bucket.gradients()]


def exchange_and_average(state: HookState, mine: Message) -> list[Tensor]:
    """Per payload of ``mine``: (1/n) sum_i decode(payload of worker i), in worker order (allgather),
    or the decoded sum of one allreduce over n; the bit counters advanced from the payloads."""
    comm, decode = state.comm, state.compressor.decompress
    assert comm is not None  # the hook opens the communicator on its first call, before this
    state.bits_up += mine.bits
    state.elements_up += mine.elements
    if getattr(state.compressor, "allreduce", False):
        total = comm.allreduce_sum([mine])
        state.bits_down += total.bits
        return [decode(p) / comm.world_size for p in total.payloads]
    messages = comm.allgather([mine])
    rank = comm.local_workers[0]
    state.bits_down += sum(m.bits for i, m in enumerate(messages) if i != rank)
    averaged: list[Tensor] = []
    for b in range(len(mine.payloads)):
        summed = decode(messages[0].payloads[b]).clone()
        for m in messages[1:]:
            summed += decode(m.payloads[b])
        averaged.append(summed / comm.world_size)
    return averaged
