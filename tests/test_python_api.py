"""The Python API for notebooks: ``compress_train.run`` runs one config in this process (Hydra's
compose API, the CLI's checks and run directory), ``compress_train.load_runs`` returns the
report's DataFrame, per run or per metrics row, with the documented columns."""

from __future__ import annotations

import json
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
