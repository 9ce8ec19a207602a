"""``train_acc``: a classifier's training accuracy in every metrics row, the mean accuracy of the
batches the workers trained on over the row's logging window (the steps and weighting of
``train_loss``), as a fraction; it moves no other number, and tasks that do not classify log none."""

from __future__ import annotations

import json
import signal

import pytest
import torch
from conftest import compose_config
from test_golden import CASES as GOLDEN_CASES
from test_golden import COMMON as GOLDEN_COMMON
from test_golden import GOLDEN, comparable, mismatches
from test_resume import assert_same, run_in_process, run_killed_in_child

from cli_helpers import metrics, run_cli, summary
from compress_train.algorithms.communicator import SimCommunicator
from compress_train.runner.tasks.batched_workers import BatchedWorkers
from compress_train.runner.tasks.network import dropout_seed
from compress_train.runner.trainer import Trainer

QUICK = ("dataset.download=false", "logger.progress=false", "device=cpu", "threads=1")
SMALL = (
    "model.hidden=16",
    "train.batch_size=20",
    "train.epochs=null",
    "train.eval_every=100",
    "dataset.eval_samples=200",
)


def trainer(tmp_path, *overrides: str) -> Trainer:
    cfg = compose_config(*QUICK, *overrides, "train.max_steps=10")
    return Trainer(cfg, SimCommunicator(cfg.workers), [], {}, lambda m: None, torch.device("cpu"), tmp_path)


def test_each_workers_accuracy_is_on_the_batch_it_trained_on(tmp_path):
    t = trainer(tmp_path, *SMALL, "workers=2")
    task = t.task
    expected = []
    for w in (0, 1):  # worker w's batch and dropout draw at step 0, as the task draws them
        state = task.streams[w].state()
        idx = torch.from_numpy(task.streams[w].next())
        task.streams[w].seek(state)
        torch.manual_seed(dropout_seed(t.cfg.seed, 0, w))
        with torch.no_grad():
            out = task.model(task.x_train[idx])
        expected.append(int((out.argmax(1) == task.y_train[idx]).sum()) / len(idx))
    task.local_gradients(0, task.params)
    assert task.last_accuracies == expected


def test_batched_workers_give_the_loops_accuracies(tmp_path):
    seq = trainer(tmp_path / "seq", *SMALL, "workers=4")
    bat = trainer(tmp_path / "bat", *SMALL, "workers=4")
    bat.task.batched = BatchedWorkers(bat.task, dropout_seed)
    for step in range(3):
        seq.task.local_gradients(step, seq.task.params)
        bat.task.local_gradients(step, bat.task.params)
        assert seq.task.last_accuracies is not None and len(seq.task.last_accuracies) == 4
        assert bat.task.last_accuracies == seq.task.last_accuracies


def test_a_rows_train_acc_is_the_mean_over_its_window(tmp_path):
    every = run_in_process(tmp_path / "every", *SMALL, "workers=2", "train.max_steps=4", "train.log_every=1")
    pairs = run_in_process(tmp_path / "pairs", *SMALL, "workers=2", "train.max_steps=4", "train.log_every=2")
    assert every["status"] == pairs["status"] == "completed"
    one, two = metrics(tmp_path / "every"), metrics(tmp_path / "pairs")
    assert [r["step"] for r in two] == [2, 4]
    for r in one:  # one step's value: correct answers out of 2 workers x 20 images
        assert 0.0 <= r["train_acc"] <= 1.0
        assert r["train_acc"] * 40 == pytest.approx(round(r["train_acc"] * 40), abs=1e-9)
    for i, r in enumerate(two):
        assert r["train_acc"] == pytest.approx((one[2 * i]["train_acc"] + one[2 * i + 1]["train_acc"]) / 2, abs=1e-12)
        assert r["train_loss"] == pytest.approx((one[2 * i]["train_loss"] + one[2 * i + 1]["train_loss"]) / 2)


def test_a_resume_inside_a_window_keeps_its_accuracies(tmp_path):
    """Killed after step 5, resumed from the checkpoint of step 3: the row of step 4 averages steps
    1-3 (from the checkpoint) and 4, as the uninterrupted run's."""
    setup = (*SMALL, "threads=1", "workers=2", "train.log_every=4", "train.checkpoint_every=3", "train.max_steps=8")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_in_process(whole, *setup)["status"] == "completed"
    assert run_killed_in_child(killed, *setup) == -signal.SIGKILL
    assert run_in_process(killed, *setup, "resume=auto")["status"] == "completed"
    assert summary(killed)["resumed"]["from_steps"] == [3]
    assert_same(whole, killed)
    assert [r["step"] for r in metrics(whole)] == [4, 8] and all("train_acc" in r for r in metrics(whole))


def test_a_task_that_does_not_classify_logs_no_train_acc(tmp_path):
    out = run_in_process(
        tmp_path / "q", "algo=gd", "problem=quadratic", "dataset.dim=5", "compressor=identity", "train.max_steps=3"
    )
    assert out["status"] == "completed"
    assert not any("train_acc" in r for r in metrics(tmp_path / "q"))


@pytest.mark.slow
def test_train_acc_moves_no_other_golden_number(tmp_path):
    run = tmp_path / "run"
    proc = run_cli(f"hydra.run.dir={run}", *GOLDEN_COMMON, *GOLDEN_CASES["default"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = comparable(metrics(run))
    want = [json.loads(line) for line in (GOLDEN / "default.jsonl").read_text().splitlines() if line.strip()]
    assert len(rows) == len(want)
    for got, w in zip(rows, want):
        assert 0.0 <= got.pop("train_acc") <= 1.0
        assert mismatches(got, {k: v for k, v in w.items() if k != "train_acc"}) == {}
