"""Benchmark the compressors, the simulator and the break-even bandwidth (docs/architecture.md §8).

Every figure is measured in this one run; nothing is hard-coded. Times are medians over
``--repeats`` repeats after one warm-up; a measurement stops repeating once it has used
``--budget-s`` seconds, and one whose warm-up alone exceeds the budget is reported from that
single cold run (marked ``cold``). Each repeat times the baseline ``out.copy_(x)`` (into a buffer
allocated once: ``x.clone()`` would also pay for fresh pages and flatter every ratio about six
times) right before the operation, and every ratio is the median of the per-repeat ratios, so a
load change on a shared machine moves both. Default: one intra-op thread (``--threads``).

Part ``compressors``: for each vector length d (``--sizes``, default 25M), a seeded N(0, 1) fp32
vector; every registered compressor (its YAML defaults in ``conf/compressor/``, in a
ScopedCompressor) is timed for compress, decompress and both (one compress followed by the
decompress of its payload, in the same repeat). The table gives the milliseconds, both / copy,
the goal for that ratio (defined at d = 25M, one thread) and whether it is met, and the
bits of the payload actually produced as a fraction of dense fp32 (32 d). With CUDA present the
same is timed on the GPU, synchronised, as a ratio to a device copy (the GPU columns). The
``cpu`` column is the ratio of this process's CPU times (see the note printed at the end).

Part ``sketch``: the count sketch at the SketchedAMSGrad scale (d = 25M, r = 5, c = 100,000,
k = 50,000) for each hash family: hash build (once, then cached), compress, decompress (the
unsketch), both, the estimate alone, each as ms and a ratio to the paired copy.

Part ``steps`` (the simulator): the default config's training step on CPU. (a) n simulated workers'
uncompressed AMSGrad step / (n x one worker's forward+backward, ``task.local_gradients`` of a
one-worker run), target <= 1.1 at n = 8; (b) the COMP-AMS Top-k 1% step / the uncompressed AMSGrad
step at the same n, target <= 1.15; each as a ratio of wall and of CPU times, over paired repeats.
``--profile TOP`` prints cProfile's TOP functions of one step of each.

Part ``breakeven``: for the default model (its real gradient at step 0) and torchvision's
ResNet-50 (random init, no weights downloaded; the gradient of one batch of 4 random 64 x 64
images, so that data-dependent compressors see gradient-like values), every compressor with its
YAML scope is timed on that gradient split into the model's parameter tensors, and its wire bytes
are read off the payload as the communicator counts them (``allgather_wire_bytes`` /
``message_nbytes``). Per worker and step, with the ring alpha-beta model of
``runner/network_model.py`` (latency ``--latency-us``, ``--workers`` n):

* compressed = compute + exchange, where an ``allreduce`` compressor (its payloads summed, decoded
  once) costs compress + decompress + a ring allreduce of its payload, and any other compressor
  costs compress + n x decompress (every worker decodes all n messages, as
  ``Algorithm.average_decoded`` does; ``--decodes one``: one decompress) + a ring allgather of its payload;
* dense fp32 = a ring allreduce of 4 d bytes; dense bf16 = the measured fp32 -> bf16 -> fp32 casts
  + a ring allreduce of 2 d bytes (reduction arithmetic inside a collective is not modelled).

Both are a + b / B in the bandwidth B, so the break-even bandwidth is solved exactly: compression
pays "below" B* (the usual case), "above" B*, "always" or "never". Run from the repository root:

    .venv/bin/python scripts/bench_compressors.py                       # the default run (about 3 min, 2 cores)
    .venv/bin/python scripts/bench_compressors.py --sizes 1e6 25e6 --repeats 5 --json out.json
    .venv/bin/python scripts/bench_compressors.py --parts breakeven --workers 16 --latency-us 5
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import itertools
import json
import math
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

import compress_train.conf as conf_package
from compress_train.algorithms.communicator import (
    SimCommunicator,
    allgather_wire_bytes,
    message_nbytes,
)
from compress_train.compressors import registry
from compress_train.compressors.base import CompressContext
from compress_train.compressors.count_sketch import HASHINGS, CountSketch, clear_cache
from compress_train.compressors.scope import Message, ScopedCompressor
from compress_train.runner.config.check import compressor_params
from compress_train.runner.network_model import NetworkModel
from compress_train.runner.trainer import Trainer

COMPRESSOR_DIR = Path(conf_package.__file__).parent / "compressor"
LAYER_BUCKET = 1_000_000  # --scope layer on a synthetic vector: buckets of this many elements
PARTS = ("compressors", "sketch", "steps", "breakeven")
BREAKEVEN_MODELS = ("default", "resnet50")
TARGET_D = 25_000_000  # the goals are compress+decompress / copy_ at this d, one thread
# compressor -> (target, acceptable) for (compress + decompress) / copy_ at d = 25M, one thread
TARGETS: dict[str, tuple[float, float]] = {
    "topk": (4.0, 10.0),
    "threshold": (3.0, 3.0),
    "scaled_sign": (3.0, 3.0),
    "blocksign": (3.0, 3.0),
    "randk": (3.0, 3.0),
    "mvss": (5.0, 5.0),
    "qsgd": (5.0, 5.0),
    "bounded": (10.0, 10.0),
    "rbgs": (1.5, 1.5),
    "count_sketch": (10.0, 10.0),
}
# The compressors part's N(0, 1) vector kept 99.9% at threshold's YAML lam = 0.001 (a payload twice the
# dense vector, no configuration anyone runs): there the threshold keeps 1%, as Top-k 1% does.
BENCH_PARAMS: dict[str, dict] = {"threshold": {"lam": round(math.sqrt(2) * float(torch.erfinv(torch.tensor(0.99))), 4)}}
SIM_TARGET, COMP_AMS_TARGET = 1.1, 1.15  # (a) and (b) of the steps part
SIM_VARIANTS = {  # label -> Hydra overrides of the default config
    "amsgrad": ["algo=amsgrad"],
    "comp_ams topk 1%": ["algo=comp_ams", "compressor=topk", "compressor.ratio=0.01"],
}
RESNET_BATCH, RESNET_SIDE = 4, 64


# -- timing -----------------------------------------------------------------------------------


def synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def repeat_timed(
    one_repeat: Callable[[], list[float]], repeats: int, budget_s: float
) -> tuple[list[list[float]], bool]:
    """``one_repeat()`` (it returns the times of its parts) after one warm-up, until ``repeats``
    runs or ``budget_s`` seconds (warm-up included) are used, at least one run. A warm-up that
    alone exceeds the budget is returned as the only run, and the flag ``cold`` is True."""
    start = time.perf_counter()
    warm = one_repeat()
    if sum(warm) > budget_s:
        return [warm], True
    runs: list[list[float]] = []
    while len(runs) < repeats and (not runs or time.perf_counter() - start < budget_s):
        runs.append(one_repeat())
    return runs, False


@dataclass
class CodecTiming:
    """Medians over the runs (wall seconds); ``ratio`` is the median of the per-run (compress +
    decompress) / copy, ``cpu_ratio`` the same of this process's CPU time (None on a GPU: there
    the host spins in the synchronisation). ``message`` is the last payload produced."""

    copy_s: float
    compress_s: float
    decompress_s: float
    both_s: float
    ratio: float
    cpu_ratio: float | None
    runs: int
    cold: bool
    message: Message


def time_codec(scoped: ScopedCompressor, x: torch.Tensor, repeats: int, budget_s: float, seed: int = 0) -> CodecTiming:
    """Per run: ``out.copy_(x)``, then ``scoped.compress(x)``, then the decompress of that payload."""
    sync = synchronizer(x.device)
    out = torch.empty_like(x)  # allocated once: the copy measures memory bandwidth, not page faults
    last: list[Message] = []
    cpu_runs: list[tuple[float, float]] = []  # (copy, compress + decompress) CPU seconds

    def one_repeat() -> list[float]:
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        out.copy_(x)
        sync()
        t1, c1 = time.perf_counter(), time.process_time()
        message = scoped.compress(x, seed, 0, 0)
        sync()
        t2 = time.perf_counter()
        scoped.decompress(message)
        sync()
        t3, c3 = time.perf_counter(), time.process_time()
        last[:] = [message]
        cpu_runs.append((c1 - c0, c3 - c1))
        return [t1 - t0, t2 - t1, t3 - t2]

    runs, cold = repeat_timed(one_repeat, repeats, budget_s)
    cpu = cpu_runs[-len(runs) :]  # the warm-up's dropped, as repeat_timed did
    med = [statistics.median(r[i] for r in runs) for i in range(3)]
    cpu_ratio = None
    if x.device.type == "cpu" and all(copy > 0 for copy, _ in cpu):
        cpu_ratio = statistics.median(both / copy for copy, both in cpu)
    return CodecTiming(
        copy_s=med[0],
        compress_s=med[1],
        decompress_s=med[2],
        both_s=statistics.median(r[1] + r[2] for r in runs),
        ratio=statistics.median((r[1] + r[2]) / r[0] for r in runs),
        cpu_ratio=cpu_ratio,
        runs=len(runs),
        cold=cold,
        message=last[0],
    )


def time_paired(fn: Callable[[], object], x: torch.Tensor, repeats: int, budget_s: float) -> tuple[float, float]:
    """(median seconds of ``fn``, median of time(fn) / time(out.copy_(x)) with the copy right before)."""
    sync = synchronizer(x.device)
    out = torch.empty_like(x)

    def one_repeat() -> list[float]:
        sync()
        t0 = time.perf_counter()
        out.copy_(x)
        sync()
        t1 = time.perf_counter()
        fn()
        sync()
        return [t1 - t0, time.perf_counter() - t1]

    runs, _ = repeat_timed(one_repeat, repeats, budget_s)
    return statistics.median(r[1] for r in runs), statistics.median(r[1] / r[0] for r in runs)


# -- compressors ------------------------------------------------------------------------------


def yaml_section(name: str):
    return OmegaConf.load(COMPRESSOR_DIR / f"{name}.yaml")


def yaml_params(name: str) -> dict:
    """The compressor's constructor arguments from its YAML defaults (runner rules dropped)."""
    return compressor_params(yaml_section(name))


