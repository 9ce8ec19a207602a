"""The CLI explains itself: list, help, typo suggestions, types in the message template, the run's
length from train.max_steps alone, the forced choices, and the line a sweep ends with."""

from __future__ import annotations

import os
import subprocess

import pytest
from omegaconf import OmegaConf

from cli_helpers import BIN, metrics, run_cli, summary
from compress_train.runner.discover import CONF, describe, explain_composition_error, presets


def cli(*args: str, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "compress-train"), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def test_list_describes_every_option_and_preset(tmp_path):
    out = cli("list", cwd=tmp_path).stdout
    for group in ("algo", "compressor", "dataset", "model", "controller", "launcher", "logger"):
        for path in (CONF / group).glob("*.yaml"):
            assert f"  {path.stem} " in out, (group, path.stem)
    for name in presets():
        assert name in out
    assert describe(CONF / "algo" / "comp_ams.yaml").startswith("COMP-AMS")
    assert "model_defaults" not in out and "schema" not in out


def test_help_opens_with_the_tool_and_hides_internal_groups(tmp_path):
    out = cli("--help", cwd=tmp_path).stdout
    assert out.startswith("compress-train: communication-efficient distributed training")
    assert "experiment=aiade/rate" in out and "model_defaults" not in out and "schema/" not in out


def test_completion_of_experiment_presets(tmp_path):
    env = {**os.environ, "COMP_LINE": "compress-train experiment=aiade/ra"}
    assert cli("-sc", "query=bash", cwd=tmp_path, env=env).stdout.split() == ["experiment=aiade/rate"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epocs=3", "error: `train.epocs` is not a config key. Did you mean `train.epochs`?"),
        ("compressor.ratoi=0.1", "error: `compressor.ratoi` is not a config key. Did you mean `compressor.ratio`?"),
        ("compressor.ratio=abc", "error: `compressor.ratio` must be a number, but is 'abc'."),
        ("train.batch_size=1.5", "error: `train.batch_size` must be an integer, but is '1.5'."),
        ("train.batched_workers=maybe", "error: `train.batched_workers` must be true or false, but is 'maybe'."),
    ],
)
def test_composition_errors_use_the_template(tmp_path, override, message):
    proc = cli(override, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_unknown_errors_are_left_to_hydra():
    assert explain_composition_error("something else entirely", None) is None


@pytest.mark.slow
def test_max_steps_alone_sets_the_length_and_forced_choices_run(tmp_path):
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}",
        "algo=iade",
        "dataset=quadratic",
        "dataset.dim=5",
        "train.max_steps=7",
        "train.log_every=1",
        "train.tol=null",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    s = summary(run)
    assert (s["compressor"], s["model"], s["steps"]) == ("bounded", "quadratic", 7)
    assert "7 steps (train.max_steps=7)" in proc.stdout + proc.stderr
    run2 = tmp_path / "run2"  # the MNIST default: train.epochs (5) is dropped, not left to cap the run
    proc = run_cli(
        f"hydra.run.dir={run2}",
        "train.max_steps=3",
        "train.log_every=3",
        "train.eval_every=1000",
        "model.hidden=8",
        "train.batch_size=20",
        "threads=1",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert OmegaConf.load(run2 / "config.yaml").train.epochs is None  # what lets N pass 5 epochs' steps
    assert summary(run2)["steps"] == 3 and metrics(run2)[-1]["step"] == 3
    assert "3 steps (train.max_steps=3)" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_sweep_ends_with_its_report_line(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "seed=0,1", "train.max_steps=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"compress-report {sweep} --out {sweep}/report" in proc.stdout
