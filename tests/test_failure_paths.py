"""Every failure path: one line, a true status, nothing left behind.

A full disk, an impossible run directory, a writer that died, a sweep whose data is missing or
whose jobs fail, and a config or data that is rejected once the model is known: each ends with one
line and its exit code, the summary says what happened where it can still be written, and no
temporary file, incomplete checkpoint or rejected run directory stays behind."""

from __future__ import annotations

import errno
import json
import os
import subprocess

import pytest
from conftest import compose_config

from cli_helpers import run_cli
from compress_train.algorithms.base import ParameterError
from compress_train.datasets.errors import DataSizeError
from compress_train.runner import checkpoint
from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.launch import launch
from compress_train.runner.metrics import OutputError, run_status, writer_stamp
from compress_train.runner.preflight import writable
from compress_train.runner.report.load import ReportError, load_runs
from compress_train.runner.run import RunDirError

QUICK = ("threads=1", "dataset.download=false", "logger.progress=false", "train.epochs=null")
SMALL = ("model.hidden=16", "train.batch_size=20", "train.log_every=1", "train.max_steps=2", "dataset.eval_samples=200")


def start(run_dir, *overrides):
    return launch(compose_config(*QUICK, *SMALL, *overrides), run_dir)


def files(run_dir):
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())


# --- a full disk ----------------------------------------------------------------------------------


def test_a_full_disk_while_checkpointing_is_one_error_a_failed_status_and_no_leftovers(tmp_path, monkeypatch):
    real_save = checkpoint.torch.save

    def save_until_full(obj, f):
        real_save({"part": 1}, f)  # some bytes reach the disk, then it is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.torch, "save", save_until_full)
    run = tmp_path / "run"
    with pytest.raises(OutputError) as err:
        start(run)
    message = str(err.value)
    assert message.startswith(f"cannot write checkpoint file {run / 'checkpoints'}") and "\n" not in message
    assert message.endswith("No space left on device")
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    assert not [f for f in files(run) if f.endswith(".tmp")] and not checkpoint.complete(run)
    assert not any((run / "checkpoints").glob("step_*"))  # no incomplete checkpoint either
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2  # the rows logged before are kept


