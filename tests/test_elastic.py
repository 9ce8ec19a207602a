"""A torchrun worker that dies: restarted by torchrun's elastic agent, or reported at once.

``COMPRESS_TRAIN_KILL_AT=1:6`` makes worker 1's process SIGKILL itself right after step 6 (first
attempt only). With ``launcher.max_restarts=1`` the group restarts, every rank resumes from the
step-4 checkpoint, and the run ends equal to an uninterrupted torchrun run: every metrics row
(wall-clock times aside), the totals and the final parameters (a rank that restarted anywhere else
would train on other batches, or run a different number of collectives, and could not match).
Without restarts the run ends within seconds with exit code 2, one ``error:`` line naming the rank
and the signal, ``summary.json`` ``failed`` with that reason, and the metrics written so far.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
import torch

from cli_helpers import BIN, QUICK, metrics, run_cli, summary
from compress_train.runner import checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.dist, pytest.mark.xdist_group("elastic")]  # one module fixture, one worker
SETUP = (
    "launcher=torchrun",
    "workers=2",
    "train.checkpoint_every=4",
    "model.hidden=16",
    "train.batch_size=20",
    "dataset.eval_samples=200",
    "threads=1",
    "train.max_steps=16",
    "train.epochs=null",
    "train.log_every=2",
    "train.eval_every=8",
)
KILL = {"COMPRESS_TRAIN_KILL_AT": "1:6"}


def comparable(rows):
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in rows]


def final_params(run_dir):
    return checkpoint.load(checkpoint.complete(run_dir)[-1] / "shared.pt")["params"]


def run_killed(run_dir, *overrides, timeout=240):
    env = {k: v for k, v in os.environ.items() if k != "TORCHELASTIC_RESTART_COUNT"} | KILL
    start = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "compress-train"), *QUICK, f"hydra.run.dir={run_dir}", *SETUP, *overrides],
        cwd=run_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc, time.monotonic() - start


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The uninterrupted torchrun run (sim is not bitwise equal to torchrun in float32 losses)."""
    run = tmp_path_factory.mktemp("elastic") / "whole"
    proc = run_cli(f"hydra.run.dir={run}", *SETUP, cwd=run.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary(run)["status"] == "completed" and not summary(run).get("resumed")
    return run


def test_elastic_restart_resumes_every_rank_and_equals_the_uninterrupted_run(tmp_path, whole):
    run = tmp_path / "restarted"
    proc, _ = run_killed(run, "launcher.max_restarts=1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"failed \(exitcode: -9\) local_rank: 1", proc.stderr), proc.stderr  # it did die
    s = summary(run)
    assert s["status"] == "completed" and s["steps"] == 16
    assert s["resumed"]["count"] == 1 and s["resumed"]["from_steps"] == [4], s["resumed"]
    assert s["resumed"]["checkpoint"].endswith("step_000000004")
    assert "resumed from" in (run / "train.log").read_text()
    assert comparable(metrics(run)) == comparable(metrics(whole))
    assert torch.equal(final_params(run), final_params(whole))
    assert comparable([s["totals"]]) == comparable([summary(whole)["totals"]])


def test_a_dead_worker_without_restarts_fails_fast_naming_rank_and_signal(tmp_path, whole):
    run = tmp_path / "failed"
    proc, wall = run_killed(run, "launcher.max_restarts=0", "launcher.timeout_s=15", timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert wall < 60, wall
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert re.fullmatch(
        rf"error: torchrun worker rank 1 died \(SIGKILL\) at .+; outputs so far are in "
        rf"{re.escape(str(run))}",
        errors[0],
    ), errors[0]
    assert "Root Cause" in proc.stderr and "Signal 9 (SIGKILL)" in proc.stderr  # torchrun's report, passed through
    s = summary(run)
    assert s["status"] == "failed"
    assert s["reason"].startswith("torchrun worker rank 1 died (SIGKILL)"), s["reason"]
    assert errors[0] == f"error: {s['reason']}; outputs so far are in {run}"
    rows = metrics(run)  # what was written before the death is kept, and is the uninterrupted run's
    steps = [r["step"] for r in rows]
    assert steps[:2] == [2, 4] and steps[-1] <= 6, steps
    assert comparable(rows) == comparable(metrics(whole))[: len(rows)]
    assert [checkpoint.read_manifest(c)["step"] for c in checkpoint.complete(run)] == [4]
