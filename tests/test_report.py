"""compress-report (runner/report/): loading run directories, method labels, seed aggregation, the
summary and ``comp_ams`` tables and figures, the CLI.

Fast tests build tiny run directories by hand (summary.json + metrics.jsonl as the trainer writes
them); the slow test runs a real 2-job multirun and reports on it."""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from compress_train.runner.metrics import flatten, read_metrics
from compress_train.runner.report.cli import main
from compress_train.runner.report.comp_ams import iterations_table
from compress_train.runner.report.load import aggregate, derived_label, keep_best_lr, load_runs, method_order
from compress_train.runner.report.plots import data_labels, data_title
from compress_train.runner.report.tables import summary_table

BIN = Path(sys.executable).parent
D = 1000  # parameters of the fake model: full gradient = 32,000 bits per step
DATASET = {"name": "fake-mnist", "description": "hand-written test rows", "source": "tests"}

pytestmark = pytest.mark.xdist_group("report")  # one module fixture (the fig1 report): one worker


def make_run(
    root: Path,
    name: str,
    *,
    losses: dict[int, float | None],
    accs: dict[int, float] | None = None,
    bits_step: float = 640.0,
    status: str = "completed",
    steps_per_epoch: int = 4,
    **identity,
) -> Path:
    """A run dir like the trainer's: cumulative bits, test metrics on evaluation rows only, null for NaN."""
    run = root / name
    run.mkdir(parents=True)
    rows = []
    for step, loss in losses.items():
        row = {
            "step": step,
            "epoch": step / steps_per_epoch,
            "samples": step * 200,
            "lr": 1e-3,
            "train_loss": loss,
            "bits_up": bits_step * step,
            "bits_down": 32.0 * D * step,
            "elements_up": bits_step / 64 * step,
            "bits_up_step": bits_step,
            "density": bits_step / 64 / D,
        }
        if accs and step in accs:
            row.update(test_loss=1.0 - accs[step], test_acc=accs[step])
        rows.append(row)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {
        "status": status,
        "method": None,
        "experiment": None,
        "algo": "comp_ams",
        "algo_params": {"lr": 1e-3, "ef": identity.get("ef", "classic")},
        "compressor": "topk",
        "compressor_params": {"ratio": 0.01, "k": None, "scope": "model"},
        "ef": "classic",
        "workers": 1,
        "launcher": "sim",
        "seed": 0,
        "model": "mnist_cnn",
        "dataset": DATASET,
        "num_params": D,
        "final": rows[-1],
        "steps": max(losses),
        "totals": {"bits_up": bits_step * max(losses)},
    }
    summary.update(identity)
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    return run


def build_fig1(root: Path) -> Path:
    """Single worker: TopK-EF-0.01 (seeds 0, 1), TopK-0.01, full-gradient AMSGrad, a diverged BkSign-EF."""
    make_run(root, "0_topk_ef_s0", losses={2: 1.0, 4: 0.4}, accs={4: 0.80}, seed=0)
    make_run(root, "1_topk_ef_s1", losses={2: 1.2, 4: 0.6}, accs={4: 0.90}, seed=1)
    make_run(root, "2_topk_s0", losses={2: 1.1, 4: 0.7}, accs={4: 0.70}, ef="none")
    make_run(
        root,
        "3_amsgrad",
        losses={2: 0.9, 4: 0.3},
        accs={4: 0.95},
        bits_step=32.0 * D,
        algo="amsgrad",
        compressor="none",
        compressor_params={},
        ef="none",
    )
    make_run(
        root,
        "4_bksign_ef",
        losses={2: 1.5, 3: None},
        accs={2: 0.5},
        bits_step=1100.0,
        status="diverged",
        compressor="blocksign",
        compressor_params={"scope": "layer"},
    )
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


@pytest.fixture
def fig1(tmp_path: Path) -> Path:
    return build_fig1(tmp_path / "sweep")


