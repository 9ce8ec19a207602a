"""compress-report's ``hard_threshold`` additions on real multiruns: metric against average density,
error norm and density against iterations, and Table 1 with the paper's row beside ours; on convex
runs, Fig. 1's panels and the error-feedback density table."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report_readability import record_figures, series_per_axis, titles

from cli_helpers import run_cli
from compress_train.runner.report.cli import main
from compress_train.runner.report.comp_ams import MAX_SERIES
from compress_train.runner.report.hard_threshold import PAPER_TABLE1, final_values, table1
from compress_train.runner.report.load import load_runs

pytestmark = pytest.mark.slow


def sweep_and_report(tmp_path: Path, *overrides: str, stems: tuple[str, ...]) -> tuple[Path, str]:
    """A real multirun, then compress-report on it: (the sweep dir, summary.md); each of ``stems`` drawn."""
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", f"hydra.sweep.dir={sweep}", *overrides, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out), "--formats", "png"]) == 0
    for stem in stems:
        assert (out / f"{stem}.png").stat().st_size > 0
    return sweep, (out / "summary.md").read_text()


def test_density_figures_and_table1(tmp_path, monkeypatch):
    saved = record_figures(monkeypatch)
    sweep, text = sweep_and_report(
        tmp_path,
        "workers=2",
        "train.batch_size=20",
        "train.max_steps=3",
        "train.log_every=1",
        "train.eval_every=3",
        "train.eval_batch_size=500",
        "threads=1",
        "method=hard_threshold/table1_topk_max,hard_threshold/table1_topk_min,hard_threshold/table1_threshold",
        stems=("test_acc_vs_avg_density", "error_norm_vs_iterations", "density_vs_iterations"),
    )
    assert "## Table 1 (hard_threshold" in text and "94.1 / 1.00" in text and "93.2 / 0.10" in text
    df, runs = load_runs([sweep])
    fv = final_values(df, runs, "test_acc").set_index("method")
    # the densities are the runs' own: Top-1% per layer keeps max(1, floor(0.01 d_l)) of each layer
    # ef=powersgd is the authors' memory on raw gradients, not PowerSGD compression: the legend says so
    assert fv.loc["Hard-threshold", "family"] == "threshold + EF on raw gradients"
    assert 0.0095 < fv.loc["Top-1%", "density"] <= 0.0101 and 0.0009 < fv.loc["Top-0.1%", "density"] <= 0.0012
    t = table1(df, runs, ["Top-1%", "Top-0.1%", "Hard-threshold"], "test_acc").set_index("method")
    assert t.loc["Top-1%", "ours: density vs Top-1%"] == "1.00×"
    assert t.loc["Top-0.1%", "paper (ResNet-18, CIFAR-10): accuracy % / density %"] == "93.2 / 0.10"
    assert set(PAPER_TABLE1) >= set(t.index)
    for fig in saved:  # methods picked by hand, no preset: no paper's figure note in any title
        assert max(series_per_axis(fig)) <= MAX_SERIES and "hard_threshold Fig." not in titles(fig), titles(fig)


def test_convex_fig1_panels_and_density_table(tmp_path, monkeypatch):
    saved = record_figures(monkeypatch)
    _, text = sweep_and_report(
        tmp_path,
        "experiment=hard_threshold/fig1",
        "seed=0",
        "train.epochs=1",
        stems=("fig1_panels", "suboptimality_vs_epochs", "suboptimality_vs_bits", "error_norm_vs_epochs"),
    )
    assert "## Error feedback: density, total error, suboptimality" in text
    rows: dict[str, str] = {}
    for ln in text.splitlines():  # the first table naming these methods: the error-feedback one
        if ln.startswith("| Top-k") or ln.startswith("| SGD"):
            rows.setdefault(ln.split("|")[1].strip(), ln)
    assert rows["SGD"].split("|")[3].strip() == "100" and rows["Top-k (k=2)"].split("|")[3].strip() == "0.255"
    panels = next(f for f in saved if "Fig. 1's panels" in titles(f))
    assert titles(panels).startswith("hard_threshold") and max(series_per_axis(panels)) <= MAX_SERIES
