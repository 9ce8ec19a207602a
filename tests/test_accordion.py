"""ACCORDION's switching rule on crafted gradient-norm histories, its effect on
what is sent, and the learning-rate schedule that triggers its "after a decay" rule."""

from __future__ import annotations

import pytest
import torch

from compress_train.algorithms.communicator import SimCommunicator
from compress_train.algorithms.controllers.accordion import Accordion
from compress_train.algorithms.ef_sgd import EFSGD
from compress_train.compressors.scope import ScopedCompressor
from compress_train.compressors.topk import TopK
from compress_train.runner.schedule import check_schedule, lr_at

SIZES = [1000, 5000]


def controller(interval=2, steps_per_epoch=3):
    scoped = ScopedCompressor(TopK(ratio=0.01), SIZES, "layer")
    return Accordion(SimCommunicator(2), scoped, steps_per_epoch, interval=interval), scoped


def grad_with_norms(a: float, b: float) -> torch.Tensor:
    g = torch.zeros(sum(SIZES))
    g[0], g[SIZES[0]] = a, b
    return g


def test_rule_on_a_crafted_norm_history():
    acc, scoped = controller()
    g = {0: grad_with_norms(1.0, 1.0), 1: grad_with_norms(7.0, 7.0)}  # worker 1's norms are never read
    acc.before_step(0, g, lr=0.1)  # first decision: every layer k_max
    assert acc.high.tolist() == [1.0, 1.0]
    acc.before_step(1, {0: grad_with_norms(0.1, 0.1)}, lr=0.1)  # not the first step of an epoch: no decision
    acc.before_step(3, {0: grad_with_norms(0.1, 0.1)}, lr=0.1)  # epoch 1: not a multiple of the interval
    assert acc.decisions == 1
    acc.before_step(6, {0: grad_with_norms(0.4, 0.8)}, lr=0.1)  # epoch 2: r = 0.6 (>= 0.5), 0.2
    assert acc.high.tolist() == [1.0, 0.0]
    assert [type(c).__name__ for c in scoped.overrides.values()] == ["TopK", "TopK"]
    assert [scoped.overrides[b].ratio for b in (0, 1)] == [0.01, 0.001]
    acc.before_step(12, {0: grad_with_norms(0.4, 0.8)}, lr=0.1)  # no change: r = 0, 0 -> both k_min
    assert acc.high.tolist() == [0.0, 0.0]
    acc.before_step(18, {0: grad_with_norms(0.4, 0.8)}, lr=0.01)  # the lr decayed: all k_max
    assert acc.high.tolist() == [1.0, 1.0]


def test_per_layer_k_reaches_the_payload_and_memory_is_kept():
    acc, scoped = controller(interval=1, steps_per_epoch=1)
    torch.manual_seed(0)
    params = torch.zeros(sum(SIZES))
    algo = EFSGD(params, SimCommunicator(2), scoped, lr=0.1, ef="powersgd")
    g = {w: torch.randn(sum(SIZES)) for w in range(2)}
    acc.before_step(0, g, 0.1)
    first = algo.step(g, 0)
    assert first.elements_up == 10 + 50  # 1% of each layer
    acc.high = torch.tensor([0.0, 1.0])
    acc.apply()
    memory = algo.memories[0].error.clone()
    second = algo.step(g, 1)
    assert second.elements_up == 1 + 50 and second.bits_up == 64 * 51
    assert memory.abs().sum() > 0  # EF memory is on and carried across the switch


def test_accordion_needs_layerwise_topk():
    with pytest.raises(ValueError, match="compressor.scope=layer"):
        Accordion(SimCommunicator(1), ScopedCompressor(TopK(ratio=0.01), SIZES, "model"), 1)


def test_lr_schedule_warmup_and_decay():
    s = {"warmup_epochs": 5, "warmup_factor": 16, "milestones": [150, 250], "gamma": 0.1}
    assert lr_at(0.1, 0, s) == pytest.approx(0.1)
    assert lr_at(0.1, 2.5, s) == pytest.approx(0.1 * 8.5)
    assert lr_at(0.1, 5, s) == pytest.approx(1.6)
    assert lr_at(0.1, 150, s) == pytest.approx(0.16) and lr_at(0.1, 260, s) == pytest.approx(0.016)
    assert check_schedule(s) == [] and check_schedule({"gamma": 2}) != []


def test_each_decision_is_counted_on_the_wire():
    """The broadcast of the per-layer decision and norms is protocol traffic, counted as such: two
    float64 vectors of one entry per layer, in every worker's ``wire_bytes``, once per decision."""
    acc, _ = controller(interval=1, steps_per_epoch=3)
    g = {0: grad_with_norms(1.0, 1.0), 1: grad_with_norms(1.0, 1.0)}
    acc.before_step(0, g, lr=0.1)
    assert acc.comm.wire_bytes == 2 * 8 * len(SIZES)
    acc.before_step(1, g, lr=0.1)  # no decision mid-epoch: nothing sent
    assert acc.comm.wire_bytes == 2 * 8 * len(SIZES)
    acc.before_step(3, g, lr=0.1)
    assert acc.comm.wire_bytes == 4 * 8 * len(SIZES)
    assert [kind for kind, _ in acc.comm.take_collectives()] == ["broadcast"] * 4