@pytest.fixture
def speedup(tmp_path: Path) -> Path:
    """``comp_ams`` Fig. 2 in miniature: TopK-EF-0.01 with n = 1 (2 seeds), 2 (2 seeds), 4 (never reaches 0.5)."""
    root = tmp_path / "fig2"

    def curve(cross: int) -> dict[int, float]:  # 1.0 until just before `cross`, then 0.45
        return {s: (0.45 if s >= cross else 1.0) for s in range(10, 101, 10)}

    for n, seed, cross in [(1, 0, 60), (1, 1, 80), (2, 0, 30), (2, 1, 40), (4, 0, 1000)]:
        make_run(
            root,
            f"n{n}_s{seed}",
            losses=curve(cross),
            accs={100: 0.9},
            workers=n,
            seed=seed,
            method="TopK-EF-0.01",
            experiment="comp_ams/fig2",
            algo_params={"lr": 1e-4 * math.sqrt(n), "ef": "classic"},
        )
    return root


def test_dataframe_has_run_columns_and_every_metrics_row(fig1):
    df, runs = load_runs([fig1])
    assert len(runs) == 5 and len(df) == 10
    for col in [
        "run_dir",
        "method",
        "algo",
        "compressor",
        "ef",
        "workers",
        "seed",
        "dataset",
        "status",
        "step",
        "epoch",
        "train_loss",
        "test_acc",
        "bits_up",
    ]:
        assert col in df.columns
    assert set(df["dataset"]) == {"fake-mnist"}
    assert set(df["method"]) == {"TopK-EF-0.01", "TopK-0.01", "AMSGrad", "BkSign-EF"}
    topk_ef = runs[runs["method"] == "TopK-EF-0.01"]
    assert sorted(topk_ef["seed"]) == [0, 1]  # two seeds grouped into one method
    assert df.loc[df["status"] == "diverged", "train_loss"].isna().sum() == 1  # null loss kept as NaN
    assert df["test_acc"].notna().sum() == 5  # evaluation rows only
    assert method_order(runs)[0] == "AMSGrad"  # full gradient first


def test_derived_labels_follow_the_paper_legend():
    base = {"algo": "comp_ams", "compressor": "topk", "compressor_params": {"ratio": 0.001}, "ef": "classic"}
    assert derived_label(base) == "TopK-EF-0.001"
    assert derived_label({**base, "ef": "none"}) == "TopK-0.001"
    assert derived_label({**base, "compressor": "blocksign", "compressor_params": {"scope": "layer"}}) == "BkSign-EF"
    assert (
        derived_label({**base, "compressor": "mvss", "compressor_params": {"ratio": 0.01}, "ef": "none"}) == "MVSS-0.01"
    )
    assert derived_label({**base, "compressor": "identity", "compressor_params": {}}) == "AMSGrad"
    assert derived_label({"algo": "amsgrad", "compressor": "none", "ef": "none"}) == "AMSGrad"
    assert derived_label({**base, "algo": "qadam", "compressor": "blocksign"}) == "QAdam"
    assert derived_label({"algo": "sgd", "compressor": "none", "ef": "none"}) == "SGD"
    assert (
        derived_label({"algo": "ef_sgd", "compressor": "threshold", "compressor_params": {"lam": 0.01}, "ef": "scaled"})
        == "EF(scaled)-SGD-threshold-λ=0.01"
    )


def test_preset_label_wins_and_workers_are_appended(speedup, fig1, tmp_path):
    df, runs = load_runs([speedup])
    assert set(runs["method"]) == {"TopK-EF-0.01, n=1", "TopK-EF-0.01, n=2", "TopK-EF-0.01, n=4"}
    # Same label, same workers, different learning rate: told apart by the setting that differs.
    make_run(tmp_path / "lr", "a", losses={2: 1.0}, algo_params={"lr": 1e-3, "ef": "classic"})
    make_run(tmp_path / "lr", "b", losses={2: 1.0}, algo_params={"lr": 1e-2, "ef": "classic"})
    _, runs = load_runs([tmp_path / "lr"])
    assert set(runs["method"]) == {"TopK-EF-0.01 (lr=0.001)", "TopK-EF-0.01 (lr=0.01)"}


def test_mean_over_seeds_aligned_on_step(fig1):
    df, _ = load_runs([fig1])
    a = aggregate(df[df["method"] == "TopK-EF-0.01"], "epoch", "train_loss").set_index("step")
    assert a.loc[2, "mean"] == pytest.approx(1.1) and a.loc[4, "mean"] == pytest.approx(0.5)
    assert (a.loc[4, "lo"], a.loc[4, "hi"], a.loc[4, "n"]) == (pytest.approx(0.4), pytest.approx(0.6), 2)
    assert a.loc[4, "x"] == 1.0
    acc = aggregate(df[df["method"] == "TopK-EF-0.01"], "bits_up", "test_acc")
    assert list(acc["step"]) == [4] and acc["mean"].iloc[0] == pytest.approx(0.85)


