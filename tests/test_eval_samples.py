"""``dataset.eval_samples``: an image classifier evaluated on the first N test samples (smoke tests, and the
suite's own short runs), said in the summary; the whole test set by default; a bad value names the key."""

from __future__ import annotations

import json

import pytest
from test_resume import run_in_process

from compress_train.runner.config.check import ConfigError, check_config

RUN = ("model.hidden=16", "train.batch_size=20", "train.max_steps=2", "train.epochs=null", "threads=1")
RUN += ("train.eval_every=2", "train.log_every=2")


def test_the_first_n_test_samples_are_evaluated_and_the_summary_says_so(tmp_path):
    part = run_in_process(tmp_path / "part", *RUN, "dataset.eval_samples=150")
    whole = run_in_process(tmp_path / "whole", *RUN)
    assert part["dataset"]["eval_samples"] == 150 and "eval_samples" not in whole["dataset"]
    (row,) = [json.loads(line) for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    correct = row["test_acc"] * 150
    assert correct == pytest.approx(round(correct), abs=1e-9)  # a count out of 150 images
    (full,) = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert {k: v for k, v in row.items() if not k.startswith(("test_", "time_"))} == {
        k: v for k, v in full.items() if not k.startswith(("test_", "time_"))
    }  # training is untouched: only the evaluation is shorter


@pytest.mark.parametrize("value", [0, -3, 1.5, "all"])
def test_a_bad_eval_samples_names_the_key(make_config, value):
    with pytest.raises(ConfigError, match=r"`dataset.eval_samples` must be an integer >= 1 or null"):
        check_config(make_config(f"dataset.eval_samples={value}"))
