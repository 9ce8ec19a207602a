"""The command line is checked before anything starts: one line per problem, exit code 2, and no
run or sweep directory left behind; a sweep with bad jobs never starts; a sweep whose job fails
goes on, and re-run with resume=auto skips what finished."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from cli_helpers import BIN, metrics, run_cli, summary
from compress_train.runner.cli import CONF, conf_snapshot_args
from compress_train.runner.preflight import PreflightError, check, job_config


def cli(*args, cwd):
    return subprocess.run([str(BIN / "compress-train"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "override, line",
    [
        (
            "experiment=aiade/nonexistent",
            "error: `experiment` must be one of the options in conf/experiment/ (nearest: ['aiade/",
        ),
        (
            "method=comp_ams/topk_0.5",
            "error: `method` must be one of the options in conf/method/ (nearest: ['comp_ams/topk_0.01'",
        ),
        ("problem=gisete", "error: `problem` must be one of the options in conf/problem/ (nearest: ['gisette'"),
        ("algo=bogus", "error: `algo` must be one of the options in conf/algo/"),
        (
            "+train.epocs=3",
            "error: `train.epocs` is not a config key: nothing would read it. Did you mean `train.epochs`?",
        ),
        ("compressor.ratio=2", "error: invalid configuration:\n  `compressor.ratio` must be in (0, 1], but is 2.0."),
    ],
)
def test_bad_command_lines_stop_before_a_run_directory_exists(tmp_path, override, line):
    run = tmp_path / "run"
    proc = cli(override, f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 2 and line in proc.stderr, proc.stderr
    assert not run.exists() and not (tmp_path / "outputs").exists()


def test_an_unwritable_run_directory_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"  # a file where a folder would have to be (tests may run as root)
    blocker.write_text("")
    proc = cli(f"hydra.run.dir={blocker}/run", cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        f"error: `hydra.run.dir` '{blocker}/run' cannot be created: '{blocker}' is not a writable directory."
        in proc.stderr
    )


def test_every_bad_job_of_a_sweep_is_reported_and_none_starts(tmp_path):
    sweep = tmp_path / "sweep"
    proc = cli("-m", "compressor.ratio=0.1,2,3", "seed=0,1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "error: 4 of 6 sweep jobs are invalid; none was started:" in proc.stderr
    assert "compressor.ratio=3 seed=1:\n    `compressor.ratio` must be in (0, 1], but is 3.0." in proc.stderr
    assert not sweep.exists()


def test_presets_sweeps_are_validated_job_by_job():
    check(["experiment=aiade/rate"], multirun=True)  # 36 jobs, all valid
    with pytest.raises(PreflightError, match="of 36 sweep jobs are invalid"):
        check(["experiment=aiade/rate", "dataset.kappa=0.5"], multirun=True)


def test_a_presets_sweep_naming_a_missing_method_is_refused():
    """Hydra skips an `optional` group default whose option does not exist: without this check a preset
    listing a misspelt method would run those jobs with no method at all."""
    typo = "hydra.sweeper.params.method='comp_ams/mvss_0.1,comp_ams/amsgrad'"
    with pytest.raises(PreflightError, match=r"preset's sweep .*`method` must be one of .*'comp_ams/mvss_0.01'"):
        check(["experiment=comp_ams/fig1", typo], multirun=True)
    check(["experiment=comp_ams/fig1", typo, "method=comp_ams/amsgrad"], multirun=True)  # the command line's wins


@pytest.mark.slow
def test_a_sweep_goes_on_past_a_diverged_job_and_resume_skips_finished_ones(tmp_path):
    sweep = tmp_path / "sweep"
    args = (
        "-m",
        "algo=sgd",
        "algo.lr=0.01,1000",
        "train.max_steps=20",
        "train.log_every=1",
        "model.hidden=16",
        f"hydra.sweep.dir={sweep}",
    )
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "(1 completed, 1 diverged)" in proc.stdout
    jobs = sorted(p for p in sweep.iterdir() if (p / "summary.json").exists())
    assert [summary(j)["status"] for j in jobs] == ["completed", "diverged"]
    # every job composed from the copy of conf/ the CLI took at the sweep's start, gone when it ended
    hydra_yaml = yaml.safe_load((jobs[1] / ".hydra" / "hydra.yaml").read_text())
    (main,) = [s for s in hydra_yaml["hydra"]["runtime"]["config_sources"] if s["provider"] == "main"]
    assert main["schema"] == "file" and Path(main["path"]).name == "conf" and "compress_train_conf_" in main["path"]
    assert not Path(main["path"]).exists()
    assert [summary(j)["algo_params"]["lr"] for j in jobs] == [0.01, 1000]  # each job its own value
    rows = [len(metrics(j)) for j in jobs]
    proc = run_cli(*args, "resume=auto", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("nothing to resume") + proc.stderr.count("nothing to resume") == 2
    assert [len(metrics(j)) for j in jobs] == rows


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json.tmp").symlink_to("/dev/full")  # every write to it fails with ENOSPC
    proc = run_cli(f"hydra.run.dir={run}", "train.max_steps=2", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"error: cannot write {run / 'summary.json'}: No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr and not (run / "summary.json.tmp").exists()
    assert summary(run)["status"] == "failed"  # the next write had room again


@pytest.mark.slow
def test_a_sweep_over_generated_convex_problems_starts(tmp_path):
    """The sweep's data check loads file-backed datasets once; a generated problem (the quadratic) has
    nothing on disk and is built per run, so the check passes it by and the sweep runs."""
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", "experiment=aiade/rate", "problem=quadratic", "dataset.dim=10", "method=aiade/iade", "train.max_steps=3",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list(sweep.rglob("summary.json"))) >= 1


def test_a_sweep_composes_from_a_copy_of_conf_taken_at_its_start():
    """An edit of conf/ made while a sweep runs reaches none of its jobs (a key added mid-sweep stopped
    every later job against the schemas built at its start); a config path of the user's own is kept."""
    flag, path = conf_snapshot_args(["-m", "algo=sgd"])
    snapshot = Path(path)
    assert flag == "--config-path" and snapshot != CONF
    files = sorted(p.relative_to(CONF) for p in CONF.rglob("*.yaml"))
    assert sorted(p.relative_to(snapshot) for p in snapshot.rglob("*.yaml")) == files
    assert all((snapshot / f).read_bytes() == (CONF / f).read_bytes() for f in files)
    assert conf_snapshot_args(["-m", "--config-dir=/mine", "algo=sgd"]) == []
    assert conf_snapshot_args(["-cp", "/mine"]) == []
    assert conf_snapshot_args(["-m", "hydra/launcher=slurm", "seed=0,1"]) == []  # composed on the nodes


