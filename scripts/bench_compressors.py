"""Benchmark the compressors and one training step, as ratios to a baseline (docs/architecture.md §8).

Part 1, compressors: for each vector length d, a seeded random fp32 vector; a plain copy
``out.copy_(x)`` into a buffer allocated once is timed (``x.clone()`` would also pay for fresh
pages and make every ratio look several times better), then every compressor (built from its
YAML defaults in ``conf/compressor/``, wrapped in a ScopedCompressor) is timed for compress
alone, decompress alone and compress+decompress.
Each time is the median of ``--repeats`` runs after one warm-up. The table gives the total as a
ratio to the copy, and the bits one worker would send, also as a fraction of dense fp32 (32 d).

Part 2, count sketch (compressors/count_sketch.py) at the SketchedAMSGrad scale: d = 25M, r = 5,
c = 100,000, k = 50,000, on ONE thread, for each hash family: the hash build (once, then cached),
compress (the r x c table), decompress (the unsketch: estimates, top-k) and the estimate alone.
Each repeat times ``out.copy_(x)`` right before the operation and the table gives the median of the
per-repeat ratios, so a load change on a shared machine moves both.

Part 3, training: one ``Trainer.run_step`` of the default config (MNIST CNN, simulated workers,
CPU) for uncompressed AMSGrad and COMP-AMS with identity, top-k 1% and Block-Sign; median over
``--repeats`` steps after a few warm-up steps, and the ratio to the uncompressed step.

Everything is measured in this one run; nothing is hard-coded. Run from the repository root:

    .venv/bin/python scripts/bench_compressors.py [--sizes 1e6 25e6] [--repeats 5] [--json out.json]
    .venv/bin/python scripts/bench_compressors.py --parts sketch      # the count sketch part alone
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from omegaconf import OmegaConf

import compress_train.conf as conf_package
from compress_train.algorithms.communicator import SimCommunicator
from compress_train.compressors import registry
from compress_train.compressors.base import CompressContext
from compress_train.compressors.count_sketch import HASHINGS, CountSketch, clear_cache
from compress_train.compressors.scope import ScopedCompressor
from compress_train.runner.config.check import compressor_params
from compress_train.runner.trainer import Trainer

COMPRESSOR_DIR = Path(conf_package.__file__).parent / "compressor"
LAYER_BUCKET = 1_000_000  # --scope layer on a synthetic vector: buckets of this many elements
STEP_VARIANTS = {  # label -> Hydra overrides; the first is the baseline of the ratios
    "amsgrad (uncompressed)": ["algo=amsgrad"],
    "comp_ams + identity": ["algo=comp_ams", "compressor=identity"],
    "comp_ams + topk 0.01": ["algo=comp_ams", "compressor=topk", "compressor.ratio=0.01"],
    "comp_ams + blocksign": ["algo=comp_ams", "compressor=blocksign"],
}
WARMUP_STEPS = 3
PARTS = ("compressors", "sketch", "steps")


def median_time(fn: Callable[[], object], repeats: int, sync: Callable[[], None], warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def yaml_params(name: str) -> dict:
    """The compressor's constructor arguments from its YAML defaults (runner rules dropped)."""
    return compressor_params(OmegaConf.load(COMPRESSOR_DIR / f"{name}.yaml"))


