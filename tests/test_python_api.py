"""The Python API for notebooks: ``compress_train.run`` runs one config in this process (Hydra's
compose API, the CLI's checks and run directory), ``compress_train.load_runs`` returns the
report's DataFrame, per run or per metrics row, with the documented columns."""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import pytest
from test_cli import write_tiny_mnist

import compress_train
from compress_train import _load

SMALL_RUN = (
    "model.hidden=16",
    "train.batch_size=20",
    "train.log_every=1",
    "dataset.download=false",
    "logger.progress=false",
)


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    """One tiny run through ``compress_train.run``, from a working directory of its own (the run
    directory defaults to outputs/runs/... there, like the CLI's): (working dir, returned summary)."""
    cwd = tmp_path_factory.mktemp("api")
    write_tiny_mnist(cwd / "mnist")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        result = compress_train.run(
            ["method=comp_ams/topk_ef_0.01", f"dataset.root={cwd / 'mnist'}", *SMALL_RUN, "train.max_steps=2"]
        )
    return cwd, result


@pytest.mark.slow
def test_run_returns_the_completed_summary_in_a_new_outputs_dir(api_run):
    cwd, result = api_run
    run_dir = Path(result["run_dir"])
    assert run_dir.relative_to(cwd).parts[:2] == ("outputs", "runs") and (run_dir / "summary.json").exists()
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert result["status"] == on_disk["status"] == "completed" and result["steps"] == 2
    assert result["method"] == "TopK-EF-0.01" and result["totals"] == on_disk["totals"]
    overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert "- method=comp_ams/topk_ef_0.01" in overrides and "- train.epochs=null" in overrides  # as the CLI's


@pytest.mark.slow
def test_load_runs_per_run_and_per_row(api_run):
    _, result = api_run
    run_dir = Path(result["run_dir"])
    runs = compress_train.load_runs(run_dir)
    assert len(runs) == 1 and set(_load.RUN_COLUMNS) <= set(runs.columns)
    (row,) = runs.to_dict("records")
    assert (row["method"], row["status"], row["steps"]) == ("TopK-EF-0.01", "completed", 2)
    assert row["total_bits_up"] == result["totals"]["bits_up"] and row["run_dir"] == str(run_dir)

    rows = compress_train.load_runs([run_dir], per="row")
    assert set(_load.ROW_COLUMNS) <= set(rows.columns)
    assert list(rows["step"]) == [1, 2] and rows["bits_up"].iloc[-1] == result["totals"]["bits_up"]
    assert (rows["method"] == "TopK-EF-0.01").all() and rows["test_acc"].notna().iloc[-1]
    assert (rows["samples"] == rows["step"] * 20).all()  # one worker, batch 20


EXAMPLE = re.compile(r"\n\n((?:    .*\n)+)")  # the package docstring's example, as in the README


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path, monkeypatch):
    """The five lines, on the tiny MNIST files (one more override for the data): a figure and both frames."""
    import matplotlib

    matplotlib.use("Agg")
    code = textwrap.dedent(EXAMPLE.search(compress_train.__doc__).group(1))
    assert len(code.strip().splitlines()) == 5
    write_tiny_mnist(tmp_path / "mnist")
    monkeypatch.chdir(tmp_path)
    real_run = compress_train.run
    monkeypatch.setattr(
        compress_train,
        "run",
        lambda o: real_run([*o, f"dataset.root={tmp_path / 'mnist'}", *SMALL_RUN, "train.max_steps=3"]),
    )
    scope: dict = {}
    exec(compile(code, "README example", "exec"), scope)  # noqa: S102 - our own docstring
    assert scope["summary"]["status"] == "completed" and list(scope["rows"]["step"]) == [1, 2, 3]
    assert len(scope["runs"]) == 1 and scope["runs"]["method"].tolist() == ["TopK-EF-0.01"]


