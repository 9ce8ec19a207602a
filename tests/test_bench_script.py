"""scripts/bench_compressors.py on tiny sizes, so that the benchmark cannot rot: every part runs and
prints every registered compressor, ratios are positive, bits come from the payloads, and the
break-even solver is exact against runner/network_model.py. No timing is asserted."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import sys
from pathlib import Path

import pytest
import torch

from compress_train.algorithms.communicator import SimCommunicator
from compress_train.compressors import registry
from compress_train.compressors.scope import ScopedCompressor
from compress_train.runner.network_model import NetworkModel

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_compressors.py"
D = 3000
TINY = [
    "--sizes",
    str(D),
    "--repeats",
    "1",
    "--budget-s",
    "5",
    "--sketch-d",
    "4000",
    "--sketch-columns",
    "64",
    "--sketch-k",
    "16",
    "--workers",
    "2",
    "--step-overrides",
    "train.batch_size=8",
    "--step-budget-s",
    "5",
    "--breakeven-models",
    "default",
]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_compressors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def tiny_run(bench, tmp_path_factory):
    """One run of every part on tiny sizes (module-scoped, so stdout is captured by hand)."""
    before = torch.get_num_threads()
    path = tmp_path_factory.mktemp("bench") / "out.json"
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            report = bench.main([*TINY, "--json", str(path)])
    finally:
        torch.set_num_threads(before)
    return report, buffer.getvalue(), path


def test_every_part_runs_and_writes_its_json(bench, tiny_run):
    report, out, path = tiny_run
    assert all(report[part] for part in bench.PARTS)
    assert json.loads(path.read_text())["compressors"][0]["compressor"] == report["compressors"][0]["compressor"]
    assert "benchmark took" in out


def test_compressor_table_prints_every_registered_compressor_with_positive_ratios(tiny_run):
    report, out, _ = tiny_run
    names = registry.available()
    assert [r["compressor"] for r in report["compressors"]] == names
    for name in names:
        assert re.search(rf"^{name}\s+{D:,}\s", out, re.MULTILINE), name
    assert all(
        r["ratio"] > 0 and r["cpu_time_ratio"] > 0 and r["both_s"] > 0 and r["copy_s"] > 0
        for r in report["compressors"]
    )
    assert all(r["met"] in ("n/a", "-") for r in report["compressors"])  # targets are defined at d = 25M only


def test_bits_are_the_payloads(bench, tiny_run):
    report, _, _ = tiny_run
    x = torch.randn(D, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    for row in report["compressors"]:
        name = row["compressor"]
        scoped = ScopedCompressor(registry.build(name, bench.bench_params(name)), [D], "model")
        assert row["bits"] == scoped.compress(x, 0, 0, 0).bits, name


def test_sketch_and_simulator_parts_report_positive_ratios(tiny_run):
    report, out, _ = tiny_run
    assert [r["compressor"] for r in report["sketch"]] == ["count_sketch/random", "count_sketch/block"]
    assert all(r["ratio"] > 0 and r["estimate_ratio"] > 0 for r in report["sketch"])
    (steps,) = report["steps"]
    assert steps["workers"] == 2 and steps["sim_ratio"] > 0 and steps["comp_ams_vs_amsgrad"] > 0
    assert "amsgrad step / (2 g)" in out and "comp_ams topk 1% step / amsgrad step" in out


def test_break_even_part_covers_every_compressor_with_its_real_exchange(bench, tiny_run):
    report, _, _ = tiny_run
    rows = report["breakeven"]
    assert [r["compressor"] for r in rows] == registry.available()
    for row in rows:
        kind = "allreduce" if registry.COMPRESSORS.get(row["compressor"]).allreduce else "allgather"
        assert row["records"][0][0] == kind and row["cpu_compute_s"] > 0
        for dense in ("fp32", "bf16"):
            assert row[f"cpu_vs_{dense}"]["kind"] in ("below", "above", "always", "never")


@pytest.mark.parametrize("name", ["topk", "rbgs"])
def test_exchange_records_are_what_the_communicator_counts(bench, name):
    sizes = [500, 1500]
    scoped = ScopedCompressor(registry.build(name, bench.bench_params(name)), sizes, "layer")
    message = scoped.compress(torch.randn(sum(sizes)), 0, 0, 0)
    comm = SimCommunicator(4)
    if scoped.compressor.allreduce:
        comm.allreduce_sum([message] * 4)
    else:
        comm.allgather([message] * 4)
    assert bench.exchange_records(scoped, message, 4) == comm.take_collectives()


@pytest.mark.parametrize("gbps", [0.05, 1.0, 7.5, 400.0])
def test_ring_cost_is_the_network_model(bench, gbps):
    records = [("allreduce", 4_000_000), ("allgather", 123_456)]
    cost = bench.ring_cost(records, 8, 10.0, compute_s=0.003)
    assert cost.at(gbps) == pytest.approx(0.003 + NetworkModel(gbps, 10.0).step_seconds(records, 8), rel=1e-12)


def costs(bench, compressed_records, compute_s, n=8, latency=10.0, dense_bytes=4_000_000):
    return (
        bench.ring_cost(compressed_records, n, latency, compute_s),
        bench.ring_cost([("allreduce", dense_bytes)], n, latency),
    )


def test_break_even_below_is_where_the_costs_cross(bench):
    compressed, dense = costs(bench, [("allgather", 80_000)], compute_s=0.005)
    b = bench.break_even(compressed, dense)
    assert b.kind == "below" and str(b).startswith("< ")
    assert compressed.at(b.gbps) == pytest.approx(dense.at(b.gbps), rel=1e-9)
    assert compressed.at(0.9 * b.gbps) < dense.at(0.9 * b.gbps)
    assert compressed.at(1.1 * b.gbps) > dense.at(1.1 * b.gbps)


def test_break_even_above_always_and_never(bench):
    # the same bytes allgathered (n - 1 latencies) vs allreduced (2 (n - 1)): more bytes, less latency
    compressed, dense = costs(bench, [("allgather", 4_000_000)], compute_s=0.0)
    above = bench.break_even(compressed, dense)
    assert above.kind == "above" and compressed.at(above.gbps) == pytest.approx(dense.at(above.gbps), rel=1e-9)
    assert compressed.at(2 * above.gbps) < dense.at(2 * above.gbps)
    assert bench.break_even(*costs(bench, [("allgather", 1000)], compute_s=0.0)).kind == "always"
    assert bench.break_even(*costs(bench, [("allgather", 4_000_000)], compute_s=0.01)).kind == "never"


def test_target_verdicts(bench):
    cpu = torch.device("cpu")
    assert bench.target_verdict("topk", 3.5, bench.TARGET_D, 1, cpu) == ("<=4 (<=10)", "yes")
    assert bench.target_verdict("topk", 7.0, bench.TARGET_D, 1, cpu)[1] == "min"
    assert bench.target_verdict("topk", 11.0, bench.TARGET_D, 1, cpu)[1] == "NO"
    assert bench.target_verdict("rbgs", 1.6, bench.TARGET_D, 1, cpu) == ("<=1.5", "NO")
    assert bench.target_verdict("rbgs", 1.0, bench.TARGET_D, 2, cpu)[1] == "n/a"
    assert bench.target_verdict("identity", 1.0, bench.TARGET_D, 1, cpu) == ("-", "-")
    assert set(bench.TARGETS) <= set(registry.available())


def test_resnet50_shapes(bench, one_thread):
    sizes, grad = bench.resnet50_gradient(0)
    assert sum(sizes) == grad.numel() == 25_557_032 and len(sizes) == 161
    assert torch.isfinite(grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_columns(bench, capsys):
    before = torch.get_num_threads()
    try:
        report = bench.main(
            ["--parts", "compressors", "--sizes", str(D), "--repeats", "1", "--compressors", "topk", "rbgs"]
        )
    finally:
        torch.set_num_threads(before)
    assert all(r["gpu_ratio"] > 0 for r in report["compressors"])
    assert "gpu ratio" in capsys.readouterr().out


def test_tables_say_what_the_ratio_the_floor_and_a_target_are(bench, tiny_run):
    _, out, _ = tiny_run
    assert bench.RATIO_LEGEND in out
    for words in ("(compress + decompress) / out.copy_(x)", "physical floor is about 1", "a goal", "not a test"):
        assert words in bench.RATIO_LEGEND
    assert "target = a goal for that ratio, not a test" in out  # the simulator's table too
