"""One process per worker under torch's own launcher (``launcher=torchrun``): the workers read
the frozen ``config.yaml`` (Hydra would resolve ``${now:}`` again in every child).

A worker that dies: with ``launcher.max_restarts`` left, torchrun's elastic agent restarts the
whole group and every rank resumes from the newest complete checkpoint (``runner/run.py``
``resume_point``). Without, the surviving ranks' collectives fail (at once for a dead peer's closed
socket, after ``launcher.timeout_s`` for a hung one), torchrun ends the group and prints its failure
report. torchrun's stderr (its workers' too) is passed through as it comes and its tail is kept:
the report's "Root Cause" entry names the rank and how it ended (``exitcode: -9`` = SIGKILL). The
parent then marks ``summary.json`` ``failed``, records that cause under ``reason`` (and under
``error`` too when no worker wrote one), keeps the metrics written so far, and raises
``WorkersFailed`` with one line, which ``compress-train`` prints as ``error: ...`` (exit code 2). A
worker that refused its data or parameters before a step (``rejected (rank r, data): ...`` on its
stderr) is the simulator's case instead: the same ``DataFileError`` / ``ParameterError`` is raised, and
``launch`` removes the fresh run directory as it does for the simulator.

Several nodes (``launcher.nnodes`` > 1): every node runs the same ``compress-train`` command with its
own ``launcher.node_rank``; their torchrun agents meet in a c10d rendezvous at
``launcher.rdzv_endpoint`` (node 0 hosts its store) and each starts ``workers / nnodes`` processes.
c10d numbers the nodes itself (by host name, then agent pid), so global rank 0, the one writer of
metrics and summary, may live on any node: all nodes give the same ``hydra.run.dir`` on a shared
filesystem, which also holds every rank's checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from compress_train.algorithms.base import ParameterError
from compress_train.datasets.errors import DataFileError
from compress_train.runner.launch import FROZEN
from compress_train.runner.metrics import write_json_atomic
from compress_train.runner.run import RunDirError
from compress_train.runner.signals import EXIT_CODES

log = logging.getLogger("compress_train")
TAIL_BYTES = 64 * 1024  # torchrun's failure report is the last ~25 lines of its stderr


class WorkersFailed(RuntimeError):
    """torchrun's workers exited with an error (their own messages are above it in the log)."""


