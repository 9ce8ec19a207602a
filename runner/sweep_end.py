"""A Hydra callback: a sweep ends by counting its jobs' statuses and printing its directory and the
``compress-report`` line for it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def statuses(sweep_dir: Path) -> Counter:
    counts: Counter = Counter()
    for path in sorted(Path(sweep_dir).glob("*/summary.json")):
        try:
            counts[json.loads(path.read_text()).get("status", "unknown")] += 1
        except (OSError, ValueError):
            counts["unreadable"] += 1
    return counts


class SweepEnd(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = config.hydra.sweep.dir
        counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses(Path(sweep_dir)).items()))
        print(
            f"sweep written to {sweep_dir} ({counts or 'no job summaries'})\n"
            f"report it with:  compress-report {sweep_dir} --out {sweep_dir}/report",
            flush=True,
        )
        if any(Path(sweep_dir).glob("*/wandb/offline-run-*")):
            print(f"upload its offline W&B runs with:  wandb sync {sweep_dir}/*/wandb/offline-run-*", flush=True)