def test_load_runs_rejects_an_unknown_per_and_a_missing_path(tmp_path):
    with pytest.raises(ValueError, match=r"`per` must be one of \['run', 'row'\], but is 'rows'"):
        compress_train.load_runs(tmp_path, per="rows")
    from compress_train.runner.report.load import ReportError

    with pytest.raises(ReportError, match=f"{tmp_path / 'nowhere'} does not exist"):
        compress_train.load_runs(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.max_stepz=2", "`train.max_stepz` is not a config key. Did you mean `train.max_steps`?"),
        ("train.batch_size=-1", "`train.batch_size` must be an integer >= 1, but is -1."),
        ("compressor=topkk", "`compressor` must be one of the options in conf/compressor/"),
        ("seed=1,2", "`seed` is given several values; run() runs one config"),
    ],
)
def test_a_bad_override_raises_the_config_error_naming_the_key(override, message, tmp_path):
    with pytest.raises(compress_train.ConfigError) as err:
        compress_train.run([override, "train.max_steps=2"], run_dir=tmp_path / "run")
    assert message in str(err.value) and str(err.value).startswith("invalid configuration:\n  ")
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_overrides_must_be_a_list():
    with pytest.raises(TypeError, match="a list of 'key=value' strings"):
        compress_train.run("seed=1")


def test_the_package_exports_ddp_hook_and_nothing_unknown():
    from compress_train.runner.ddp_hook import ddp_hook

    assert compress_train.ddp_hook is ddp_hook
    assert {"run", "load_runs", "ddp_hook", "ConfigError"} <= set(dir(compress_train))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        compress_train.nope  # noqa: B018


def _ranked_sweep(root: Path) -> Path:
    from test_report import make_run

    make_run(root, "0_ef_s0", losses={2: 1.0, 4: 0.4, 6: 0.3}, accs={2: 0.60, 4: 0.92, 6: 0.90}, seed=0)
    make_run(root, "1_ef_s1", losses={2: 1.2, 4: 0.6, 6: 0.5}, accs={2: 0.50, 4: 0.85, 6: 0.94}, seed=1)
    make_run(root, "2_noef", losses={2: 1.1, 4: 0.7, 6: 0.6}, accs={2: 0.40, 4: 0.70, 6: 0.80}, ef="none")
    return root


def test_per_run_has_final_and_best_test_metrics_to_rank_by(tmp_path):
    runs = compress_train.load_runs(_ranked_sweep(tmp_path / "s"), per="run").set_index("run_dir")
    ef0 = runs.loc[str(tmp_path / "s" / "0_ef_s0")]
    assert (ef0["final_test_acc"], ef0["best_test_acc"]) == (0.90, 0.92)
    assert ef0["final_test_loss"] == pytest.approx(0.10) and ef0["best_test_loss"] == pytest.approx(0.08)  # lowest
    assert "final_perplexity" not in runs  # no run logged it
    assert list(runs.sort_values("best_test_acc", ascending=False)["seed"])[:1] == [1]


def test_bits_to_a_target_and_seed_mean_and_std_by_method(tmp_path):
    root = _ranked_sweep(tmp_path / "s")
    rows = compress_train.load_runs(root, per="row")
    reached = compress_train.bits_to(rows, "test_acc>=0.9")
    assert reached[str(root / "0_ef_s0")] == 640.0 * 4 and reached[str(root / "1_ef_s1")] == 640.0 * 6
    assert reached[str(root / "2_noef")] == float("inf")  # never there
    assert compress_train.bits_to(rows, "train_loss<=0.6")[str(root / "1_ef_s1")] == 640.0 * 4
    runs = compress_train.load_runs(root, per="run")
    runs["bits_to:test_acc>=0.9"] = runs["run_dir"].map(reached)
    table = compress_train.by_method(runs, ["best_test_acc", "bits_to:test_acc>=0.9"])
    ef = table.loc["TopK-EF-0.01"]
    assert ef["n"] == 2 and ef["best_test_acc_mean"] == pytest.approx(0.93)
    assert ef["best_test_acc_std"] == pytest.approx(0.01414, abs=1e-4)  # sample std of 0.92, 0.94
    assert ef["bits_to:test_acc>=0.9_mean"] == 640.0 * 5
    assert table.loc["TopK-0.01", "n"] == 1 and math.isnan(table.loc["TopK-0.01", "bits_to:test_acc>=0.9_mean"])
    with pytest.raises(ValueError, match="must read like 'test_acc>=0.95'"):
        compress_train.bits_to(rows, "test_acc about 0.9")
    with pytest.raises(ValueError, match="no run logged `perplexity`"):
        compress_train.bits_to(rows, "perplexity<=100")
