"""Run records: one JSON line per finished run, small enough to commit, from which every claim of
``conf/claims/`` is evaluated without the raw run directories (``runner/report/claims.py``).

A record holds the run's identity (experiment, scale, method label, options, seed, status), its
resolved config flattened to dotted scalars (``algo.lr``, ``compressor.ratio``, ``model.hidden``...),
the summary's final metrics, its proven rate where it has one, and the few metric series that
claims read (``step`` with losses, accuracies, bits and distances at each logged row).

    compress-claims record outputs/multirun/<date>/<time> --out docs/results/def/table1_long
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from compress_train.runner.metrics import flatten, read_metrics
from compress_train.runner.report.load import REPORTED, find_run_dirs, load_summary

RECORDS = "run_records.jsonl"
SERIES = (
    "step",
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "perplexity",
    "hit_rate@10",
    "ndcg@10",
    "bits_up",
    "avg_density",
    "total_error",
    "dist_to_opt",
    "rel_dist",
    "suboptimality",
)
CONFIG_GROUPS = ("algo", "compressor", "model", "dataset", "train", "controller")


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.exists():
        return {}
    import yaml

    cfg = yaml.safe_load(path.read_text()) or {}
    flat = flatten({g: cfg.get(g) for g in CONFIG_GROUPS if isinstance(cfg.get(g), dict)})
    return {k: v for k, v in flat.items() if _scalar(v)}


def _clean(v: Any) -> Any:
    """JSON without NaN/inf (they become null; a diverged run's status says why)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def record(run_dir: Path, root: Path | None = None) -> dict[str, Any] | None:
    """The record of one run directory; None when it holds no finished run (running, failed...)."""
    s = load_summary(run_dir)
    if s is None or s.get("status") not in REPORTED:
        return None
    rows = read_metrics(run_dir)
    columns = [c for c in SERIES if any(c in r for r in rows)]
    theory = s.get("theory") or {}
    rate = theory.get("rate")
    squared = isinstance(s.get("theory"), dict) and theory.get("bound0") is not None  # Thm 5.2: E||x - x*||^2
    return {
        "run_dir": str(run_dir.relative_to(root)) if root and run_dir.is_relative_to(root) else str(run_dir),
        "experiment": s.get("experiment"),
        "scale": s.get("scale") or "ci",
        "method": s.get("method"),
        "algo": s.get("algo"),
        "compressor": s.get("compressor"),
        "ef": s.get("ef"),
        "workers": s.get("workers"),
        "dataset": (s.get("dataset") or {}).get("name"),
        "dataset_description": (s.get("dataset") or {}).get("description"),
        "model": s.get("model"),
        "seed": s.get("seed"),
        "status": s.get("status"),
        "reason": s.get("reason"),
        "steps": s.get("steps"),
        "num_classes": s.get("num_classes"),
        "theory_rate": (math.sqrt(rate) if squared else rate) if isinstance(rate, (int, float)) else None,
        "theory": {  # a theorem's constants as the run used them, and its starting distance (convex runs)
            **{k: v for k, v in theory.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            **({"x0_dist": x0} if isinstance(x0 := (s.get("problem") or {}).get("x0_dist"), (int, float)) else {}),
        }
        or None,
        "config": _config(run_dir),
        "final": {k: _clean(v) for k, v in (s.get("final") or {}).items() if _scalar(v)},
        "series": {c: [_clean(r.get(c)) for r in rows] for c in columns},
    }


def write_records(paths: list[str | Path], out: Path) -> tuple[Path, int]:
    """Write ``out/run_records.jsonl`` for every finished run under ``paths`` (run directories named
    relative to the sweep folder given); returns (file, count)."""
    records = []
    for p in map(Path, paths):
        root = p.resolve()
        for d in find_run_dirs([p]):
            r = record(Path(d).resolve(), root.parent if root == Path(d).resolve() else root)
            if r is not None:
                records.append(r)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RECORDS
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return path, len(records)


def read_records(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Every record in the ``run_records.jsonl`` files under ``paths`` (files or folders searched)."""
    found: list[dict[str, Any]] = []
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted(p.rglob(RECORDS))
        for f in files:
            for n, line in enumerate(f.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        found.append({**json.loads(line), "source": str(f)})
                    except ValueError as err:
                        raise ValueError(f"{f}:{n}: not a JSON record ({err})") from err
    return found
