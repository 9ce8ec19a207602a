"""Cluster sweeps through Hydra's submitit launcher: ``hydra/launcher=local`` (submitit's local
executor, a stand-in for ``hydra/launcher=slurm``) runs each sweep point as its own submitit job, in
which compress-train starts torchrun."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

from cli_helpers import metrics, run_cli, summary

STEPS = ("train.max_steps=4", "train.log_every=2", "train.eval_every=4", "threads=1")


@pytest.mark.slow
@pytest.mark.dist
def test_two_point_sweep_runs_as_two_submitit_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "hydra/launcher=local",
        f"hydra.sweep.dir={sweep}",
        "launcher=torchrun",
        "workers=1",
        "seed=0,1",
        *STEPS,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"sweep written to {sweep} (2 completed)" in proc.stdout
    jobs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    assert [summary(j)["seed"] for j in jobs] == [0, 1]
    for job in jobs:
        s = summary(job)
        assert (s["status"], s["launcher"], s["final"]["step"]) == ("completed", "torchrun", 4), job
        assert [row["step"] for row in metrics(job) if "train_loss" in row] == [2, 4], job
    # each point ran in a submitit job of its own, which logged it
    logs = sorted((sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2 and len({p.parent.name for p in logs}) == 2
    assert all("completed" in p.read_text() for p in logs)


def test_slurm_jobs_are_sized_from_workers():
    """One SLURM job per sweep point: one task (compress-train, which starts torchrun) with a GPU per worker."""
    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=["hydra/launcher=slurm", "launcher=torchrun", "workers=4"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (4, 1, 1)
