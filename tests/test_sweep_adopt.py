"""A sweep given more values keeps its runs under ``resume=auto``: the jobs Hydra renumbers take over
their old directories instead of training again (runner/sweep_adopt.py)."""

from __future__ import annotations

import pytest

from cli_helpers import metrics, run_cli, summary
from compress_train.runner.sweep_adopt import renumbered

QUAD = ("algo=gd", "problem=quadratic", "dataset.dim=5", "train.max_steps=2", "train.tol=null", "threads=1")


def test_each_job_takes_over_the_one_directory_with_its_overrides(tmp_path):
    for name in ("0_k=1,seed=0", "1_k=1,seed=1", "2_k=2,seed=0", "3_k=2,seed=1", "7_twice", "8_twice", "notes"):
        (tmp_path / name).mkdir()
    planned = ["0_k=1,seed=0", "1_k=1,seed=1", "2_k=1,seed=2", "3_k=2,seed=0", "4_k=2,seed=1", "5_k=2,seed=2"]
    planned += ["9_twice"]  # two old directories with its overrides: ambiguous, left alone
    moves = renumbered([str(tmp_path / n) for n in planned])
    assert sorted((a.name, b.name) for a, b in moves) == [
        ("2_k=2,seed=0", "3_k=2,seed=0"),
        ("3_k=2,seed=1", "4_k=2,seed=1"),
    ]
    assert renumbered([str(tmp_path / "0_k=1,seed=0")]) == []  # existing: nothing to take over


def test_a_job_repeated_in_the_sweep_takes_nothing_over(tmp_path):
    (tmp_path / "0_a=1").mkdir()
    assert renumbered([str(tmp_path / "1_a=1"), str(tmp_path / "2_a=1")]) == []


@pytest.mark.slow
def test_a_sweep_given_another_seed_trains_only_the_new_runs(tmp_path):
    sweep = tmp_path / "sweep"
    first = run_cli("-m", f"hydra.sweep.dir={sweep}", *QUAD, "dataset.kappa=10,100", "seed=0,1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p.name: metrics(p) for p in sweep.iterdir() if p.is_dir()}
    assert sorted(before)[2].startswith("2_") and "kappa=100" in sorted(before)[2] and "seed=0" in sorted(before)[2]
    again = run_cli(
        "-m", f"hydra.sweep.dir={sweep}", *QUAD, "dataset.kappa=10,100", "seed=0,1,2", "resume=auto", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert "2 finished or interrupted run(s) of this sweep renumbered" in again.stderr
    after = {p.name: p for p in sweep.iterdir() if p.is_dir()}
    assert len(after) == 6 and all(summary(p)["status"] == "completed" for p in after.values())
    for old, rows in before.items():  # each old run, wall-clock times included, under its job's new number
        (new,) = [n for n in after if n.split("_", 1)[1] == old.split("_", 1)[1]]
        assert metrics(after[new]) == rows
        assert "resumed" not in summary(after[new])  # nothing to do: never trained again
