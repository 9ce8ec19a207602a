"""runner/tasks/batched_workers.py: the workers' forward/backward in one vmapped call gives the
sequential loop's gradients, losses, dropout draws and BatchNorm statistics (float rounding apart),
and a run with ``train.batched_workers`` stays within the golden tests' rule of the sequential run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import compose_config
from omegaconf import OmegaConf
from test_golden import comparable, mismatches

from compress_train.algorithms.communicator import SimCommunicator
from compress_train.runner.launch import launch
from compress_train.runner.tasks.batched_workers import BatchedWorkers, dropout_masks
from compress_train.runner.tasks.network import dropout_seed
from compress_train.runner.trainer import Trainer

QUICK = ("dataset.download=false", "logger.progress=false", "threads=1")
GRAD_RTOL = 1e-5  # measured: about 1e-7 without BatchNorm, 1e-6 with it


def trainer(tmp_path: Path, *overrides: str, device: str = "cpu") -> Trainer:
    cfg = compose_config(*QUICK, f"device={device}", *overrides)
    return Trainer(cfg, SimCommunicator(cfg.workers), [], {}, lambda m: None, torch.device(device), tmp_path)


def forward_calls(model: torch.nn.Module) -> list[int]:
    calls = [0]
    model.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def assert_same_steps(seq: Trainer, bat: Trainer, steps: int) -> None:
    bat.task.batched = BatchedWorkers(bat.task, dropout_seed)
    calls = forward_calls(bat.task.model)
    for step in range(steps):
        before = calls[0]
        ga, la = seq.task.local_gradients(step, seq.algo.gradient_point())
        gb, lb = bat.task.local_gradients(step, bat.algo.gradient_point())
        assert calls[0] - before == (2 if step == 0 else 1)  # one batched pass (and the first step's shape probe)
        assert sorted(ga) == sorted(gb)
        for w in ga:
            assert float((ga[w] - gb[w]).norm()) <= GRAD_RTOL * float(ga[w].norm()), (step, w)
        assert lb == pytest.approx(la, rel=GRAD_RTOL)
        for a, b in zip(seq.task.model.buffers(), bat.task.model.buffers()):
            assert torch.equal(a, b) if not a.is_floating_point() else torch.allclose(a, b, rtol=1e-5, atol=1e-6)
        assert len(seq.task.worker_buffers) == len(bat.task.worker_buffers)
        for a, b in zip(seq.task.worker_buffers, bat.task.worker_buffers):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
        for t in (seq, bat):  # the model itself stays put: each step compares one pass, not a drift
            t.task.after_step()


@pytest.mark.parametrize(
    "overrides",
    [
        ("workers=4", "train.batch_size=8"),  # dropout, no BatchNorm
        ("workers=3", "train.batch_size=8", "model.batch_norm=true", "train.bn_stats=average"),
        ("workers=3", "train.batch_size=8", "model.batch_norm=true", "algo=ef_sgd", "compressor=threshold"),
    ],
    ids=["dropout", "bn_average", "bn_broadcast"],
)
def test_batched_equals_sequential(tmp_path, one_thread, overrides):
    assert_same_steps(trainer(tmp_path / "a", *overrides), trainer(tmp_path / "b", *overrides), steps=3)


@pytest.mark.slow
def test_batched_equals_sequential_on_vgg16_bn(tmp_path, one_thread):
    """``def``'s network: BatchNorm and two dropout layers, 3 x 32 x 32 inputs."""
    setup = ("dataset=cifar10", "dataset.synthetic=true", "model=vgg16_bn_cifar", "workers=2", "train.batch_size=2")
    assert_same_steps(trainer(tmp_path / "a", *setup), trainer(tmp_path / "b", *setup), steps=2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batched_equals_sequential_on_cuda(tmp_path, monkeypatch):
    """On a card: the fused dropout kernel's draws, cuDNN's BatchNorm under vmap (TF32 off: both
    paths' convolutions then round alike up to the summation order)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    setup = ("workers=3", "train.batch_size=8", "model.batch_norm=true", "train.bn_stats=average")
    seq, bat = trainer(tmp_path / "a", *setup, device="cuda"), trainer(tmp_path / "b", *setup, device="cuda")
    assert_same_steps(seq, bat, steps=3)


def test_gradients_at_worker_points(tmp_path, one_thread):
    """``def``'s detached points: each worker's gradient at its own point, the model left as it was."""
    setup = ("workers=3", "train.batch_size=4", "model.batch_norm=true")
    seq, bat = trainer(tmp_path / "a", *setup), trainer(tmp_path / "b", *setup)
    bat.task.batched = BatchedWorkers(bat.task, dropout_seed)
    calls = forward_calls(bat.task.model)
    before = bat.task.params.clone()
    for step in range(2):
        points = {w: seq.task.params + 0.01 * (w + 1) * torch.randn_like(seq.task.params) for w in (0, 1, 2)}
        ga, la = seq.task.local_gradients(step, seq.task.params, points=points)
        gb, lb = bat.task.local_gradients(step, bat.task.params, points=points)
        for w in ga:
            assert float((ga[w] - gb[w]).norm()) <= GRAD_RTOL * float(ga[w].norm()), (step, w)
        assert lb == pytest.approx(la, rel=GRAD_RTOL)
        assert float((ga[0] - ga[1]).norm()) > 1e-3 * float(ga[0].norm())  # the points did move the gradients
    assert calls[0] == 3 and torch.equal(bat.task.params, before)  # one probe, one batched pass per step


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_masks_are_the_dropout_kernels_draws(p):
    x = torch.randn(4, 7, 3)
    torch.manual_seed(11)
    want = F.dropout(x, p, training=True)
    torch.manual_seed(11)
    (mask,) = dropout_masks([tuple(x.shape)], [p], torch.device("cpu"))
    assert torch.equal(x * mask, want)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("p", [0.3, 0.5])
def test_masks_are_the_fused_dropout_kernels_draws_on_cuda(p):
    x = torch.randn(8, 64, 5, 5, device="cuda")
    torch.manual_seed(11)
    want = F.dropout(x, p, training=True)
    torch.manual_seed(11)
    (mask,) = dropout_masks([tuple(x.shape)], [p], x.device)
    assert torch.equal(x * mask, want)


def run_rows(run_dir: Path, batched: bool, *overrides: str) -> list[dict]:
    composed = compose_config(
        *QUICK, "device=cpu", "workers=4", "train.batch_size=16", "train.max_steps=6", "train.log_every=2", *overrides
    )
    cfg = OmegaConf.create(OmegaConf.to_container(composed, resolve=True))  # untyped: the key is not in the schema
    cfg.train.batched_workers = batched
    threads = torch.get_num_threads()
    try:
        launch(cfg, run_dir)
    finally:
        torch.set_num_threads(threads)
    return comparable([json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()])


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [(), ("algo=def", "compressor=rbgs", "model.batch_norm=true", "train.bn_stats=average")],
    ids=["default", "def_detached_points_bn"],
)
def test_a_batched_run_is_the_sequential_run_within_the_golden_rule(tmp_path, monkeypatch, overrides):
    seq = run_rows(tmp_path / "seq", False, *overrides)
    batched_steps = []
    original = BatchedWorkers.local_gradients
    monkeypatch.setattr(
        BatchedWorkers,
        "local_gradients",
        lambda self, step, points=None: batched_steps.append(step) or original(self, step, points),
    )
    bat = run_rows(tmp_path / "bat", True, *overrides)
    assert batched_steps == list(range(6))  # train.batched_workers took every step
    assert len(seq) == len(bat) == 3
    for a, b in zip(bat, seq):
        assert not mismatches(a, b), mismatches(a, b)