def bench_params(name: str) -> dict:
    """The compressors part's constructor arguments: the YAML defaults, ``BENCH_PARAMS`` over them."""
    return {**yaml_params(name), **BENCH_PARAMS.get(name, {})}


def yaml_scope(name: str) -> str:
    return str(yaml_section(name).get("scope", "model"))


def target_verdict(name: str, ratio: float, d: int, threads: int, device: torch.device) -> tuple[str, str]:
    """(target, met) for the table: met is judged only where the target is defined (d = 25M, one
    CPU thread); ``min`` means within the acceptable bound but above the target."""
    if name not in TARGETS:
        return "-", "-"
    target, acceptable = TARGETS[name]
    text = f"<={target:g}" + (f" (<={acceptable:g})" if acceptable != target else "")
    if d != TARGET_D or threads != 1 or device.type != "cpu":
        return text, "n/a"
    return text, "yes" if ratio <= target else "min" if ratio <= acceptable else "NO"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}" if seconds < 10 else f"{seconds * 1e3:.0f}"


def fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.1f}"


def cuda_device() -> torch.device | None:
    return torch.device("cuda") if torch.cuda.is_available() else None


RATIO_LEGEND = (
    "   ratio = (compress + decompress) / out.copy_(x): the codec's cost in copies of the gradient vector.\n"
    "   The physical floor is about 1: any codec reads the d values once and writes the decoded d values\n"
    "   once, which is what one copy does. target = a goal we set for this ratio at d = 25M on one CPU\n"
    "   thread (the project's speed goals, not a test): met = yes (at or below the goal), min (within the\n"
    "   acceptable bound in parentheses), NO (above it: slower than the goal, still correct); n/a elsewhere."
)


