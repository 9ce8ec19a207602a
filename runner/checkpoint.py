"""Checkpoints of everything a step depends on, and the exact resume from them.

One checkpoint is a folder ``RUN_DIR/checkpoints/step_<step>/``:

- ``rank_<r>.pt``, written by every process for the workers it runs: the algorithm's state
  (``Stateful.state_dict``: moments, server state, every local worker's error memory), the
  controller's, the task's (data-stream positions, BatchNorm buffers, LSTM hidden states), the
  cumulative counters and this process's communicator byte count;
- ``shared.pt``, by the writer process: the parameter vector, the step, the loss window of the
  next metrics row, the first step's loss, the metrics row count, the elapsed time (the W&B run
  id lives in ``RUN_DIR/wandb_run_id.txt``, written when the run starts);
- ``manifest.json``, by the writer process LAST, after every rank has written (a collective):
  its presence marks the checkpoint complete. It records the SHA-256 of every other file, the
  metrics row count and the resolved config.

Each file is written to a temporary name, flushed, fsynced and renamed. The newest
``train.keep_checkpoints`` complete checkpoints are kept (0: none once the run has finished).
Before a resume every file is checked against its recorded SHA-256: ``resume=auto`` (or a run
directory) falls back to the newest intact checkpoint with a warning naming the damaged file, and
stops when none is left; a checkpoint folder named explicitly must itself be intact. Everything loads with
``torch.load(weights_only=True)``; RNGs need no saving: every random draw derives from
(seed, step, worker). A restore that cannot be completed stops with a ``CheckpointError``
naming the file; it never starts fresh silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from compress_train.runner.metrics import OutputError

FOLDER = "checkpoints"
MANIFEST = "manifest.json"
FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or restored (the message names the file)."""


def step_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / FOLDER / f"step_{step:09d}"


def _fsync_replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as f:
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, rename. A write that fails (a
    full disk) removes the temporary file and raises OutputError naming the file and the cause."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:  # a file object: a full disk surfaces as OSError(ENOSPC), not torch's RuntimeError
            torch.save(obj, f)
        _fsync_replace(tmp, path)
    except BaseException as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        cause = _os_error(err)
        if cause is not None:
            raise OutputError(f"cannot write checkpoint file {path}: {cause.strerror or cause}") from None
        raise


def _os_error(err: BaseException | None) -> OSError | None:
    """The OSError behind ``err``: torch reports a failed write as a RuntimeError raised while it
    closes the archive, with the file's OSError (ENOSPC) as its context."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError):
            return err
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(
    folder: Path, step: int, world_size: int, files: list[str], rows: int, config: dict[str, Any] | None = None
) -> None:
    """The last file of a checkpoint: what it holds with each file's SHA-256, the metrics rows logged
    up to it and the resolved config it was written under (what a resume is compared with,
    ``runner/resume_rules.py``)."""
    tmp = folder / (MANIFEST + ".tmp")
    try:
        data: dict[str, Any] = {
            "format": FORMAT,
            "step": step,
            "world_size": world_size,
            "files": files,
            "rows": rows,
            "sha256": {name: sha256(folder / name) for name in files},
        }
        if config is not None:
            data["config"] = config
        tmp.write_text(json.dumps(data, indent=1))
        _fsync_replace(tmp, folder / MANIFEST)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint manifest {folder / MANIFEST}: {err}") from None


def damage(folder: Path) -> str | None:
    """What is wrong with a complete checkpoint's files (naming the first bad one), or None when
    every file is present and matches its recorded SHA-256 (older manifests record none)."""
    manifest = read_manifest(folder)
    recorded = manifest.get("sha256") or {}
    for name in manifest["files"]:
        path = folder / name
        if not path.is_file():
            return f"checkpoint file {path} is missing (the checkpoint is incomplete)"
        if name in recorded and sha256(path) != recorded[name]:
            return (
                f"cannot read checkpoint file {path}: its SHA-256 differs from the one recorded in "
                f"{folder / MANIFEST} (the file is damaged)"
            )
    return None


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr, flush=True)


def complete(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (a folder without its manifest is not one)."""
    root = Path(run_dir) / FOLDER
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file())


