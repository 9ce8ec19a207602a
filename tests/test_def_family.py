"""def (seed paper "Detached error feedback") and its baselines: RBGS, the allreduce of linear
payloads, and two steps of each method against a hand computation (d = 6 in two tensors, n = 2).

Worker i's loss is f_i(x) = ||x - c_i||^2 / 2, so its gradient at a point z is z - c_i: the
gradient at the detached point x - lambda e_i is written out by hand. RBGS's block of each tensor
is read off ``RBGS.start`` (the shared generator); P_B below is the 0/1 mask of those blocks.
"""

from __future__ import annotations

import pytest
import torch

from compress_train.algorithms import registry
from compress_train.algorithms.communicator import SimCommunicator
from compress_train.compressors.base import CompressContext
from compress_train.compressors.rbgs import RBGS, block_size
from compress_train.compressors.scope import ScopedCompressor
from compress_train.compressors.topk import TopK

T = torch.tensor
LAYERS = [4, 2]
C = {0: T([1.0, -2.0, 0.5, 3.0, -1.0, 2.0]), 1: T([-1.0, 0.0, 2.5, -1.0, 3.0, 0.5])}


def rbgs(ratio=2):
    return ScopedCompressor(RBGS(ratio), LAYERS, "layer")


def mask(step, ratio=2, seed=0):
    """P_B: 1 on the block RBGS keeps in each tensor at ``step`` (worker-independent)."""
    parts = []
    for bucket, n in enumerate(LAYERS):
        k, s = block_size(n, ratio), RBGS(ratio).start(n, (seed, step, bucket))
        m = torch.zeros(n)
        m[[(s + j) % n for j in range(k)]] = 1.0
        parts.append(m)
    return torch.cat(parts)


def make(name, compressor=None, n=2, **hyper):
    x = torch.zeros(6)
    cls = registry.get(name)
    comp = compressor or rbgs()
    algo = cls(x, SimCommunicator(n), comp if cls.needs.compressor else None, **hyper)
    return algo, x


def grads_at(points, x):
    return {w: (points[w] if points is not None else x) - C[w] for w in C}