def bench_compressors(args: argparse.Namespace) -> list[dict]:
    gpu = None if args.no_gpu else cuda_device()
    threads = torch.get_num_threads()
    rows, gpu_errors = [], []
    print(
        f"\n== compressors (scope={args.scope}; threads {threads}; median of <= {args.repeats} after 1 warm-up, "
        f"<= {args.budget_s:g} s each; ratio = (compress + decompress) / copy_, per repeat"
        + (f"; GPU: {torch.cuda.get_device_name(gpu)}, ratio to a device copy" if gpu else "; no GPU")
        + ") =="
    )
    huge = os.environ.get("THP_MEM_ALLOC_ENABLE", "0") not in ("", "0")
    print(
        f"   THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '')!s} (fresh large tensors on "
        + (
            "transparent huge pages, as compress-train runs"
            if huge
            else "4 KiB pages: every temporary pays page faults"
        )
        + "); "
        + ", ".join(f"{n} at {', '.join(f'{k}={v}' for k, v in p.items())}" for n, p in BENCH_PARAMS.items())
        + " (1% of N(0, 1) kept)"
    )
    gpu_head = f" {'gpu both ms':>11} {'gpu ratio':>9}" if gpu else ""
    print(RATIO_LEGEND)
    print(
        f"{'compressor':<13} {'d':>11} {'compress ms':>11} {'decomp ms':>10} {'both ms':>9} {'ratio':>7} "
        f"{'cpu':>7} {'target':>12} {'met':>4} {'bits/(32d)':>10} {'runs':>6}{gpu_head}"
    )
    for size in args.sizes:
        d = int(size)
        x = torch.randn(d, generator=torch.Generator().manual_seed(args.seed), dtype=torch.float32)
        x_gpu = x.to(gpu) if gpu else None
        layers = [LAYER_BUCKET] * (d // LAYER_BUCKET) + ([d % LAYER_BUCKET] if d % LAYER_BUCKET else [])
        sizes = layers if args.scope == "layer" else [d]
        copy_s = []
        for name in args.compressors:
            scoped = ScopedCompressor(registry.build(name, bench_params(name)), sizes, args.scope)
            cpu = time_codec(scoped, x, args.repeats, args.budget_s, args.seed)
            copy_s.append(cpu.copy_s)
            target, met = target_verdict(name, cpu.ratio, d, threads, x.device)
            frac = cpu.message.bits / (32 * d)
            row = {
                "compressor": name,
                "d": d,
                "threads": threads,
                "copy_s": cpu.copy_s,
                "compress_s": cpu.compress_s,
                "decompress_s": cpu.decompress_s,
                "both_s": cpu.both_s,
                "ratio": cpu.ratio,
                "cpu_time_ratio": cpu.cpu_ratio,
                "target": TARGETS.get(name, (None, None))[0],
                "met": met,
                "bits": cpu.message.bits,
                "bits_fraction": frac,
                "runs": cpu.runs,
                "cold": cpu.cold,
            }
            gpu_cols = ""
            if gpu:
                try:
                    on_gpu = time_codec(scoped, x_gpu, args.repeats, args.budget_s, args.seed)
                except (RuntimeError, TypeError, ValueError) as err:  # a device failure is a finding, not a crash
                    gpu_errors.append(f"{name} on {gpu}: {type(err).__name__}: {err}")
                    row.update(gpu_error=gpu_errors[-1])
                    gpu_cols = f" {'failed':>11} {'-':>9}"
                else:
                    row.update(
                        gpu_copy_s=on_gpu.copy_s,
                        gpu_compress_s=on_gpu.compress_s,
                        gpu_decompress_s=on_gpu.decompress_s,
                        gpu_both_s=on_gpu.both_s,
                        gpu_ratio=on_gpu.ratio,
                    )
                    gpu_cols = f" {fmt_ms(on_gpu.both_s):>11} {on_gpu.ratio:>9.1f}"
            runs = f"{cpu.runs}{' cold' if cpu.cold else ''}"
            print(
                f"{name:<13} {d:>11,} {fmt_ms(cpu.compress_s):>11} {fmt_ms(cpu.decompress_s):>10} "
                f"{fmt_ms(cpu.both_s):>9} {cpu.ratio:>7.1f} {fmt_ratio(cpu.cpu_ratio):>7} {target:>12} {met:>4} "
                f"{frac:>10.4f} {runs:>6}{gpu_cols}",
                flush=True,
            )
            rows.append(row)
        print(
            f"{'copy_':<13} {d:>11,} {'':>11} {'':>10} {fmt_ms(statistics.median(copy_s)):>9} {1.0:>7.1f} {1.0:>7.1f}"
            f"   (median of the paired copies; one copy moves 2 x {4 * d / 1e6:,.0f} MB)"
        )
    for error in gpu_errors:
        print(f"GPU failure: {error}")
    return rows


# -- count sketch at the paper's scale ---------------------------------------------------------


def bench_count_sketch(args: argparse.Namespace) -> list[dict]:
    d, r, c, k = int(args.sketch_d), args.sketch_rows, args.sketch_columns, args.sketch_k
    threads = torch.get_num_threads()
    device = torch.device("cpu")
    rows = []
    print(
        f"\n== count sketch (d={d:,}, r={r}, c={c:,}, k={k:,}; threads {threads}; median of <= {args.repeats}, "
        f"each ratio to a copy_ timed just before) =="
    )
    print(
        f"{'hashing':<8} {'build s':>8} {'hash MB':>8} {'compress ms':>11} {'decomp ms':>10} {'both ms':>9} "
        f"{'ratio':>6} {'cpu':>6} {'target':>7} {'met':>4} {'estimate ms':>11} {'/copy':>6} {'bits/(32d)':>10}"
    )
    x = torch.randn(d, generator=torch.Generator().manual_seed(args.seed), dtype=torch.float32)
    ctx = CompressContext(seed=args.seed)
    for hashing in args.sketch_hashing:
        comp = CountSketch(rows=r, columns=c, ratio=None, k=k, hashing=hashing)
        t0 = time.perf_counter()
        hashes = comp.hashes(d, comp.key(ctx), device)  # built once, then cached
        build_s = time.perf_counter() - t0
        codec = time_codec(ScopedCompressor(comp, [d], "model"), x, args.repeats, args.budget_s, args.seed)
        payload = codec.message.payloads[0]
        est_s, est_ratio = time_paired(lambda c=comp, p=payload: c.estimate(p), x, args.repeats, args.budget_s)
        target, met = target_verdict("count_sketch", codec.ratio, d, threads, device)
        frac = payload.bits / (32 * d)
        print(
            f"{hashing:<8} {build_s:>8.2f} {hashes.nbytes / 2**20:>8.0f} {fmt_ms(codec.compress_s):>11} "
            f"{fmt_ms(codec.decompress_s):>10} {fmt_ms(codec.both_s):>9} {codec.ratio:>6.1f} "
            f"{fmt_ratio(codec.cpu_ratio):>6} {target:>7} {met:>4} "
            f"{fmt_ms(est_s):>11} {est_ratio:>6.1f} {frac:>10.4f}",
            flush=True,
        )
        rows.append(
            {
                "compressor": f"count_sketch/{hashing}",
                "d": d,
                "rows": r,
                "columns": c,
                "k": k,
                "threads": threads,
                "hash_build_s": build_s,
                "hash_bytes": hashes.nbytes,
                "copy_s": codec.copy_s,
                "compress_s": codec.compress_s,
                "decompress_s": codec.decompress_s,
                "both_s": codec.both_s,
                "ratio": codec.ratio,
                "cpu_time_ratio": codec.cpu_ratio,
                "met": met,
                "estimate_s": est_s,
                "estimate_ratio": est_ratio,
                "bits": payload.bits,
                "bits_fraction": frac,
                "runs": codec.runs,
                "cold": codec.cold,
            }
        )
        clear_cache()  # the random family's int64 r x d index: 8 r d bytes
    return rows


# -- the simulator ------------------------------------------------------------------------------


def build_trainer(overrides: list[str], workers: int, args: argparse.Namespace, run_dir: str) -> Trainer:
    """A Trainer of the default config with ``overrides`` (simulated workers, CPU, nothing logged)."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                *overrides,
                "dataset.download=false",
                "logger.progress=false",
                f"workers={workers}",
                f"seed={args.seed}",
                "device=cpu",
                *args.step_overrides,
            ],
        )
    return Trainer(cfg, SimCommunicator(cfg.workers), [], {}, lambda m: None, torch.device("cpu"), Path(run_dir))


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of ``fn()``. On one thread and a shared machine
    the CPU time is the work done, unmoved by other processes' load; the wall time is not."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def print_profile(label: str, fn: Callable[[], object], top: int) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    print(f"\n-- cProfile of one {label} step (top {top} by own time) --")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def step_ratios(runs: list[list[float]], n: int) -> tuple[float, float, float]:
    """Medians over repeats [g, amsgrad step, comp_ams step] of amsgrad / (n g), comp_ams / amsgrad
    and comp_ams / (n g)."""
    return (
        statistics.median(r[1] / (n * r[0]) for r in runs),
        statistics.median(r[2] / r[1] for r in runs),
        statistics.median(r[2] / (n * r[0]) for r in runs),
    )


def bench_steps(args: argparse.Namespace) -> list[dict]:
    n = args.workers
    with tempfile.TemporaryDirectory() as run_dir:
        one = build_trainer(["algo=amsgrad"], 1, args, run_dir)
        trainers = {label: build_trainer(overrides, n, args, run_dir) for label, overrides in SIM_VARIANTS.items()}
        steps = itertools.count()
        cpu_runs: list[list[float]] = []

        def one_repeat() -> list[float]:
            step = next(steps)
            times = [
                timed(lambda: one.task.local_gradients(step, one.algo.gradient_point())),
                *(timed(lambda t=t: t.run_step(step)) for t in trainers.values()),
            ]
            cpu_runs.append([cpu for _, cpu in times])
            return [wall for wall, _ in times]

        wall_runs, cold = repeat_timed(one_repeat, args.repeats, args.step_budget_s)
        cpu_runs = cpu_runs[-len(wall_runs) :]  # the warm-up's dropped, as repeat_timed did
        grad_s, ams_s, comp_s = (statistics.median(r[i] for r in wall_runs) for i in range(3))
        wall, cpu = step_ratios(wall_runs, n), step_ratios(cpu_runs, n)
        params = one.task.numel
        print(
            f"\n== the simulator (default config: {one.cfg.model.name}, {params:,} params, batch "
            f"{one.cfg.train.batch_size}/worker, cpu, threads {torch.get_num_threads()}; n = {n}; "
            f"median of {len(wall_runs)}{' cold' if cold else ''} paired repeats; ratios of wall and of CPU time) =="
        )
        print(
            "   ratio 1 = no overhead (n workers cost n gradients; the compressed step costs the uncompressed one);\n"
            "   target = a goal for that ratio, not a test: NO means slower than the goal, the numbers are right."
        )
        print(f"{'measurement':<50} {'wall ms':>9} {'wall':>6} {'cpu':>6} {'target':>7} {'met wall/cpu':>12}")
        print(f"{'one worker forward+backward (g)':<50} {fmt_ms(grad_s):>9}")
        lines = [
            (f"{n} workers, amsgrad step / ({n} g)", ams_s, 0, SIM_TARGET),
            (f"{n} workers, comp_ams topk 1% step / amsgrad step", comp_s, 1, COMP_AMS_TARGET),
            (f"{n} workers, comp_ams topk 1% step / ({n} g)", comp_s, 2, None),
        ]
        for label, seconds, i, target in lines:
            met = "-" if target is None else "/".join("yes" if r[i] <= target else "NO" for r in (wall, cpu))
            print(
                f"{label:<50} {fmt_ms(seconds):>9} {wall[i]:>6.3f} {cpu[i]:>6.3f} "
                f"{'-' if target is None else f'<={target:g}':>7} {met:>12}"
            )
        if args.profile:
            for label, trainer in trainers.items():
                step = next(steps)
                print_profile(f"{n}-worker {label}", lambda t=trainer, s=step: t.run_step(s), args.profile)
    return [
        {
            "workers": n,
            "params": params,
            "grad_one_worker_s": grad_s,
            "amsgrad_step_s": ams_s,
            "comp_ams_topk_step_s": comp_s,
            "sim_ratio": wall[0],
            "sim_ratio_cpu": cpu[0],
            "sim_target": SIM_TARGET,
            "comp_ams_vs_amsgrad": wall[1],
            "comp_ams_vs_amsgrad_cpu": cpu[1],
            "comp_ams_target": COMP_AMS_TARGET,
            "comp_ams_vs_grads": wall[2],
            "comp_ams_vs_grads_cpu": cpu[2],
            "runs": len(wall_runs),
            "cold": cold,
        }
    ]


# -- break-even bandwidth ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """Seconds per step as ``fixed + per_gbps / B`` for a bandwidth of B Gbit/s."""

    fixed: float
    per_gbps: float

    def at(self, gbps: float) -> float:
        return self.fixed + self.per_gbps / gbps


def ring_cost(records: list[tuple[str, int]], n: int, latency_us: float, compute_s: float = 0.0) -> Cost:
    """``compute_s`` plus the collectives' time under the ring alpha-beta model of
    ``runner/network_model.py``, which is affine in 1 / B: read off at 1 and 2 Gbit/s."""
    at_1 = NetworkModel(1.0, latency_us, "ring").step_seconds(records, n)
    at_2 = NetworkModel(2.0, latency_us, "ring").step_seconds(records, n)
    per_gbps = 2.0 * (at_1 - at_2)
    return Cost(compute_s + at_1 - per_gbps, per_gbps)


@dataclass(frozen=True)
class BreakEven:
    """Where ``compressed`` is faster than ``dense``: ``kind`` below / above ``gbps``, always or never."""

    kind: str
    gbps: float | None = None

    def __str__(self) -> str:
        if self.gbps is None:
            return self.kind
        return f"{'<' if self.kind == 'below' else '>'} {self.gbps:.3g}"


def break_even(compressed: Cost, dense: Cost) -> BreakEven:
    """Solve compressed.at(B) < dense.at(B) for B > 0: (dense.per - comp.per) / B > comp.fixed - dense.fixed."""
    saved_per_gbps = dense.per_gbps - compressed.per_gbps
    extra_fixed = compressed.fixed - dense.fixed
    if saved_per_gbps > 0:
        return BreakEven("always") if extra_fixed <= 0 else BreakEven("below", saved_per_gbps / extra_fixed)
    if saved_per_gbps == 0 or extra_fixed >= 0:
        return BreakEven("always") if saved_per_gbps == 0 and extra_fixed < 0 else BreakEven("never")
    return BreakEven("above", saved_per_gbps / extra_fixed)


def exchange_records(scoped: ScopedCompressor, message: Message, n: int) -> list[tuple[str, int]]:
    """What the communicator records for one exchange of this message (every worker's the same size)."""
    if scoped.compressor.allreduce:
        return [("allreduce", message_nbytes(message))]
    return [("allgather", allgather_wire_bytes([message] * n))]


def default_model_gradient(args: argparse.Namespace) -> tuple[list[int], torch.Tensor]:
    """The default config's parameter tensor sizes and one worker's gradient at step 0."""
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer([], 1, args, run_dir)
        grads, _ = trainer.task.local_gradients(0, trainer.algo.gradient_point())
        return list(trainer.task.layer_sizes), grads[0]


def resnet50_gradient(seed: int) -> tuple[list[int], torch.Tensor]:
    """torchvision's ResNet-50 (random init, no weights): sizes of its parameter tensors and the
    gradient of one batch of random images and labels (gradient-like magnitudes per layer)."""
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.resnet50(weights=None)
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(RESNET_BATCH, 3, RESNET_SIDE, RESNET_SIDE, generator=gen)
    labels = torch.randint(0, 1000, (RESNET_BATCH,), generator=gen)
    F.cross_entropy(model(images), labels).backward()
    params = list(model.parameters())
    return [p.numel() for p in params], torch.cat([p.grad.reshape(-1) for p in params])


def bf16_cast_seconds(grad: torch.Tensor, repeats: int, budget_s: float) -> float:
    """The casts dense bf16 allreduce adds: fp32 -> bf16 before, bf16 -> fp32 after."""
    seconds, _ = time_paired(lambda: grad.to(torch.bfloat16).to(torch.float32), grad, repeats, budget_s)
    return seconds


def bench_break_even_model(
    label: str, layer_sizes: list[int], grad: torch.Tensor, args: argparse.Namespace
) -> list[dict]:
    n, latency = args.workers, args.latency_us
    d = grad.numel()
    devices = [torch.device("cpu")] + ([] if args.no_gpu or cuda_device() is None else [cuda_device()])
    dense = {}
    for dev in devices:
        g = grad.to(dev)
        dense[dev.type] = {
            "fp32": ring_cost([("allreduce", 4 * d)], n, latency),
            "bf16": ring_cost([("allreduce", 2 * d)], n, latency, bf16_cast_seconds(g, args.repeats, args.budget_s)),
        }
    fp32, bf16 = dense["cpu"]["fp32"], dense["cpu"]["bf16"]
    print(
        f"\n-- {label}: d = {d:,} in {len(layer_sizes)} tensors; at 10 Gbit/s dense fp32 allreduce {fmt_ms(fp32.at(10))} ms,"
        f" bf16 {fmt_ms(bf16.at(10))} ms (of which {fmt_ms(bf16.fixed - fp32.fixed)} ms cpu casts) --"
    )
    dev_head = "".join(f" {dev.type + ' compute ms':>16} {'fp32: Gbit/s':>13} {'bf16: Gbit/s':>13}" for dev in devices)
    print(f"{'compressor':<13} {'scope':<6} {'exchange':<9} {'payload MB':>10} {'bits/(32d)':>10}{dev_head}")
    rows = []
    for name in args.compressors:
        scope = yaml_scope(name)
        scoped = ScopedCompressor(registry.build(name, yaml_params(name)), layer_sizes, scope)
        row = {"model": label, "compressor": name, "scope": scope, "d": d, "workers": n, "latency_us": latency}
        cols = ""
        for dev in devices:
            codec = time_codec(scoped, grad.to(dev), args.repeats, args.budget_s, args.seed)
            records = exchange_records(scoped, codec.message, n)
            decodes = 1 if scoped.compressor.allreduce or args.decodes == "one" else n
            compute_s = codec.compress_s + decodes * codec.decompress_s
            cost = ring_cost(records, n, latency, compute_s)
            vs = {kind: break_even(cost, dense[dev.type][kind]) for kind in ("fp32", "bf16")}
            row.update(
                {
                    f"{dev.type}_compress_s": codec.compress_s,
                    f"{dev.type}_decompress_s": codec.decompress_s,
                    f"{dev.type}_compute_s": compute_s,
                    f"{dev.type}_runs": codec.runs,
                    f"{dev.type}_cold": codec.cold,
                    "records": records,
                    "bits": codec.message.bits,
                    **{f"{dev.type}_vs_{kind}": asdict(b) for kind, b in vs.items()},
                }
            )
            cols += f" {fmt_ms(compute_s) + (' cold' if codec.cold else ''):>16} {vs['fp32']!s:>13} {vs['bf16']!s:>13}"
        kind, nbytes = row["records"][0]
        print(
            f"{name:<13} {scope:<6} {kind:<9} {nbytes / 1e6:>10.3f} {row['bits'] / (32 * d):>10.4f}{cols}", flush=True
        )
        rows.append(row)
    return rows


def bench_break_even(args: argparse.Namespace) -> list[dict]:
    print(
        f"\n== break-even bandwidth (n = {args.workers} workers, ring alpha-beta, latency {args.latency_us:g} us; "
        f"compressed = compress + {'n x decompress (allreduce compressors: 1 x)' if args.decodes == 'all' else 'decompress'} "
        f"+ exchange of the payload; compression pays below / above the bandwidth shown) =="
    )
    sources = {
        "default": lambda: ("default model", *default_model_gradient(args)),
        "resnet50": lambda: ("resnet50", *resnet50_gradient(args.seed)),
    }
    rows = []
    for model in args.breakeven_models:
        label, sizes, grad = sources[model]()
        rows += bench_break_even_model(label, sizes, grad, args)
    return rows


NOTE = """
How to read this: absolute milliseconds vary with the machine, its load and the thread count;
the ratios to the paired copy_ are what carries over. A ratio of about 1-3 is at the memory
bandwidth floor; tens or more means the compressor does real work per element (a selection, a
random permutation, fp64 math) and will dominate a step on large models. bits/(32d) is read off
the payload actually produced; for data-dependent compressors (threshold, mvss, bounded) bits and
time depend on the values (N(0, 1) in the compressors part, real gradients in the break-even part).
"cpu" is the same ratio of this process's CPU time: on a loaded machine wall times also count the
time this process waited for a core, CPU times do not (memory stalls count in both), so where the
two differ the machine was busy and "cpu" is the closer estimate of an idle machine's ratio. The
targets are judged on the wall ratio. "cold" marks a single run whose warm-up alone exceeded
--budget-s (one-time set-up included)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run")
    p.add_argument("--sizes", type=float, nargs="+", default=[25e6], help="compressors part: vector lengths d")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    p.add_argument(
        "--budget-s",
        type=float,
        default=5.0,
        help="seconds one measurement may use before it stops repeating (at least one run)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the targets assume 1)")
    p.add_argument(
        "--scope",
        choices=["model", "layer"],
        default="model",
        help=f"compressors part: model: one vector; layer: buckets of {LAYER_BUCKET:,} elements",
    )
    p.add_argument("--compressors", nargs="+", default=registry.available(), choices=registry.available())
    p.add_argument("--no-gpu", action="store_true", help="skip the GPU columns even when CUDA is present")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write all measurements to this file")
    p.add_argument("--sketch-d", type=float, default=25e6, help="sketch part: vector length")
    p.add_argument("--sketch-rows", type=int, default=5, help="sketch part: rows r")
    p.add_argument("--sketch-columns", type=int, default=100_000, help="sketch part: columns c")
    p.add_argument("--sketch-k", type=int, default=50_000, help="sketch part: k of the unsketch")
    p.add_argument(
        "--sketch-hashing", nargs="+", choices=HASHINGS, default=list(HASHINGS), help="sketch part: hash families"
    )
    p.add_argument("--workers", type=int, default=8, help="steps and breakeven parts: n workers")
    p.add_argument("--step-budget-s", type=float, default=40.0, help="steps part: seconds before it stops repeating")
    p.add_argument("--step-overrides", nargs="*", default=[], help="steps/breakeven: extra Hydra overrides")
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="TOP",
        help="steps part: print cProfile's TOP functions of one step of each variant",
    )
    p.add_argument("--latency-us", type=float, default=10.0, help="breakeven part: latency alpha per message")
    p.add_argument(
        "--decodes",
        choices=["all", "one"],
        default="all",
        help="breakeven part, allgather compressors: every worker decodes all n messages (as the "
        "algorithms do) or one (compress + decompress only)",
    )
    p.add_argument("--breakeven-models", nargs="+", choices=BREAKEVEN_MODELS, default=list(BREAKEVEN_MODELS))
    args = p.parse_args(argv)
    for key in ("repeats", "threads", "workers"):
        if getattr(args, key) < 1:
            p.error(f"--{key} must be >= 1, but is {getattr(args, key)}")
    if args.latency_us < 0 or not math.isfinite(args.latency_us):
        p.error(f"--latency-us must be a finite number >= 0, but is {args.latency_us}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    gpu = None if args.no_gpu else cuda_device()
    header = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(gpu) if gpu else None,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    print(f"torch {header['torch']} | threads {header['threads']} | gpu {header['gpu']} | {header['date']}")
    start = time.perf_counter()
    benches = {
        "compressors": bench_compressors,
        "sketch": bench_count_sketch,
        "steps": bench_steps,
        "breakeven": bench_break_even,
    }
    results, part_s = {part: [] for part in PARTS}, {}
    for part in (p for p in PARTS if p in args.parts):
        t0 = time.perf_counter()
        results[part] = benches[part](args)
        part_s[part] = time.perf_counter() - t0
    print(NOTE)
    wall_s = time.perf_counter() - start
    print(f"\n(benchmark took {wall_s:.0f} s: " + ", ".join(f"{p} {s:.0f} s" for p, s in part_s.items()) + ")")
    report = {
        **header,
        "wall_s": wall_s,
        "part_wall_s": part_s,
        "args": {k: str(v) for k, v in vars(args).items()},
        **results,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
