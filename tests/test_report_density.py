"""compress-report's seed 002 additions on a real multirun: metric against average density,
error norm and density against iterations, and Table 1 with the paper's row beside ours."""
from __future__ import annotations

import pytest
from cli_helpers import run_cli

from compress_train.runner.report import main
from compress_train.runner.report_data import load_runs
from compress_train.runner.report_density import PAPER_TABLE1, final_values, table1

pytestmark = pytest.mark.slow


def test_density_figures_and_table1(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", f"hydra.sweep.dir={sweep}", "workers=2", "train.batch_size=20", "train.max_steps=3",
                   "train.log_every=1", "train.eval_every=3", "train.eval_batch_size=500", "threads=1",
                   "method=hard_threshold/table1_topk_max,hard_threshold/table1_topk_min,hard_threshold/table1_threshold",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out)]) == 0
    for stem in ("test_acc_vs_avg_density", "error_norm_vs_iterations", "density_vs_iterations"):
        assert (out / f"{stem}.png").stat().st_size > 0
    text = (out / "summary.md").read_text()
    assert "## Table 1 (seed 002)" in text and "94.1 / 1.00" in text and "93.2 / 0.10" in text
    df, runs = load_runs([sweep])
    fv = final_values(df, runs, "test_acc").set_index("method")
    # the densities are the runs' own: Top-1% per layer keeps max(1, floor(0.01 d_l)) of each layer
    assert 0.0095 < fv.loc["Top-1%", "density"] <= 0.0101 and 0.0009 < fv.loc["Top-0.1%", "density"] <= 0.0012
    t = table1(df, runs, ["Top-1%", "Top-0.1%", "Hard-threshold"], "test_acc").set_index("method")
    assert t.loc["Top-1%", "ours: density vs Top-1%"] == "1.00×"
    assert t.loc["Top-0.1%", "paper (ResNet-18, CIFAR-10): accuracy % / density %"] == "93.2 / 0.10"
    assert set(PAPER_TABLE1) >= set(t.index)
