"""How far the golden runs drift when only the CPU's rounding changes: the measurement behind the
tolerances of ``tests/test_golden.py``.

Every golden case is re-run with other float kernels on this machine (torch's AVX2 and non-SIMD
kernels through ``ATEN_CPU_CAPABILITY``, oneDNN's and MKL's ISA caps) and with two threads instead
of one (another reduction order), and the worst relative difference from the committed file is
printed per case and field. Counts that differ are listed too (only value-dependent supports, such
as the hard threshold's, may).

    .venv/bin/python scripts/golden_drift.py                 # every variant (~4 min on 2 cores)
    .venv/bin/python scripts/golden_drift.py avx2 --case qadam
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name -> (environment, thread count)
    "avx2": ({"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}, 1),
    "no_simd": ({"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}, 1),
    "threads2": ({}, 2),
}


def golden_cases():
    spec = importlib.util.spec_from_file_location("test_golden", ROOT / "tests" / "test_golden.py")
    assert spec and spec.loader
    sys.path.insert(0, str(ROOT / "tests"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def drift(rows: list[dict], golden: list[dict]) -> dict[str, float]:
    """Worst relative difference per field (time_* fields left out)."""
    worst: dict[str, float] = {}
    for got, want in zip(rows, golden):
        for key, b in want.items():
            a = got.get(key)
            if key.startswith("time_") or a == b:
                continue
            if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                if not (math.isnan(a) and math.isnan(b)):
                    worst[key] = max(worst.get(key, 0.0), abs(a - b) / max(abs(b), 1e-300))
            else:
                worst[key] = math.inf
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help=f"of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--case", action="append", help="golden case(s) to run (default: all)")
    args = parser.parse_args()
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    golden = golden_cases()
    binary = Path(sys.executable).parent / "compress-train"
    cases = args.case or sorted(golden.CASES)
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants or list(VARIANTS):
            env, threads = VARIANTS[variant]
            for name in cases:
                run = Path(tmp) / f"{variant}_{name}"
                common = [f"threads={threads}", "logger.progress=false", "dataset.download=false"]
                proc = subprocess.run(
                    [str(binary), f"hydra.run.dir={run}", *common, *golden.CASES[name]],
                    env={**os.environ, **env},
                    cwd=tmp,
                    capture_output=True,
                    text=True,
                )
                if proc.returncode:
                    print(f"{variant:9} {name:22} FAILED: {proc.stderr.strip().splitlines()[-1:]}")
                    continue
                rows = golden.comparable(golden.metrics(run))
                want = [json.loads(x) for x in (golden.GOLDEN / f"{name}.jsonl").read_text().splitlines() if x]
                worst = drift(rows, want)
                counts = sorted(k for k in worst if golden.COUNT.match(k))
                floats = {k: v for k, v in worst.items() if k not in counts}
                top = max(floats.items(), key=lambda kv: kv[1], default=("-", 0.0))
                print(
                    f"{variant:9} {name:22} rows {len(rows)}/{len(want)}  worst float {top[0]} {top[1]:.2e}"
                    f"  counts that differ: {', '.join(f'{k} {worst[k]:.1e}' for k in counts) or 'none'}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
