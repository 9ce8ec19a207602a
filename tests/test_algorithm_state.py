"""Exact resume: every registered algorithm, in every EF mode it allows, with the no-op and the
ACCORDION controller, survives state_dict -> torch.save -> torch.load(weights_only=True) ->
load_state_dict into a fresh instance: every attribute equal, then the same next steps to the bit.
The negative tests show the comparison fails when state is lost or kept where state_dict cannot see it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml
from test_algorithms import CONF, companions
from torch import Tensor

from compress_train.algorithms import registry
from compress_train.algorithms.base import AlgorithmContext
from compress_train.algorithms.communicator import SimCommunicator
from compress_train.algorithms.comp_ams import CompAMS
from compress_train.algorithms.controllers.accordion import Accordion
from compress_train.algorithms.state import Stateful
from compress_train.compressors.scope import ScopedCompressor

LAYERS = [40, 60]
# Beside each YAML: settings whose state the YAML leaves unused (lazy momentum, Adam's moments and t).
VARIANTS = {
    "sgd": [{"momentum": 0.9, "nesterov": True}],
    "ef_sgd": [{"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, {"optimizer": "adam"}],
}


def yaml_cfg(name: str) -> dict:
    cfg = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    cfg.pop("defaults", None)
    cfg.pop("name")
    return cfg


def cases():
    out = []
    for name in registry.ALGORITHMS.names():
        cls = registry.get(name)
        modes = cls.allowed_ef if cls.needs.compressor else (None,)
        for extra in [{}] + VARIANTS.get(name, []):
            for ef in modes:
                label = "-".join([name, str(ef)] + [f"{k}={v}" for k, v in extra.items()])
                out.append(pytest.param(name, ef, extra, id=label))
    return out


def maker(name: str, ef, extra: dict, controller: str = "none", cls=None):
    """start -> (algorithm over a copy of start, its controller), built from the YAML like the runner does."""
    cls = cls or registry.get(name)
    cfg = {**yaml_cfg(name), **extra, **({} if ef is None else {"ef": ef})}

    def make(start: Tensor):
        dtype, problem, comp = companions(cls)
        theta = start.to(dtype, copy=True)
        layers = [theta.numel()] if cls.needs.compressor_name else LAYERS
        algo = cls.create(
            AlgorithmContext(theta, layers, problem=problem),
            SimCommunicator(3),
            lambda: ScopedCompressor(comp, layers, "layer"),
            seed=7,
            **cfg,
        )
        if controller == "accordion":
            ctrl = Accordion(SimCommunicator(3), algo.compressor, 1, interval=2, eta=0.5, k_max=0.5, k_min=0.1)
        else:
            ctrl = registry.CONTROLLERS.get(controller)(SimCommunicator(3), algo.compressor, 1)
        return algo, ctrl

    return make


def drive(algo, ctrl, steps) -> list[dict]:
    """Seeded gradients of 1/4 ||x||^2 + noise at the algorithm's gradient point; the reports' traffic."""
    reports = []
    for step in steps:
        point = algo.gradient_point()
        grads = {
            w: 0.5 * point
            + torch.randn(point.shape, dtype=point.dtype, generator=torch.Generator().manual_seed(100 * step + w))
            for w in algo.comm.local_workers
        }
        ctrl.before_step(step, grads, algo.lr)
        report = dataclasses.asdict(algo.step(grads, step))
        reports.append({k: v for k, v in report.items() if not k.startswith("time_")})
    return reports


def assert_same(a, b, where: str) -> None:
    """Equal to the bit, recursively; objects through their vars (the communicator's byte counter
    is the runner's to checkpoint, not the algorithm's)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), f"{where}: tensors differ"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {list(a)} vs {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif hasattr(a, "__dict__"):
        va, vb = ({k: v for k, v in vars(o).items() if k != "comm"} for o in (a, b))
        assert_same(va, vb, where)
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def resume(make, tmp_path, mutate=lambda state: None, strict: bool = True) -> None:
    """Run 3 steps, checkpoint, resume a fresh instance; assert it equals the original, then
    that 2 more steps give the same parameters and traffic."""
    a, ctrl_a = make(torch.randn(sum(LAYERS), generator=torch.Generator().manual_seed(0)))
    drive(a, ctrl_a, range(3))
    torch.save({"algo": a.state_dict(), "controller": ctrl_a.state_dict()}, tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    mutate(state)
    b, ctrl_b = make(a.params)
    theta, before = b.params, {w: m.error for w, m in b.memories.items()}
    b.load_state_dict(state["algo"], strict=strict)
    ctrl_b.load_state_dict(state["controller"], strict=strict)
    assert b.params is theta and all(b.memories[w].error is t for w, t in before.items())  # loaded in place
    assert_same(a, b, a.name)
    assert_same(ctrl_a, ctrl_b, "controller")
    assert drive(a, ctrl_a, range(3, 5)) == drive(b, ctrl_b, range(3, 5))
    assert torch.equal(a.params, b.params)


@pytest.mark.parametrize("name, ef, extra", cases())
def test_resume_is_exact(name, ef, extra, tmp_path):
    resume(maker(name, ef, extra), tmp_path)


ACCORDION_ALGOS = [
    n
    for n in registry.ALGORITHMS.names()
    if registry.get(n).needs.compressor and not registry.get(n).needs.compressor_name
]


@pytest.mark.parametrize("name", ACCORDION_ALGOS)
def test_resume_with_accordion_restores_the_compressor(name, tmp_path):
    """Decisions at steps 0, 2, 4: the resumed run's steps 3-4 use the restored per-layer k
    (re-applied to the compressor at load) and the restored norms."""
    make = maker(name, None, {}, controller="accordion")
    resume(make, tmp_path)
    a, ctrl = make(torch.zeros(sum(LAYERS)))
    drive(a, ctrl, range(3))
    assert ctrl.high.tolist() != [1.0, 1.0]  # the decision at step 2 is not the fresh one
    fresh_algo, fresh = make(torch.zeros(sum(LAYERS)))
    fresh.load_state_dict(ctrl.state_dict())
    assert {b: c.ratio for b, c in fresh_algo.compressor.overrides.items()} == {
        b: c.ratio for b, c in a.compressor.overrides.items()
    }


def test_lazy_moment_round_trips_both_ways():
    """A moment created at the first step (None before) is assigned on load, and None is loaded over one."""
    make = maker("ef_sgd", "scaled", {"momentum": 0.9})
    stepped, ctrl = make(torch.ones(sum(LAYERS)))
    fresh, _ = make(torch.ones(sum(LAYERS)))
    fresh_state = fresh.state_dict()
    drive(stepped, ctrl, range(2))
    assert fresh.m is None and isinstance(stepped.m, Tensor)
    fresh.load_state_dict(stepped.state_dict())
    assert torch.equal(fresh.m, stepped.m) and fresh.m is not stepped.m
    stepped.load_state_dict(fresh_state)
    assert stepped.m is None


# -- the comparison can fail ---------------------------------------------------------------


def test_a_lost_tensor_is_caught(tmp_path):
    def drop(state):
        del state["algo"]["memories"][0]["error"]

    with pytest.raises(KeyError, match="missing \\['error'\\]"):
        resume(maker("comp_ams", "classic", {}), tmp_path, mutate=drop)
    with pytest.raises(AssertionError, match=r"comp_ams\['memories'\]\[0\]\['error'\]"):
        resume(maker("comp_ams", "classic", {}), tmp_path, mutate=drop, strict=False)


class HiddenCounter(CompAMS):
    """A step counter declared as wiring: state_dict leaves it out, the attribute check sees it."""

    wiring = CompAMS.wiring | {"count"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.count = 0

    def step(self, grads, step):
        self.count += 1
        return super().step({w: g * self.count for w, g in grads.items()}, step)


OUTSIDE: dict[int, int] = {}


class OutsideCounter(CompAMS):
    """A step counter in a module-level dict: invisible to vars, caught by the continued steps."""

    def step(self, grads, step):
        OUTSIDE[id(self)] = OUTSIDE.get(id(self), 0) + 1
        return super().step({w: g * OUTSIDE[id(self)] for w, g in grads.items()}, step)


def test_state_outside_the_state_dict_is_caught(tmp_path):
    with pytest.raises(AssertionError, match=r"\['count'\]: 3 vs 0"):
        resume(maker("comp_ams", "classic", {}, cls=HiddenCounter), tmp_path)
    with pytest.raises(AssertionError, match="assert \\[\\{"):
        resume(maker("comp_ams", "classic", {}, cls=OutsideCounter), tmp_path)


def test_state_that_is_not_checkpointable_is_refused():
    class Holder(Stateful):
        def __init__(self):
            self.thing = object()

    with pytest.raises(TypeError, match="Holder.thing: a object is not checkpointable"):
        Holder().state_dict()


def test_a_generator_round_trips(tmp_path):
    class Sampler(Stateful):
        def __init__(self):
            self.gen = torch.Generator().manual_seed(3)

    a, b = Sampler(), Sampler()
    torch.rand(5, generator=a.gen)
    torch.save(a.state_dict(), tmp_path / "gen.pt")
    b.load_state_dict(torch.load(tmp_path / "gen.pt", weights_only=True))
    assert torch.equal(torch.rand(5, generator=a.gen), torch.rand(5, generator=b.gen))
