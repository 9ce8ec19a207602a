"""What a resume may change: a resumed run must be the run it continues, only longer.

A checkpoint records the resolved config it was written under (``manifest.json``'s ``config``;
older checkpoints: the ``config.yaml`` of their run directory). A resume compares the new config
with it key by key. Allowed: ``train.max_steps`` / ``train.epochs`` upward (null = no limit),
logging (``train.log_every``, ``train.eval_every``, ``train.eval_batch_size``, ``logger.*``),
checkpoint cadence (``train.checkpoint_every``, ``train.keep_checkpoints``) and where and how the
run executes (``threads``, ``dataset.root``, ``dataset.download``, ``launcher.timeout_s``,
``launcher.max_restarts``). Any other difference changes the trajectory and is refused, naming
every key with its old and new value. A key the config gained after the run was written
(``ADDED_LATER``) is no difference at the value that keeps the run's behaviour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from compress_train.runner import checkpoint
from compress_train.runner.metrics import flatten

LENGTH = ("train.max_steps", "train.epochs")  # may only grow; null is no limit
FREE = (
    "threads",
    "dataset.root",
    "dataset.download",
    "train.log_every",
    "train.eval_every",
    "train.eval_batch_size",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "launcher.timeout_s",
    "launcher.max_restarts",
)
FREE_PREFIXES = ("logger.",)
IGNORED = ("resume", "launcher.node_rank")  # not part of a run's identity (run.run_identity)
# Keys the config gained after runs were written, each with the value that keeps those runs' behaviour:
# a run whose checkpoint lacks the key ran as if it had that value, so it is no change.
ADDED_LATER: dict[str, Any] = {
    "train.batched_workers": False,  # workers one after another, as every run before the option
    "train.lr_schedule": None,  # a constant lr
    "dataset.eval_samples": None,  # the whole test set
}


class ResumeRefused(checkpoint.CheckpointError):
    """A resume whose config would change the run's trajectory (the message names every key)."""


def plain_config(cfg: Any) -> dict[str, Any]:
    """A config as nested plain values, resolved, without the keys that are not the run's identity."""
    if isinstance(cfg, dict):
        data = {k: v for k, v in cfg.items() if k != "hydra"}
    else:  # each section on its own: a composed config's hydra node may not resolve outside a Hydra job
        data = {
            str(k): OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
            for k in cfg
            if k != "hydra"
        }
    flat = flatten(data)
    return {k: v for k, v in flat.items() if k not in IGNORED}


def stored_config(folder: Path) -> dict[str, Any] | None:
    """The config a checkpoint was written under, flat; None when neither record exists."""
    manifest = checkpoint.read_manifest(folder)
    if isinstance(manifest.get("config"), dict):
        return plain_config(manifest["config"])
    frozen = folder.parent.parent / "config.yaml"
    return plain_config(OmegaConf.load(frozen)) if frozen.is_file() else None


def changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """``{key: [old, new]}`` for every flat key whose value differs (a missing key reads as absent, or
    as its ``ADDED_LATER`` value when the old config predates it)."""
    absent = "<absent>"
    old = {**{k: v for k, v in ADDED_LATER.items() if k in new and k not in old}, **old}
    return {
        k: [old.get(k, absent), new.get(k, absent)]
        for k in sorted(set(old) | set(new))
        if old.get(k, absent) != new.get(k, absent)
    }


def _longer_or_equal(old: Any, new: Any) -> bool:
    if new is None:
        return True
    return old is not None and isinstance(new, int) and isinstance(old, int) and new >= old


def refusals(diff: dict[str, list[Any]]) -> list[str]:
    """The changes a resume may not make, one ``key: old -> new`` each."""
    bad = []
    for key, (old, new) in diff.items():
        if key in LENGTH and _longer_or_equal(old, new):
            continue
        if key in FREE or key.startswith(FREE_PREFIXES):
            continue
        bad.append(f"`{key}`: {old!r} -> {new!r}" + (" (it may only grow)" if key in LENGTH else ""))
    return bad


def extends(diff: dict[str, list[Any]]) -> bool:
    """Whether the changes make the run longer."""
    return any(key in LENGTH for key in diff)


def check(old: dict[str, Any] | None, new: dict[str, Any], where: Path) -> dict[str, list[Any]]:
    """The allowed changes from ``old`` to ``new``; ResumeRefused when any other key differs."""
    if old is None:
        return {}
    diff = changes(old, new)
    bad = refusals(diff)
    if bad:
        raise ResumeRefused(
            f"resume refused: the run in {where} was started with another config, and these changes would alter "
            f"its trajectory: {'; '.join(bad)}. A resume may only raise train.max_steps/train.epochs and change "
            "logging, checkpoint cadence, threads or the data location; start a new run (another hydra.run.dir) "
            "for a different config"
        )
    return diff