@pytest.mark.slow
def test_a_real_full_disk_in_the_cli_is_one_line_exit_2_and_status_failed(tmp_path):
    """The run directory on a 2 MB tmpfs: the first checkpoint (about 24 MB) fills it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        run = disk / "run"
        proc = run_cli(f"hydra.run.dir={run}", *QUICK, "train.max_steps=2", cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert line == (
            f"error: cannot write checkpoint file {run}/checkpoints/step_000000002/rank_0.pt: No space left on device"
        )
        assert json.loads((run / "summary.json").read_text())["status"] == "failed"
        assert not [f for f in files(run) if f.endswith(".tmp") or f.startswith("checkpoints/")]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# --- a run directory that cannot be created -------------------------------------------------------


def test_a_run_directory_under_proc_is_refused_by_trying(tmp_path):
    assert writable("/proc/x") == "/proc"
    assert writable(str(tmp_path / "a" / "b")) is None and not (tmp_path / "a").exists()
    assert not [p for p in tmp_path.iterdir()]  # the probe leaves nothing


@pytest.mark.slow
def test_the_cli_refuses_proc_in_one_line(tmp_path):
    proc = run_cli("hydra.run.dir=/proc/x", *QUICK, *SMALL, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip()
        == "error: `hydra.run.dir` '/proc/x' cannot be created: '/proc' is not a writable directory."
    )


# --- a writer that died -----------------------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_running_run_whose_writer_is_gone_reads_as_died(tmp_path):
    stamp = writer_stamp()
    assert run_status({"status": "running", "writer": stamp}) == "running"  # this very process
    assert run_status({"status": "running", "writer": {**stamp, "pid": dead_pid(), "started": None}}) == "died"
    assert run_status({"status": "running", "writer": {**stamp, "started": 1}}) == "died"  # its pid reused
    far = {**stamp, "host": "elsewhere", "pid": 1}
    assert run_status({"status": "running", "writer": {**far, "heartbeat": stamp["heartbeat"] - 7200}}) == "died"
    assert run_status({"status": "running", "writer": far}) == "running"
    assert run_status({"status": "completed", "writer": {**stamp, "pid": dead_pid()}}) == "completed"
    assert run_status({"status": "running"}) == "running"  # no stamp: nothing to tell


def test_readers_report_a_dead_run_as_died_and_resume_continues_it(tmp_path, capsys):
    run = tmp_path / "run"
    start(run, "train.max_steps=4", "train.checkpoint_every=2")
    s = json.loads((run / "summary.json").read_text())
    assert s["writer"]["pid"] == os.getpid() and s["writer"]["heartbeat"] > 0
    (run / "summary.json").write_text(json.dumps({**s, "status": "running"}))  # the writer still at work
    with pytest.raises(RunDirError, match=f"still being written by pid {os.getpid()}"):
        start(run, "train.max_steps=6", "train.checkpoint_every=2", "resume=auto")
    s["writer"]["pid"] = dead_pid()  # ... or killed (SIGKILL leaves status running)
    (run / "summary.json").write_text(json.dumps({**s, "status": "running"}))
    with pytest.raises(ReportError):  # no finished run to report
        load_runs([tmp_path])
    assert f"{run} (died)" in capsys.readouterr().err
    resumed = start(run, "train.max_steps=6", "train.checkpoint_every=2", "resume=auto")
    assert resumed["status"] == "completed" and resumed["resumed"]["from_steps"] == [4]


# --- sweeps: their data checked once, failed jobs make a non-zero exit -----------------------------


@pytest.mark.slow
def test_a_sweep_without_its_data_stops_before_the_first_job(tmp_path):
    bad = tmp_path / "bad.svm"
    bad.write_text("+1 1:0.5\nhello\n")
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "algo=gd",
        "dataset=libsvm",
        f"dataset.path={bad}",
        "model=logreg",
        "seed=0,1,2",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == (
        f"error: LIBSVM file '{bad}', line 2: label 'hello' is not a number (the sweep's 3 job(s) need it; none was started)"
    )
    assert not sweep.exists()


@pytest.mark.slow
def test_a_sweep_with_failed_jobs_exits_non_zero_after_its_summary(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        *QUICK,
        "model.hidden=16",
        "compressor.ratio=null",
        "compressor.k=50000000,60000000",
        "train.max_steps=2",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "(2 failed)" in proc.stdout and "error: 2 job(s) of the sweep failed" in proc.stderr
    assert not [p for p in sweep.iterdir() if p.is_dir()]  # rejected jobs leave no directory


# --- rejected once the data or the model is known: no run directory ---------------------------------


@pytest.mark.parametrize(
    "overrides, error, line",
    [
        (("train.batch_size=5000",), DataSizeError, "`train.batch_size` (5000) is larger than worker 0's shard"),
        (
            ("compressor.ratio=null", "compressor.k=200000"),
            ParameterError,
            "`compressor.k` must be at most the model's",
        ),
    ],
)
def test_a_run_rejected_before_its_first_step_leaves_no_run_directory(tmp_path, overrides, error, line):
    run = tmp_path / "runs" / "run"
    with pytest.raises(error, match=line.replace("(", r"\(").replace(")", r"\)")):
        start(run, *overrides)
    assert not run.exists()


def test_a_rejected_run_in_an_existing_directory_removes_only_what_it_wrote(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(DataSizeError):
        start(run, "train.batch_size=5000")
    assert files(run) == ["notes.txt"]


@pytest.mark.parametrize(
    "overrides, line",
    [
        (
            ("scale=huge",),
            "`scale` must be one of ['ci', 'paper'] (it only selects an experiment preset's settings), but is 'huge'.",
        ),
        (
            ("+train.lr_schedule={milestones:[3,1]}",),
            "`train.lr_schedule.milestones` must be strictly increasing epochs, but is [3, 1].",
        ),
        (
            ("+train.lr_schedule={milestones:[2,2]}",),
            "`train.lr_schedule.milestones` must be strictly increasing epochs, but is [2, 2].",
        ),
    ],
)
def test_values_that_used_to_pass_silently_are_refused(overrides, line):
    with pytest.raises(ConfigError) as err:
        check_config(compose_config(*overrides))
    assert line in err.value.errors
    check_config(compose_config("+train.lr_schedule={milestones:[1,3]}", "scale=paper"))  # still fine
