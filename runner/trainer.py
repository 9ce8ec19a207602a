"""The training loop shared by the simulator and torchrun (docs/architecture.md §2, "Trainer").

Each process runs the workers in ``comm.local_workers``. The task (``NetworkTask``: a model on
a dataset, dropout seeded by (seed, step, worker); ``ConvexTask``: f = (1/N) sum_i f_i with a
known optimum) gives every local worker its gradient at the point the algorithm names; the
algorithm compresses, exchanges and updates the parameters. The writer process (worker 0's)
logs a metrics row every ``train.log_every`` steps, evaluates every ``train.eval_every`` steps,
and keeps ``summary.json`` current. A NaN/inf loss ends the run with status ``diverged``, a
convex run reaching ``train.tol`` with ``converged``, Ctrl-C with ``interrupted``; all keep
everything written so far.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, cast

import torch
from omegaconf import DictConfig, OmegaConf

from compress_train.algorithms.base import ParameterError
from compress_train.algorithms.communicator import Communicator
from compress_train.algorithms.registry import ALGORITHMS, CONTROLLERS
from compress_train.compressors import registry as compressors
from compress_train.compressors.scope import ScopedCompressor
from compress_train.runner import checkpoint, network_model, resume_rules
from compress_train.runner.config.check import component_params, compressor_params, qualify
from compress_train.runner.metrics import HEARTBEAT_S, Sink, writer_stamp
from compress_train.runner.schedule import lr_at
from compress_train.runner.signals import StopRequest
from compress_train.runner.tasks import select_task


class FaultInjection:
    """``COMPRESS_TRAIN_KILL_AT=RANK:STEP`` (tests and ``scripts/soak_resume.sh`` only): the process
    running worker RANK kills itself with SIGKILL right after step STEP, on the first attempt of a
    torchrun group only (``TORCHELASTIC_RESTART_COUNT`` 0), so that restarts and resumes are tested
    against a real death."""

    def __init__(self, rank: int | None = None, step: int | None = None):
        self.rank, self.step = rank, step

    @classmethod
    def from_env(cls, rank: int) -> "FaultInjection":
        spec = os.environ.get("COMPRESS_TRAIN_KILL_AT")
        if not spec or int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0:
            return cls()
        target, step = (int(v) for v in spec.split(":"))
        return cls(rank, step) if target == rank else cls()

    def maybe_kill(self, step: int) -> None:
        if self.step is not None and step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


CHECKPOINT_SECONDS = 600  # checkpoint_every=auto: about every ten minutes of work
AUTO_PROBE = 10  # steps timed before the auto interval is fixed
UNIFORM_LOSS_FACTOR = 10.0  # a classifier's training loss this many times ln(classes) has diverged


@dataclass
class Totals:
    """Cumulative traffic and time since step 0 (per worker, mean over workers)."""

    bits_up: float = 0.0
    bits_down: float = 0.0
    elements_up: float = 0.0
    wire_bytes: float = 0.0
    total_error: float = 0.0
    time_compute_s: float = 0.0
    time_compress_s: float = 0.0
    time_comm_s: float = 0.0
    density_sum: float = 0.0
    steps: int = 0
    extra: dict[str, float] = field(default_factory=dict)  # algorithm-specific cumulative counts
    last: dict[str, float] = field(default_factory=dict)  # this step's values (``*_step``, density)

    def cumulative(self) -> dict[str, float]:
        """What every metrics row and the summary's ``totals`` report."""
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("density_sum", "steps", "extra", "last")
        }
        return {**out, "avg_density": self.density_sum / max(self.steps, 1), **self.extra}


