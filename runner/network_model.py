"""Projected communication time of a training step under a chosen network model.

DEF's Figures 1-2 plot accuracy against wall-clock time. Instead of timing a real cluster, the
runner records every collective a step performs as ``(kind, nbytes)`` and this module projects the
seconds that communication would take on a network of the user's choosing. The module is pure: no
torch, no I/O, no clock.

Record kinds (``nbytes`` is always the size of what ONE worker contributes, in bytes):

* ``"allreduce"`` -- a dense/linear buffer of ``nbytes`` summed over the n workers;
* ``"allgather"`` -- each worker contributes a message padded to the largest, ``nbytes`` per worker;
* ``"broadcast"`` -- ``nbytes`` sent from one root worker to all others.

Config keys (the ``network`` section; every key optional)::

    network:
      bandwidth_gbps: null   # float > 0: link bandwidth per worker in Gbit/s; null = feature off
      latency_us: 0.0        # float >= 0: latency alpha per message / hop, in microseconds
      topology: ring         # one of ring, allgather, parameter_server

Cost model: the standard alpha-beta (Hockney) model as used by Thakur, Rabenseifner & Gropp (2005),
"Optimization of Collective Communication Operations in MPICH", IJHPCA 19(1); the ring allreduce
is the bandwidth-optimal one of Patarasuk & Yuan (2009), "Bandwidth optimal all-reduce algorithms
for clusters of workstations", JPDC 69(2). With

    beta  = 8 / (bandwidth_gbps * 1e9)   seconds per byte,
    alpha = latency_us * 1e-6            seconds per message,
    n     = number of workers,  m = nbytes,

the formulas implemented are exactly (n = 1 costs 0 for every kind and topology):

``topology: ring`` (what NCCL / gloo rings do; the default). Links are full duplex, every worker
sends and receives one chunk per step.

* allreduce = 2 (n-1) alpha + 2 (n-1)/n m beta   (reduce-scatter + allgather, Patarasuk & Yuan)
* allgather =   (n-1) alpha +   (n-1)   m beta   (n-1 steps, each forwarding one m-byte block)
* broadcast =   (n-1) alpha +           m beta   (pipelined ring broadcast in the large-message
  limit: the message is cut into many chunks, the pipeline fills in n-1 latencies and then every
  link carries the m bytes once; the chunk-count term of the exact formula is dropped)

``topology: allgather`` (no reduction support: every collective is done as a ring allgather of
m-byte messages and each worker reduces locally).

* allreduce = (n-1) alpha + (n-1) m beta   (each worker receives the n-1 other buffers and sums)
* allgather = (n-1) alpha + (n-1) m beta
* broadcast = (n-1) alpha + (n-1) m beta   (an allgather in which only the root's padded message
  carries data -- consistent with "everything is an allgather", so no cheaper broadcast)

``topology: parameter_server`` (one server with ONE link of the same bandwidth; workers push to it,
then pull from it; every byte in or out of the server crosses that link, so in + out are summed).

* allreduce = 2 alpha + (n m + n m) beta           = 2 alpha + 2 n m beta
  (the server receives n buffers, sends the reduced buffer to each of the n workers)
* allgather = 2 alpha + (n m + n (n-1) m) beta     = 2 alpha + n^2 m beta
  (the server receives n messages, sends each worker the n-1 others)
* broadcast = 2 alpha + (m + (n-1) m) beta         = 2 alpha + n m beta
  (the root worker pushes m bytes, the server sends them to the n-1 other workers)

API: :class:`NetworkModel` (``seconds``, ``step_seconds``), :func:`from_config` and :func:`check`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TOPOLOGIES = ("ring", "allgather", "parameter_server")
KINDS = ("allreduce", "allgather", "broadcast")
KEYS = ("bandwidth_gbps", "latency_us", "topology")


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _section(cfg: Any) -> Any:
    """The ``network`` section: ``cfg`` itself, or ``cfg["network"]`` when given a whole config."""
    if isinstance(cfg, Mapping) and "network" in cfg and not any(k in cfg for k in KEYS):
        return cfg["network"]
    return cfg


def check(cfg: Mapping | None) -> list[str]:
    """Messages for every invalid value in the ``network`` section ([] when it is valid).

    ``cfg`` is the ``network`` mapping (or a whole config holding one under ``network``); None or
    an empty mapping is valid (the feature is off).
    """
    cfg = _section(cfg)
    if cfg is None:
        return []
    if not isinstance(cfg, Mapping):
        return [f"`network` must be null or a mapping with keys {list(KEYS)}, but is {cfg!r}."]
    errors = [f"`network.{k}` is not a network key (allowed: {list(KEYS)})." for k in cfg if k not in KEYS]
    bandwidth = cfg.get("bandwidth_gbps")
    if bandwidth is not None and not (_is_number(bandwidth) and bandwidth > 0):
        errors.append(f"`network.bandwidth_gbps` must be null or a number > 0 (Gbit/s), but is {bandwidth!r}.")
    latency = cfg.get("latency_us", 0.0)
    if latency is None:
        latency = 0.0
    if not (_is_number(latency) and latency >= 0):
        errors.append(f"`network.latency_us` must be a number >= 0 (microseconds), but is {latency!r}.")
    topology = cfg.get("topology", "ring")
    if topology is None:
        topology = "ring"
    if topology not in TOPOLOGIES:
        errors.append(f"`network.topology` must be one of {list(TOPOLOGIES)}, but is {topology!r}.")
    return errors


@dataclass(frozen=True)
class NetworkModel:
    """An alpha-beta network: ``bandwidth_gbps`` per link, ``latency_us`` per message, a topology."""

    bandwidth_gbps: float
    latency_us: float = 0.0
    topology: str = "ring"

    def __post_init__(self) -> None:
        errors = check(
            {"bandwidth_gbps": self.bandwidth_gbps, "latency_us": self.latency_us, "topology": self.topology}
        )
        if self.bandwidth_gbps is None:
            errors.insert(0, "`network.bandwidth_gbps` must be a number > 0 (Gbit/s), but is None.")
        if errors:
            raise ValueError(" ".join(errors))

    @property
    def alpha(self) -> float:
        """Seconds per message (latency)."""
        return self.latency_us * 1e-6

    @property
    def beta(self) -> float:
        """Seconds per byte."""
        return 8.0 / (self.bandwidth_gbps * 1e9)

    def seconds(self, kind: str, nbytes: int, n: int) -> float:
        """Projected seconds of one collective ``kind`` of ``nbytes`` per worker among ``n`` workers."""
        if kind not in KINDS:
            raise ValueError(f"Unknown collective kind {kind!r}; expected one of {list(KINDS)}.")
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
            raise ValueError(f"The world size n must be an integer >= 1, but is {n!r}.")
        if not isinstance(nbytes, numbers.Integral) or isinstance(nbytes, bool) or nbytes < 0:
            raise ValueError(f"nbytes must be an integer >= 0, but is {nbytes!r} (kind {kind!r}).")
        if n == 1:
            return 0.0
        a, b, m = self.alpha, self.beta, int(nbytes)
        if self.topology == "ring":
            if kind == "allreduce":
                return 2 * (n - 1) * a + 2 * (n - 1) / n * m * b
            if kind == "allgather":
                return (n - 1) * a + (n - 1) * m * b
            return (n - 1) * a + m * b  # broadcast: pipelined ring, large-message limit
        if self.topology == "allgather":
            return (n - 1) * a + (n - 1) * m * b  # every kind is an allgather of m-byte messages
        # parameter_server: one server link carries everything in and out.
        if kind == "allreduce":
            return 2 * a + (n * m + n * m) * b
        if kind == "allgather":
            return 2 * a + (n * m + n * (n - 1) * m) * b
        return 2 * a + (m + (n - 1) * m) * b  # broadcast: root pushes, server sends to n-1 others

    def step_seconds(self, records: Iterable[tuple[str, int]], n: int) -> float:
        """Sum of :meth:`seconds` over a step's ``(kind, nbytes)`` records."""
        return sum((self.seconds(kind, nbytes, n) for kind, nbytes in records), 0.0)


def from_config(cfg: Mapping | None) -> NetworkModel | None:
    """The model the ``network`` section asks for, or None when ``bandwidth_gbps`` is null/absent.

    ``cfg`` is the ``network`` mapping (or a whole config holding one under ``network``).
    Raises ValueError with :func:`check`'s messages when a value is invalid.
    """
    errors = check(cfg)
    if errors:
        raise ValueError(" ".join(errors))
    cfg = _section(cfg)
    if cfg is None or cfg.get("bandwidth_gbps") is None:
        return None
    latency = cfg.get("latency_us")
    topology = cfg.get("topology")
    return NetworkModel(
        bandwidth_gbps=float(cfg["bandwidth_gbps"]),
        latency_us=0.0 if latency is None else float(latency),
        topology="ring" if topology is None else str(topology),
    )
