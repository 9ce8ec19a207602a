"""runner.network_model: alpha-beta projections of a step's communication time."""

import dataclasses

import pytest
from omegaconf import OmegaConf

from compress_train.runner.network_model import KINDS, TOPOLOGIES, NetworkModel, check, from_config

# 1 Gbit/s -> beta = 8e-9 s/byte, so 1e6 bytes take m*beta = 8 ms; 10 us latency -> alpha = 1e-5 s.
M = 1_000_000
MB = 8e-3
A = 1e-5

# Hand-computed seconds: (topology, kind, n) -> value.
EXPECTED = {
    ("ring", "allreduce", 2): 2 * A + MB,  # 2(n-1)a + 2(n-1)/n m b
    ("ring", "allreduce", 4): 6 * A + 1.5 * MB,
    ("ring", "allgather", 2): A + MB,  # (n-1)a + (n-1) m b
    ("ring", "allgather", 4): 3 * A + 3 * MB,
    ("ring", "broadcast", 2): A + MB,  # (n-1)a + m b
    ("ring", "broadcast", 4): 3 * A + MB,
    ("allgather", "allreduce", 2): A + MB,  # (n-1)a + (n-1) m b for every kind
    ("allgather", "allreduce", 4): 3 * A + 3 * MB,
    ("allgather", "allgather", 2): A + MB,
    ("allgather", "allgather", 4): 3 * A + 3 * MB,
    ("allgather", "broadcast", 2): A + MB,
    ("allgather", "broadcast", 4): 3 * A + 3 * MB,
    ("parameter_server", "allreduce", 2): 2 * A + 4 * MB,  # 2a + 2 n m b
    ("parameter_server", "allreduce", 4): 2 * A + 8 * MB,
    ("parameter_server", "allgather", 2): 2 * A + 4 * MB,  # 2a + n^2 m b
    ("parameter_server", "allgather", 4): 2 * A + 16 * MB,
    ("parameter_server", "broadcast", 2): 2 * A + 2 * MB,  # 2a + n m b
    ("parameter_server", "broadcast", 4): 2 * A + 4 * MB,
}


def test_expected_covers_every_topology_and_kind():
    assert {(t, k) for t, k, _ in EXPECTED} == {(t, k) for t in TOPOLOGIES for k in KINDS}


@pytest.mark.parametrize("topology,kind,n", sorted(EXPECTED))
def test_hand_computed_values(topology, kind, n):
    model = NetworkModel(bandwidth_gbps=1.0, latency_us=10.0, topology=topology)
    assert model.seconds(kind, M, n) == pytest.approx(EXPECTED[topology, kind, n], rel=1e-12)


def test_literal_values():
    ring = NetworkModel(1.0, 10.0)
    assert ring.seconds("allreduce", M, 4) == pytest.approx(0.01206)
    assert NetworkModel(1.0, 10.0, "parameter_server").seconds("allgather", M, 4) == pytest.approx(0.12802)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("kind", KINDS)
def test_single_worker_costs_nothing(topology, kind):
    assert NetworkModel(1.0, 10.0, topology).seconds(kind, M, 1) == 0.0


def test_ring_allreduce_approaches_two_m_beta():
    model = NetworkModel(bandwidth_gbps=1.0)  # no latency
    values = [model.seconds("allreduce", M, n) for n in (2, 8, 64, 10_000)]
    assert values == sorted(values)
    assert values[-1] < 2 * MB
    assert values[-1] == pytest.approx(2 * MB, rel=1e-3)


def test_bandwidth_and_latency_scale():
    assert NetworkModel(10.0).seconds("allgather", M, 2) == pytest.approx(MB / 10)
    assert NetworkModel(1.0, 10.0).seconds("allreduce", 0, 3) == pytest.approx(4 * A)


def test_step_seconds_sums_records():
    model = NetworkModel(1.0, 10.0)
    records = [("allreduce", M), ("allgather", M), ("broadcast", M)]
    expected = sum(EXPECTED["ring", k, 4] for k, _ in records)
    assert model.step_seconds(records, 4) == pytest.approx(expected)
    assert model.step_seconds([], 4) == 0.0
    assert model.step_seconds(records, 1) == 0.0


def test_unknown_kind_and_bad_arguments():
    model = NetworkModel(1.0)
    with pytest.raises(ValueError, match="'reduce_scatter'"):
        model.seconds("reduce_scatter", M, 2)
    with pytest.raises(ValueError, match="'gather'"):
        model.step_seconds([("allreduce", M), ("gather", M)], 2)
    with pytest.raises(ValueError, match="world size"):
        model.seconds("allreduce", M, 0)
    with pytest.raises(ValueError, match="nbytes"):
        model.seconds("allreduce", -1, 2)


def test_model_is_frozen_and_validated():
    model = NetworkModel(1.0)
    assert (model.latency_us, model.topology) == (0.0, "ring")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.topology = "allgather"
    with pytest.raises(ValueError, match="`network.topology`"):
        NetworkModel(1.0, topology="tree")
    with pytest.raises(ValueError, match="`network.bandwidth_gbps`"):
        NetworkModel(0.0)


def test_check_accepts_valid_sections():
    assert check(None) == []
    assert check({}) == []
    assert check({"bandwidth_gbps": None, "latency_us": 0, "topology": "ring"}) == []
    assert check({"bandwidth_gbps": 25, "latency_us": 5.5, "topology": "parameter_server"}) == []
    assert check(OmegaConf.create({"network": {"bandwidth_gbps": 1.0, "topology": "allgather"}})) == []


def test_check_messages():
    assert check({"topology": "tree"}) == [
        "`network.topology` must be one of ['ring', 'allgather', 'parameter_server'], but is 'tree'."
    ]
    assert check({"bandwidth_gbps": 0}) == ["`network.bandwidth_gbps` must be null or a number > 0 (Gbit/s), but is 0."]
    assert check({"bandwidth_gbps": "fast"}) == [
        "`network.bandwidth_gbps` must be null or a number > 0 (Gbit/s), but is 'fast'."
    ]
    assert check({"latency_us": -1.0}) == ["`network.latency_us` must be a number >= 0 (microseconds), but is -1.0."]
    assert check({"bandwith_gbps": 1.0}) == [
        "`network.bandwith_gbps` is not a network key (allowed: ['bandwidth_gbps', 'latency_us', 'topology'])."
    ]
    assert check(5) == [
        "`network` must be null or a mapping with keys ['bandwidth_gbps', 'latency_us', 'topology'], but is 5."
    ]
    assert len(check({"bandwidth_gbps": True, "latency_us": float("nan"), "topology": "tree"})) == 3
    assert check({"network": {"topology": "tree"}}) == check({"topology": "tree"})


def test_from_config():
    assert from_config(None) is None
    assert from_config({}) is None
    assert from_config({"bandwidth_gbps": None, "topology": "allgather"}) is None
    assert from_config({"bandwidth_gbps": 10, "latency_us": 5}) == NetworkModel(10.0, 5.0, "ring")
    cfg = OmegaConf.create({"network": {"bandwidth_gbps": 1, "latency_us": None, "topology": "parameter_server"}})
    assert from_config(cfg) == NetworkModel(1.0, 0.0, "parameter_server")
    assert from_config(cfg.network) == NetworkModel(1.0, 0.0, "parameter_server")
    with pytest.raises(ValueError, match="but is 'tree'"):
        from_config({"bandwidth_gbps": 1.0, "topology": "tree"})
