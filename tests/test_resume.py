"""Runs that survive: a checkpointed and resumed run equals the uninterrupted one, bit for bit.

Every registered algorithm (new ones join through ``ALGORITHMS``) is run three ways with the
same config and 4 simulated workers: 8 steps uninterrupted; 4 steps, then ``resume=auto`` to 8;
and, for one algorithm of every family (sim with 4 workers), a run whose worker process SIGKILLs
itself mid-way, then resumed; under torchrun with 2 processes, one case holding a controller's and a
compressing server's state (``TORCHRUN_KILL_CASES``). Every metrics row (wall-clock times aside)
and the final parameters must be equal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import torch
from conftest import compose_config

from cli_helpers import BIN, QUICK, metrics, run_cli, summary
from compress_train.algorithms.registry import ALGORITHMS
from compress_train.runner import checkpoint
from compress_train.runner.launch import launch
from compress_train.runner.metrics import run_status

pytestmark = pytest.mark.slow
STEPS = ("threads=1", "train.log_every=2", "train.eval_every=4")
SMALL = ("model.hidden=16", "train.batch_size=20", "dataset.eval_samples=200", *STEPS)  # the MNIST CNN, narrow
# what each algorithm needs beside itself (convex methods: a problem; others: the MNIST CNN)
SETUPS = {
    "comp_ams": ("compressor=topk",),
    "qadam": (),
    "ef_sgd": ("compressor=threshold", "compressor.lam=0.01", "algo.momentum=0.9"),
    "sgd": ("algo.momentum=0.9",),
    "amsgrad": (),
    "gd": ("problem=quadratic", "dataset.dim=10", "compressor=identity"),
    "agd": ("problem=quadratic", "dataset.dim=10", "compressor=identity"),
    "qgd": ("problem=quadratic", "dataset.dim=10"),
    "iade": ("problem=quadratic", "dataset.dim=10"),
    "aiade": ("problem=quadratic", "dataset.dim=10"),
    "iade_sgd": ("problem=lsq_interp",),
    "wgc_sgd": ("problem=lsq_interp", "compressor=identity"),
    "def": ("compressor=rbgs", "compressor.ratio=16", "train.bn_stats=average"),
    "def_a": ("compressor=rbgs", "compressor.ratio=16"),
    "saef": ("compressor=rbgs", "compressor.ratio=16"),
    "psync": ("compressor=rbgs", "compressor.ratio=16"),
    "ef21": ("compressor=rbgs", "compressor.ratio=16"),
    "ef21_sgdm": ("compressor=topk",),
    "efficient_adam": ("compressor=topk",),
    "onebit_adam": ("compressor=topk", "algo.freeze_step=4"),  # warm-up, then compressed (its Top-k variant;
    # with onebit_rms the MNIST CNN diverges after 4 warm-up steps: dead units have v = 0)
    "sketched_ams_pa": (
        "compressor=count_sketch",
        "compressor.columns=2000",
        "compressor.ratio=null",
        "compressor.k=500",
    ),
    "sketched_ams_ga": (
        "compressor=count_sketch",
        "compressor.columns=2000",
        "compressor.ratio=null",
        "compressor.k=500",
    ),
    "sketched_sgd": ("compressor=count_sketch", "compressor.columns=2000", "compressor.ratio=null", "compressor.k=500"),
    "fetchsgd": ("compressor=count_sketch", "compressor.columns=2000", "compressor.ratio=null", "compressor.k=500"),
}
EXTRA = {  # further families: Adam after EF, and ACCORDION's controller state
    "ef_sgd-adam": ("algo=ef_sgd", "algo.optimizer=adam", "algo.ef=powersgd", "compressor=topk"),
    "accordion": (
        "algo=ef_sgd",
        "compressor=topk",
        "compressor.scope=layer",
        "controller=accordion",
        "controller.interval=1",
        "train.batch_size=100",
    ),
    "language_model": (
        "algo=ef_sgd",
        "compressor=topk",
        "dataset=ptb",
        "model.hidden=16",
        "model.layers=1",
        "dataset.bptt=5",
        "dataset.eval_tokens=200",
        "train.batch_size=4",
    ),
    "recommendation": (
        "algo=ef_sgd",
        "compressor=topk",
        "dataset=movielens",
        "model.factors=8",
        "model.layers=[16,8]",
        "dataset.eval_users=20",
        "train.batch_size=256",
    ),
}
CASES = {name: (f"algo={name}", *SETUPS.get(name, ())) for name in ALGORITHMS.names()} | EXTRA


def comparable(rows):
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in rows]


def final_params(run_dir):
    (newest,) = checkpoint.complete(run_dir)[-1:]
    return checkpoint.load(newest / "shared.pt")["params"]


def assert_same(a, b):
    assert comparable(metrics(a)) == comparable(metrics(b))
    assert torch.equal(final_params(a), final_params(b))
    assert comparable([summary(a)["totals"]]) == comparable([summary(b)["totals"]])


def test_every_algorithm_has_a_resume_case():
    assert set(ALGORITHMS.names()) <= set(CASES)


def run_in_process(run_dir, *overrides):
    """One run through the simulator launcher, in this process (no CLI start-up per run)."""
    threads = torch.get_num_threads()
    try:
        return launch(compose_config(*QUICK, *overrides), run_dir)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(CASES))
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, name):
    own_data = any(o.startswith(("problem=", "dataset=")) for o in CASES[name])  # not the MNIST CNN
    setup = (*(STEPS if own_data else SMALL), *CASES[name], "workers=4", "train.epochs=null", "train.tol=null")
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert run_in_process(whole, *setup, "train.max_steps=8")["status"] == "completed"
    assert run_in_process(split, *setup, "train.max_steps=4")["status"] == "completed"
    resumed = run_in_process(split, *setup, "train.max_steps=8", "resume=auto")
    assert resumed["status"] == "completed" and resumed["resumed"]["from_steps"] == [4]
    assert_same(whole, split)


# Algorithms whose state is a subset of a tested family member's: covered by that member's SIGKILL
# case (and by their own stop-and-resume case above). Every other registered algorithm, a new one
# included, gets its own SIGKILL case under both launchers.
KILL_FAMILY = {
    "sgd": "ef_sgd",
    "amsgrad": "comp_ams",
    "gd": "aiade",
    "agd": "aiade",
    "qgd": "aiade",
    "iade": "aiade",
    "iade_sgd": "aiade",
    "wgc_sgd": "aiade",  # GD's state (none beyond x) on mini-batches
    "def_a": "def",
    "saef": "def",
    "ef21_sgdm": "ef21",
    "onebit_adam": "efficient_adam",
    "sketched_ams_ga": "sketched_ams_pa",
    "sketched_sgd": "sketched_ams_pa",
    "fetchsgd": "sketched_ams_pa",
}
TASK_CASES = ("language_model", "recommendation")  # tasks, not algorithm families: stop-and-resume only
KILL_CASES = sorted(n for n in CASES if n not in KILL_FAMILY and n not in TASK_CASES)


# Under torchrun, one case holding both kinds of state a rank checkpoints beyond its own worker's: a
# controller's broadcast decision (ACCORDION's, as in the accordion case) and a compressing server's own
# error, replicated on every rank (efficient_adam's). A rank's worker state is its worker's state in the
# simulator, so the other families' round trip (per-worker points, sketch tables, aiade's float64 codes) is
# the sim case's, tested there; test_elastic kills and restarts a torchrun group of comp_ams ranks, and
# test_dist runs every exchange under torchrun. One case, not one per kind: each costs ~20 s of CI.
TORCHRUN_KILL_CASES = {
    "efficient_adam+accordion": (
        "algo=efficient_adam",
        "compressor=topk",
        "compressor.scope=layer",
        "controller=accordion",
        "controller.interval=1",
        "train.batch_size=100",
    ),
}
KILL_PARAMS = [
    pytest.param(name, launcher, marks=[pytest.mark.dist] if launcher == "torchrun" else [], id=f"{name}-{launcher}")
    for name, launcher in [*((n, "sim") for n in KILL_CASES), *((n, "torchrun") for n in TORCHRUN_KILL_CASES)]
]


def test_the_sigkill_cases_cover_every_family():
    assert {"comp_ams", "qadam", "ef_sgd", "ef_sgd-adam", "accordion", "aiade"} <= set(KILL_CASES)
    assert set(KILL_FAMILY.values()) <= set(KILL_CASES)
    for setup in TORCHRUN_KILL_CASES.values():  # each torchrun case's algorithm and controller have sim cases
        assert {o.split("=")[1] for o in setup if o.startswith(("algo=", "controller="))} <= set(KILL_CASES)


def kill_setup(name, launcher, workers=None):
    case = CASES[name] if name in CASES else TORCHRUN_KILL_CASES[name]
    own_data = any(o.startswith(("problem=", "dataset=")) for o in case)
    workers = workers or (4 if launcher == "sim" else 2)
    return (
        *(STEPS if own_data else SMALL),
        *case,
        f"launcher={launcher}",
        f"workers={workers}",
        "train.max_steps=8",
        "train.epochs=null",
        "train.tol=null",
        "train.checkpoint_every=3",
    )


def run_killed_in_child(run_dir, *overrides) -> int:
    """The simulator's run in a forked child of this process whose worker 0 SIGKILLs itself after step 5
    (``COMPRESS_TRAIN_KILL_AT``): a real death of the run's one process, without a CLI start-up (torch is
    imported already). The child's exit code as ``subprocess`` reports one (-9 for SIGKILL)."""
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        code = 3
        try:
            os.environ.pop("TORCHELASTIC_RESTART_COUNT", None)
            os.environ["COMPRESS_TRAIN_KILL_AT"] = "0:5"
            run_in_process(run_dir, *overrides)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("name, launcher", KILL_PARAMS)
