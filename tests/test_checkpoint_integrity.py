"""Checkpoints prove their integrity: the manifest records every file's SHA-256, a resume checks
them, passes over a damaged checkpoint to the previous intact one with a warning naming the file,
and stops naming the damage when none is left. ``train.keep_checkpoints=0`` leaves none behind."""

from __future__ import annotations

import json

import pytest
from conftest import compose_config

from compress_train.runner import checkpoint
from compress_train.runner.launch import launch

QUICK = ("threads=1", "dataset.download=false", "logger.progress=false", "train.epochs=null")
RUN = ("model.hidden=16", "train.batch_size=20", "train.log_every=2", "train.eval_every=2", "train.checkpoint_every=2")


def start(run_dir, *overrides):
    return launch(compose_config(*QUICK, *RUN, *overrides), run_dir)


def rows(run_dir):
    return [
        {k: v for k, v in json.loads(line).items() if not k.startswith("time_")}
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]


def flip(path, at=-5000):
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_manifest_records_every_file_checksum(tmp_path):
    start(tmp_path / "run", "train.max_steps=2")
    (folder,) = checkpoint.complete(tmp_path / "run")
    manifest = checkpoint.read_manifest(folder)
    assert set(manifest["sha256"]) == set(manifest["files"]) == {"shared.pt", "rank_0.pt"}
    assert manifest["sha256"]["rank_0.pt"] == checkpoint.sha256(folder / "rank_0.pt")


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, capfd):
    whole, run = tmp_path / "whole", tmp_path / "run"
    start(whole, "train.max_steps=6")
    start(run, "train.max_steps=4")
    older, newest = checkpoint.complete(run)
    flip(newest / "rank_0.pt")
    s = start(run, "train.max_steps=6", "resume=auto")
    err = capfd.readouterr().err
    assert f"cannot read checkpoint file {newest / 'rank_0.pt'}" in err and "previous complete checkpoint" in err
    assert s["status"] == "completed" and s["resumed"]["from_steps"] == [2]
    assert rows(run) == rows(whole)  # the run from step 2 equals the uninterrupted one


def test_no_intact_checkpoint_left_stops_naming_the_damage_and_writes_nothing(tmp_path):
    run = tmp_path / "run"
    start(run, "train.max_steps=4")
    for folder in checkpoint.complete(run):
        flip(folder / "shared.pt", at=-100)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(checkpoint.CheckpointError, match="no intact checkpoint left") as err:
        start(run, "train.max_steps=6", "resume=auto")
    assert "shared.pt" in str(err.value) and "\n" not in str(err.value)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_named_damaged_checkpoint_is_not_replaced_by_another(tmp_path):
    run = tmp_path / "run"
    start(run, "train.max_steps=4")
    older, newest = checkpoint.complete(run)
    flip(newest / "rank_0.pt")
    with pytest.raises(checkpoint.CheckpointError, match="rank_0.pt: its SHA-256 differs"):
        start(tmp_path / "other", "train.max_steps=6", f"resume={newest}")


def test_keep_checkpoints_zero_leaves_none_behind(tmp_path):
    run = tmp_path / "run"
    s = start(run, "train.max_steps=4", "train.keep_checkpoints=0")
    assert s["status"] == "completed" and not (run / "checkpoints").exists()
    assert start(run, "train.max_steps=4", "train.keep_checkpoints=0", "resume=auto") == s  # nothing to do
    with pytest.raises(checkpoint.CheckpointError, match="without a checkpoint to extend it from"):
        start(run, "train.max_steps=6", "train.keep_checkpoints=0", "resume=auto")
