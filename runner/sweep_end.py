"""A Hydra callback: a sweep ends by counting its jobs' statuses and printing its directory and the
``compress-report`` line for it, and exits 1 when any job failed."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from compress_train.runner.metrics import run_status

FAILED = ("failed", "died", "unreadable")


def statuses(sweep_dir: Path) -> Counter:
    counts: Counter = Counter()
    for path in sorted(Path(sweep_dir).glob("*/summary.json")):
        try:
            counts[run_status(json.loads(path.read_text()))] += 1
        except (OSError, ValueError):
            counts["unreadable"] += 1
    return counts


class SweepEnd(Callback):
    """Counts the jobs that failed (those of this process through their return value, any other's
    through its summary) and, after the sweep's summary lines, exits 1 when there was one: a failed
    job is an error, a diverged one a result."""

    def __init__(self) -> None:
        self.failed = 0

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if getattr(job_return, "return_value", None) == "failed":
            self.failed += 1

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = config.hydra.sweep.dir
        counted = statuses(Path(sweep_dir))
        failed = max(self.failed, sum(counted[s] for s in FAILED))
        if failed > sum(counted[s] for s in FAILED):  # a rejected job leaves no directory to count
            counted["failed"] += failed - sum(counted[s] for s in FAILED)
        counts = ", ".join(f"{n} {status}" for status, n in sorted(counted.items()))
        print(
            f"sweep written to {sweep_dir} ({counts or 'no job summaries'})\n"
            f"report it with:  compress-report {sweep_dir} --out {sweep_dir}/report",
            flush=True,
        )
        if any(Path(sweep_dir).glob("*/wandb/offline-run-*")):
            print(f"upload its offline W&B runs with:  wandb sync {sweep_dir}/*/wandb/offline-run-*", flush=True)
        if failed:
            print(f"error: {failed} job(s) of the sweep failed (their lines are in the log above)", file=sys.stderr)
            raise SystemExit(1)