def clip_(grads: dict[int, torch.Tensor], max_norm: float) -> None:
    """Each worker's gradient scaled to norm <= max_norm before it reaches the compressor
    (torch.nn.utils.clip_grad_norm_'s rule on the whole flat gradient; hard_threshold's LSTM: 0.4)."""
    for g in grads.values():
        norm = float(g.norm())
        if norm > max_norm:
            g.mul_(max_norm / (norm + 1e-6))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def gathered_fields(gathered: list[float], fields: list[list[float]]) -> list[list[float]]:
    """Split one ``gather_floats`` of this process's fields laid end to end (every process sends the
    same layout) back into each field over all workers, in worker order: one collective per step
    instead of one per field."""
    width = sum(len(f) for f in fields)
    chunks = [gathered[i : i + width] for i in range(0, len(gathered), width)]
    out, start = [], 0
    for f in fields:
        out.append([x for chunk in chunks for x in chunk[start : start + len(f)]])
        start += len(f)
    return out


class Trainer:
    def __init__(
        self,
        cfg: DictConfig,
        comm: Communicator,
        sinks: list[Sink],
        summary: dict[str, Any],
        log: Callable[[str], None],
        device: torch.device,
        run_dir: Path,
        resume_from: Path | None = None,
    ):
        self.cfg, self.comm, self.sinks, self.summary, self.log = cfg, comm, sinks, summary, log
        self.device, self.run_dir = device, Path(run_dir)
        self.step = self.first_step = self.rows = 0
        self.window: list[float] = []  # losses since the last metrics row
        self.acc_window: list[float] = []  # a classifier's training-batch accuracies, the same steps
        self.step_acc: float | None = None  # the last step's, over all workers (None: not a classifier)
        self.first_loss: float | None = None  # step 1's loss, at the initial point (train.diverge_ratio)
        self.elapsed_at_start = 0.0  # work time before this process started (a resume)
        self.interval: int | None = None  # checkpoint_every=auto, once measured
        self.last_beat = time.monotonic()  # the writer's last summary write (heartbeat)
        self.fault = FaultInjection.from_env(min(comm.local_workers))
        self.network = network_model.from_config(cfg.get("network"))  # projected comm time, or None
        algo_cls = ALGORITHMS.get(cfg.algo.name)
        self.task = task = select_task(cfg)(cfg, comm, log, device, algo_cls.needs)
        summary.update(task.summary_fields)
        summary["num_params"] = task.numel
        self.scoped: ScopedCompressor | None = None

        def make_compressor() -> ScopedCompressor:
            params = compressor_params(cfg.compressor, task.numel, algo_cls.needs)
            k = params.get("k")
            if isinstance(k, int) and k > task.numel:
                raise ParameterError(
                    f"`compressor.k` must be at most the model's {task.numel:,} parameters (a value and an index "
                    f"per kept element: k = d already costs twice the dense gradient), but is {k:,}."
                )
            comp = compressors.build(cfg.compressor.name, params)
            # the values in force (a rule such as lam_rule=inv_sqrt_kmin is resolved only here)
            summary["compressor"] = cfg.compressor.name
            summary["compressor_params"] = {**component_params(cfg.compressor), **comp.params()}
            self.scoped = ScopedCompressor(comp, task.layer_sizes, cfg.compressor.scope)
            return self.scoped

        try:
            self.algo = algo_cls.create(
                task.context(algo_cls.needs, cfg.algo.name),
                comm,
                make_compressor,
                seed=cfg.seed,
                **component_params(cfg.algo),
            )
        except ParameterError as err:  # a theorem's condition, in the algorithm's own key names
            raise ParameterError(qualify("algo", str(err))) from None
        summary["ef"] = self.algo.ef
        theory = self.algo.theory()
        if theory:
            summary["theory"] = theory
        self.steps_per_epoch = task.steps_per_epoch
        schedule = cfg.train.get("lr_schedule")
        self.base_lr = self.algo.lr
        self.schedule = OmegaConf.to_container(schedule) if schedule is not None else None
        controller = cfg.get("controller") or {"name": "none"}
        self.controller = CONTROLLERS.get(controller["name"])(
            comm, self.scoped, task.steps_per_epoch, **component_params(controller)
        )
        total = cfg.train.epochs * self.steps_per_epoch if cfg.train.epochs else None
        limits = {
            f"train.epochs={cfg.train.epochs} x {self.steps_per_epoch} steps": total,
            f"train.max_steps={cfg.train.max_steps}": cfg.train.max_steps,
        }
        self.limit, self.total_steps = min(((k, n) for k, n in limits.items() if n), key=lambda kv: kv[1])
        self.totals = Totals()
        if resume_from is not None:
            self.restore(resume_from)

    # -- one iteration --------------------------------------------------------------------------

    def run_step(self, step: int) -> float:
        t0 = time.perf_counter()
        points = self.algo.gradient_points()
        if points is None:
            grads, losses = self.task.local_gradients(step, self.algo.gradient_point())
        else:
            grads, losses = self.task.local_gradients(step, self.algo.gradient_point(), points=points)
        if self.cfg.train.get("grad_clip"):
            clip_(grads, self.cfg.train.grad_clip)
        if self.schedule is not None:
            self.algo.lr = lr_at(self.base_lr, step / self.steps_per_epoch, cast(dict[str, Any], self.schedule))
        wire_before = self.comm.wire_bytes  # a controller's broadcast decision is this step's traffic too
        self.controller.before_step(step, grads, self.algo.lr)
        t1 = time.perf_counter()
        report = self.algo.step(grads, step)
        self.task.after_step()
        accuracies = self.task.last_accuracies
        fields = [losses, [report.error_norms.get(w, 0.0) for w in self.comm.local_workers]]
        if accuracies is not None:
            fields.append(accuracies)
        all_losses, errors, *all_accuracies = gathered_fields(
            self.comm.gather_floats([x for f in fields for x in f]), fields
        )
        if all_accuracies:
            self.step_acc = sum(all_accuracies[0]) / len(all_accuracies[0])
        t = self.totals
        t.steps += 1
        t.bits_up += report.bits_up
        t.bits_down += report.bits_down
        t.elements_up += report.elements_up
        t.wire_bytes += self.comm.wire_bytes - wire_before
        density = report.elements_up / self.task.numel
        t.density_sum += density
        t.total_error += sum(e * e for e in errors) / len(errors)
        t.time_compute_s += t1 - t0
        t.time_compress_s += report.time_compress_s
        t.time_comm_s += report.time_comm_s
        collectives = self.comm.take_collectives()
        if self.network is not None:
            projected = self.network.step_seconds(collectives, self.cfg.workers)
            report.extra["time_comm_model_s"] = projected
        t.last = {
            "bits_up_step": report.bits_up,
            "bits_down_step": report.bits_down,
            "elements_up_step": report.elements_up,
            "wire_bytes_step": self.comm.wire_bytes - wire_before,
            "density": density,
            "error_norm": sum(errors) / len(errors),
        }
        for key, value in report.extra.items():
            t.extra[key] = t.extra.get(key, 0.0) + value
            t.last[f"{key}_step"] = value
        return sum(all_losses) / len(all_losses)

    # -- the loop -------------------------------------------------------------------------------

    def row(self, step: int, train_loss: float, start: float, train_acc: float | None = None) -> dict[str, Any]:
        """One metrics row; ``train_acc`` (a classifier's mean training-batch accuracy over the same
        steps as ``train_loss``) only where given."""
        return {
            "step": step,
            "epoch": step / self.steps_per_epoch,
            "samples": step * self.task.samples_per_step,
            "lr": self.algo.lr,
            "train_loss": train_loss,
            **({"train_acc": train_acc} if train_acc is not None else {}),
            **self.totals.cumulative(),
            **self.totals.last,
            "time_s": time.perf_counter() - start,
            **self.task.row_metrics(),
            **self.controller.metrics(),
        }

    def evaluate_into(self, row: dict[str, Any]) -> None:
        """Evaluate the algorithm's output model (the writer evaluates; every process takes part in
        the communication an output other than the iterate costs: ``bits_eval``, apart from bits_up)."""
        point = self.algo.evaluation_point()
        self.comm.take_collectives()  # not training traffic
        if point is not None:
            model, bits = point
            self.totals.extra["bits_eval"] = self.totals.extra.get("bits_eval", 0.0) + bits
            row["bits_eval"] = self.totals.extra["bits_eval"]
        if not self.comm.is_writer:
            return
        if point is None:
            row.update(self.task.evaluate())
        else:
            iterate = self.task.params.clone()
            self.task.params.copy_(model)
            try:
                row.update(self.task.evaluate())
            finally:
                self.task.params.copy_(iterate)
        self.write_summary("running", row)

    def emit(self, row: dict[str, Any]) -> None:
        self.rows += 1
        if self.comm.is_writer:
            for sink in self.sinks:
                sink.log(row)

    def write_summary(self, status: str, final: dict[str, Any]) -> None:
        """The summary with this status and final row; its ``writer`` stamp is the heartbeat readers
        tell a dead run by (``metrics.run_status``)."""
        self.summary.update(status=status, final=final, steps=self.totals.steps, totals=self.totals.cumulative())
        if self.comm.is_writer:
            self.summary["writer"] = writer_stamp()
            self.last_beat = time.monotonic()
            for sink in self.sinks:
                sink.summary(self.summary)

    def heartbeat(self) -> None:
        """Rewrite the summary (status running) when the last write is ``HEARTBEAT_S`` old."""
        if self.comm.is_writer and time.monotonic() - self.last_beat > HEARTBEAT_S:
            self.write_summary("running", self.summary.get("final") or {})

    # -- checkpoints --------------------------------------------------------------------------

    def checkpoint_due(self, step: int, start: float) -> bool:
        """``train.checkpoint_every``: N steps, or ``auto`` (about every CHECKPOINT_SECONDS of work, the
        interval fixed from the first AUTO_PROBE steps' time, the writer's figure, shared by all)."""
        every = self.cfg.train.checkpoint_every
        if every == "auto" and self.interval is None and step - self.first_step >= AUTO_PROBE:
            per_step = (time.perf_counter() - start - self.elapsed_at_start) / (step - self.first_step)
            mine = max(1.0, round(CHECKPOINT_SECONDS / max(per_step, 1e-9)))
            self.interval = int(self.comm.gather_floats([mine] * len(self.comm.local_workers))[0])
        interval = every if isinstance(every, int) else self.interval
        return interval is not None and interval != 0 and step % interval == 0

    def save_checkpoint(self, start: float) -> None:
        """Write this process's part, then (writer) the shared part and, once all have written, the
        manifest. A write that fails removes the incomplete checkpoint when this process writes all of it."""
        folder = checkpoint.step_dir(self.run_dir, self.step)
        try:
            self._write_checkpoint(folder, start)
        except BaseException:
            if self.comm.is_writer and len(self.comm.local_workers) == self.cfg.workers:
                shutil.rmtree(folder, ignore_errors=True)
            raise

    def _write_checkpoint(self, folder: Path, start: float) -> None:
        rank = min(self.comm.local_workers)
        checkpoint.save_atomic(
            {
                "algo": self.algo.state_dict(),
                "controller": self.controller.state_dict(),
                "task": self.task.state_dict(),
                "totals": asdict(self.totals),
                "wire_bytes": self.comm.wire_bytes,
                "workers": list(self.comm.local_workers),
            },
            folder / f"rank_{rank}.pt",
        )
        if self.comm.is_writer:
            checkpoint.save_atomic(
                {
                    "params": self.task.params,
                    "step": self.step,
                    "window": list(self.window),
                    "acc_window": list(self.acc_window),
                    "first_loss": self.first_loss,
                    "rows": self.rows,
                    "elapsed": time.perf_counter() - start,
                    "resumed": self.summary.get("resumed"),
                },
                folder / "shared.pt",
            )
        self.comm.gather_floats([0.0] * len(self.comm.local_workers))  # every process has written its part
        if self.comm.is_writer:
            ranks = [f"rank_{w}.pt" for w in range(0, self.cfg.workers, len(self.comm.local_workers))]
            resolved = cast("dict[str, Any]", OmegaConf.to_container(self.cfg, resolve=True))
            config = {k: v for k, v in resolved.items() if k != "resume"}
            checkpoint.write_manifest(folder, self.step, self.cfg.workers, ["shared.pt", *ranks], self.rows, config)
            checkpoint.prune(self.run_dir, max(1, self.cfg.train.keep_checkpoints))

    def save_checkpoint_at_end(self, start: float) -> None:
        """The end checkpoint (to extend the run later), unless ``train.keep_checkpoints`` is 0."""
        if self.cfg.train.keep_checkpoints:
            self.save_checkpoint(start)

    def restore(self, folder: Path) -> None:
        """Continue from the checkpoint in ``folder``: every piece or a CheckpointError naming the file."""
        manifest = checkpoint.read_manifest(folder)
        diff = resume_rules.check(resume_rules.stored_config(folder), resume_rules.plain_config(self.cfg), folder)
        if manifest["world_size"] != self.cfg.workers:
            raise checkpoint.CheckpointError(
                f"checkpoint {folder} was written with workers={manifest['world_size']}, "
                f"this run has workers={self.cfg.workers}"
            )
        rank_file = folder / f"rank_{min(self.comm.local_workers)}.pt"
        if rank_file.name not in manifest["files"]:
            raise checkpoint.CheckpointError(
                f"checkpoint {folder} holds {manifest['files']}: it was written by "
                f"another launcher layout than this run's ({rank_file.name} missing)"
            )
        mine, shared = checkpoint.load(rank_file), checkpoint.load(folder / "shared.pt")
        try:
            if mine["workers"] != list(self.comm.local_workers):
                raise ValueError(f"it holds workers {mine['workers']}, this process runs {self.comm.local_workers}")
            self.task.params.copy_(shared["params"])
            self.algo.load_state_dict(mine["algo"])
            self.controller.load_state_dict(mine["controller"])
            self.task.load_state_dict(mine["task"])
            self.totals = Totals(**mine["totals"])
        except (KeyError, ValueError, TypeError, RuntimeError) as err:
            raise checkpoint.CheckpointError(f"cannot restore from {rank_file}: {type(err).__name__}: {err}") from None
        self.comm.wire_bytes = mine["wire_bytes"]
        self.step = self.first_step = int(shared["step"])
        self.window, self.first_loss, self.rows = list(shared["window"]), shared["first_loss"], int(shared["rows"])
        self.acc_window = list(shared.get("acc_window", []))
        self.elapsed_at_start = float(shared["elapsed"])
        before = shared.get("resumed") or {"count": 0, "from_steps": []}
        self.summary["resumed"] = {
            "count": before["count"] + 1,
            "from_steps": [*before["from_steps"], self.step],
            "checkpoint": str(folder),
            # every resume: where it continued and the config keys it changed, [old, new]
            "history": [*before.get("history", []), {"step": self.step, "checkpoint": str(folder), "changes": diff}],
        }
        self.log(f"resumed from {folder} at step {self.step} (resume number {before['count'] + 1})")

    # -- the loop -------------------------------------------------------------------------------

    def divergence(self, loss: float) -> str | None:
        """Why the run has diverged, or None: a non-finite loss or parameter; with ``train.diverge_ratio``
        set, a loss above that many times the first step's loss (the loss at the initial point), or, for
        a classifier, above ``UNIFORM_LOSS_FACTOR`` times ln(classes), the loss of a uniform guess."""
        if not math.isfinite(loss):
            return f"training loss is {loss}"
        ratio = self.cfg.train.diverge_ratio
        if ratio is not None and self.first_loss is not None and self.first_loss > 0 and loss > ratio * self.first_loss:
            return (
                f"training loss {loss:.4g} exceeds train.diverge_ratio={ratio:g} x the first step's loss "
                f"{self.first_loss:.4g}"
            )
        classes = self.summary.get("num_classes")
        if (
            ratio is not None
            and isinstance(classes, int)
            and classes > 1
            and loss > UNIFORM_LOSS_FACTOR * math.log(classes)
        ):
            return (
                f"training loss {loss:.4g} exceeds {UNIFORM_LOSS_FACTOR:g} x ln({classes} classes) = "
                f"{UNIFORM_LOSS_FACTOR * math.log(classes):.4g}, the loss of a uniform guess (train.diverge_ratio=null turns "
                "this check off)"
            )
        if not bool(torch.isfinite(self.task.params).all()):
            return "the parameters are no longer finite"
        return None

    def train(self, progress=None, stop: StopRequest | None = None) -> str:
        cfg = self.cfg.train
        start = time.perf_counter() - self.elapsed_at_start
        last: dict[str, Any] = {}
        status = "completed"
        self.write_summary("running", {})
        try:
            if self.task.log_initial and self.step == 0:  # convex tasks: the starting point x_0 is the first row
                self.emit(self.row(0, self.task.row_metrics().get("train_loss", math.nan), start))
            for step in range(self.step + 1, self.total_steps + 1):
                loss = self.run_step(step - 1)
                self.step = step
                self.fault.maybe_kill(step)
                self.window.append(loss)
                if self.step_acc is not None:
                    self.acc_window.append(self.step_acc)
                if self.first_loss is None and math.isfinite(loss):
                    self.first_loss = loss
                reason = self.divergence(loss)
                if reason is not None:
                    status = "diverged"
                    last = self.row(step, loss, start, self.step_acc)
                    self.emit(last)
                    self.summary["reason"] = reason
                    self.log(f"diverged at step {step}: {reason}")
                    break
                converged = self.task.converged()
                if converged or step % cfg.log_every == 0 or step % cfg.eval_every == 0 or step == self.total_steps:
                    acc = sum(self.acc_window) / len(self.acc_window) if self.acc_window else None
                    last = self.row(step, sum(self.window) / len(self.window), start, acc)
                    self.window, self.acc_window = [], []
                    if step % cfg.eval_every == 0 or step == self.total_steps or converged:
                        self.evaluate_into(last)
                    self.emit(last)
                    if progress is not None:
                        progress(step, last)
                elif progress is not None:
                    progress(step, None)
                if converged:
                    status = "converged"
                    self.log(f"converged at step {step}: {self.task.convergence_note()}")
                    break
                self.heartbeat()
                request = stop.agreed(self.comm) if stop is not None else None
                if request is not None or self.checkpoint_due(step, start):
                    self.save_checkpoint(start)
                if request is not None:
                    status = request
                    self.log(f"{request} at step {step}: checkpoint written, continue with resume=auto")
                    break
            else:
                self.save_checkpoint_at_end(start)
            if status == "converged":
                self.save_checkpoint_at_end(start)
        except OverflowError as err:  # a quantizer out of range (compressors/bounded.py): a result, not a crash
            rel = self.task.row_metrics().get("rel_dist")
            status = "completed" if rel is not None and rel < 1e-6 else "diverged"
            last = self.row(self.totals.steps, math.nan, start)
            self.emit(last)
            self.summary["reason"] = f"the quantizer cannot go on ({err})"
            self.log(f"{status} at step {self.totals.steps}: the quantizer cannot go on ({err})")
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, mid-step, without a checkpoint
            status = "interrupted"
            self.log("interrupted: metrics so far are kept; summary status 'interrupted'")
        if (
            status in ("completed", "converged", "diverged")
            and self.cfg.train.keep_checkpoints == 0
            and self.comm.is_writer
        ):
            checkpoint.prune(self.run_dir, 0)  # a finished run keeps none: those of the way served resumes only
        self.write_summary(status, last)
        return status
