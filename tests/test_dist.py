"""Same numbers everywhere: the simulator and torchrun with 2 gloo processes agree.

Losses to float tolerance (the error-norm reduction may use a different thread count), bit
and byte counts exactly, for a fixed-size payload (COMP-AMS + layer-wise Block-Sign), a
variable-size one (EF-SGD + hard threshold, allgather with padding), the dense allreduce, and
aiade's IADE (float64, variable-width codes, the server's re-encoding replicated per rank), the
allreduce of linear payloads (DEF over RBGS, SketchedAMSGrad-GA's count-sketch tables and its exact
second round; FetchSGD's server state in sketch space) and a compressing server with its own error
(1-bit Adam, its dense warm-up included). One case per exchange: PSync shares DEF's exchange
(``Algorithm.exchange``), SketchedAMSGrad-PA and Sketched-SGD GA's second round (``second_round``, GA's
h riding with the tables on top), Efficient-Adam 1-bit Adam's ``compress_and_exchange``
(Efficient-Adam and SketchedAMSGrad-PA also run under torchrun in test_resume's SIGKILL cases, equal
to the simulator there).
"""

from __future__ import annotations

import os
import subprocess

import pytest
from test_resume import run_in_process

from cli_helpers import BIN, QUICK, metrics, run_cli, summary

pytestmark = [pytest.mark.slow, pytest.mark.dist]
EXACT = (
    "numbers_sent",
    "step",
    "samples",
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
    "bits_lemma21",
    "bits_lemma21_step",
    "bits_lemma21_down",
    "bits_eval",
    "time_comm_model_s",
    "time_comm_model_s_step",
)
CLOSE = ("train_loss", "test_loss", "test_acc", "error_norm", "total_error", "dist_to_opt", "suboptimality")
# The same thread count in both modes: CPU kernels reduce in a thread-dependent order.
STEPS = ("train.max_steps=4", "train.log_every=2", "train.eval_every=4", "threads=1")
SMALL_CNN = (
    "model.hidden=16",
    "train.batch_size=20",
    "dataset.eval_samples=200",
)  # the MNIST CNN, narrow: the exchanges, not the compute


def assert_same_run(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) > 0
    for ra, rb in zip(a, b):
        for key in EXACT:
            assert ra.get(key) == rb.get(key), key
        for key in CLOSE:
            if ra.get(key) is not None:
                assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize(
    "setup",
    [
        ("algo=comp_ams", "compressor=blocksign"),
        ("algo=ef_sgd", "compressor=threshold", "compressor.lam=0.01", "algo.momentum=0.9"),
        ("algo=sgd",),
        ("algo=iade", "compressor=bounded", "problem=quadratic", "dataset.dim=10"),
        ("algo=def", "compressor=rbgs", "compressor.ratio=16", "network.bandwidth_gbps=10", "network.latency_us=5"),
        ("algo=onebit_adam", "compressor=onebit_rms", "algo.freeze_step=2", "algo.lr=0.0001"),
        ("algo=sketched_ams_ga", "compressor.columns=2000", "compressor.ratio=null", "compressor.k=500"),
        ("algo=fetchsgd", "compressor.columns=2000", "compressor.ratio=null", "compressor.k=500"),
        ("algo=ef_sgd", "compressor=bf16"),
    ],
    ids=[
        "comp_ams-blocksign",
        "ef_sgd-threshold",
        "sgd-allreduce",
        "iade-double-encoding",
        "def-rbgs-allreduce",
        "onebit_adam-server-compression",
        "sketched_ams_ga-two-rounds",
        "fetchsgd-sketch-space-server",
        "ef_sgd-bf16-allreduce",
    ],
)
def test_sim_equals_torchrun(tmp_path, setup):
    """Both launchers started from this process (``launch``, as the CLI calls it: torchrun's agent and
    workers are real processes; one CLI start-up less per case), with the ``train.epochs=null`` the CLI
    adds to a lone ``train.max_steps``. The CLI's own torchrun path: test_golden's torchrun_2p case, the
    hand-run test below, test_resume's torchrun SIGKILL case and test_elastic."""
    runs = {launcher: tmp_path / launcher for launcher in ("sim", "torchrun")}
    own_data = any(o.startswith(("problem=", "dataset=")) for o in setup)
    setup = (*setup, *STEPS, *(() if own_data else SMALL_CNN), "workers=2", "train.epochs=null")
    for launcher, run in runs.items():
        s = run_in_process(run, f"launcher={launcher}", *setup)
        assert s["status"] in ("completed", "converged") and s["launcher"] == launcher
    assert_same_run(metrics(runs["sim"]), metrics(runs["torchrun"]))
    assert summary(runs["sim"])["totals"]["bits_up"] == summary(runs["torchrun"])["totals"]["bits_up"]


def test_ef21_shared_estimate_stays_bit_identical_on_every_rank(tmp_path):
    """EF21's g is moved only by the averaged correction, never recomputed locally: after a torchrun
    run each rank's checkpointed g is the same tensor, bit for bit, and equals the mean of the g_i."""
    import torch

    from compress_train.runner import checkpoint

    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}",
        "launcher=torchrun",
        "workers=2",
        "algo=ef21",
        "compressor=topk",
        "compressor.ratio=0.05",
        *STEPS,
        "train.max_steps=6",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    newest = checkpoint.complete(run)[-1]
    ranks = [checkpoint.load(newest / f"rank_{r}.pt")["algo"] for r in (0, 1)]
    assert torch.equal(ranks[0]["g"], ranks[1]["g"])
    mean = (ranks[0]["g_local"][0] + ranks[1]["g_local"][1]) / 2
    torch.testing.assert_close(ranks[0]["g"], mean, rtol=1e-5, atol=1e-6)


def test_hand_run_torchrun_module_entry_equals_sim_honours_hydra_run_dir_and_never_reuses_one(tmp_path):
    """``torchrun --nproc-per-node 2 -m compress_train.runner overrides...`` as a user types it: it
    writes where ``hydra.run.dir`` says (no outputs/ beside it), equals the simulator, and a second
    start in the same directory is refused with the first run's rows untouched. (Where it writes
    without ``hydra.run.dir``: test_outputs_where_said.)"""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run, sim = tmp_path / "mine", tmp_path / "sim"
    setup = ("compressor=threshold", "compressor.lam=0.01", "algo=ef_sgd", *SMALL_CNN, *STEPS)
    cmd = [
        str(BIN / "torchrun"),
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "compress_train.runner",
        *QUICK,
        f"hydra.run.dir={run}",
        *setup,
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = summary(run)
    assert s["status"] == "completed" and s["workers"] == 2 and s["launcher"] == "torchrun"
    assert not (tmp_path / "outputs").exists()
    run_in_process(sim, "launcher=sim", "workers=2", *setup, "train.epochs=null")
    assert_same_run(metrics(sim), metrics(run))
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "already holds a run" in again.stderr
    assert len(metrics(run)) == 2  # the first run's rows, untouched