class StderrTee:
    """Copies a pipe to this process's stderr as the bytes come (progress bars included) and keeps
    the last ``TAIL_BYTES`` of it."""

    def __init__(self, pipe):
        self.pipe, self.tail = pipe, bytearray()
        self.thread = threading.Thread(target=self._pump, name="torchrun-stderr", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        out = getattr(sys.stderr, "buffer", None)
        fd = self.pipe.fileno()
        while chunk := os.read(fd, 65536):
            try:
                if out is not None:
                    out.write(chunk)
                    out.flush()
                else:
                    sys.stderr.write(chunk.decode(errors="replace"))
                    sys.stderr.flush()
            except (OSError, ValueError):  # our own stderr closed: keep draining the pipe
                out = None
            self.tail += chunk
            del self.tail[:-TAIL_BYTES]

    def text(self, timeout: float = 10.0) -> str:
        self.thread.join(timeout)  # EOF once torchrun and its workers have exited
        return bytes(self.tail).decode(errors="replace")


def how_it_ended(exitcode: int) -> str:
    """``-9`` -> ``SIGKILL``; ``1`` -> ``exit code 1`` (torchrun reports a signal as a negative code)."""
    if exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def root_cause(stderr: str) -> dict[str, Any] | None:
    """The rank, exit code and time of the first failure in torchrun's report, or None when its
    stderr holds no report (then torchrun's own "failed (exitcode: N) local_rank: R" line, which
    is the global rank under ``--standalone``)."""
    at = stderr.rfind("Root Cause")
    if at >= 0:
        block = stderr[at:].split("=====", 1)[0]
        rank = re.search(r"^\s*rank\s*:\s*(\d+)", block, re.M)
        code = re.search(r"^\s*exitcode\s*:\s*(-?\d+)", block, re.M)
        if rank and code:
            when = re.search(r"^\s*time\s*:\s*(\S+)", block, re.M)
            return {"rank": int(rank.group(1)), "exitcode": int(code.group(1)), "time": when and when.group(1)}
    lines = re.findall(r"failed \(exitcode: (-?\d+)\) local_rank: (\d+)", stderr)
    if lines:
        code, rank = lines[0]
        return {"rank": int(rank), "exitcode": int(code), "time": None}
    return None


def _last_step(run_dir: Path) -> int | None:
    """The step of the last metrics row rank 0 wrote (a torn last line is skipped)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _newest_checkpoint(run_dir: Path) -> int | None:
    from compress_train.runner import checkpoint

    done = checkpoint.complete(run_dir)
    try:
        return checkpoint.read_manifest(done[-1])["step"] if done else None
    except checkpoint.CheckpointError:
        return None


REJECTED = re.compile(r"^rejected \(rank \d+, (data|parameters)\): (.+)$", re.MULTILINE)


def rejection(stderr: str) -> DataFileError | ParameterError | None:
    """The error a worker refused its data or parameters with (runner/worker.py prints it as ``rejected
    (rank r, data|parameters): message``), as the simulator would raise it; None when no worker did."""
    found = REJECTED.search(stderr)
    if found is None:
        return None
    kind, message = found.groups()
    return DataFileError(message) if kind == "data" else ParameterError(message)


def failure_reason(returncode: int, stderr: str, run_dir: Path, max_restarts: int) -> str:
    """One sentence: which worker died and how, when, and how far the run had come."""
    cause = root_cause(stderr)
    if cause is None:
        who = (
            f"torchrun was killed by {how_it_ended(returncode)}"
            if returncode < 0
            else f"torchrun workers failed with exit code {returncode} (their errors are printed above)"
        )
    else:
        how = how_it_ended(cause["exitcode"])
        who = f"torchrun worker rank {cause['rank']} " + (
            f"died ({how})" if cause["exitcode"] < 0 else f"failed ({how})"
        )
        if cause["time"]:
            who += f" at {cause['time']}"
    facts = []
    step, saved = _last_step(run_dir), _newest_checkpoint(run_dir)
    if step is not None:
        facts.append(f"after logged step {step}")
    if saved is not None:
        facts.append(f"newest checkpoint: step {saved}")
    if max_restarts:
        facts.append(f"launcher.max_restarts={max_restarts} used up")
    return who + (f" ({'; '.join(facts)})" if facts else "")


def record_failure(summary_path: Path, reason: str) -> dict[str, Any] | None:
    """Mark the workers' summary ``failed`` with ``reason`` (a rank that died by a signal left it
    ``running``; a surviving rank may have written its own collective error under ``error``)."""
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return None
    if summary.get("status") in ("starting", "running", "failed"):
        summary["status"] = "failed"
        summary.setdefault("error", reason)
        summary["reason"] = reason
        write_json_atomic(summary_path, summary)
    return summary


RDZV_ID = "compress-train"  # one id on every node; the endpoint already names the run's rendezvous


def rendezvous_args(launcher: DictConfig) -> list[str]:
    """``--standalone`` on one node; on several, a c10d rendezvous whose store node 0 hosts (an
    explicit ``is_host``: nodes sharing one machine, as in the tests, would each guess they do)."""
    nnodes = int(launcher.get("nnodes", 1) or 1)
    if nnodes == 1:
        return ["--standalone"]
    is_host = "true" if int(launcher.get("node_rank", 0)) == 0 else "false"
    return [
        "--nnodes",
        str(nnodes),
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        str(launcher.rdzv_endpoint),
        "--rdzv-id",
        RDZV_ID,
        "--rdzv-conf",
        f"is_host={is_host}",
    ]


def check_shared_run_dir(launcher: DictConfig) -> None:
    """Several nodes must write into one run directory, and the default one is named by each node's
    own clock: without ``hydra.run.dir`` (or ``hydra.sweep.dir``) rank 0's manifest and the other
    nodes' checkpoint files would land in different directories, and no checkpoint could be resumed."""
    if int(launcher.get("nnodes", 1) or 1) == 1 or not HydraConfig.initialized():
        return
    given = {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.hydra}
    if not given & {"hydra.run.dir", "hydra.sweep.dir"}:
        raise RunDirError(
            "`hydra.run.dir` must be given when `launcher.nnodes` > 1: the same directory on every node, "
            "on a filesystem they share (every rank's checkpoint and rank 0's metrics go there)"
        )


def launch_torchrun(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """``python -m torch.distributed.run --standalone --nproc-per-node n -m compress_train.runner
    --config RUN_DIR/config.yaml`` (n = workers / launcher.nnodes; a c10d rendezvous instead of
    ``--standalone`` on several nodes), with the run directory as the workers' working directory."""
    check_shared_run_dir(cfg.launcher)
    nproc = cfg.workers // int(cfg.launcher.get("nnodes", 1) or 1)
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // nproc)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    max_restarts = int(cfg.launcher.get("max_restarts", 0) or 0)
    if max_restarts:
        # The workers' process group then gets a store of its own per attempt (rank 0 hosts it at the port
        # the agent picks for that attempt), not the agent's, which keeps the previous attempt's keys: a
        # restarted gloo group would otherwise read a dead peer's address ("connectFullMesh failed ...
        # Connection refused"; pytorch/pytorch#135712).
        env.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *rendezvous_args(cfg.launcher),
        "--nproc-per-node",
        str(nproc),
        "--max-restarts",
        str(max_restarts),
        "-m",
        "compress_train.runner",
        "--config",
        str((run_dir / FROZEN).resolve()),
    ]
    log.info("launching: %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stderr=subprocess.PIPE)
    tee = StderrTee(proc.stderr)
    try:
        returncode = proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reached torchrun and its workers too: they checkpoint and stop
        try:
            returncode = proc.wait(timeout=60)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    stderr = tee.text()
    assert proc.stderr is not None  # opened with stderr=PIPE
    proc.stderr.close()
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    if returncode == 0:
        return summary
    if summary is not None and summary.get("status") in EXIT_CODES:
        return summary  # interrupted / preempted: a checkpoint is written, the CLI exits 130 / 143
    rejected = rejection(stderr)
    if rejected is not None:
        raise rejected  # the workers' data or parameters were refused before a step: launch() cleans up
    reason = failure_reason(returncode, stderr, run_dir, max_restarts)
    record_failure(summary_path, reason)
    raise WorkersFailed(f"{reason}; outputs so far are in {run_dir}")


IMPLEMENTATION = launch_torchrun
