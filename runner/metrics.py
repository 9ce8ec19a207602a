"""Run outputs (docs/architecture.md §5): ``metrics.jsonl`` flushed row by row, ``summary.json`` rewritten
atomically at start, on every evaluation and at the end, and optional extra sinks (W&B)."""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Protocol


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null (JSON has no literal for them), tensors become floats."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Sink(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...
    def summary(self, summary: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class JsonlSink:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.run_dir / "metrics.jsonl", "a", buffering=1)

    def log(self, row: dict[str, Any]) -> None:
        try:
            self._file.write(json.dumps(_clean(row)) + "\n")
            self._file.flush()
        except OSError as err:
            raise OutputError(f"cannot write {self.run_dir / 'metrics.jsonl'}: {err.strerror or err}") from None

    def summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.run_dir / "summary.json", summary)

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:  # the disk filled up: already reported by the write that failed
            pass


class OutputError(OSError):
    """A run output that cannot be written (a full disk, a vanished directory): one line, no traceback."""


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file and rename; on failure the temporary file is removed and the
    previous ``path`` stays as it was."""
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(_clean(data), indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl``. A missing file gives no rows and a line that is not
    valid JSON is skipped, each with a warning on stderr (``compress-report`` reads killed runs)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        print(f"warning: {path} is missing; the run has no metrics rows", file=sys.stderr)
        return []
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # e.g. a half-written last line of a killed run
            print(f"warning: {path}:{i} is not valid JSON; line skipped", file=sys.stderr)
    return rows


def flatten(d: dict[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Nested dicts as one level: {"a": {"b": 1}} -> {"a.b": 1} (``sep`` joins the keys)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}{sep}", sep))
        else:
            out[f"{prefix}{k}"] = v
    return out


# -- liveness: a run whose writer died (SIGKILL, a lost node) reads as "died", not "running" -------

HEARTBEAT_S = 60.0  # the writer refreshes summary.json at least this often while it trains
STALE_S = 1800.0  # a run on another host without a heartbeat this long has died
LIVE = ("starting", "running")


def _start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (Linux), to tell it from a later one reusing its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def writer_stamp() -> dict[str, Any]:
    """Who writes the run (pid, host, its start time) and when it last said so (``heartbeat``, Unix time)."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": _start_ticks(pid), "heartbeat": time.time()}


def _alive(pid: Any, started: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # nothing to test: trust the status
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return started is None or _start_ticks(pid) in (None, started)


def run_status(summary: dict[str, Any]) -> str:
    """The status a reader should report: the summary's own, except ``died`` for a ``starting`` /
    ``running`` run whose writer is gone (on this host: its pid no longer runs; on another host: no
    heartbeat for ``STALE_S``). A summary without a writer stamp keeps its status."""
    status = summary.get("status", "unknown")
    writer = summary.get("writer")
    if status not in LIVE or not isinstance(writer, dict):
        return status
    if writer.get("host") == socket.gethostname():
        return status if _alive(writer.get("pid"), writer.get("started")) else "died"
    beat = writer.get("heartbeat")
    return "died" if isinstance(beat, (int, float)) and time.time() - beat > STALE_S else status
