"""Loading run directories for ``compress-report``: finding runs, method labels in the style of
the ``comp_ams`` legends, seed grouping, the best of an lr grid and per-step aggregation."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compress_train.runner.metrics import flatten, read_metrics, run_status

RUN_COLUMNS = [
    "run_dir",
    "experiment",
    "method",
    "algo",
    "compressor",
    "ef",
    "workers",
    "seed",
    "dataset",
    "model",
    "status",
]
METRIC_ORDER = [
    "step",
    "epoch",
    "samples",
    "lr",
    "train_loss",
    "test_loss",
    "test_acc",
    "bits_up",
    "bits_down",
    "elements_up",
    "wire_bytes",
    "bits_up_step",
    "bits_down_step",
    "elements_up_step",
    "wire_bytes_step",
    "density",
    "avg_density",
    "error_norm",
    "total_error",
    "time_compute_s",
    "time_compress_s",
    "time_comm_s",
    "time_s",
]
COMPRESSOR_NAMES = {
    "topk": "TopK",
    "randk": "RandK",
    "blocksign": "BkSign",
    "scaled_sign": "ScaledSign",
    "mvss": "MVSS",
    "threshold": "Threshold",
}
FULL_GRADIENT = {"identity", "none", None}
LOWER_IS_BETTER = {"test_loss", "perplexity", "suboptimality", "dist_to_opt", "train_loss"}


class ReportError(Exception):
    """A user-facing problem with the inputs (exit code 2)."""


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# -- finding and reading runs ---------------------------------------------------------------------


def _natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def find_run_dirs(paths: list[str | Path]) -> list[Path]:
    """Every directory holding a ``summary.json`` under the given run or sweep directories."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise ReportError(f"{p} does not exist")
        if p.is_file():
            if p.name != "summary.json":
                raise ReportError(f"{p} is not a run directory (expected a folder holding summary.json)")
            p = p.parent
        dirs = sorted({s.parent for s in p.rglob("summary.json")}, key=_natural)
        if not dirs:
            raise ReportError(f"no run found under {p} (no summary.json in it or its subfolders)")
        found += [d for d in dirs if d not in found]
    return found


def _run_config(run_dir: Path) -> dict[str, Any]:
    """The parts of the resolved config that set a method apart but are not in summary.json."""
    path = run_dir / "config.yaml"
    if not path.exists():
        return {}
    try:
        import yaml

        cfg = yaml.safe_load(path.read_text()) or {}
        train = cfg.get("train") or {}
        data = cfg.get("dataset") or {}
        return {
            "batch_size": train.get("batch_size"),
            "epochs": train.get("epochs"),
            "max_steps": train.get("max_steps"),
            "partition": data.get("partition"),
            "model_params": {k: v for k, v in (cfg.get("model") or {}).items() if k != "name"},
        }
    except Exception:  # the config is optional extra identity; never fail on it
        return {}


def load_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    try:
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
        return summary
    except (OSError, ValueError) as err:
        warn(f"skipping {path}: corrupt summary.json ({err})")
        return None


# -- method labels --------------------------------------------------------------------------------


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def is_full_gradient(s: dict[str, Any]) -> bool:
    return s.get("algo") in ("amsgrad", "sgd") or s.get("compressor") in FULL_GRADIENT


def derived_label(s: dict[str, Any]) -> str:
    """A ``comp_ams``-style legend name: TopK-EF-0.01, TopK-0.01, BkSign-EF, MVSS-0.01, AMSGrad, QAdam."""
    algo, comp = str(s.get("algo")), str(s.get("compressor"))
    params = s.get("compressor_params") or {}
    ef = s.get("ef") or (s.get("algo_params") or {}).get("ef") or "none"
    if is_full_gradient(s):
        return {"sgd": "SGD", "ef_sgd": "SGD", "qadam": "QAdam"}.get(algo, "AMSGrad")
    name = COMPRESSOR_NAMES.get(comp, str(comp))
    if params.get("k"):
        level = f"k={params['k']}"
    elif "ratio" in params:
        level = _num(params["ratio"])
    elif "lam" in params:
        level = f"λ={_num(params['lam'])}"
    else:
        level = ""
    if algo == "qadam":
        return "QAdam" if comp in ("blocksign", "scaled_sign") else "-".join(filter(None, ["QAdam", name, level]))
    ef_tag = {"none": "", "classic": "EF", "scaled": "EF(scaled)"}.get(str(ef), f"EF({ef})")
    if algo == "ef_sgd":
        return "-".join(filter(None, [f"{ef_tag}-SGD" if ef_tag else "SGD", comp, level]))
    if algo not in (None, "comp_ams"):
        name = f"{algo}:{name}"
    return "-".join(filter(None, [name, ef_tag, level]))


