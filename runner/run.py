"""Run one training job in this process: identity of the run, sinks, progress bar, trainer."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import torch
from omegaconf import DictConfig, OmegaConf

from compress_train.algorithms.communicator import Communicator
from compress_train.compressors.registry import Registry
from compress_train.runner import checkpoint, resume_rules
from compress_train.runner.config.check import component_params
from compress_train.runner.metrics import LIVE, Sink, run_status
from compress_train.runner.signals import StopRequest
from compress_train.runner.trainer import Trainer, pick_device

log = logging.getLogger("compress_train")
FROZEN = "config.yaml"  # the resolved config in the run directory (runner/launch.py writes it)
LOGGERS = Registry("compress_train.runner.loggers", "logger.name")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """The summary fields that say what this run is (docs/architecture.md §5)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg_version = version("compress-train")
    except PackageNotFoundError:
        pkg_version = None
    config = cast("dict[str, Any]", OmegaConf.to_container(cfg, resolve=True))  # a DictConfig gives a dict
    data = {k: v for k, v in config.items() if k != "resume"}
    data.get("launcher", {}).pop("node_rank", None)  # every node of one multi-node run is the same run
    resolved = OmegaConf.to_yaml(data)
    return {
        "status": "starting",
        "method": cfg.get("label"),
        "experiment": cfg.get("experiment_name"),
        "scale": cfg.get("scale") if cfg.get("experiment_name") else None,
        "algo": cfg.algo.name,
        "algo_params": component_params(cfg.algo),
        "compressor": "none",  # set by the trainer when the algorithm builds its compressor
        "compressor_params": {},
        "ef": None,
        "workers": cfg.workers,
        "launcher": cfg.launcher.name,
        "seed": cfg.seed,
        "model": cfg.model.name,
        "dataset": {"name": cfg.dataset.name},
        "final": {},
        "num_params": None,
        "config_digest": hashlib.sha256(resolved.encode()).hexdigest()[:16],
        "git_commit": _git_commit(),
        "versions": {"compress_train": pkg_version, "torch": torch.__version__, "python": platform.python_version()},
    }