@pytest.fixture(scope="module")
def fig1_report(tmp_path_factory):
    """The report on the fig1 runs, made once for the tests that read its files: (out, stdout)."""
    tmp = tmp_path_factory.mktemp("fig1")
    out, stdout = tmp / "report", io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main([str(build_fig1(tmp / "sweep")), "--out", str(out), "--title", "Fake Fig 1"]) == 0  # png + pdf
    return out, stdout.getvalue()


def _md_rows(path: Path) -> dict[str, dict[str, str]]:
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [dict(zip(head, (c.strip() for c in ln.strip("|").split("|")))) for ln in lines[2:]]
    return {r["method"]: r for r in rows}


def test_summary_md_numbers(fig1_report):
    out, _ = fig1_report
    rows = _md_rows(out / "summary.md")
    assert list(rows) == ["AMSGrad", "TopK-EF-0.01", "TopK-0.01", "BkSign-EF"]
    ef = rows["TopK-EF-0.01"]
    assert ef["runs (seeds)"] == "2 (0, 1)" and ef["status"] == "2 completed" and ef["steps"] == "4"
    assert ef["final train loss"] == "0.5000 ± 0.1414"
    assert ef["final test accuracy (%)"] == "85.00 ± 7.07"
    assert ef["bits up / worker (total)"] == "2.56e+03"
    assert ef["bits vs full gradient"] == "50× fewer"  # 32,000 / 640 bits per step
    assert rows["AMSGrad"]["bits vs full gradient"] == "1× (reference)"
    div = rows["BkSign-EF"]
    assert div["status"] == "1 diverged" and div["final train loss"] == "diverged"
    assert div["best test accuracy (%)"] == "50.00"
    assert div["bits vs full gradient"] == "29.1× fewer"  # per iteration: 32,000 / 1,100
    assert "Fake Fig 1" in (out / "summary.md").read_text()


def test_figures_csv_and_file_list(fig1_report):
    out, printed = fig1_report
    for stem in ["train_loss_vs_epochs", "test_acc_vs_epochs", "train_loss_vs_iterations", "test_acc_vs_bits"]:
        for ext in ("png", "pdf"):
            f = out / f"{stem}.{ext}"
            assert f.exists() and f.stat().st_size > 1000, f
            assert str(f) in printed
    assert (out / "runs.csv").read_text().startswith("run_dir,experiment,method,algo,compressor,ef,workers,seed")
    assert not (out / "iterations_to_target.md").exists()  # all runs have one worker


def test_iterations_to_target(speedup, tmp_path, capsys):
    df, runs = load_runs([speedup])
    table = iterations_table(df, runs, method_order(runs), 0.5).set_index("n (workers)")
    col = "iterations to train loss ≤ 0.5"
    assert table.loc[1, col] == "70 ± 14" and table.loc[2, col] == "35 ± 7"
    assert table.loc[4, col] == "not reached" and table.loc[4, "seeds reached"] == "0/1"
    assert table.loc[2, "speedup (ideal)"] == "2.00× (2×)"
    out = tmp_path / "r2"
    assert (
        main(
            [
                str(speedup),
                "--out",
                str(out),
                "--target-loss",
                "0.5",
                "2.0",
                "--metric",
                "perplexity",
                "--formats",
                "png",
            ]
        )
        == 0
    )
    text = (out / "iterations_to_target.md").read_text()
    printed = capsys.readouterr().out
    assert "70 ± 14" in text and "not reached" in text and "70 ± 14" in printed
    assert "## Training loss ≤ 0.5" in text and "## Training loss ≤ 2" in text  # a table per target
    assert "note: skipped perplexity_vs_epochs" in printed  # absent metric: plot skipped with a note
    assert not (out / "perplexity_vs_bits.png").exists() and (out / "train_loss_vs_iterations.png").exists()