def group_key(s: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Everything that makes two runs different methods: the identity without the seed."""
    return {
        "method": s.get("method"),
        "experiment": s.get("experiment"),
        "scale": s.get("scale"),
        "algo": s.get("algo"),
        "algo_params": s.get("algo_params") or {},
        "compressor": s.get("compressor"),
        "compressor_params": s.get("compressor_params") or {},
        "ef": s.get("ef"),
        "workers": s.get("workers"),
        "launcher": s.get("launcher"),
        "model": s.get("model"),
        "dataset": (s.get("dataset") or {}).get("name"),
        **cfg,
    }


PRIORITY = [
    "algo",
    "compressor",
    "ef",
    "algo_params.lr",
    "compressor_params",
    "algo_params",
    "launcher",
    "dataset",
    "model",
    "batch_size",
    "epochs",
    "max_steps",
    "experiment",
    "scale",
    "method",
]


def _priority(name: str) -> tuple[int, str]:
    for i, p in enumerate(PRIORITY):
        if name == p or name.startswith(p + "."):
            return i, name
    return len(PRIORITY), name


def assign_labels(keys: dict[str, dict[str, Any]], summaries: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Label per group id: the preset's label or a derived one; ", n=K" when workers vary; any
    remaining clash is told apart by the settings in which the clashing groups differ."""
    labels = {g: summaries[g].get("method") or derived_label(summaries[g]) for g in keys}
    if len({k["workers"] for k in keys.values()}) > 1:
        labels = {g: f"{lab}, n={keys[g]['workers']}" for g, lab in labels.items()}
    for lab in set(labels.values()):
        clash = [g for g in keys if labels[g] == lab]
        if len(clash) < 2:
            continue
        flat = {g: flatten(keys[g]) for g in clash}
        names = sorted({n for f in flat.values() for n in f}, key=_priority)
        differ = [n for n in names if len({json.dumps(f.get(n), sort_keys=True) for f in flat.values()}) > 1]
        used: list[str] = []
        for n in differ:  # the fewest, most telling settings that tell the clashing groups apart
            used.append(n)
            if len({tuple(json.dumps(flat[g].get(u)) for u in used) for g in clash}) == len(clash):
                break
        for g in clash:
            extra = ", ".join(f"{n.split('.')[-1]}={_num(flat[g].get(n))}" for n in used)
            labels[g] = f"{lab} ({extra})"
    return labels


# -- the DataFrame --------------------------------------------------------------------------------


def _convex_columns(s: dict[str, Any]) -> dict[str, Any]:
    """A convex run's problem and proven rate (the ``aiade`` reports); empty for network runs."""
    problem, theory = s.get("problem"), s.get("theory") or {}
    if not isinstance(problem, dict):
        return {}
    return {
        "problem_kind": problem.get("kind"),
        "kappa": problem.get("kappa"),
        "dim": problem.get("dim"),
        "theory_rate": theory.get("rate"),
        "bound0": theory.get("bound0"),
        "tol": s.get("tol"),
    }


REPORTED = ("completed", "converged", "diverged")  # diverged runs are results, drawn and counted apart


def load_runs(paths: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, runs): one row per metrics row with run-level columns, and one row per run."""
    run_rows, frames = [], []
    keys: dict[str, dict[str, Any]] = {}
    firsts: dict[str, dict[str, Any]] = {}
    unfinished = []
    for run_dir in find_run_dirs(paths):
        s = load_summary(run_dir)
        if s is None:
            continue
        s["status"] = run_status(s)  # "died": a running run whose writer is gone
        if s.get("status") not in REPORTED:  # running, interrupted, preempted, failed: not a result yet
            unfinished.append(f"{run_dir} ({s.get('status')})")
            continue
        key = group_key(s, _run_config(run_dir))
        gid = json.dumps(key, sort_keys=True, default=str)
        family = json.dumps(
            {**key, "algo_params": {k: v for k, v in key["algo_params"].items() if k != "lr"}},
            sort_keys=True,
            default=str,
        )
        keys.setdefault(gid, key)
        firsts.setdefault(gid, s)
        totals, final = s.get("totals") or {}, s.get("final") or {}
        run = {
            "run_dir": str(run_dir),
            "experiment": s.get("experiment"),
            "group": gid,
            "family": family,
            "lr": (s.get("algo_params") or {}).get("lr"),
            "algo": s.get("algo"),
            "compressor": s.get("compressor"),
            "ef": s.get("ef"),
            "workers": s.get("workers"),
            "seed": s.get("seed"),
            "dataset": (s.get("dataset") or {}).get("name"),
            "model": s.get("model"),
            "status": s.get("status", "unknown"),
            "full_gradient": is_full_gradient(s),
            "steps": s.get("steps"),
            "total_bits_up": totals.get("bits_up"),
            "final_train_loss": final.get("train_loss"),
            "dataset_description": (s.get("dataset") or {}).get("description"),
            **_convex_columns(s),
        }
        run_rows.append(run)
        rows = read_metrics(run_dir)
        m = pd.DataFrame(rows) if rows else pd.DataFrame({"step": [np.nan]})
        for c in RUN_COLUMNS:
            if c in run:
                m[c] = run[c]
        m["group"] = gid
        frames.append(m)
    if unfinished:
        print(f"left out {len(unfinished)} run(s) that did not finish: " + ", ".join(unfinished), file=sys.stderr)
    if not run_rows:
        raise ReportError("no readable finished run in " + ", ".join(map(str, paths)))
    labels = assign_labels(keys, firsts)
    runs = pd.DataFrame(run_rows)
    for c in ("steps", "total_bits_up", "final_train_loss", "kappa", "theory_rate", "bound0"):
        if c in runs:
            runs[c] = pd.to_numeric(runs[c], errors="coerce")
    runs.insert(2, "method", runs["group"].map(labels))
    df = pd.concat(frames, ignore_index=True)
    df["method"] = df["group"].map(labels)
    metric_cols = [c for c in METRIC_ORDER if c in df] + sorted(
        c for c in df if c not in METRIC_ORDER and c not in RUN_COLUMNS and c != "group"
    )
    df = df[RUN_COLUMNS + metric_cols]
    for c in metric_cols:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df, runs


def method_order(runs: pd.DataFrame) -> list[str]:
    """Full gradient first, then in order of first appearance (sweep job order)."""
    first = runs.drop_duplicates("method").reset_index(drop=True)
    first["pos"] = first.index
    return list(first.sort_values(["full_gradient", "pos"], ascending=[False, True])["method"])


def aggregate(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Per step, over a method's runs (seeds): mean of x, mean/min/max/std of y, number of runs."""
    cols = list(dict.fromkeys(["step", x, y]))
    d = df[cols].replace([np.inf, -np.inf], np.nan).dropna()
    if d.empty:
        return pd.DataFrame(columns=["step", "x", "mean", "lo", "hi", "std", "n"])
    g = d.groupby("step")
    return pd.DataFrame(
        {
            "x": g[x].mean(),
            "mean": g[y].mean(),
            "lo": g[y].min(),
            "hi": g[y].max(),
            "std": g[y].std(ddof=0),
            "n": g[y].count(),
        }
    ).reset_index()


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def _without_lr(label: str) -> str:
    """'TopK-EF-0.01 (lr=0.001)' -> 'TopK-EF-0.01' (the suffix the label clash resolution added)."""
    m = re.match(r"^(.*) \((.*)\)$", label)
    if not m:
        return label
    rest = [part for part in m.group(2).split(", ") if not part.startswith("lr=")]
    return f"{m.group(1)} ({', '.join(rest)})" if rest else m.group(1)


EDGE_MARK = "grid edge"  # the best lr is the grid's lowest or highest value: the grid did not bracket it


def grid_edge(chosen: float, grid: list[float]) -> str | None:
    """'lowest' or 'highest' when ``chosen`` is on the edge of ``grid`` (two or more values), else None."""
    if len(grid) < 2:
        return None
    return "lowest" if chosen == grid[0] else "highest" if chosen == grid[-1] else None


def keep_best_lr(df: pd.DataFrame, runs: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Per method family (identity without the lr), keep the lr whose runs have the best mean final
    ``metric``; a group with a diverged run ranks last. Returns the filtered frames (``runs`` gains
    ``best_lr``: the chosen lr, marked when it sits on the grid's edge) and a note."""
    finals = df.dropna(subset=[metric]).groupby("run_dir")[metric].last() if metric in df else pd.Series(dtype=float)
    runs = runs.assign(final=runs["run_dir"].map(finals))
    sign = 1.0 if higher_is_better(metric) else -1.0
    keep, notes, chosen_lr, edges = [], [], {}, 0
    for _, fam in runs.groupby("family", sort=False):
        scores = {}
        for method, g in fam.groupby("method", sort=False):
            bad = (g["status"] == "diverged").any() or g["final"].isna().all()
            scores[method] = -np.inf if bad else sign * g["final"].mean()
        best = max(scores, key=lambda method: scores[method])
        keep.append(best)
        grid = sorted(fam["lr"].dropna().unique())
        if len(grid) > 1:
            chosen = fam.loc[fam["method"] == best, "lr"].iloc[0]
            edge = grid_edge(chosen, grid)
            edges += edge is not None
            chosen_lr[best] = f"{chosen:g}" + (f" ({EDGE_MARK}: {edge})" if edge else "")
            notes.append(
                f"{_without_lr(best)}: {chosen:g} (grid {', '.join(f'{v:g}' for v in grid)}"
                + (f"; **{EDGE_MARK}**: the {edge} value" if edge else "")
                + ")"
            )
    relabel = {m: _without_lr(m) for m in keep}
    runs = runs[runs["method"].isin(keep)].drop(columns="final")
    runs = runs.assign(best_lr=runs["method"].map(chosen_lr), method=runs["method"].map(relabel))
    df = df[df["method"].isin(keep)].assign(method=lambda d: d["method"].map(relabel))
    if not notes:
        return df, runs, "Learning rate: one per method (no grid)."
    note = (
        "Learning rate per method: the best of the grid by mean final " + metric + " over seeds "
        "(the paper's protocol): " + "; ".join(notes) + "."
    )
    if edges:
        note += (
            f" {edges} of {len(notes)} best learning rates sit on the {EDGE_MARK} (marked): the grid did "
            "not bracket them, so a wider grid may find a better one."
        )
    return df, runs, note
