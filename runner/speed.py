"""Measured training speed per model family: the table behind the time ESTIMATES of
``compress-train list`` and ``--dry-run`` (runner/plan.py).

Measured by ``scripts/measure_speed.py`` on 2026-12-07 on a 2-core AMD EPYC virtual machine (torch on
the CPU, ``threads=1``, other work sharing the cores), 12 steps per family at its presets' ci shape,
without evaluation. A job's time is estimated as its steps times the measured seconds per step,
scaled by workers x batch against the measured shape (simulated workers run one after another),
plus ``OVERHEAD_S`` per run (start-up, data, evaluations). Real times differ with the machine, its
load, ``threads`` and the evaluation cadence: every number built on this table is an estimate.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

MACHINE = "2-core CPU, threads=1"

# model -> (workers, batch per worker, steps per second, the config values the speed depends on). A
# job whose values differ (a wider network, a larger problem) gets no estimate.
STEPS_PER_S: dict[str, tuple[int, int, float, dict[str, Any]]] = {
    "mnist_cnn": (4, 32, 4.918, {"model.hidden": 128}),
    "cifar_cnn": (2, 100, 4.247, {"model.hidden": 256}),
    "imdb_lstm": (2, 100, 39.32, {"model.num_words": 1000, "model.embed_dim": 32, "model.hidden": 64}),
    "lstm_lm": (2, 20, 5.547, {"model.hidden": 128, "model.layers": 1, "dataset.bptt": 30}),
    "ncf": (2, 1024, 19.798, {"model.factors": 64, "model.layers": [256, 256, 128, 64]}),
    "logreg": (20, 1, 142.174, {"dataset.name": "mnist"}),
    "quadratic": (4, 10, 718.583, {"dataset.dim": 50}),
    "least_squares": (4, 10, 375.869, {"dataset.dim": 20}),
    "resnet18_cifar": (1, 8, 0.823, {}),  # on the 32x32 SYNTHETIC CIFAR-10 stand-in
    "vgg16_bn_cifar": (1, 8, 1.622, {}),  # on the 32x32 SYNTHETIC CIFAR-10 stand-in
}
OVERHEAD_S = 5.0


def seconds_per_step(cfg: DictConfig) -> float | None:
    """The estimated seconds of one training step of the composed job ``cfg``: the measured rate of
    its model, scaled by workers x batch; None for a model not in the table or one whose size keys
    differ from the measured ones."""
    measured = STEPS_PER_S.get(str(cfg.model.name))
    if measured is None:
        return None
    w0, b0, rate, keys = measured
    for key, value in keys.items():
        current = OmegaConf.select(cfg, key, default=None)
        current = OmegaConf.to_container(current) if OmegaConf.is_config(current) else current
        if current != value:
            return None
    return (int(cfg.workers) * int(cfg.train.batch_size)) / (w0 * b0) / rate