def test_the_metric_defaults_to_the_runs_own(tmp_path):
    """An LSTM sweep logs perplexity, NCF hit_rate@10: without --metric the report tabulates and plots
    that (a sweep script that forgot --metric lost the perplexity columns and figures)."""
    root = tmp_path / "lm"
    for seed in (0, 1):
        run = make_run(root, f"lstm_{seed}", losses={2: 6.5, 4: 6.3}, seed=seed)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        rows[-1].update(test_loss=6.2, perplexity=490.0 + seed)
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report"
    assert main([str(root), "--out", str(out), "--formats", "png"]) == 0
    assert "final test perplexity" in (out / "summary.md").read_text()
    assert (out / "perplexity_vs_bits.png").exists()


def test_bad_paths_exit_2(tmp_path, capsys):
    missing = tmp_path / "no_such_dir"
    assert main([str(missing), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert str(tmp_path / "empty") in capsys.readouterr().err
    proc = subprocess.run(
        [str(BIN / "compress-report"), str(missing), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and str(missing) in proc.stderr and "Traceback" not in proc.stderr


def test_corrupt_summary_is_skipped_with_a_warning(fig1, capsys):
    bad = fig1 / "9_broken"
    bad.mkdir()
    (bad / "summary.json").write_text('{"status": "compl')
    df, runs = load_runs([fig1])
    assert len(runs) == 5 and str(bad) not in set(df["run_dir"])
    assert str(bad / "summary.json") in capsys.readouterr().err


def test_runs_that_did_not_finish_are_left_out_with_one_line(fig1, capsys):
    import json

    first = sorted(p for p in fig1.iterdir() if (p / "summary.json").exists())[0]
    s = json.loads((first / "summary.json").read_text())
    (first / "summary.json").write_text(json.dumps({**s, "status": "interrupted"}))
    df, runs = load_runs([fig1])
    assert len(runs) == 4 and str(first) not in set(df["run_dir"])
    assert f"left out 1 run(s) that did not finish: {first} (interrupted)" in capsys.readouterr().err


@pytest.mark.slow
def test_report_on_a_real_multirun(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [
            str(BIN / "compress-train"),
            "-m",
            f"hydra.sweep.dir={sweep}",
            "seed=0,1",
            "train.max_steps=4",
            "train.log_every=2",
            "train.eval_every=4",
            "dataset.download=false",
            "logger.progress=false",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "report"
    proc = subprocess.run(
        [str(BIN / "compress-report"), str(sweep), "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    rows = _md_rows(out / "summary.md")
    assert list(rows) == ["TopK-EF-0.01"] and rows["TopK-EF-0.01"]["runs (seeds)"] == "2 (0, 1)"
    assert rows["TopK-EF-0.01"]["status"] == "2 completed" and rows["TopK-EF-0.01"]["steps"] == "4"
    for stem in ["train_loss_vs_epochs", "test_acc_vs_epochs", "train_loss_vs_iterations", "test_acc_vs_bits"]:
        assert (out / f"{stem}.png").stat().st_size > 1000 and (out / f"{stem}.pdf").stat().st_size > 1000
    import pandas as pd

    df = pd.read_csv(out / "runs.csv")
    assert len(df) == 4 and set(df["seed"]) == {0, 1} and set(df["step"]) == {2, 4}


def test_best_lr_keeps_the_best_grid_point_per_method(tmp_path, capsys):
    """The papers' protocol: per method, the lr with the best mean final accuracy over seeds."""
    root = tmp_path / "grid"
    for lr, accs in [(1e-3, (0.80, 0.84)), (3e-4, (0.90, 0.86))]:
        for seed, acc in enumerate(accs):
            make_run(
                root,
                f"topk_lr{lr}_s{seed}",
                losses={4: 0.5},
                accs={4: acc},
                seed=seed,
                algo_params={"lr": lr, "ef": "classic"},
            )
    make_run(
        root,
        "bk_lr1e-3",
        losses={4: 0.5},
        accs={4: 0.7},
        compressor="blocksign",
        compressor_params={"scope": "layer"},
        algo_params={"lr": 1e-3, "ef": "classic"},
    )
    make_run(
        root,
        "bk_lr3e-4",
        losses={2: 0.5, 3: None},
        accs={2: 0.95},
        status="diverged",
        compressor="blocksign",
        compressor_params={"scope": "layer"},
        algo_params={"lr": 3e-4, "ef": "classic"},
    )
    out = tmp_path / "report"
    assert main([str(root), "--out", str(out), "--best-lr", "--formats", "png"]) == 0
    note = capsys.readouterr().out
    # a two-point grid brackets nothing: either winner is on its edge, and the report says so
    assert "TopK-EF-0.01: 0.0003 (grid 0.0003, 0.001; **grid edge**: the lowest value)" in note
    assert "BkSign-EF: 0.001 (grid 0.0003, 0.001; **grid edge**: the highest value)" in note  # diverged ranks last
    assert "2 of 2 best learning rates sit on the grid edge" in note
    rows = _md_rows(out / "summary.md")
    assert set(rows) == {"TopK-EF-0.01", "BkSign-EF"}
    assert rows["TopK-EF-0.01"]["final test accuracy (%)"].startswith("88.00")
    assert rows["TopK-EF-0.01"]["lr (best of grid)"] == "0.0003 (grid edge: lowest)"


def lr_grid_tables(best: dict[str, float], grid=(1e-4, 1e-3, 1e-2)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A tiny synthetic (metrics, runs) pair as load_runs returns it: per family, one run per lr of
    ``grid``, the final accuracy highest at the family's ``best`` lr."""
    runs, rows = [], []
    for family, best_lr in best.items():
        for lr in grid:
            run_dir, method = f"{family}_{lr:g}", f"{family} (lr={lr:g})"
            acc = 0.9 if lr == best_lr else 0.5
            runs.append(
                {
                    "run_dir": run_dir,
                    "experiment": "e",
                    "method": method,
                    "group": method,
                    "family": family,
                    "lr": lr,
                    "algo": "comp_ams",
                    "compressor": "topk",
                    "ef": "classic",
                    "workers": 1,
                    "seed": 0,
                    "dataset": "mnist",
                    "model": "m",
                    "status": "completed",
                    "full_gradient": False,
                    "steps": 4,
                    "total_bits_up": 256.0,
                }
            )
            rows += [{"run_dir": run_dir, "method": method, "step": 4, "train_loss": 1 - acc, "test_acc": acc}]
    return pd.DataFrame(rows), pd.DataFrame(runs)


def test_best_lr_on_the_grid_edge_is_marked_in_the_note_and_the_table():
    """A best lr inside the grid is plain; one on either edge is marked: the grid did not bracket it."""
    df, runs = lr_grid_tables({"inside": 1e-3, "top": 1e-2, "bottom": 1e-4})
    df, runs, note = keep_best_lr(df, runs, "test_acc")
    assert "inside: 0.001 (grid 0.0001, 0.001, 0.01)." in note or "inside: 0.001 (grid 0.0001, 0.001, 0.01);" in note
    assert "top: 0.01 (grid 0.0001, 0.001, 0.01; **grid edge**: the highest value)" in note
    assert "bottom: 0.0001 (grid 0.0001, 0.001, 0.01; **grid edge**: the lowest value)" in note
    assert "2 of 3 best learning rates sit on the grid edge" in note
    table = summary_table(df, runs, ["inside", "top", "bottom"], "test_acc").set_index("method")
    assert table.loc["inside", "lr (best of grid)"] == "0.001"
    assert table.loc["top", "lr (best of grid)"] == "0.01 (grid edge: highest)"
    assert table.loc["bottom", "lr (best of grid)"] == "0.0001 (grid edge: lowest)"
    assert table.loc["top", "final test accuracy (%)"] == "90.00"


def test_no_lr_column_without_a_grid():
    df, runs = lr_grid_tables({"single": 1e-3}, grid=(1e-3,))
    df, runs, note = keep_best_lr(df, runs, "test_acc")
    assert note == "Learning rate: one per method (no grid)."
    assert "lr (best of grid)" not in summary_table(df, runs, ["single"], "test_acc").columns


@pytest.fixture
def drawn(monkeypatch) -> list[dict]:
    """What every figure saved shows: titles, legend texts, y labels and the plotted y values."""
    from matplotlib.figure import Figure

    seen: list[dict] = []
    save = Figure.savefig

    def record(fig, path, *args, **kwargs):
        legends = [lg for lg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)] if lg is not None]
        seen.append(
            {
                "path": Path(path).name,
                "titles": ([fig._suptitle.get_text()] if fig._suptitle else [])
                + [ax.get_title() for ax in fig.axes if ax.get_title()],
                "legend": [t.get_text() for lg in legends for t in lg.get_texts()],
                "ylabels": [ax.get_ylabel() for ax in fig.axes],
                "y": [list(line.get_ydata()) for ax in fig.axes for line in ax.lines],
            }
        )
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return seen


def two_datasets(root: Path) -> Path:
    """TopK-EF-0.01 on a synthetic CIFAR-10 stand-in and on real data (another dataset name)."""
    synthetic = {
        "name": "cifar10-synthetic",
        "description": "SYNTHETIC stand-in (not CIFAR-10)",
        "source": "generated (datasets/synthetic.py)",
    }
    for seed in (0, 1):
        runs = [
            make_run(
                root, f"syn_s{seed}", losses={2: 1.0, 4: 0.5}, accs={2: 0.6, 4: 0.8}, seed=seed, dataset=synthetic
            ),
            make_run(root, f"real_s{seed}", losses={2: 1.0, 4: 0.5}, accs={2: 0.7, 4: 0.9}, seed=seed),
        ]
        for run in runs:  # the error-feedback columns, so that the hard_threshold Fig. 3 panels are drawn too
            rows = read_metrics(run)
            (run / "metrics.jsonl").write_text(
                "".join(json.dumps({**r, "avg_density": r["density"], "error_norm": 0.1}) + "\n" for r in rows)
            )
    return root


def test_figures_of_synthetic_runs_say_so_in_title_and_legend(tmp_path, drawn):
    out = tmp_path / "report"
    assert (
        main([str(two_datasets(tmp_path / "sweep")), "--out", str(out), "--title", "CIFAR-10 ci", "--formats", "png"])
        == 0
    )
    figs = {f["path"]: f for f in drawn if f["path"].endswith(".png")}
    assert {"test_acc_vs_epochs.png", "fig3_panels.png"} <= set(figs)
    for f in figs.values():  # some runs are real: the title points at the marked curves
        assert f["titles"] and all("(synthetic data in the curves marked so)" in t for t in f["titles"]), f
    legend = figs["test_acc_vs_epochs.png"]["legend"]
    synthetic = [t for t in legend if "dataset=cifar10-synthetic" in t]
    real = [t for t in legend if "dataset=fake-mnist" in t]
    assert synthetic and real, legend
    assert all(t.endswith("(synthetic data)") for t in synthetic) and not any("synthetic data" in t for t in real)


def test_title_of_all_synthetic_runs():
    runs = pd.DataFrame({"dataset": ["cifar10-synthetic", "imdb-synthetic"], "method": ["a", "b"]})
    assert data_title("Fig. 3", runs) == "Fig. 3 (synthetic data)"
    assert data_labels(runs, ["a", "b"]) == {"a": "a (synthetic data)", "b": "b (synthetic data)"}
    assert data_title("Fig. 3", runs.assign(dataset="mnist")) == "Fig. 3"


def test_figures_of_real_runs_carry_no_synthetic_mark(fig1, tmp_path, drawn):
    assert main([str(fig1), "--out", str(tmp_path / "report"), "--formats", "png"]) == 0
    assert drawn and not any("synthetic" in t for f in drawn for t in [*f["titles"], *f["legend"]])


def test_percent_axes_plot_percent(tmp_path, drawn):
    """A y-axis that says (%) shows percent: the panels of hard_threshold Fig. 3 (test accuracy 0.8 -> 80)."""
    assert main([str(two_datasets(tmp_path / "sweep")), "--out", str(tmp_path / "report"), "--formats", "png"]) == 0
    checked = 0
    for f in drawn:
        for ylabel in f["ylabels"]:
            if "(%)" in ylabel:
                checked += 1
        if f["path"] in ("fig3_panels.png", "test_acc_vs_epochs.png"):
            values = [v for line in f["y"] for v in line]
            assert max(values) > 1.5, (f["path"], values)  # 0.9 accuracy drawn as 90, not 0.9
    assert checked >= 2


def test_killed_run_metrics_read_with_warnings(fig1, capsys):
    """A half-written last line is skipped and a missing metrics.jsonl gives no rows, each with a warning."""
    broken, gone = fig1 / "0_topk_ef_s0", fig1 / "2_topk_s0"
    with open(broken / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "train_lo')
    (gone / "metrics.jsonl").unlink()
    assert [r["step"] for r in read_metrics(broken)] == [2, 4] and read_metrics(gone) == []
    err = capsys.readouterr().err
    assert f"{broken / 'metrics.jsonl'}:3 is not valid JSON" in err and f"{gone / 'metrics.jsonl'} is missing" in err
    df, runs = load_runs([fig1])
    assert len(runs) == 5 and df.loc[df["run_dir"] == str(gone), "step"].isna().all()


def test_flatten_joins_nested_keys():
    nested = {"algo_params": {"lr": 0.1, "ef": {"mode": "classic"}}, "seed": 0}
    assert flatten(nested) == {"algo_params.lr": 0.1, "algo_params.ef.mode": "classic", "seed": 0}
    assert flatten(nested, sep="/")["algo_params/ef/mode"] == "classic"
    assert flatten({"a": 1}, prefix="run.") == {"run.a": 1}


def test_an_unwritable_out_is_one_line(fig1, tmp_path, capsys):
    blocker = tmp_path / "a_file"  # a file where the folder would have to be (tests may run as root)
    blocker.write_text("")
    assert main([str(fig1), "--out", str(blocker / "report")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {blocker / 'report'} cannot be written:") and err.count("\n") == 1


@pytest.fixture
def figures(monkeypatch) -> dict[str, object]:
    """Every figure saved, by file name (the Figure objects, to look at their artists)."""
    from matplotlib.figure import Figure

    seen: dict[str, object] = {}
    save = Figure.savefig

    def record(fig, path, *args, **kwargs):
        seen[Path(path).name] = fig
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return seen


def one_evaluation_each(root: Path, experiment: str | None = None) -> Path:
    """Two seeds of an EF method, each evaluated once (at its last step), with EF columns."""
    for seed, acc in ((0, 0.80), (1, 0.90)):
        run = make_run(root, f"ef_s{seed}", losses={2: 1.0, 4: 0.5}, accs={4: acc}, seed=seed, experiment=experiment)
        rows = read_metrics(run)
        (run / "metrics.jsonl").write_text(
            "".join(json.dumps({**r, "avg_density": r["density"], "error_norm": 0.1}) + "\n" for r in rows)
        )
    return root


def test_one_evaluation_per_run_is_a_point_with_its_seed_spread(tmp_path, figures):
    assert main([str(one_evaluation_each(tmp_path / "sweep")), "--out", str(tmp_path / "r"), "--formats", "png"]) == 0
    panels = figures["fig3_panels.png"]
    acc_axis = next(ax for ax in panels.axes if "accuracy" in ax.get_ylabel())
    line = acc_axis.lines[0]  # (the error bars add their caps as lines)
    assert line.get_marker() not in (None, "", "None") and list(line.get_ydata()) == [pytest.approx(85.0)]
    bars = [c for c in acc_axis.collections if c.__class__.__name__ == "LineCollection"]
    assert bars and bars[0].get_segments()[0][:, 1].tolist() == pytest.approx([80.0, 90.0])  # min–max of the seeds
    vs_bits = figures["test_acc_vs_bits.png"].axes[0]
    assert [c for c in vs_bits.collections if c.__class__.__name__ == "LineCollection"]  # the spread, not a bare point


@pytest.mark.parametrize("experiment, named", [(None, False), ("comp_ams/fig1", False), ("hard_threshold/fig3", True)])
def test_panels_name_a_paper_figure_only_for_that_papers_presets(tmp_path, drawn, experiment, named):
    assert (
        main(
            [str(one_evaluation_each(tmp_path / "sweep", experiment)), "--out", str(tmp_path / "r"), "--formats", "png"]
        )
        == 0
    )
    (panels,) = [f for f in drawn if f["path"] == "fig3_panels.png"]
    assert ("hard_threshold Fig. 3" in panels["titles"][0]) is named, panels["titles"]
    assert panels["titles"][0].startswith(f"{experiment}: " if experiment else "against iterations")


def test_formats_names_every_figure_file_written(tmp_path):
    """``--formats svg`` writes each figure as SVG only; the default is PNG and PDF (test_report_on_a_real_multirun)."""
    out = tmp_path / "r"
    assert main([str(one_evaluation_each(tmp_path / "sweep")), "--out", str(out), "--formats", "svg"]) == 0
    figures = {p.suffix for p in out.iterdir() if p.suffix in (".png", ".pdf", ".svg")}
    assert figures == {".svg"} and (out / "summary.md").exists()
