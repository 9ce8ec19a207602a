"""What a user can type: ``compress-train list``, the opening of ``--help``, and the check of the
command line's keys before Hydra composes (a typo gets the nearest key, a wrong type our template).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("algo", "compressor", "dataset", "model", "controller", "launcher", "logger", "problem", "method")
HIDDEN = ("model_defaults", "schema")  # internal groups, never typed by a user

HELP = """compress-train: communication-efficient distributed training, exact to the papers and honest
about bits. One command composes a run from configs (dataset, model, algorithm, compressor,
launcher, logger), trains with real or simulated workers, and logs loss and accuracy against
the bits each worker really sent (metrics.jsonl, summary.json; W&B with logger=wandb).

The five most useful commands:
  compress-train                                        # COMP-AMS + Top-k 1% + EF on MNIST
  compress-train algo=ef_sgd compressor=threshold compressor.lam=0.01 workers=4
  compress-train launcher=torchrun workers=2            # real processes, the same numbers
  compress-train -m experiment=comp_ams/fig1            # a paper's figure as a sweep
  compress-report outputs/multirun/<date>/<time> --out report/

  compress-train list                                   # every option and preset, described
"""


def describe(path: Path) -> str:
    """The first sentence of a YAML file's header comment (``# @package`` lines skipped)."""
    lines: list[str] = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("@package") or not text:
            if lines:
                break
            continue
        lines.append(text)
    text = " ".join(lines)
    first = re.split(r"(?<=[.:])\s", text, maxsplit=1)[0]
    return first.rstrip(":")


def presets() -> list[str]:
    """Experiment presets as they are typed: ``experiment=aiade/rate``."""
    root = CONF / "experiment"
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def listing() -> str:
    out = []
    for group in GROUPS:
        out.append(f"{group}=")
        for path in sorted((CONF / group).rglob("*.yaml")):
            name = str(path.relative_to(CONF / group).with_suffix(""))
            out.append(f"  {name:<34} {describe(path)}")
    out.append("experiment=   (a paper's figure or table; add scale=paper for the paper's own settings)")
    for name in presets():
        out.append(f"  {name:<34} {describe(CONF / 'experiment' / f'{name}.yaml')}")
    return "\n".join(out)


def groups_help() -> str:
    """Each group's options on one line, and the presets as they are typed."""
    out = ["Config groups (group=option; `compress-train list` describes each):"]
    for group in GROUPS:
        names = sorted(str(p.relative_to(CONF / group).with_suffix("")) for p in (CONF / group).rglob("*.yaml"))
        out.append(f"  {group}: {', '.join(names)}")
    out.append("Presets (add scale=paper for the paper's settings; -m runs the sweep):")
    out += [f"  experiment={name}" for name in presets()]
    out.append('Tab completion: eval "$(compress-train -sc install=bash)"; Hydra\'s own flags: --hydra-help')
    return "\n".join(out)


def nearest_key(cfg: DictConfig, full_key: str) -> str | None:
    """The existing key closest to a mistyped ``full_key`` (same parent), or None."""
    parent, _, leaf = full_key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig):
        return None
    match = difflib.get_close_matches(leaf, [str(k) for k in node.keys()], n=1, cutoff=0.6)
    return f"{parent}.{match[0]}" if match and parent else (match[0] if match else None)


def explain_composition_error(text: str, base: DictConfig | None) -> str | None:
    """Our template for Hydra's unknown-key and wrong-type errors; None for anything else."""
    key = re.search(r"full_key: (\S+)", text)
    if key is None:
        return None
    full_key = key.group(1)
    if "not in struct" in text or re.search(r"Key '[^']+' not in", text):
        near = nearest_key(base, full_key) if base is not None else None
        hint = f" Did you mean `{near}`?" if near else ""
        return f"`{full_key}` is not a config key.{hint}"
    value = re.search(r"Value '([^']*)' of type '[^']+' could not be converted to (\w+)", text)
    if value is not None:
        kind = {"Float": "a number", "Integer": "an integer", "Boolean": "true or false"}.get(
            value.group(2), value.group(2)
        )
        return f"`{full_key}` must be {kind}, but is {value.group(1)!r}."
    return None