def test_sigkill_then_resume_equals_the_uninterrupted_run(tmp_path, name, launcher):
    """Worker 1's process (under sim: the one process) SIGKILLs itself right after step 5; the
    checkpoint of step 3 is the newest complete one (the row of step 4 is cut back); ``resume=auto``
    carries on to step 8 and the run equals the uninterrupted one: every metrics row, the totals, the
    final parameters. The uninterrupted run is the simulator's, in this process, for both launchers: a
    killed and resumed torchrun run must equal it (sim == torchrun, as test_dist asserts for each
    exchange; one CLI start-up less per case). The killed sim run is a forked child of this process
    (``run_killed_in_child``); the torchrun one goes through the CLI."""
    setup = kill_setup(name, launcher)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = kill_setup(name, "sim", workers=2 if launcher == "torchrun" else 4)
    assert run_in_process(whole, *reference)["status"] == "completed"
    if launcher == "sim":
        assert run_killed_in_child(killed, *setup) == -signal.SIGKILL
    else:  # through the CLI, which starts torchrun, whose worker 1 dies: the CLI reports it and exits 2
        env = {k: v for k, v in os.environ.items() if k != "TORCHELASTIC_RESTART_COUNT"}
        env["COMPRESS_TRAIN_KILL_AT"] = "1:5"
        proc = subprocess.run(
            [str(BIN / "compress-train"), *QUICK, f"hydra.run.dir={killed}", *setup],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
    assert summary(killed)["status"] == ("running" if launcher == "sim" else "failed")  # what the death leaves
    assert run_status(summary(killed)) == ("died" if launcher == "sim" else "failed")  # what every reader sees
    assert [json.loads((c / "manifest.json").read_text())["step"] for c in checkpoint.complete(killed)][-1] == 3
    if launcher == "sim":  # the resume in this process: one CLI start-up less (the CLI's resume: torchrun)
        run_in_process(killed, *setup, "resume=auto")
    else:
        proc = run_cli(f"hydra.run.dir={killed}", *setup, "resume=auto", cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    s = summary(killed)
    assert s["status"] == "completed" and s["resumed"]["count"] == 1 and s["resumed"]["from_steps"] == [3]
    assert_same(whole, killed)


def test_sigterm_preempts_with_a_checkpoint_and_exit_143(tmp_path):
    run = tmp_path / "run"
    setup = (*SMALL, "train.max_steps=400", "train.epochs=null", "train.checkpoint_every=null")
    proc = subprocess.Popen(
        [str(BIN / "compress-train"), *QUICK, f"hydra.run.dir={run}", *setup],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "metrics.jsonl").exists() and metrics(run)):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 143
    s = summary(run)
    assert s["status"] == "preempted" and 0 < s["steps"] < 400
    (done,) = checkpoint.complete(run)
    assert json.loads((done / "manifest.json").read_text())["step"] == s["steps"]


def test_a_run_directory_belongs_to_one_run(tmp_path):
    run = tmp_path / "run"
    assert run_cli(f"hydra.run.dir={run}", *SMALL, "train.max_steps=2", cwd=tmp_path).returncode == 0
    proc = run_cli(f"hydra.run.dir={run}", *SMALL, "train.max_steps=2", cwd=tmp_path)
    assert proc.returncode == 2 and "already holds a run" in proc.stderr and "resume=auto" in proc.stderr
    assert len(metrics(run)) == 1


def test_a_corrupt_checkpoint_stops_naming_the_file(tmp_path):
    run = tmp_path / "run"
    assert run_cli(f"hydra.run.dir={run}", *SMALL, "train.max_steps=2", cwd=tmp_path).returncode == 0
    (done,) = checkpoint.complete(run)
    (done / "rank_0.pt").write_bytes(b"not a checkpoint")
    proc = run_cli(f"hydra.run.dir={run}", *SMALL, "train.max_steps=4", "resume=auto", cwd=tmp_path)
    assert proc.returncode == 2 and f"cannot read checkpoint file {done / 'rank_0.pt'}" in proc.stderr


def test_a_loss_that_explodes_is_diverged_with_its_reason(tmp_path):
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}", "algo=sgd", "algo.lr=5", *SMALL, "train.max_steps=60", "train.log_every=1", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    s = summary(run)
    assert s["status"] == "diverged" and s["steps"] < 60, s
    assert "diverge_ratio" in s["reason"] or "not finite" in s["reason"] or "loss is" in s["reason"]
