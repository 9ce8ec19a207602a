"""A run whose loss explodes ends ``diverged`` however early it explodes: the reference is the first
step's loss (the loss at the initial point), not a metrics row already averaged over exploded steps,
and a classifier far above the loss of a uniform guess has diverged whatever its first loss."""

from __future__ import annotations

import json
import math

import pytest
from conftest import compose_config

from compress_train.runner.launch import launch
from compress_train.runner.report.load import keep_best_lr, load_runs
from compress_train.runner.trainer import UNIFORM_LOSS_FACTOR

QUICK = ("threads=1", "dataset.download=false", "logger.progress=false", "train.epochs=null")


def run(tmp_path, name, *overrides):
    cfg = compose_config(*QUICK, *overrides)
    run_dir = tmp_path / name
    summary = launch(cfg, run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return summary, rows, run_dir


@pytest.mark.parametrize("lr", ["1e6", "1e3"])
def test_a_loss_that_explodes_within_the_first_logged_row_is_diverged(tmp_path, lr):
    s, rows, _ = run(tmp_path, "run", f"algo.lr={lr}", "train.max_steps=6", "train.log_every=10")
    assert s["status"] == "diverged" and s["steps"] < 6, s
    assert "first step's loss" in s["reason"] or "loss is" in s["reason"] or "uniform guess" in s["reason"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "diverged"
    assert rows[-1]["step"] == s["steps"]  # the row of the step that diverged is logged


def test_a_classifier_far_above_chance_is_diverged_without_a_ratio_reference(tmp_path):
    """The first step's loss may already be huge (a bad initialisation); ln(classes) still bounds it."""
    from compress_train.runner.trainer import Trainer

    trainer = Trainer.__new__(Trainer)
    trainer.cfg = compose_config(*QUICK)
    trainer.summary = {"num_classes": 10}
    trainer.first_loss = 1e9
    limit = UNIFORM_LOSS_FACTOR * math.log(10)
    assert "uniform guess" in trainer.divergence(limit * 1.01)
    trainer.task = type("T", (), {"params": __import__("torch").zeros(3)})()
    assert trainer.divergence(limit * 0.99) is None
    trainer.summary = {}  # not a classifier: no absolute bound
    assert trainer.divergence(limit * 100) is None


def test_the_best_lr_is_never_a_diverged_run(tmp_path):
    run(tmp_path, "good", "algo.lr=0.001", "train.max_steps=4", "train.log_every=2", "train.eval_every=4")
    run(tmp_path, "bad", "algo.lr=1e6", "train.max_steps=4", "train.log_every=2", "train.eval_every=4")
    df, runs = load_runs([tmp_path])
    assert dict(zip(runs["lr"], runs["status"])) == {0.001: "completed", 1e6: "diverged"}
    _, kept, _ = keep_best_lr(df, runs, "train_loss")
    assert list(kept["lr"]) == [0.001]
