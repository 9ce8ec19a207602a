"""W&B as researchers use it, against the real library offline (no key, no network): the run's
transaction log, read back with W&B's own reader (``wandb leet inspect --json``), holds the four
x-axis metrics, the rows, the method label as name and the overrides in its config; the run's
last line says the ``wandb sync`` command; ``compress-report`` logs its figures and table beside them."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
from test_cli import write_tiny_mnist

from cli_helpers import BIN, run_cli, summary
from compress_train.runner.loggers import wandb as wandb_sink
from compress_train.runner.report import wandb_upload
from compress_train.runner.report.cli import main as report_main

pytest.importorskip("wandb")
SMALL_RUN = ("model.hidden=16", "train.batch_size=20", "train.log_every=1", "dataset.eval_samples=200")


UNSET = ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR", "WANDB_NAME", "WANDB_PROJECT", "WANDB_RUN_GROUP")


def _offline(mp: pytest.MonkeyPatch, home: Path) -> None:
    for var in UNSET:
        mp.delenv(var, raising=False)
    mp.setenv("HOME", str(home))
    mp.setenv("WANDB_SILENT", "true")


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
    _offline(monkeypatch, tmp_path)


def read_records(wandb_file: Path) -> dict[str, list[dict]]:
    """The records of a ``.wandb`` transaction log by type, as W&B's own reader prints them."""
    proc = subprocess.run(
        [str(BIN / "wandb"), "leet", "inspect", "--json", str(wandb_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    by_type: dict[str, list[dict]] = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            r = json.loads(line)
            by_type.setdefault(r["type"], []).append(r[r["type"]])
    return by_type


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory):
    """One tiny real CLI run with ``logger=wandb``, offline: (run directory, its output)."""
    tmp = tmp_path_factory.mktemp("wandb_run")
    write_tiny_mnist(tmp / "mnist")
    run = tmp / "run"
    with pytest.MonkeyPatch.context() as mp:
        _offline(mp, tmp)
        proc = run_cli(
            f"hydra.run.dir={run}",
            "logger=wandb",
            "method=comp_ams/topk_ef_0.01",
            "seed=3",
            f"dataset.root={tmp / 'mnist'}",
            *SMALL_RUN,
            "train.max_steps=2",
            cwd=tmp,
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return run, out


@pytest.mark.slow
def test_an_offline_run_holds_the_x_axes_the_label_and_the_overrides(wandb_run):
    run, out = wandb_run
    assert summary(run)["status"] == "completed"
    (wandb_file,) = run.glob("wandb/offline-run-*/run-*.wandb")
    by_type = read_records(wandb_file)

    metrics = by_type["metric"]
    defined = {m["name"] for m in metrics if "name" in m}
    assert {"step", "bits_up", "samples", "time_s"} <= defined
    assert {"glob_name": "*", "step_metric": "step"}.items() <= next(m for m in metrics if "glob_name" in m).items()

    rows = [h["item"] for h in by_type["history"]]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["train_loss"] > 0 and r["bits_up"] > 0 for r in rows) and "test_acc" in rows[-1]
    assert rows[1]["bits_up"] == 2 * rows[0]["bits_up"] == summary(run)["totals"]["bits_up"]

    (start,) = by_type["run"]
    assert start["display_name"] == "TopK-EF-0.01 (seed 3)"
    overrides = start["config"]["update"]["overrides"]
    assert overrides["method"] == "comp_ams/topk_ef_0.01" and overrides["seed"] == 3
    assert overrides["train.max_steps"] == 2 and "hydra.run.dir" not in overrides
    assert start["config"]["update"]["train"]["max_steps"] == 2  # the resolved config beside them

    lines = [ln for ln in out.splitlines() if "[compress_train]" in ln]
    assert lines[-1].endswith(f"W&B: offline run saved; upload it with: wandb sync {wandb_file.parent}"), lines[-3:]


@pytest.mark.slow
def test_the_report_of_wandb_runs_logs_its_figures_and_table(wandb_run, tmp_path, offline_env, capsys):
    run, _ = wandb_run
    assert report_main([str(run), "--out", str(tmp_path / "report"), "--formats", "png"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    (wandb_file,) = (tmp_path / "report").glob("wandb/offline-run-*/run-*.wandb")
    assert printed[-1].endswith(f"offline run saved; upload it with: wandb sync {wandb_file.parent}")
    by_type = read_records(wandb_file)
    (start,) = by_type["run"]
    assert start["job_type"] == "report" and start["project"] == "compress-train"
    logged = {k: v for h in by_type["history"] for k, v in h["item"].items()}  # W&B flattens: "key.field"
    pngs = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "report").glob("*.png")}
    images = {
        k.removeprefix("figures/").removesuffix(".sha256"): v
        for k, v in logged.items()
        if k.startswith("figures/") and k.endswith(".sha256")
    }
    assert pngs and images == pngs  # every figure the report wrote, byte for byte
    assert logged["summary._type"] == "table-file" and logged["summary.nrows"] == 1  # one method


def test_runs_without_wandb_log_no_report_unless_asked(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text("logger:\n  name: jsonl\n")
    runs = pd.DataFrame({"run_dir": [str(tmp_path)], "experiment": [None]})
    calls = []
    monkeypatch.setattr(wandb_upload, "_upload", lambda logger, *a: calls.append(logger))
    assert wandb_upload.upload(runs, pd.DataFrame(), [], tmp_path, None, [str(tmp_path)], forced=False) is None
    assert calls == []
    wandb_upload.upload(runs, pd.DataFrame(), [], tmp_path, None, [str(tmp_path)], forced=True)
    assert calls[0]["project"] == "compress-train"
    (tmp_path / "config.yaml").write_text("logger:\n  name: wandb\n  project: mine\n  mode: offline\n")
    wandb_upload.upload(runs, pd.DataFrame(), [], tmp_path, None, [str(tmp_path)], forced=False)
    assert calls[1]["project"] == "mine" and calls[1]["mode"] == "offline"


def test_a_wandb_failure_never_fails_the_report(tmp_path, monkeypatch, capsys):
    (tmp_path / "config.yaml").write_text("logger:\n  name: wandb\n")
    runs = pd.DataFrame({"run_dir": [str(tmp_path)], "experiment": ["x"]})

    def broken(*a):
        raise RuntimeError("W&B is down")

    monkeypatch.setattr(wandb_upload, "_upload", broken)
    assert wandb_upload.upload(runs, pd.DataFrame(), [], tmp_path, None, [], forced=False) is None
    assert "the report was not logged to W&B (RuntimeError: W&B is down)" in capsys.readouterr().err


class FakeRun:
    def __init__(self, run_dir: Path):
        self.id, self.url = "abc", "https://wandb.ai/me/compress-train/runs/abc"
        self.dir, self.defined, self.finished = str(run_dir / "wandb" / "offline-run-x-abc" / "files"), [], False

    def define_metric(self, name, **kw):
        self.defined.append((name, kw.get("step_metric")))

    def finish(self):
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch, tmp_path, offline_env):
    fake = types.ModuleType("wandb")
    fake.inits = []
    fake.Settings = lambda **kw: kw

    def init(**kw):
        fake.inits.append(kw)
        return FakeRun(tmp_path)

    fake.init = init
    monkeypatch.setitem(sys.modules, "wandb", fake)
    return fake


def test_the_sync_line_closes_an_offline_run(make_config, fake_wandb, tmp_path, caplog):
    sink = wandb_sink.WandbSink(make_config("logger=wandb"), tmp_path)
    run = sink.run
    assert run.defined == [("step", None), ("bits_up", None), ("samples", None), ("time_s", None), ("*", "step")]
    with caplog.at_level(logging.INFO, logger="compress_train"):
        sink.close()
    assert run.finished
    assert caplog.messages[-1] == (
        f"W&B: offline run saved; upload it with: wandb sync {tmp_path / 'wandb' / 'offline-run-x-abc'}"
    )


def test_no_sync_line_for_an_online_run(make_config, fake_wandb, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    sink = wandb_sink.WandbSink(make_config("logger=wandb"), tmp_path)
    assert sink.run is not None
    with caplog.at_level(logging.INFO, logger="compress_train"):
        sink.close()
    assert not any("wandb sync" in m for m in caplog.messages)


def test_name_group_and_overrides_of_a_preset_run(make_config, fake_wandb, tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text(
        "- method=comp_ams/topk_ef_0.01\n- compressor.ratio=0.001\n- train.epochs=null\n- hydra.job.chdir=false\n"
        "- seed=2\n- '+train.note=[1,2]'\n"
    )
    wandb_sink.WandbSink(make_config("logger=wandb", "method=comp_ams/topk_ef_0.01", "seed=2"), tmp_path)
    (init,) = fake_wandb.inits
    assert init["name"] == "TopK-EF-0.01 (seed 2)" and init["group"] is None  # no preset: no group
    assert init["config"]["overrides"] == {
        "method": "comp_ams/topk_ef_0.01",
        "compressor.ratio": 0.001,
        "train.epochs": None,
        "seed": 2,
        "train.note": [1, 2],
    }


def test_an_unlabelled_run_in_a_preset_group(make_config, fake_wandb, tmp_path):
    wandb_sink.WandbSink(make_config("logger=wandb", "experiment_name=my_sweep", "workers=2"), tmp_path)
    (init,) = fake_wandb.inits
    assert init["name"] == "comp_ams-topk-n2-s0" and init["group"] == "my_sweep"
    assert init["config"]["overrides"] == {}  # no .hydra/overrides.yaml: nothing overridden


@pytest.mark.parametrize("bad", ["seed: 1\n", "- seed=1\n  - [\n", "- 'seed=='\n"])  # a mapping, bad YAML, bad override
def test_a_corrupt_overrides_file_only_leaves_the_overrides_out(bad, make_config, fake_wandb, tmp_path, caplog):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text(bad)
    with caplog.at_level(logging.WARNING, logger="compress_train"):
        sink = wandb_sink.WandbSink(make_config("logger=wandb"), tmp_path)
    assert sink.run is not None and "overrides" not in fake_wandb.inits[0]["config"]
    assert any(str(tmp_path / ".hydra" / "overrides.yaml") in m for m in caplog.messages)
