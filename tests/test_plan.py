"""Know before you launch: every option's description is one whole sentence, and every preset says
how many runs of how many steps it starts, an estimate of their time, the verdicts of the paper
claims naming it, and (``--dry-run``) every job and its directory without starting any."""

from __future__ import annotations

import json
import subprocess

import pytest

from cli_helpers import BIN
from compress_train.runner import cli, plan, speed, verdicts
from compress_train.runner.discover import CONF, describe, first_sentence, preset_lines, presets


@pytest.mark.parametrize(
    "text, sentence",
    [
        ("DEF, detached error feedback (def Alg. 1). The rest.", "DEF, detached error feedback (def Alg. 1)."),
        ("EF21 (Richtarik et al. 2021) and its rule. More.", "EF21 (Richtarik et al. 2021) and its rule."),
        ("Any LIBSVM file, e.g. a9a or gisette. More.", "Any LIBSVM file, e.g. a9a or gisette."),
        ("As in Fig. 3 and Sec. 2, top-k wins. More.", "As in Fig. 3 and Sec. 2, top-k wins."),
        ("Ratios R = 16 .. 1024 with RBGS. More.", "Ratios R = 16 .. 1024 with RBGS."),
        ("Table 1: accuracy (mean. std) per ratio. More.", "Table 1: accuracy (mean. std) per ratio."),
        ("No stop at all", "No stop at all"),
    ],
)
def test_first_sentence_skips_abbreviations_ranges_and_parentheses(text, sentence):
    assert first_sentence(text) == sentence