# -- RBGS ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [16, 64, 256, 1024])
def test_rbgs_bits_are_32_per_kept_entry_and_the_allreduce_moves_them(ratio):
    layers = [7, 300, 64, 1, 1000, 4096, 25]
    sc = ScopedCompressor(RBGS(ratio), layers, "layer")
    kept = sum(max(1, n // ratio) for n in layers)
    comm = SimCommunicator(4)
    xs = [torch.randn(sum(layers)) for _ in range(4)]
    messages = [sc.compress(x, 0, 3, w) for w, x in enumerate(xs)]
    assert all(m.bits == 32 * kept and m.elements == kept for m in messages)
    summed = comm.allreduce_sum(messages)
    assert comm.wire_bytes == 4 * kept and comm.take_collectives() == [("allreduce", 4 * kept)]
    # linear with a shared support: decode(sum of payloads) == sum of decodes
    torch.testing.assert_close(sc.decompress(summed), sum(sc.decompress(m) for m in messages))


def test_rbgs_block_is_contiguous_from_a_shared_start_and_wraps():
    comp, n = RBGS(4), 10  # k = 2
    x = torch.arange(n, dtype=torch.float32)
    seen_wrap = False
    for step in range(200):
        p = comp.compress(x, CompressContext(seed=1, step=step, bucket=0, worker=0))
        q = comp.compress(x, CompressContext(seed=1, step=step, bucket=0, worker=3))
        s = p.meta["start"]
        assert q.meta["start"] == s and p.tensors.keys() == {"values"}  # the same block on every worker
        assert p.tensors["values"].tolist() == [float((s + j) % n) for j in range(2)]
        dec = comp.decompress(p)
        assert dec.tolist() == [float(i) if (i - s) % n < 2 else 0.0 for i in range(n)]
        seen_wrap |= s == n - 1
    assert seen_wrap  # the last offset occurs and wraps to index 0


def test_rbgs_rejects_a_bad_ratio():
    assert "`ratio` must be an integer >= 1" in RBGS(0).check()[0]
    assert RBGS(64).check() == []


# -- EF with local momentum (def's EF baseline) ----------------------------------------------------


def test_ef_sgd_local_momentum_two_steps_by_hand():
    lr, mu, wd = 0.1, 0.9, 0.01
    algo, x = make("ef_sgd", lr=lr, ef="local_momentum", momentum=mu, weight_decay=wd)
    x0 = x.clone()
    report = algo.step(grads_at(None, x), 0)
    P0 = mask(0)
    d = {w: x0 - C[w] + wd * x0 for w in C}
    m = {w: d[w].clone() for w in C}
    p = {w: lr * m[w] for w in C}
    x1 = x0 - P0 * (p[0] + p[1]) / 2
    torch.testing.assert_close(x, x1)
    e = {w: p[w] - P0 * p[w] for w in C}
    for w in C:
        torch.testing.assert_close(algo.memories[w].error, e[w])
    kept = block_size(4, 2) + block_size(2, 2)
    assert report.bits_up == report.bits_down == 32 * kept
    algo.step(grads_at(None, x), 1)
    P1 = mask(1)
    d = {w: x1 - C[w] + wd * x1 for w in C}
    m = {w: mu * m[w] + d[w] for w in C}
    p = {w: lr * m[w] + e[w] for w in C}
    torch.testing.assert_close(x, x1 - P1 * (p[0] + p[1]) / 2)


# -- DEF, DEF-A, SAEF ------------------------------------------------------------------------------


def test_def_two_steps_by_hand_and_its_output_point():
    lr, mu, wd, lam = 0.1, 0.9, 0.01, 0.5
    algo, x = make("def", lr=lr, momentum=mu, weight_decay=wd, lam=lam)
    x0 = x.clone()
    pts = algo.gradient_points()
    assert all(torch.equal(pts[w], x0) for w in C)  # e = 0: the detached point is x
    algo.step(grads_at(pts, x), 0)
    P0 = mask(0)
    m = {w: (x0 - C[w]) + wd * x0 for w in C}
    p = {w: lr * m[w] for w in C}
    e = {w: (1 - P0) * p[w] for w in C}
    x1 = x0 - P0 * (p[0] + p[1]) / 2
    torch.testing.assert_close(x, x1)
    # step 2: gradient and weight decay at the detached point z_i = x1 - lam e_i
    pts = algo.gradient_points()
    z = {w: x1 - lam * e[w] for w in C}
    for w in C:
        torch.testing.assert_close(pts[w], z[w])
    algo.step(grads_at(pts, x), 1)
    P1 = mask(1)
    m = {w: mu * m[w] + (z[w] - C[w]) + wd * z[w] for w in C}
    p = {w: lr * m[w] + e[w] for w in C}
    e = {w: (1 - P1) * p[w] for w in C}
    x2 = x1 - P1 * (p[0] + p[1]) / 2
    torch.testing.assert_close(x, x2)
    for w in C:
        torch.testing.assert_close(algo.memories[w].error, e[w])
        torch.testing.assert_close(algo.memories[w].m, m[w])
    y, bits = algo.evaluation_point()
    torch.testing.assert_close(y, x2 - (e[0] + e[1]) / 2)  # Alg. 1's output y_T
    assert bits == 32 * 6


def test_def_a_and_saef_train_as_def_and_evaluate_the_iterate():
    runs = {}
    for name, extra in (("def", {"lam": 1.0}), ("def_a", {"lam": 1.0}), ("saef", {})):
        algo, x = make(name, lr=0.1, **extra)
        for step in range(3):
            algo.step(grads_at(algo.gradient_points(), x), step)
        runs[name] = (algo, x)
    assert torch.equal(runs["def"][1], runs["def_a"][1]) and torch.equal(runs["def"][1], runs["saef"][1])
    assert runs["def_a"][0].evaluation_point() is None and runs["saef"][0].evaluation_point() is None
    assert runs["saef"][0].lam == 1.0


def test_def_at_lambda_zero_is_the_local_momentum_ef_baseline():
    a, xa = make("def", lr=0.1, lam=0.0)
    b, xb = make("ef_sgd", lr=0.1, ef="local_momentum", momentum=0.9, weight_decay=5e-4)
    for step in range(3):
        a.step(grads_at(a.gradient_points(), xa), step)
        b.step(grads_at(None, xb), step)
    assert a.gradient_points() is None
    assert torch.equal(xa, xb)


def test_saef_error_averaging_when_asked():
    algo, x = make("saef", lr=0.1, average_every=1)
    report = algo.step(grads_at(algo.gradient_points(), x), 0)
    assert torch.equal(algo.memories[0].error, algo.memories[1].error)
    kept = block_size(4, 2) + block_size(2, 2)
    assert report.bits_up == 32 * kept + 32 * 6


# -- PSync -----------------------------------------------------------------------------------------


def test_psync_two_steps_by_hand():
    lr, mu, wd = 0.1, 0.9, 0.01
    algo, x = make("psync", lr=lr, momentum=mu, weight_decay=wd)
    xs = {w: torch.zeros(6) for w in C}
    ms = {w: torch.zeros(6) for w in C}
    for step in range(2):
        pts = algo.gradient_points()
        for w in C:
            torch.testing.assert_close(pts[w], xs[w])
        algo.step(grads_at(pts, x), step)
        P = mask(step)
        for w in C:
            ms[w] = mu * ms[w] + (xs[w] - C[w]) + wd * xs[w]
            xs[w] = xs[w] - lr * ms[w]
        avg = (xs[0] + xs[1]) / 2
        xs = {w: (1 - P) * xs[w] + P * avg for w in C}
        for w in C:
            torch.testing.assert_close(algo.models[w], xs[w])
    torch.testing.assert_close(x, xs[0])  # the evaluated model: worker 0's own


# -- EF21, EF21-SGDM -------------------------------------------------------------------------------


@pytest.mark.parametrize("compressor", ["rbgs", "topk"])
def test_ef21_two_steps_by_hand(compressor):
    lr = 0.1
    comp = rbgs() if compressor == "rbgs" else ScopedCompressor(TopK(ratio=0.5), LAYERS, "layer")
    algo, x = make("ef21", compressor=comp, lr=lr)
    r0 = algo.step(grads_at(None, x), 0)  # init: dense gradients
    g_i = {w: -C[w] for w in C}
    g = (g_i[0] + g_i[1]) / 2
    assert r0.bits_up == 32 * 6
    x1 = -lr * g
    torch.testing.assert_close(x, x1)
    r1 = algo.step(grads_at(None, x), 1)
    c = {w: comp.decompress(comp.compress(x1 - C[w] - g_i[w], 0, 1, w)) for w in C}
    if compressor == "rbgs":
        for w in C:
            torch.testing.assert_close(c[w], mask(1) * (x1 - C[w] - g_i[w]))
        assert r1.bits_up == r1.bits_down == 32 * 3
    else:
        assert r1.bits_up == 64 * 3 and r1.bits_down == 64 * 3  # 2 + 1 kept per worker; one other worker
    g_i = {w: g_i[w] + c[w] for w in C}
    g = g + (c[0] + c[1]) / 2
    torch.testing.assert_close(algo.g, g)
    torch.testing.assert_close(algo.g, (g_i[0] + g_i[1]) / 2)
    torch.testing.assert_close(x, x1 - lr * g)


def test_ef21_sgdm_two_steps_by_hand():
    lr, eta = 0.1, 0.25
    comp = ScopedCompressor(TopK(ratio=0.5), LAYERS, "layer")
    algo, x = make("ef21_sgdm", compressor=comp, lr=lr, eta=eta)
    algo.step(grads_at(None, x), 0)
    v = {w: -C[w] for w in C}
    g_i = {w: -C[w] for w in C}
    g = (g_i[0] + g_i[1]) / 2
    x1 = -lr * g
    algo.step(grads_at(None, x), 1)
    v = {w: (1 - eta) * v[w] + eta * (x1 - C[w]) for w in C}
    c = {w: comp.decompress(comp.compress(v[w] - g_i[w], 0, 1, w)) for w in C}
    g = g + (c[0] + c[1]) / 2
    torch.testing.assert_close(algo.g, g)
    torch.testing.assert_close(x, x1 - lr * g)


def test_family_rejects_bad_values_naming_the_key():
    assert any(
        "`lam` must be a number in [0, 1]" in e
        for e in registry.get("def").check({"lr": 0.1, "lam": 2, "momentum": 0.9, "weight_decay": 0})
    )
    assert any("`eta` must be in (0, 1]" in e for e in registry.get("ef21_sgdm").check({"lr": 0.1, "eta": 0}))
    assert any(
        "local_momentum" in e
        for e in registry.get("ef_sgd").check(
            {"lr": 0.1, "ef": "local_momentum", "optimizer": "adam", "momentum": 0, "weight_decay": 0}
        )
    )


# -- the runner's side: BatchNorm statistics, per-worker points, the network model ----------------


def network_task(*overrides):
    from conftest import compose_config

    from compress_train.runner.tasks.network import NetworkTask

    cfg = compose_config(
        "dataset=cifar10",
        "dataset.synthetic=true",
        "dataset.download=false",
        "model=resnet18_cifar",
        "workers=2",
        "train.batch_size=4",
        *overrides,
    )
    return NetworkTask(cfg, SimCommunicator(2), lambda s: None, torch.device("cpu"))


def test_batchnorm_statistics_averaged_over_workers_when_asked():
    broadcast, average = network_task(), network_task("train.bn_stats=average")
    for task in (broadcast, average):
        task.local_gradients(0, task.params)
    worker1 = [b.clone() for b in average.worker_buffers][1]
    average.after_step()
    broadcast.after_step()
    flat = lambda task: torch.cat([b.reshape(-1) for b in task.buffers])  # noqa: E731
    worker0 = flat(broadcast)  # broadcast keeps worker 0's statistics
    assert not torch.equal(worker0, worker1)
    torch.testing.assert_close(flat(average), (worker0 + worker1) / 2)
    assert average.comm.take_collectives()[-1][0] == "allreduce"


def test_gradients_at_each_workers_point_and_the_iterate_put_back():
    task = network_task()
    x = task.params.clone()
    points = {0: x + 0.01, 1: x - 0.02}
    grads, _ = task.local_gradients(0, task.params, points=points)
    assert torch.equal(task.params, x)
    again = network_task()
    again.params.copy_(points[1])
    g1, _ = again.local_gradients(0, again.params)
    torch.testing.assert_close(grads[1], g1[1])


def test_a_task_without_worker_points_refuses_def_naming_it(tmp_path):
    from cli_helpers import run_cli

    proc = run_cli(
        f"hydra.run.dir={tmp_path / 'run'}",
        "algo=def",
        "compressor=rbgs",
        "dataset=ptb",
        "train.max_steps=1",
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "algo=def takes each worker's gradient at its own point" in proc.stderr


def test_projected_communication_time_follows_the_bytes_each_collective_moved(tmp_path):
    from conftest import compose_config

    from cli_helpers import metrics
    from compress_train.runner.launch import launch
    from compress_train.runner.network_model import NetworkModel

    cfg = compose_config(
        "dataset.download=false",
        "logger.progress=false",
        "algo=def",
        "compressor=rbgs",
        "compressor.ratio=16",
        "workers=4",
        "model.hidden=16",
        "train.batch_size=20",
        "train.max_steps=4",
        "train.epochs=null",
        "train.log_every=1",
        "threads=1",
        "network.bandwidth_gbps=1",
        "network.latency_us=10",
    )
    threads = torch.get_num_threads()
    try:
        assert launch(cfg, tmp_path / "run")["status"] == "completed"
    finally:
        torch.set_num_threads(threads)
    rows = metrics(tmp_path / "run")
    model = NetworkModel(1.0, 10.0, "ring")
    for r in rows:  # one allreduce of the RBGS blocks per step (the MNIST CNN has no BatchNorm)
        assert r["time_comm_model_s_step"] == pytest.approx(model.seconds("allreduce", r["wire_bytes_step"], 4))
    assert rows[-1]["time_comm_model_s"] == pytest.approx(sum(r["time_comm_model_s_step"] for r in rows))
    from cli_helpers import summary

    d = summary(tmp_path / "run")["num_params"]
    assert rows[-1]["bits_eval"] == 32 * d  # one evaluation (the last step): the allreduce of the errors
    assert "bits_eval" not in rows[0] and rows[-1]["bits_up"] == sum(r["bits_up_step"] for r in rows)


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "network.topology=tree",
            "`network.topology` must be one of ['ring', 'allgather', 'parameter_server'], but is 'tree'.",
        ),
        ("train.bn_stats=mean", "`train.bn_stats` must be one of ['broadcast', 'average'], but is 'mean'."),
    ],
)
def test_network_and_bn_keys_reject_bad_values_naming_the_key(override, message):
    from conftest import compose_config

    from compress_train.runner.config.check import ConfigError, check_config

    with pytest.raises(ConfigError) as err:
        check_config(compose_config("network.bandwidth_gbps=10", override))
    assert message in str(err.value)
