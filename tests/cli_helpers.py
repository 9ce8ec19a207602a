"""Running the real CLI in a subprocess, as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
QUICK = ("dataset.download=false", "logger.progress=false")


def run_cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    flags = [a for a in args if a.startswith("-")]  # e.g. -m must precede the overrides
    overrides = [a for a in args if not a.startswith("-")]
    return subprocess.run(
        [str(BIN / "compress-train"), *flags, *QUICK, *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
