"""Run outputs (docs/architecture.md §5): ``metrics.jsonl`` flushed row by row, ``summary.json`` rewritten
atomically at start, on every evaluation and at the end, and optional extra sinks (W&B)."""

from __future__ import annotations

import json
import math
import os
import sys
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
