"""Golden metrics: six short runs whose ``metrics.jsonl`` must not move unless a change means it.

Every row of each run is compared with the committed file in ``tests/golden/`` exactly (bits,
losses, accuracies; only the wall-clock ``time_*`` fields are left out). All runs use one thread,
so float32 reductions happen in a fixed order. A change that moves numbers on purpose
regenerates the files and says so in its commit:

    GOLDEN_REGEN=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli_helpers import metrics, run_cli

pytestmark = pytest.mark.slow
GOLDEN = Path(__file__).parent / "golden"
COMMON = ("threads=1", "logger.progress=false")
CASES = {
    "default": ("train.max_steps=20", "train.log_every=5", "train.eval_every=20"),
    "ef_sgd_threshold_4w": (
        "algo=ef_sgd",
        "compressor=threshold",
        "compressor.lam=0.01",
        "workers=4",
        "train.max_steps=10",
        "train.log_every=2",
        "train.eval_every=10",
    ),
    "iade_quadratic": (
        "algo=iade",
        "compressor=bounded",
        "problem=quadratic",
        "dataset.dim=10",
        "train.max_steps=60",
        "train.log_every=5",
    ),
    "qadam": ("algo=qadam", "train.max_steps=10", "train.log_every=2", "train.eval_every=10"),
    "accordion": (
        "algo=ef_sgd",
        "compressor=topk",
        "compressor.scope=layer",
        "controller=accordion",
        "controller.interval=1",
        "train.batch_size=400",
        "workers=2",
        "train.max_steps=25",
        "train.log_every=5",
        "train.eval_every=25",
    ),
    "torchrun_2p": (
        "launcher=torchrun",
        "workers=2",
        "algo=ef_sgd",
        "compressor=topk",
        "train.max_steps=6",
        "train.log_every=2",
        "train.eval_every=6",
    ),
}


def comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in rows]


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_metrics(tmp_path, name):
    run = tmp_path / "run"
    proc = run_cli(f"hydra.run.dir={run}", *COMMON, *CASES[name], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = comparable(metrics(run))
    path = GOLDEN / f"{name}.jsonl"
    if os.environ.get("GOLDEN_REGEN") == "1":
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    golden = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert len(rows) == len(golden) > 0
    for got, want in zip(rows, golden):
        assert got == want, {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
