"""scripts/gpu_check.sh / gpu_check.py: the GPU evidence report. The CPU smoke run goes end to end and
the report has every part and every field; the pieces that decide its verdicts (the metrics rule,
the budget cut, the JUnit counts, the bandwidth table) are checked on their own."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from compress_train.compressors import registry

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.py"
SHELL = ROOT / "scripts" / "gpu_check.sh"

PART_KEYS = {"status", "budget_s", "wall_s", "error", "cut", "result", "log_tail"}
DEVICE_KEYS = {"type", "name", "total_memory_bytes", "memory_bandwidth_gbs", "bandwidth_source", "capability", "cuda"}
PYTEST_KEYS = {"command", "returncode", "passed", "failed", "skipped", "errors", "total", "failures"}
COMPRESSOR_KEYS = {
    "compressor", "d", "copy_s", "compress_s", "decompress_s", "both_s", "ratio", "copy_gbs", "compress_gbs",
    "decompress_gbs", "both_gbs", "both_of_peak", "copy_of_peak", "bits_fraction", "runs", "cold", "error",
}  # fmt: skip
MODEL_KEYS = {
    "paper", "batched_workers", "model", "dataset", "input_shape", "algo", "compressor", "params", "workers", "batch", "global_batch",
    "sim_steps", "sim_step_s", "sim_steps_per_s", "compress_s_per_step", "compress_share", "algo_compress_share",
    "sim_peak_memory_bytes", "floor_steps", "floor_step_s", "floor_steps_per_s", "floor_peak_memory_bytes",
    "sim_over_floor", "error",
}  # fmt: skip
SIM_KEYS = {"steps", "devices", "rows", "fields_compared", "mismatches", "equal", "rule"}
PAPERS = {"def", "sketched_ams", "hard_threshold", "comp_ams"}


@pytest.fixture(scope="module")
def gc():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


# -- the report, end to end on the CPU -----------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_smoke")
    proc = subprocess.run(
        ["bash", str(SHELL), "--cpu-smoke", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=400
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


@pytest.mark.slow
def test_cpu_smoke_report_has_every_part_and_field(smoke):
    report, md = smoke
    assert report["mode"] == "cpu-smoke" and report["device"]["type"] == "cpu"
    assert DEVICE_KEYS <= set(report["device"])
    assert report["command"] == f"scripts/gpu_check.sh --cpu-smoke {report['command'].split()[-1]}"
    assert set(report["parts"]) == {"pytest", "sim_vs_cpu", "compressors", "models"}
    for name, part in report["parts"].items():
        assert set(part) == PART_KEYS, name
        assert part["status"] == "ok" and part["cut"] == [] and part["error"] is None, (name, part["log_tail"])
        assert 0 < part["wall_s"] <= part["budget_s"], name
        assert f"## {name}" in md

    py = report["parts"]["pytest"]["result"]
    assert set(py) == PYTEST_KEYS
    assert py["total"] > 0 and py["skipped"] == py["total"] and py["failed"] == py["errors"] == 0  # no CUDA here
    assert "-m gpu" in py["command"]

    comp = report["parts"]["compressors"]["result"]
    assert [r["compressor"] for r in comp["rows"]] == registry.available()
    for row in comp["rows"]:
        assert set(row) == COMPRESSOR_KEYS and row["error"] is None, row
        assert row["d"] == comp["d"] and row["both_s"] > 0 and row["copy_gbs"] > 0 and row["bits_fraction"] > 0
        assert row["both_of_peak"] is None  # no peak bandwidth for a CPU

    models = report["parts"]["models"]["result"]["rows"]
    assert sorted((r["paper"], r["batched_workers"]) for r in models) == sorted(
        [(p, False) for p in PAPERS] + [("def", True)]
    )
    for row in models:
        assert set(row) == MODEL_KEYS and row["error"] is None, row
        assert row["global_batch"] == row["workers"] * row["batch"]
        assert row["sim_steps_per_s"] > 0 and row["floor_steps_per_s"] > 0 and 0 < row["compress_share"] < 1
        assert row["sim_over_floor"] == pytest.approx(row["sim_step_s"] / row["floor_step_s"])

    sim = report["parts"]["sim_vs_cpu"]["result"]
    assert set(sim) == SIM_KEYS
    assert sim["equal"] and sim["mismatches"] == [] and sim["rows"] == sim["steps"] > 0
    assert {"bits_up", "train_loss"} <= set(sim["fields_compared"])


def test_shell_names_a_bad_budget():
    proc = subprocess.run(["bash", str(SHELL), "--budget-s", "10"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--budget-s must be a whole number of seconds >= 60, but is 10" in proc.stderr


# -- the pieces ------------------------------------------------------------------------------------------


ROW = {"step": 1, "samples": 200, "bits_up": 6283.0, "train_loss": 2.0, "test_acc": 0.5, "time_s": 1.0}


def test_metrics_follow_the_golden_rule(gc):
    rtol = gc.golden_rule().FLOAT_RTOL
    assert gc.metric_mismatches([ROW], [dict(ROW, time_s=9.0)]) == []  # wall-clock fields left out
    assert gc.metric_mismatches([ROW], [dict(ROW, train_loss=2.0 * (1 + rtol / 2))]) == []
    moved = 2.0 * (1 + 2 * rtol)
    assert gc.metric_mismatches([ROW], [dict(ROW, train_loss=moved)]) == [f"row 0 train_loss: 2.0 != {moved!r}"]
    assert gc.metric_mismatches([ROW], [dict(ROW, bits_up=6283.0 * (1 + rtol / 10))])  # a count: exact
    assert gc.metric_mismatches([ROW], [dict(ROW, samples=201)])
    assert gc.metric_mismatches([ROW], [dict(ROW, test_acc=0.6)])
    assert gc.metric_mismatches([ROW], [ROW, ROW]) == ["rows: 1 != 2"]
    assert gc.metric_mismatches([ROW], [{k: v for k, v in ROW.items() if k != "samples"}])  # a field missing
    assert "tests/test_golden.py" in gc.rule_text()


def test_bandwidth_table_takes_the_longest_match(gc):
    assert gc.table_bandwidth_gbs("NVIDIA H100 80GB HBM3") == 3350.0
    assert gc.table_bandwidth_gbs("NVIDIA H100 PCIe") == 2000.0
    assert gc.table_bandwidth_gbs("NVIDIA H200") == 4800.0
    assert gc.table_bandwidth_gbs("NVIDIA A100-SXM4-80GB") == 2039.0
    assert gc.table_bandwidth_gbs("Some Future Card") is None


def test_part_budgets_scale_down_together(gc):
    full = gc.part_budgets(10_000, smoke=False)
    assert full == gc.BUDGET_S
    half = gc.part_budgets(sum(gc.BUDGET_S.values()) / 2, smoke=False)
    assert half == {k: pytest.approx(v / 2) for k, v in gc.BUDGET_S.items()}


def child(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(body))
    return [sys.executable, str(script), str(tmp_path / "partial.json")]


def test_a_part_past_its_budget_is_cut_with_what_it_finished(gc, tmp_path):
    argv = child(
        tmp_path,
        """
        import json, sys, time
        open(sys.argv[1], "w").write(json.dumps({"result": {"rows": [1]}, "cut": []}))
        time.sleep(60)
        """,
    )
    part = gc.run_part(argv, tmp_path / "partial.json", budget_s=3.0)
    assert part["status"] == "cut" and part["result"] == {"rows": [1]}
    assert part["cut"] == ["(the rest of the part)"] and "budget of 3 s" in part["error"]
    assert part["wall_s"] < 30


def test_a_part_that_stops_itself_early_is_cut_and_a_crash_is_an_error(gc, tmp_path):
    argv = child(
        tmp_path,
        """
        import json, sys
        open(sys.argv[1], "w").write(json.dumps({"result": {"rows": []}, "cut": ["resnet50"]}))
        """,
    )
    part = gc.run_part(argv, tmp_path / "partial.json", budget_s=30.0)
    assert part["status"] == "cut" and part["cut"] == ["resnet50"] and part["error"] is None
    argv = child(tmp_path, "import sys; print('boom'); sys.exit(3)")
    (tmp_path / "partial.json").unlink()
    part = gc.run_part(argv, tmp_path / "partial.json", budget_s=30.0)
    assert part["status"] == "error" and part["error"].startswith("exit 3") and "boom" in part["error"]


def test_junit_counts(gc, tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite tests="5" failures="1" errors="1" skipped="1">'
        '<testcase classname="t" name="a"/><testcase classname="t" name="b"><failure/></testcase>'
        '<testcase classname="t" name="c"><error/></testcase><testcase classname="t" name="d"><skipped/></testcase>'
        '<testcase classname="t" name="e"/></testsuite></testsuites>'
    )
    assert gc.junit_counts(xml) == {
        "passed": 2,
        "failed": 1,
        "skipped": 1,
        "errors": 1,
        "total": 5,
        "failures": ["t::b", "t::c"],
    }


def test_pytest_counts_from_a_stopped_run(gc):
    log = """
