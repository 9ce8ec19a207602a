"""Convex tasks through the real CLI: a LIBSVM file end to end, the theorem-condition errors,
the MNIST 4-vs-9 problem, and what a convex run writes (distance to x* at every row)."""

from __future__ import annotations

import math

import pytest
from sklearn.datasets import dump_svmlight_file, load_breast_cancer
from sklearn.preprocessing import MinMaxScaler

from cli_helpers import metrics, run_cli, summary

pytestmark = pytest.mark.slow


@pytest.fixture
def libsvm_file(tmp_path):
    """Real data in the real format: scikit-learn's breast-cancer set, scaled to [-1, 1] (as
    LIBSVM's *_scale files are), labels 0/1, written by sklearn's svmlight writer."""
    x, y = load_breast_cancer(return_X_y=True)
    path = tmp_path / "breast_cancer_scale.svm"
    dump_svmlight_file(MinMaxScaler((-1, 1)).fit_transform(x), y, str(path), zero_based=False)  # LIBSVM's one-based
    return path


def test_aiade_on_any_libsvm_file(tmp_path, libsvm_file):
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}",
        "algo=aiade",
        "compressor=bounded",
        "dataset=libsvm",
        f"dataset.path={libsvm_file}",
        "model=logreg",
        "model.l2=0.01",
        "workers=3",
        "train.log_every=50",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    s = summary(run)
    assert s["status"] == "converged" and s["precision"] == "float64" and s["tol"] == 1e-10
    p = s["problem"]
    assert p["kind"] == "logistic" and p["dim"] == 30 and p["workers"] == 3 and p["dropped"] == 569 % 3
    assert p["kappa"] == pytest.approx(p["L"] / p["mu"]) and s["theory"]["rate"] == pytest.approx(
        math.sqrt(1 - math.sqrt(p["mu"] / p["L"]))
    )
    rows = metrics(run)
    assert rows[0]["step"] == 0 and rows[0]["rel_dist"] == 1.0 and rows[0]["bits_up"] == 0
    assert rows[-1]["rel_dist"] <= 1e-10 and rows[-1]["step"] == s["steps"]
    assert all(r["suboptimality"] >= -1e-12 for r in rows)
    assert all(r["bits_lemma21_step"] > 0 for r in rows[1:])
    assert s["totals"]["bits_up"] == rows[-1]["bits_up"] and "bits_lemma21" in s["totals"]


def test_theorem_condition_is_rejected_naming_the_key(tmp_path):
    args = ("algo=iade", "compressor=bounded", "problem=quadratic", "algo.c_prime=0.5", "train.max_steps=5")
    proc = run_cli(f"hydra.run.dir={tmp_path / 'bad'}", *args, cwd=tmp_path)
    assert proc.returncode == 2 and "`algo.c_prime` must be in (c, 1)" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli(f"hydra.run.dir={tmp_path / 'unsafe'}", *args, "algo.unsafe=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_qgd_floor_and_iade_convergence_on_mnist_4v9(tmp_path):
    common = ("problem=mnist_4v9", "model.l2=5", "workers=2", "train.max_steps=1500", "train.log_every=100")
    for name, method in (("iade", "method=aiade/iade"), ("qgd", "method=aiade/qgd")):
        proc = run_cli(f"hydra.run.dir={tmp_path / name}", method, *common, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    iade, qgd = summary(tmp_path / "iade"), summary(tmp_path / "qgd")
    assert iade["dataset"]["name"].startswith("mnist-4v9")
    assert iade["status"] == "converged" and iade["final"]["rel_dist"] <= 1e-10
    assert qgd["status"] == "completed" and qgd["final"]["rel_dist"] > 1e-8


def test_seed_002_fig1_settings_reach_the_problem(tmp_path):
    """l2 = L/1e4 (L of the data term), x_0 = x* + 0.005, gamma = 1/(L + l2), 20 workers of batch 1."""
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}",
        "problem=mnist_4v9",
        "model.l2_over_L=1e-4",
        "model.x0_offset=0.005",
        "algo=ef_sgd",
        "algo.lr=auto",
        "compressor=threshold",
        "compressor.lam=3.8",
        "workers=20",
        "train.batch_size=1",
        "train.max_steps=5",
        "train.log_every=1",
        "train.tol=null",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    s, rows = summary(run), metrics(run)
    p = s["problem"]
    assert p["l2"] == pytest.approx((p["L"] - p["l2"]) * 1e-4, rel=1e-9) and p["kappa"] == pytest.approx(1e4 + 1)
    assert rows[0]["step"] == 0 and rows[0]["dist_to_opt"] == pytest.approx(0.005 * 28, rel=1e-9)
    assert rows[1]["lr"] == pytest.approx(1 / p["L"]) and rows[1]["samples"] == 20
    assert 0 <= rows[-1]["avg_density"] < 0.05 and rows[-1]["total_error"] > 0


def test_total_error_is_the_sum_of_the_logged_squared_error_norms(tmp_path):
    """hard_threshold's total error: sum over steps of ||e_t||^2 (one worker: the logged error norm)."""
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}",
        "problem=mnist_4v9",
        "model.l2=1",
        "algo=ef_sgd",
        "algo.lr=auto",
        "compressor=topk",
        "compressor.ratio=null",
        "compressor.k=5",
        "train.batch_size=5",
        "train.max_steps=30",
        "train.log_every=1",
        "train.tol=null",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in metrics(run) if r["step"] > 0]
    assert rows[-1]["total_error"] == pytest.approx(sum(r["error_norm"] ** 2 for r in rows), rel=1e-9)
    assert summary(run)["totals"]["total_error"] == rows[-1]["total_error"] > 0


def test_a_diverging_quantized_run_is_a_result(tmp_path):
    """IADE with eta above 2/(L+mu) (unsafe) blows up until the quantizer cannot code the vectors:
    status diverged, exit code 0, one log line, every metrics row written so far kept."""
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}",
        "problem=quadratic",
        "algo=iade",
        "compressor=bounded",
        "algo.lr=3",
        "algo.unsafe=true",
        "train.max_steps=400",
        "train.log_every=10",
        "train.diverge_ratio=null",
        cwd=tmp_path,
    )  # the quantizer's own limit, not the loss ratio
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "the quantizer cannot go on" in proc.stdout + proc.stderr
    s, rows = summary(run), metrics(run)
    assert s["status"] == "diverged" and rows[-1]["step"] == s["steps"] < 400 and len(rows) > 2
