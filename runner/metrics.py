"""Run outputs (design.md §6): ``metrics.jsonl`` flushed row by row, ``summary.json`` rewritten
atomically at start, on every evaluation and at the end, and optional extra sinks (W&B)."""
from __future__ import annotations

import json
import math
import os
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
        self._file.write(json.dumps(_clean(row)) + "\n")
        self._file.flush()

    def summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.run_dir / "summary.json", summary)

    def close(self) -> None:
        self._file.close()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(data), indent=2) + "\n")
    os.replace(tmp, path)


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    with open(Path(run_dir) / "metrics.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]
