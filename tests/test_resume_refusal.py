"""A resume continues the same run or is refused before anything is written (runner/resume_rules.py).

Only what extends a run may change (``train.max_steps``/``train.epochs`` upward, logging, checkpoint
cadence); every other difference is refused naming each key, old and new, and leaves every file as
it was; a finished run resumed with nothing to extend is left untouched; every accepted resume is
recorded in the summary with the keys it changed."""

from __future__ import annotations

import json

import pytest
from conftest import compose_config

from cli_helpers import run_cli
from compress_train.runner import checkpoint
from compress_train.runner.launch import launch
from compress_train.runner.resume_rules import ResumeRefused, changes, refusals
from compress_train.runner.run import RunDirError

QUICK = ("threads=1", "dataset.download=false", "logger.progress=false", "train.epochs=null")
SMALL = (
    "model.hidden=16",
    "train.batch_size=20",
    "train.log_every=2",
    "train.eval_every=4",
    "dataset.eval_samples=200",
)
RUN = (*SMALL, "compressor.ratio=0.01")


def start(run_dir, *overrides):
    return launch(compose_config(*QUICK, *overrides), run_dir)


def snapshot(run_dir):
    """Every file of the run directory, by content."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def killed_after_step_4(run_dir):
    """A run of 6 steps with a checkpoint at step 4, left as SIGKILL leaves it (status running)."""
    start(run_dir, *RUN, "train.max_steps=4", "train.checkpoint_every=2")
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "status": "running"}))


def test_only_what_extends_a_run_may_change():
    diff = changes(
        {"train.max_steps": 4, "train.log_every": 2, "compressor.ratio": 0.01, "logger.progress": True},
        {"train.max_steps": 8, "train.log_every": 5, "compressor.ratio": 0.1, "logger.progress": False},
    )
    assert refusals(diff) == ["`compressor.ratio`: 0.01 -> 0.1"]
    assert refusals(changes({"train.max_steps": 8}, {"train.max_steps": 4})) == [
        "`train.max_steps`: 8 -> 4 (it may only grow)"
    ]
    assert refusals(changes({"train.epochs": 5}, {"train.epochs": None})) == []  # null: no limit


def test_a_key_added_after_the_run_was_written_is_no_change_at_its_old_behaviour():
    """A checkpoint written before ``train.batched_workers`` existed ran its workers one after another:
    resuming it with the option's default is the same run, with the option on it is not."""
    old = {"train.max_steps": 4, "compressor.ratio": 0.01}  # predates both keys
    same = {**old, "train.max_steps": 8, "train.batched_workers": False, "train.lr_schedule": None}
    assert refusals(changes(old, same)) == []
    assert refusals(changes(old, {**same, "train.batched_workers": True})) == ["`train.batched_workers`: False -> True"]
    gone = changes({**old, "train.batched_workers": True}, old)  # a key removed since is a change
    assert refusals(gone) == ["`train.batched_workers`: True -> '<absent>'"]


def test_a_changed_compression_ratio_is_refused_and_nothing_is_written(tmp_path):
    run = tmp_path / "run"
    killed_after_step_4(run)
    before = snapshot(run)
    with pytest.raises(ResumeRefused, match=r"`compressor.ratio`: 0.01 -> 0.1"):
        start(run, *SMALL, "compressor.ratio=0.1", "train.max_steps=6", "train.checkpoint_every=2", "resume=auto")
    assert snapshot(run) == before


def test_another_worker_count_is_refused_naming_workers_for_auto_and_path(tmp_path):
    run = tmp_path / "run"
    killed_after_step_4(run)
    before = snapshot(run)
    for resume, target in (("auto", run), (str(run), tmp_path / "other")):
        with pytest.raises(ResumeRefused, match=r"`workers`: 1 -> 2") as err:
            start(target, *RUN, "workers=2", "train.max_steps=6", f"resume={resume}")
        assert "metrics.jsonl" not in str(err.value)
    assert snapshot(run) == before and not (tmp_path / "other").exists()


def test_a_completed_run_resumed_with_nothing_to_do_is_left_as_it_was(tmp_path):
    run = tmp_path / "run"
    first = start(run, *RUN, "train.max_steps=4")
    before = snapshot(run)
    again = start(run, *RUN, "train.max_steps=4", "train.log_every=1", "resume=auto")
    assert again == first and snapshot(run) == before
    with pytest.raises(ResumeRefused, match=r"`algo.lr`: 0.001 -> 0.01"):
        start(run, *RUN, "train.max_steps=4", "algo.lr=0.01", "resume=auto")
    assert snapshot(run) == before


def test_an_extended_run_records_the_resume_and_its_changes(tmp_path):
    run = tmp_path / "run"
    start(run, *RUN, "train.max_steps=4")
    s = start(run, *RUN, "train.max_steps=6", "train.log_every=3", "resume=auto")
    assert s["status"] == "completed" and s["steps"] == 6
    (entry,) = s["resumed"]["history"]
    assert entry["step"] == 4 and entry["changes"] == {"train.log_every": [2, 3], "train.max_steps": [4, 6]}
    manifest = checkpoint.read_manifest(checkpoint.complete(run)[-1])
    assert manifest["config"]["train"]["max_steps"] == 6


def test_resume_from_another_run_directory_carries_its_rows(tmp_path):
    source, target = tmp_path / "source", tmp_path / "target"
    start(source, *RUN, "train.max_steps=4")
    s = start(target, *RUN, "train.max_steps=6", f"resume={source}")
    rows = [json.loads(line) for line in (target / "metrics.jsonl").read_text().splitlines()]
    assert s["status"] == "completed" and [r["step"] for r in rows] == [2, 4, 6]


def test_a_fresh_run_into_a_used_directory_writes_nothing(tmp_path):
    run = tmp_path / "run"
    start(run, *RUN, "train.max_steps=2")
    before = snapshot(run)
    with pytest.raises(RunDirError, match="already holds a run"):
        start(run, *RUN, "train.max_steps=2", "seed=3")
    assert snapshot(run) == before


@pytest.mark.slow
def test_the_cli_refuses_in_one_line_before_hydra_writes(tmp_path):
    run = tmp_path / "run"
    start(run, *RUN, "train.max_steps=2")
    before = snapshot(run)
    proc = run_cli(
        f"hydra.run.dir={run}", *QUICK, *SMALL, "compressor.ratio=0.1", "train.max_steps=2", "resume=auto", cwd=tmp_path
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "`compressor.ratio`: 0.01 -> 0.1" in proc.stderr
    assert snapshot(run) == before  # .hydra/ and the log included
    proc = run_cli(f"hydra.run.dir={run}", *QUICK, *RUN, "train.max_steps=2", "resume=auto", cwd=tmp_path)
    assert proc.returncode == 0 and "nothing to resume" in proc.stderr, proc.stderr
    assert snapshot(run) == before


def test_a_longer_limit_that_another_limit_still_caps_rewrites_nothing(tmp_path):
    run = tmp_path / "run"
    first = start(run, *RUN, "train.max_steps=4", "train.epochs=5")  # max_steps caps the run
    before = {k: v for k, v in snapshot(run).items() if k != "config.yaml"}
    again = start(run, *RUN, "train.max_steps=4", "train.epochs=6", "resume=auto")
    assert again == first and {k: v for k, v in snapshot(run).items() if k != "config.yaml"} == before