def test_every_option_and_preset_has_a_whole_sentence_of_its_own():
    groups = [p for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra", "model_defaults", "schema")]
    for group in groups:
        seen: dict[str, str] = {}
        for path in sorted(group.rglob("*.yaml")):
            text = describe(path)
            assert text.endswith((".", "!", "?")), (str(path), text)
            assert text not in seen, f"{path} and {seen.get(text)} share the description {text!r}"
            seen[text] = str(path)


@pytest.mark.parametrize("preset", presets())
def test_dry_run_lists_every_job_of_every_preset_and_starts_none(preset, tmp_path):
    out = cli.dry_run([f"experiment={preset}", f"hydra.sweep.dir={tmp_path}/sweep"])
    p = plan.plan([f"experiment={preset}"])
    assert p.multirun and len(p.jobs) > 1
    for job in p.jobs:
        assert f"{tmp_path}/sweep/{job.num}_" in out
    assert out.splitlines()[-1].startswith(f"total: {len(p.jobs)} runs x ")
    assert "nothing was started" in out and not (tmp_path / "sweep").exists()


@pytest.mark.parametrize(
    "overrides, runs, steps",
    [
        (["experiment=def/table1"], 60, [124]),  # 5 methods x 4 ratios x 3 seeds; 4 epochs of 4,000 / (4 x 32)
        (["experiment=comp_ams/fig1"], 96, [80]),  # 8 methods x 4 lrs x 3 seeds; 4 epochs of 4,000 / 200
        (["experiment=comp_ams/fig1", "scale=paper"], 120, [6000]),  # 5 lrs; 20 epochs of 60,000 / 200
        (["experiment=hard_threshold/fig2_lstm"], 21, [150]),  # train.max_steps
        (["experiment=aiade/rate"], 36, [5000]),  # 2 problems x 6 methods x 3 seeds
        (["seed=1"], 1, [100]),  # the default run: 5 epochs of 4,000 / 200
    ],
)
def test_plan_counts_runs_and_steps(overrides, runs, steps):
    p = plan.plan(overrides)
    assert (len(p.jobs), p.steps) == (runs, steps)


def test_dry_run_directories_are_the_ones_hydra_creates(tmp_path):
    args = ["compressor=topk,blocksign", "train.max_steps=2", "threads=1", f"hydra.sweep.dir={tmp_path}/s"]
    listed = cli.dry_run(["-m", *args])
    proc = subprocess.run(
        [str(BIN / "compress-train"), "-m", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    made = sorted(p.name for p in (tmp_path / "s").iterdir() if p.is_dir() and p.name[0].isdigit())
    assert made == [
        "0_compressor=topk,threads=1,train.max_steps=2",
        "1_compressor=blocksign,threads=1,train.max_steps=2",
    ]
    for name in made:
        assert f"{tmp_path}/s/{name}\n" in listed


def test_estimate_scales_with_workers_times_batch_and_is_said_to_be_one():
    p = plan.plan(["experiment=def/sgd"])
    w0, b0, rate, _ = speed.STEPS_PER_S["mnist_cnn"]
    assert (w0, b0) == (4, 32)  # the preset's own shape
    assert p.jobs[0].seconds == pytest.approx(124 / rate + speed.OVERHEAD_S)
    bigger = plan.plan(["experiment=def/sgd", "workers=8"])
    assert bigger.jobs[0].steps == 4 * (4000 // 8 // 32)  # 60: twice the examples a step
    assert bigger.jobs[0].seconds == pytest.approx(60 * 2 / rate + speed.OVERHEAD_S)
    assert "estimate" in plan.summary_line(p)


def test_no_estimate_for_an_unmeasured_model_or_size():
    assert plan.plan(["experiment=def/table2", "scale=paper"]).seconds is None  # ResNet-50, never measured
    assert plan.plan(["model.hidden=32"]).seconds is None  # not the measured width
    assert plan.size_line({"runs": 2, "steps": [5], "seconds": None}).startswith("2 runs x 5 steps, estimate unknown")


def test_claim_verdicts_per_preset_and_scale(tmp_path):
    claims = [
        {
            "paper": "def",
            "id": "a",
            "item": "Table 1",
            "experiments": ["def/table1"],
            "scale": "ci",
            "verdict": "reproduced",
        },
        {
            "paper": "def",
            "id": "b",
            "item": "Table 1",
            "experiments": ["def/table1", "def/sgd"],
            "scale": "ci",
            "verdict": "reproduced",
        },
        {
            "paper": "def",
            "id": "c",
            "item": "Table 1",
            "experiments": ["def/table1"],
            "scale": "ci",
            "verdict": "not reproduced",
        },
        {
            "paper": "def",
            "id": "c",
            "item": "Table 1",
            "experiments": ["def/table1"],
            "scale": "paper",
            "verdict": "not run",
        },
        {
            "paper": "def",
            "id": "d",
            "item": "Fig. 1",
            "experiments": ["def/fig1"],
            "scale": "ci",
            "verdict": "inconclusive",
        },
        {  # run at no scale yet: the evaluator writes "-"
            "paper": "def",
            "id": "e",
            "item": "Table 1",
            "experiments": ["def/table1"],
            "scale": "-",
            "verdict": "not run",
        },
    ]
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(claims))
    loaded = verdicts.load(path)
    ci = "claims: 2 reproduced, 1 not reproduced, 1 not run"  # the claim at no scale counts at each
    assert verdicts.phrase(verdicts.counts(loaded, "def/table1", "ci")) == ci
    sizes = {
        "ci": {"runs": 60, "steps": [124], "seconds": 1800.0},
        "paper": {"runs": 75, "steps": [78000], "seconds": None},
    }
    lines = preset_lines("def/table1", sizes, loaded)
    assert lines[0].endswith(f"; {ci}") and lines[1].endswith("; claims: 2 not run")
    assert verdicts.items(loaded, "def/table1") == ["def Table 1"]
    assert verdicts.load(tmp_path / "absent.json") == []
    assert "claims:" not in "\n".join(preset_lines("def/table1", sizes, []))


def test_list_and_preset_help_show_runs_steps_and_estimates(tmp_path):
    run = lambda *a: subprocess.run(  # noqa: E731
        [str(BIN / "compress-train"), *a], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    listing = run("list").stdout
    assert "scale=ci: 60 runs x 124 steps, estimate " in listing  # def/table1
    assert "scale=paper: 120 runs x 6,000 steps, estimate " in listing  # comp_ams/fig1
    assert "ESTIMATES" in listing
    helped = run("experiment=def/table1", "--help").stdout
    assert helped.startswith("experiment=def/table1\n`def` Table 1: VGG-16 on CIFAR-10")
    assert "scale=ci: 60 runs x 124 steps, estimate " in helped and "--dry-run" in helped


def test_dotted_lr_schedule_override_keeps_the_other_keys():
    (sched,) = [
        o
        for o in cli.schedule_overrides(["experiment=def/table1", "train.lr_schedule.milestones=[1,2]"])
        if "lr_schedule" in o
    ]
    assert sched == "train.lr_schedule={milestones:[1,2],gamma:0.1}"
    assert cli.schedule_overrides(["train.lr_schedule.gamma=0.5"]) == ["train.lr_schedule={gamma:0.5}"]
    assert cli.schedule_overrides(["seed=1"]) == ["seed=1"]
    out = cli.dry_run(["experiment=def/sgd", "train.lr_schedule.milestones=[1]"])
    assert "train.lr_schedule={milestones:[1],gamma:0.1}" in out


def test_preset_sizes_are_cached_per_preset_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = plan.preset_sizes(["def/sgd"])
    assert first["def/sgd"]["ci"]["runs"] == 3 and (tmp_path / "compress_train" / "preset_sizes.json").is_file()

    calls: list[list[str]] = []
    real = plan.plan
    monkeypatch.setattr(plan, "plan", lambda overrides, *a, **k: calls.append(overrides) or real(overrides, *a, **k))
    assert plan.preset_sizes(["def/sgd"]) == first and calls == []  # from the cache
    cached = json.loads((tmp_path / "compress_train" / "preset_sizes.json").read_text())
    cached["def/sgd"]["key"] = "stale"  # the preset's file changed
    (tmp_path / "compress_train" / "preset_sizes.json").write_text(json.dumps(cached))
    assert plan.preset_sizes(["def/sgd"]) == first and calls  # composed again


def test_dry_run_stops_on_a_bad_key_or_option_as_a_run_would(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.dry_run(["train.epocs=3"])
    assert stop.value.code == 2
    assert "`train.epocs` is not a config key. Did you mean `train.epochs`?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.dry_run(["experiment=nope"])
    assert "`experiment` must be one of the options in conf/experiment/" in capsys.readouterr().err