def prune(run_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` complete checkpoints (0: none); remove older ones and incomplete
    leftovers older than the newest complete one."""
    done = complete(run_dir)
    for old in done[:-keep] if keep > 0 else done:
        shutil.rmtree(old, ignore_errors=True)
    if done:
        newest = done[-1].name
        for p in (Path(run_dir) / FOLDER).iterdir():
            if p.is_dir() and not (p / MANIFEST).is_file() and (p.name < newest or keep == 0):
                shutil.rmtree(p, ignore_errors=True)
    if keep == 0:
        try:
            (Path(run_dir) / FOLDER).rmdir()
        except OSError:  # absent, or a checkpoint another process is still writing
            pass


def find(resume: str, run_dir: Path) -> Path:
    """The checkpoint folder ``resume`` names: ``auto`` = the newest intact complete one of
    ``run_dir``, otherwise a checkpoint folder (which must be intact) or a run directory (its
    newest intact one). A damaged checkpoint passed over is named in a warning on stderr; a
    CheckpointError names the damage when no intact checkpoint is left."""
    target = Path(run_dir) if resume == "auto" else Path(resume).expanduser()
    if (target / MANIFEST).is_file():
        problem = damage(target)
        if problem is not None:
            raise CheckpointError(problem)
        return target
    done = complete(target)
    if not done:
        raise CheckpointError(
            f"resume={resume}: no complete checkpoint in {target / FOLDER} "
            f"(a checkpoint is complete once its {MANIFEST} is written)"
        )
    problems = []
    for folder in reversed(done):
        try:
            problem = damage(folder)
        except CheckpointError as err:  # an unreadable manifest
            problem = str(err)
        if problem is None:
            return folder
        problems.append(problem)
        if folder != done[0]:
            _warn_once(f"{problem}; resuming from the previous complete checkpoint instead")
    raise CheckpointError(f"resume={resume}: no intact checkpoint left in {target / FOLDER}: " + "; ".join(problems))


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        int(manifest["step"]), int(manifest["world_size"]), int(manifest["rows"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"cannot read checkpoint manifest {path}: {err}") from None
    if manifest.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint manifest {path} has format {manifest.get('format')!r}, this version reads {FORMAT}"
        )
    return manifest


def load(path: Path) -> dict[str, Any]:
    """One checkpoint file, weights only; a missing or corrupt file stops naming it."""
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {path} is missing (the checkpoint is incomplete)") from None
    except Exception as err:  # a truncated or corrupt file: torch raises several kinds
        raise CheckpointError(f"cannot read checkpoint file {path}: {type(err).__name__}: {err}") from None


def carry_metrics(folder: Path, run_dir: Path, rows: int) -> None:
    """``run_dir``'s ``metrics.jsonl`` as the checkpoint in ``folder`` saw it: its own run's file cut
    back to the first ``rows`` rows, or, resuming another run's checkpoint, that run's first rows."""
    source = Path(folder).resolve().parent.parent
    if source == Path(run_dir).resolve():
        truncate_metrics(run_dir, rows)
    else:
        truncate_metrics(source, rows, into=Path(run_dir))


def truncate_metrics(run_dir: Path, rows: int, into: Path | None = None) -> None:
    """Cut ``metrics.jsonl`` back to its first ``rows`` rows (those logged up to the checkpoint);
    with ``into``, write those rows to ``into``'s ``metrics.jsonl`` instead."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        if rows:
            raise CheckpointError(f"{path} is missing, but the checkpoint counts {rows} rows logged")
        return
    text = path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < rows:
        raise CheckpointError(f"{path} holds {len(lines)} rows, fewer than the {rows} the checkpoint counts")
    kept = "".join(line + "\n" for line in lines[:rows])
    target = (into if into is not None else Path(run_dir)) / "metrics.jsonl"
    if into is None and kept == text:
        return  # already as the checkpoint saw it: left untouched
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_text(kept)
        _fsync_replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {err.strerror or err}") from None
