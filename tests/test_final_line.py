"""The one log line a run ends with (runner/run.py ``final_line``): its own metric, and a metric the run
has not logged yet (stopped before its first row or evaluation) said in words, never printed as nan."""

from __future__ import annotations

from compress_train.runner.run import final_line

TOTALS = {"totals": {"bits_up": 1.5e7}}


def test_a_run_preempted_before_its_first_evaluation_says_so():
    line = final_line({"status": "preempted", "steps": 18, "final": {"train_loss": 0.7419}, **TOTALS})
    assert line == "preempted: step 18, train loss 0.7419, test acc not logged yet, bits up per worker 1.5e+07"


def test_each_task_reports_its_own_metric():
    done = {"status": "completed", "steps": 5, **TOTALS}
    assert "test acc 0.9470" in final_line({**done, "final": {"train_loss": 0.1, "test_acc": 0.947}})
    assert "test perplexity 120.50" in final_line({**done, "final": {"perplexity": 120.5}})
    assert "HR@10 0.5261" in final_line({**done, "final": {"hit_rate@10": 0.5261}})
    quad = final_line({**done, "problem": "quadratic", "final": {"rel_dist": 1e-3}})
    assert "||x-x*||/||x0-x*|| 0.001, f-f* not logged yet" in quad


def test_a_diverged_value_still_reads_as_the_number_it_is():
    line = final_line({"status": "diverged", "steps": 7, "final": {"train_loss": float("nan")}, **TOTALS})
    assert "train loss nan" in line