def bench_compressors(args: argparse.Namespace, device: torch.device, sync) -> list[dict]:
    rows = []
    print(f"\n== compressors (scope={args.scope}; median of {args.repeats} after 1 warm-up) ==")
    print(f"{'compressor':<12} {'d':>11} {'compress ms':>12} {'decomp ms':>10} {'total ms':>10} "
          f"{'total/copy':>10} {'bits sent':>12} {'bits/(32d)':>10}")
    for size in args.sizes:
        d = int(size)
        gen = torch.Generator().manual_seed(args.seed)
        x = torch.randn(d, generator=gen, dtype=torch.float32).to(device)
        out = torch.empty_like(x)  # allocated once: the copy measures memory bandwidth, not page faults
        copy_s = median_time(lambda: out.copy_(x), args.repeats, sync)
        print(f"{'copy':<12} {d:>11,} {'':>12} {'':>10} {copy_s * 1e3:>10.2f} {1.0:>10.2f} {32 * d:>12,} {1.0:>10.4f}")
        rows.append({"compressor": "copy", "d": d, "total_s": copy_s, "ratio": 1.0, "bits": 32 * d})
        layers = [LAYER_BUCKET] * (d // LAYER_BUCKET) + ([d % LAYER_BUCKET] if d % LAYER_BUCKET else [])
        for name in args.compressors:
            scoped = ScopedCompressor(registry.build(name, yaml_params(name)),
                                      layers if args.scope == "layer" else [d], args.scope)
            message = scoped.compress(x, args.seed, 0, 0)
            comp_s = median_time(lambda: scoped.compress(x, args.seed, 0, 0), args.repeats, sync)
            dec_s = median_time(lambda: scoped.decompress(message), args.repeats, sync)
            total_s = median_time(lambda: scoped.decompress(scoped.compress(x, args.seed, 0, 0)),
                                  args.repeats, sync)
            ratio, frac = total_s / copy_s, message.bits / (32 * d)
            print(f"{name:<12} {d:>11,} {comp_s * 1e3:>12.2f} {dec_s * 1e3:>10.2f} {total_s * 1e3:>10.2f} "
                  f"{ratio:>10.1f} {message.bits:>12,} {frac:>10.4f}")
            rows.append({"compressor": name, "d": d, "compress_s": comp_s, "decompress_s": dec_s,
                         "total_s": total_s, "ratio": ratio, "bits": message.bits, "bits_fraction": frac})
    return rows


def paired_ratio(fn: Callable[[], object], base: Callable[[], object], repeats: int, sync) -> tuple[float, float]:
    """Median wall time of ``fn`` and the median over repeats of time(fn) / time(base), ``base`` timed
    right before ``fn`` in every repeat (one warm-up of each first)."""
    times, ratios = [], []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        base()
        sync()
        t1 = time.perf_counter()
        fn()
        sync()
        t2 = time.perf_counter()
        if i:
            times.append(t2 - t1)
            ratios.append((t2 - t1) / (t1 - t0))
    return statistics.median(times), statistics.median(ratios)


def bench_count_sketch(args: argparse.Namespace, device: torch.device, sync) -> list[dict]:
    d, r, c, k = int(args.sketch_d), args.sketch_rows, args.sketch_columns, args.sketch_k
    threads = torch.get_num_threads()
    if args.sketch_threads is not None:
        torch.set_num_threads(args.sketch_threads)
    rows = []
    try:
        print(f"\n== count sketch (d={d:,}, r={r}, c={c:,}, k={k:,}; threads {torch.get_num_threads()}; "
              f"median of {args.repeats}, each ratio to a copy timed just before) ==")
        print(f"{'hashing':<8} {'build s':>8} {'hash MB':>8} {'compress ms':>12} {'/copy':>6} {'decomp ms':>10} "
              f"{'/copy':>6} {'estimate ms':>12} {'/copy':>6} {'bits sent':>12} {'bits/(32d)':>10}")
        x = torch.randn(d, generator=torch.Generator().manual_seed(args.seed), dtype=torch.float32).to(device)
        out = torch.empty_like(x)  # allocated once (never clone())
        copy_s = median_time(lambda: out.copy_(x), args.repeats, sync)
        print(f"{'copy':<8} {'':>8} {'':>8} {copy_s * 1e3:>12.2f} {1.0:>6.1f}")
        rows.append({"compressor": "copy", "d": d, "total_s": copy_s, "threads": torch.get_num_threads()})
        ctx = CompressContext(seed=args.seed)
        for hashing in args.sketch_hashing:
            comp = CountSketch(rows=r, columns=c, ratio=None, k=k, hashing=hashing)
            t0 = time.perf_counter()
            hashes = comp.hashes(d, comp.key(ctx), device)  # built once, then cached
            sync()
            build_s = time.perf_counter() - t0
            payload = comp.compress(x, ctx)
            comp_s, comp_ratio = paired_ratio(lambda: comp.compress(x, ctx), lambda: out.copy_(x), args.repeats, sync)
            dec_s, dec_ratio = paired_ratio(lambda: comp.decompress(payload), lambda: out.copy_(x), args.repeats, sync)
            est_s, est_ratio = paired_ratio(lambda: comp.estimate(payload), lambda: out.copy_(x), args.repeats, sync)
            frac = payload.bits / (32 * d)
            print(f"{hashing:<8} {build_s:>8.2f} {hashes.nbytes / 2 ** 20:>8.0f} {comp_s * 1e3:>12.1f} {comp_ratio:>6.1f} "
                  f"{dec_s * 1e3:>10.1f} {dec_ratio:>6.1f} {est_s * 1e3:>12.1f} {est_ratio:>6.1f} "
                  f"{payload.bits:>12,} {frac:>10.4f}")
            rows.append({"compressor": f"count_sketch/{hashing}", "d": d, "rows": r, "columns": c, "k": k,
                         "threads": torch.get_num_threads(), "hash_build_s": build_s, "hash_bytes": hashes.nbytes,
                         "compress_s": comp_s, "compress_ratio": comp_ratio, "decompress_s": dec_s,
                         "decompress_ratio": dec_ratio, "estimate_s": est_s, "estimate_ratio": est_ratio,
                         "bits": payload.bits, "bits_fraction": frac})
            clear_cache()  # the random family's int64 r x d index: 8 r d bytes
    finally:
        torch.set_num_threads(threads)
    return rows


def bench_steps(args: argparse.Namespace) -> list[dict]:
    from hydra import compose, initialize_config_module

    rows, base = [], None
    print(f"\n== one training step (default config, workers={args.step_workers}, cpu; "
          f"median of {args.repeats} after {WARMUP_STEPS} warm-up steps) ==")
    print(f"{'variant':<24} {'params':>9} {'step ms':>9} {'ratio':>7}")
    for label, overrides in STEP_VARIANTS.items():
        with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
            cfg = compose("config", overrides=[*overrides, "dataset.download=false", "logger.progress=false",
                                               f"workers={args.step_workers}", f"seed={args.seed}", "device=cpu"])
        trainer = Trainer(cfg, SimCommunicator(cfg.workers), [], {}, lambda m: None, torch.device("cpu"))
        steps = itertools.count()
        step_s = median_time(lambda: trainer.run_step(next(steps)), args.repeats, lambda: None,
                             warmup=WARMUP_STEPS)
        base = base or step_s
        print(f"{label:<24} {trainer.task.numel:>9,} {step_s * 1e3:>9.2f} {step_s / base:>7.2f}")
        rows.append({"variant": label, "overrides": overrides, "params": trainer.task.numel,
                     "step_s": step_s, "ratio": step_s / base})
    return rows


NOTE = """
How to read the ratios: every time above is a median wall time measured in this process, so
only ratios within one run are comparable; absolute milliseconds vary with the machine, its
load and the thread count. "total/copy" says how many plain copies of the same vector one
compress+decompress costs: about 1-3 is at the memory-bandwidth floor, tens or hundreds means
the compressor does real work per element (a sort/selection, a random permutation, fp64 math)
and will dominate a step on large models. "bits/(32d)" is the traffic per worker relative to
dense fp32, exact (read off the tensors sent); for data-dependent compressors (threshold, mvss)
bits and time depend on the values, here N(0, 1) rather than real gradients. The step ratios
put this in context: near 1, compression is cheap next to this small model's forward/backward
pass; well above 1, the compressor path, not the model, sets the step time."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=float, nargs="+", default=[1e6, 25e6], help="vector lengths d")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median)")
    p.add_argument("--scope", choices=["model", "layer"], default="model",
                   help=f"model: one vector; layer: buckets of {LAYER_BUCKET:,} elements")
    p.add_argument("--compressors", nargs="+", default=sorted(f.stem for f in COMPRESSOR_DIR.glob("*.yaml")),
                   choices=registry.available())
    p.add_argument("--step-workers", type=int, default=1, help="simulated workers in the step benchmark")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="device of the compressor part")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None, help="also write all measurements to this file")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run")
    p.add_argument("--sketch-d", type=float, default=25e6, help="count sketch part: vector length")
    p.add_argument("--sketch-rows", type=int, default=5, help="count sketch part: rows r")
    p.add_argument("--sketch-columns", type=int, default=100_000, help="count sketch part: columns c")
    p.add_argument("--sketch-k", type=int, default=50_000, help="count sketch part: k of the unsketch")
    p.add_argument("--sketch-hashing", nargs="+", choices=HASHINGS, default=list(HASHINGS),
                   help="count sketch part: hash families")
    p.add_argument("--sketch-threads", type=int, default=1, help="count sketch part: torch threads")
    args = p.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    header = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device,
              "date": datetime.datetime.now().isoformat(timespec="seconds")}
    print(f"torch {header['torch']} | threads {header['threads']} | device {header['device']} | {header['date']}")
    start = time.perf_counter()
    compressor_rows = bench_compressors(args, device, sync) if "compressors" in args.parts else []
    sketch_rows = bench_count_sketch(args, device, sync) if "sketch" in args.parts else []
    step_rows = bench_steps(args) if "steps" in args.parts else []
    print(NOTE)
    print(f"\n(benchmark took {time.perf_counter() - start:.0f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps({**header, "args": {k: str(v) for k, v in vars(args).items()},
                                         "compressors": compressor_rows, "count_sketch": sketch_rows,
                                         "steps": step_rows}, indent=2))


if __name__ == "__main__":
    main()