def test_no_writable_temporary_folder_composes_from_conf_itself(monkeypatch):
    def no_tmp(**_: object) -> str:
        raise PermissionError(13, "Permission denied", "/tmp")

    monkeypatch.setattr("tempfile.mkdtemp", no_tmp)
    assert conf_snapshot_args(["-m", "algo=sgd"]) == []  # the run goes on, as before the copy existed


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["experiment=def/table1", "method=def/ef"],
        ["algo=iade", "problem=quadratic"],
        ["experiment=hard_threshold/fig2_lstm", "scale=long"],
        ["+train.foo=1"],
        ["experiment=comp_ams/fig1", "hydra.run.dir=/tmp/x"],
    ],
)
def test_a_single_runs_check_reads_the_config_the_job_composes(overrides):
    """Preflight checks a single run on its own composition (with Hydra's node) minus that node,
    instead of composing the job a second time: the two are the same tree, resolved or not."""
    plain = [o for o in overrides if not o.startswith("hydra.")]
    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        with_hydra = compose(config_name="config", overrides=overrides, return_hydra_config=True)
        job = compose(config_name="config", overrides=plain)
    for resolve in (False, True):
        assert OmegaConf.to_yaml(job_config(with_hydra), resolve=resolve) == OmegaConf.to_yaml(job, resolve=resolve)