class Progress:
    """tqdm bar with loss, accuracy and bits per worker (writer process only)."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="train", unit="it", dynamic_ncols=True, file=sys.stderr)
        self.acc: tuple[str, Any] | None = None  # the last (metric, value) shown

    def __call__(self, step: int, row: dict[str, Any] | None) -> None:
        if self.bar is None:
            return
        self.bar.update(step - self.bar.n)
        if row is not None:
            self.acc = next(
                ((k, row[k]) for k in ("test_acc", "perplexity", "hit_rate@10", "rel_dist") if row.get(k) is not None),
                self.acc,
            )
            post = {"loss": f"{row['train_loss']:.4f}", "bits/worker": f"{row['bits_up']:.3g}"}
            if self.acc is not None:
                post[{"test_acc": "acc", "rel_dist": "rel.dist"}.get(self.acc[0], self.acc[0])] = f"{self.acc[1]:.4g}"
            self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def final_line(summary: dict[str, Any]) -> str:
    """One log line with the run's outcome, in the task's own metric (docs/architecture.md §5); a metric
    the run has not logged yet (stopped before its first row or evaluation) reads "not logged yet"."""
    f = summary["final"]

    def num(key: str, spec: str) -> str:
        return format(f[key], spec) if f.get(key) is not None else "not logged yet"

    if "problem" in summary:
        quality = f"||x-x*||/||x0-x*|| {num('rel_dist', '.3g')}, f-f* {num('suboptimality', '.3g')}"
    elif "perplexity" in f:
        quality = f"test perplexity {num('perplexity', '.2f')}"
    elif "hit_rate@10" in f:
        quality = f"HR@10 {num('hit_rate@10', '.4f')}"
    else:
        quality = f"test acc {num('test_acc', '.4f')}"
    return (
        f"{summary['status']}: step {summary['steps']}, train loss {num('train_loss', '.4f')}, {quality}, "
        f"bits up per worker {summary['totals']['bits_up']:.4g}"
    )


def make_sinks(cfg: DictConfig, run_dir: Path, writer: bool) -> list[Sink]:
    return LOGGERS.get(cfg.logger.name)(cfg, run_dir) if writer else []


class RunDirError(RuntimeError):
    """A run directory that already belongs to another run (reuse it only through resume=auto)."""


def resume_point(cfg: DictConfig, run_dir: Path) -> Path | None:
    """The checkpoint this run continues from (``resume``, or torchrun's restart of a failed group),
    or None for a fresh run, which needs a run directory no other run has written into."""
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0
    resume = cfg.get("resume") or ("auto" if restarted else None)
    if resume is None:
        if (run_dir / "metrics.jsonl").exists():
            raise RunDirError(
                f"run directory {run_dir} already holds a run (metrics.jsonl): continue it with "
                "resume=auto, or choose another hydra.run.dir"
            )
        return None
    if resume == "auto" and not checkpoint.complete(run_dir):
        log.info(f"resume=auto: no complete checkpoint in {run_dir}, so the run starts from step 0")
        return None
    return checkpoint.find(str(resume), run_dir)


FINISHED = ("completed", "converged", "diverged")


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def finished_run(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """With ``resume=auto``, the summary of this very run (same config) if it already finished: a
    re-run sweep skips its completed jobs."""
    if cfg.get("resume") != "auto":
        return None
    previous = read_summary(run_dir)
    if previous is None:
        return None
    same = previous.get("config_digest") == run_identity(cfg)["config_digest"]
    return previous if same and previous.get("status") in FINISHED else None


def check_before_writing(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """Decide whether this run may use ``run_dir``, before anything is written there.

    A fresh run needs a directory no run has written into (RunDirError). A resume must continue the
    same run (``resume_rules``: ResumeRefused names every key that differs, old and new). A finished
    run resumed with nothing to extend is left as it is: its summary is returned. A finished run
    extended without a checkpoint to continue from stops with a CheckpointError."""
    run_dir = Path(run_dir)
    resume = cfg.get("resume")
    if resume is None:
        resume_point(cfg, run_dir)  # RunDirError when the directory holds a run
        return None
    if resume == "auto":
        done = checkpoint.complete(run_dir)
        folder = checkpoint.find("auto", run_dir) if done else None
    else:
        folder = checkpoint.find(str(resume), run_dir)
    new = resume_rules.plain_config(cfg)
    if folder is not None:
        old, where = resume_rules.stored_config(folder), folder.parent.parent
    else:
        frozen = run_dir / FROZEN
        old, where = (resume_rules.plain_config(OmegaConf.load(frozen)) if frozen.is_file() else None), run_dir
    diff = resume_rules.check(old, new, where)
    previous = read_summary(run_dir)
    if previous is not None and run_status(previous) in LIVE and isinstance(previous.get("writer"), dict):
        writer = previous["writer"]
        raise RunDirError(
            f"run directory {run_dir} is still being written by pid {writer.get('pid')} on {writer.get('host')} "
            f"(status {previous['status']}): stop that run before resuming it"
        )
    if previous is None or previous.get("status") not in FINISHED:
        return None
    if not resume_rules.extends(diff):
        return previous
    if folder is None:
        raise checkpoint.CheckpointError(
            f"resume=auto: {run_dir} holds a {previous['status']} run without a checkpoint to extend it from "
            "(train.keep_checkpoints=0 keeps none); start a new run"
        )
    return None


def nothing_to_resume(run_dir: Path, summary: dict[str, Any]) -> str:
    return (
        f"{run_dir} already holds this run, finished with status {summary['status']} at step "
        f"{summary.get('steps')}: nothing to resume (raise train.max_steps or train.epochs to extend it)"
    )


def run_training(
    cfg: DictConfig, comm: Communicator, run_dir: Path, device: torch.device | None = None
) -> dict[str, Any]:
    """Train with ``comm``'s workers; write outputs into ``run_dir``; return the summary."""
    device = device or pick_device(cfg.device)
    finished = finished_run(cfg, run_dir)
    if finished is not None:
        if comm.is_writer:
            log.info(f"{run_dir} already holds this run, finished with status {finished['status']}: nothing to resume")
        return finished
    resume_from = resume_point(cfg, run_dir)
    # every rank has looked at the run directory before the writer truncates or creates metrics.jsonl
    # (a slower rank would otherwise find the writer's fresh file and take it for another run's)
    comm.gather_floats([0.0] * len(comm.local_workers))
    if resume_from is not None and comm.is_writer:
        checkpoint.carry_metrics(resume_from, run_dir, checkpoint.read_manifest(resume_from)["rows"])
    elif resume_from is None and comm.is_writer:
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)  # a restarted group's rows before any checkpoint
    summary = run_identity(cfg)
    sinks = make_sinks(cfg, run_dir, comm.is_writer)
    info = log.info if comm.is_writer else (lambda msg: None)
    stop = StopRequest().install()
    try:
        trainer = Trainer(cfg, comm, sinks, summary, info, device, run_dir, resume_from)
        previous = read_summary(run_dir) if trainer.step >= trainer.total_steps else None
        if previous is not None and previous.get("status") in FINISHED:
            info(nothing_to_resume(run_dir, previous))  # a longer limit that another limit still caps
            return previous
        if comm.is_writer:
            info(
                f"{cfg.algo.name} | compressor {summary['compressor']} | ef {trainer.algo.ef} | "
                f"{cfg.workers} worker(s), {cfg.launcher.name} | {summary['dataset']['description']} | "
                f"{trainer.task.numel:,} parameters | {trainer.total_steps} steps ({trainer.limit}) | {run_dir}"
            )
        progress = Progress(trainer.total_steps, comm.is_writer and cfg.logger.progress)
        try:
            trainer.train(progress, stop)
        finally:
            progress.close()
        if comm.is_writer:
            info(final_line(summary))
    except BaseException as err:
        if summary.get("status") in ("starting", "running"):
            summary["status"] = "failed"
            summary["error"] = f"{type(err).__name__}: {err}"
            for sink in sinks:
                try:
                    sink.summary(summary)
                except OSError:  # the failure being reported may be this very write
                    pass
        raise
    finally:
        stop.restore()
        for sink in sinks:
            sink.close()
    return summary
