"""The network task's simulated workers' forward/backward as one batched call (opt-in).

With many workers and small per-worker batches (``def``: 16 x 8) a device runs the sequential loop
of ``NetworkTask.local_gradients`` as many small kernels. ``BatchedWorkers.local_gradients``
computes the same gradients, losses and BatchNorm statistics with ``torch.func.vmap`` over the
workers of ``torch.func.grad`` of a ``functional_call``:

* each worker draws its batch, its augmentation and its dropout seed exactly as the sequential
  path does (``dropout_seed(seed, step, w)``);
* each worker's dropout masks are drawn before the batched call, from that seed, by the same
  random call the dropout kernel makes (CPU: ``bernoulli_`` as ``F.dropout``; CUDA: the fused
  ``native_dropout``), in the order the model calls its ``nn.Dropout`` modules (recorded once per
  input shape), and applied inside the batched call as ``x * mask``;
* each worker's BatchNorm buffers start from the same values and are updated by its own batch;
  afterwards the model keeps worker 0's (``train.bn_stats=broadcast``) and, for ``average``,
  ``task.worker_buffers`` holds every worker's, as the sequential path leaves them; integer
  buffers (``num_batches_tracked``) advance once per worker, as there.

Gradients equal the sequential path's up to float rounding (the batched kernels sum in another
order). Gradients at per-worker points (``def``'s detached points) batch the points too. Where
batches differ in shape it returns None and the task runs its loop. Not covered: a functional
``F.dropout`` outside ``nn.Dropout`` modules, which this class cannot see (none of the network
task's models use one), and a model whose ``nn.Dropout`` calls change with the input's values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from compress_train.compressors.base import generator_for


def dropout_masks(shapes: list[tuple[int, ...]], ps: list[float], device: torch.device) -> list[Tensor]:
    """The scaled keep-masks that the model's dropout calls of these input shapes would draw next
    from the global generator of ``device``, in call order (``x * mask`` is their output)."""
    masks = []
    for shape, p in zip(shapes, ps):
        if p == 0:
            masks.append(torch.ones(shape, device=device))
        elif device.type == "cuda":  # the fused kernel's Philox draw; its output is x * mask * scale
            _, keep = torch.native_dropout(torch.ones(shape, device=device), p, True)
            masks.append(keep.to(torch.float32) * (1.0 / (1.0 - p)))
        else:  # F.dropout on a CPU: empty_like(x).bernoulli_(1 - p).div_(1 - p)
            masks.append(torch.empty(shape, device=device).bernoulli_(1 - p).div_(1 - p))
    return masks


class MaskedDropout(nn.Module):
    """Stands in for an ``nn.Dropout`` during the batched call: ``x * mask``, the mask being the
    next of ``source.masks`` (this worker's slice under vmap)."""

    def __init__(self, source: BatchedWorkers):
        super().__init__()
        self.source = source

    def forward(self, x: Tensor) -> Tensor:
        mask = self.source.masks[self.source.next_mask]
        self.source.next_mask += 1
        return x * mask


class BatchedWorkers:
    """``local_gradients`` of ``task`` (a ``NetworkTask``; typed loosely, as this module must not
    import the task's) for all its local workers in one vmapped call; ``dropout_seed(seed, step,
    worker)`` is the task's seed of a worker's dropout draws."""

    def __init__(self, task: Any, dropout_seed: Callable[[int, int, int], int]):
        self.task, self.dropout_seed = task, dropout_seed
        self.model = task.model
        self.param_names = list(task.flat.layer_names)
        self.dropouts = [(name, m) for name, m in self.model.named_modules() if isinstance(m, nn.Dropout)]
        self.calls: dict[tuple[int, ...], list[tuple[str, tuple[int, ...]]]] = {}  # sample shape -> (module, shape)
        self.masks: list[Tensor] = []
        self.next_mask = 0

    def dropout_calls(self, x: Tensor) -> list[tuple[str, tuple[int, ...]]]:
        """The model's ``nn.Dropout`` calls on a batch shaped as ``x``: (module name, input shape) in
        call order, recorded once per shape by an evaluation-mode pass (no statistics move, no
        random number is drawn)."""
        key = tuple(x.shape)
        if key not in self.calls:
            seen: list[tuple[str, tuple[int, ...]]] = []
            hooks = [
                m.register_forward_pre_hook(lambda _m, args, n=name: seen.append((n, tuple(args[0].shape))))
                for name, m in self.dropouts
            ]
            was_training = self.model.training
            try:
                self.model.eval()
                with torch.no_grad():
                    self.model(x)
            finally:
                self.model.train(was_training)
                for h in hooks:
                    h.remove()
            self.calls[key] = seen
        return self.calls[key]

    def worker_batch(self, step: int, w: int) -> tuple[Tensor, Tensor]:
        """Worker ``w``'s batch at ``step``, as ``NetworkTask.local_gradients`` draws it."""
        t = self.task
        idx = torch.from_numpy(t.streams[w].next()).to(t.device)
        x = t.x_train[idx]
        if t.data.augment is not None:
            x = t.data.augment(x, generator_for((t.cfg.seed, step, w), "cpu"))
        return x, t.y_train[idx]

    def local_gradients(
        self, step: int, points: dict[int, Tensor] | None = None
    ) -> tuple[dict[int, Tensor], list[float]] | None:
        """(gradients by worker, losses), as the sequential path's (the batch accuracies into the
        task's ``last_accuracies``): at the model's parameters or,
        with ``points``, each worker at its own flat point. None (nothing drawn) where a worker's
        batch differs in shape from worker 0's."""
        t = self.task
        workers = list(t.comm.local_workers)
        states = [s.state() for s in (t.streams[w] for w in workers)]
        batches = [self.worker_batch(step, w) for w in workers]
        if any(x.shape != batches[0][0].shape for x, _ in batches):
            for w, state in zip(workers, states):
                t.streams[w].seek(state)
            return None
        xs = torch.stack([x for x, _ in batches])
        ys = torch.stack([y for _, y in batches])
        calls = self.dropout_calls(xs[0])
        p_of = {name: float(m.p) for name, m in self.dropouts}
        per_worker = []
        for w in workers:
            torch.manual_seed(self.dropout_seed(t.cfg.seed, step, w))
            per_worker.append(dropout_masks([s for _, s in calls], [p_of[n] for n, _ in calls], t.device))
        masks = [torch.stack([m[i] for m in per_worker]) for i in range(len(calls))]

        params = self.worker_params(workers, points)
        buffers = dict(self.model.named_buffers())
        stacked = {n: b.unsqueeze(0).repeat(len(workers), *([1] * b.dim())).clone() for n, b in buffers.items()}

        def loss_of(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor, y: Tensor, m: list[Tensor]):
            self.masks, self.next_mask = m, 0
            out = functional_call(self.model, (p, b), (x,))
            loss = F.cross_entropy(out, y)
            return loss, (loss.detach(), (out.detach().argmax(1) == y).sum())

        originals = self.swap_dropouts({name: MaskedDropout(self) for name, _ in self.dropouts})
        try:
            grads, (losses, correct) = vmap(
                grad(loss_of, has_aux=True), in_dims=(None if points is None else 0, 0, 0, 0, 0)
            )(params, stacked, xs, ys, masks)
        finally:
            self.swap_dropouts(originals)
            self.masks = []
        flat = torch.cat([grads[n].reshape(len(workers), -1) for n in self.param_names], dim=1)
        self.keep_buffers(buffers, stacked, len(workers))
        t.last_accuracies = [c / ys.shape[1] for c in correct.tolist()]
        return {w: flat[i].clone() for i, w in enumerate(workers)}, losses.tolist()

    def worker_params(self, workers: list[int], points: dict[int, Tensor] | None) -> dict[str, Tensor]:
        """The parameters by name: the model's, or with ``points`` each stacked over the workers
        from their flat points (worker order)."""
        named = dict(self.model.named_parameters())
        if points is None:
            return {n: named[n].detach() for n in self.param_names}
        sizes = self.task.flat.layer_sizes
        parts = [points[w].split(sizes) for w in workers]
        return {
            n: torch.stack([p[i] for p in parts]).view(len(workers), *named[n].shape)
            for i, n in enumerate(self.param_names)
        }

    def keep_buffers(self, buffers: dict[str, Tensor], stacked: dict[str, Tensor], n: int) -> None:
        """The model's buffers after the workers' passes, as the sequential path leaves them."""
        t = self.task
        for name, b in buffers.items():
            if b.is_floating_point():
                b.copy_(stacked[name][0])  # worker 0's statistics
            else:  # a counter: every worker's pass advanced it
                b.add_((stacked[name] - b).sum(0))
        t.worker_buffers = []
        if t.average_buffers and t.buffers:
            floats = [name for name, b in buffers.items() if b.is_floating_point()]
            t.worker_buffers = [torch.cat([stacked[name][i].reshape(-1) for name in floats]) for i in range(n)]

    def swap_dropouts(self, replacements: dict[str, nn.Module]) -> dict[str, nn.Module]:
        """Put ``replacements`` in place of the named modules; return the modules they replaced."""
        replaced: dict[str, Any] = {}
        for name, module in replacements.items():
            parent_name, _, child = name.rpartition(".")
            parent = self.model.get_submodule(parent_name) if parent_name else self.model
            replaced[name] = getattr(parent, child)
            setattr(parent, child, module)
        return replaced
