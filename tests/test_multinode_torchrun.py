"""Multi-node torchrun: ``launcher.nnodes=2`` agents meeting in a c10d rendezvous on 127.0.0.1
(2 nodes x 1 process) train the same run as the simulator, bits included; bad node settings are
rejected naming the key."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_dist import STEPS, assert_same_run

from cli_helpers import metrics, run_cli, summary
from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.launchers.torchrun import rendezvous_args

SETUP = ("algo=ef_sgd", "compressor=threshold", "compressor.lam=0.01", "algo.momentum=0.9")  # variable-size payloads


def counts(totals: dict) -> dict:
    """A summary's totals without the wall times (bits, bytes, elements)."""
    return {k: v for k, v in totals.items() if not k.startswith("time_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.dist
def test_two_nodes_on_localhost_equal_the_simulator(tmp_path):
    """Both nodes share one run directory, as on a cluster's shared filesystem: global rank 0 (on
    whichever node c10d ranks first) writes the metrics once, every rank its checkpoint."""
    run, sim = tmp_path / "run", tmp_path / "sim"
    endpoint = f"127.0.0.1:{free_port()}"
    node = (
        "launcher=torchrun",
        "workers=2",
        "launcher.nnodes=2",
        f"launcher.rdzv_endpoint={endpoint}",
        "launcher.backend=gloo",
        "device=cpu",
        f"hydra.run.dir={run}",
        *SETUP,
        *STEPS,
    )
    with ThreadPoolExecutor(2) as pool:
        nodes = [
            pool.submit(run_cli, *node, f"launcher.node_rank={rank}", cwd=tmp_path, timeout=240) for rank in (0, 1)
        ]
        procs = [n.result() for n in nodes]
    for rank, proc in enumerate(procs):
        assert proc.returncode == 0, f"node {rank}:\n{proc.stdout}\n{proc.stderr}"
        assert "--nnodes 2 --rdzv-backend c10d" in proc.stdout + proc.stderr  # the parent's "launching:" line
    s = summary(run)
    assert (s["status"], s["workers"], s["launcher"]) == ("completed", 2, "torchrun")
    proc = run_cli(f"hydra.run.dir={sim}", "launcher=sim", "workers=2", "device=cpu", *SETUP, *STEPS, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_same_run(metrics(sim), metrics(run))  # also fails if both nodes had written rows
    assert counts(summary(sim)["totals"]) == counts(s["totals"])
    (newest,) = sorted((run / "checkpoints").iterdir())[-1:]
    assert sorted(p.name for p in newest.glob("rank_*.pt")) == ["rank_0.pt", "rank_1.pt"]


@pytest.mark.slow
def test_several_nodes_need_one_named_run_dir(tmp_path):
    """The default run directory is named by each node's clock: the nodes' checkpoints would split."""
    proc = run_cli(
        "launcher=torchrun",
        "workers=2",
        "launcher.nnodes=2",
        f"launcher.rdzv_endpoint=127.0.0.1:{free_port()}",
        *STEPS,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and "`hydra.run.dir` must be given when `launcher.nnodes` > 1" in proc.stderr, (
        proc.stderr
    )
    assert not list(tmp_path.rglob("metrics.jsonl"))


def test_one_node_stays_standalone(make_config):
    assert rendezvous_args(make_config("launcher=torchrun").launcher) == ["--standalone"]


def test_several_nodes_meet_at_node_zeros_store(make_config):
    cfg = make_config(
        "launcher=torchrun",
        "workers=4",
        "launcher.nnodes=2",
        "launcher.node_rank=1",
        "launcher.rdzv_endpoint=node0:29400",
    )
    check_config(cfg)
    args = rendezvous_args(cfg.launcher)
    assert args[args.index("--rdzv-endpoint") + 1] == "node0:29400"
    assert args[args.index("--rdzv-conf") + 1] == "is_host=false"  # node 1 joins node 0's store


@pytest.mark.parametrize(
    "overrides, message",
    [
        (("launcher.nnodes=0",), "`launcher.nnodes` must be an integer >= 1, but is 0."),
        (("launcher.node_rank=-1",), "`launcher.node_rank` must be an integer >= 0, but is -1."),
        (
            ("launcher.nnodes=2", "launcher.node_rank=2", "launcher.rdzv_endpoint=h:1"),
            "`launcher.node_rank` must be below `launcher.nnodes` (2), but is 2.",
        ),
        (
            ("launcher.nnodes=2",),
            (
                "`launcher.rdzv_endpoint` must be HOST:PORT (node 0's address, port 1-65535) when "
                "`launcher.nnodes` > 1, but is None."
            ),
        ),
        (("launcher.nnodes=2", "launcher.rdzv_endpoint=node0"), "`launcher.rdzv_endpoint` must be HOST:PORT"),
        (("launcher.nnodes=2", "launcher.rdzv_endpoint=node0:70000"), "`launcher.rdzv_endpoint` must be HOST:PORT"),
        (
            ("launcher.nnodes=2", "workers=3", "launcher.rdzv_endpoint=node0:29400"),
            "`workers` must be a multiple of `launcher.nnodes` (2)",
        ),
    ],
)
def test_bad_node_settings_name_the_key(make_config, overrides, message):
    with pytest.raises(ConfigError) as info:
        check_config(make_config("launcher=torchrun", "workers=2", *overrides))
    assert any(e.startswith(message) for e in info.value.errors), info.value.errors