tests/test_gpu.py::test_compressor_on_cuda[model-topk] PASSED [ 10%]
tests/test_gpu.py::test_compressor_on_cuda[layer-topk] FAILED [ 20%]
[gw1] [ 30%] PASSED tests/test_gpu.py::test_algorithm_runs_on_cuda[sgd]
[gw0] [ 40%] SKIPPED tests/test_gpu.py::test_algorithm_runs_on_cuda[def]
[gw2] [ 50%] ERROR tests/test_batched_workers.py::test_masks_are_the_fused_dropout_kernels_draws_on_cuda[0.3]
collected 55 items / 40 deselected
"""
    assert gc.pytest_log_counts(log) == {
        "passed": 2,
        "failed": 1,
        "skipped": 1,
        "errors": 1,
        "total": 5,
        "failures": [
            "tests/test_batched_workers.py::test_masks_are_the_fused_dropout_kernels_draws_on_cuda[0.3]",
            "tests/test_gpu.py::test_compressor_on_cuda[layer-topk]",
        ],
    }


def test_the_pytest_part_stopped_at_its_deadline_keeps_its_counts(gc, tmp_path):
    partial = tmp_path / "pytest.json"
    deadline = time.time() + 4.0  # pytest is stopped 3 s before: during its collection
    argv = [sys.executable, str(SCRIPT), "--run-part", "pytest", "--partial", str(partial), "--cpu-smoke"]
    part = gc.run_part([*argv, "--deadline", str(deadline)], partial, budget_s=60.0)
    assert part["status"] == "cut" and part["cut"] == ["the tests not reached before the deadline"], part
    assert part["error"] is None and part["wall_s"] < 30
    assert set(part["result"]) == PYTEST_KEYS and part["result"]["returncode"] is None
