"""What a user can type: ``compress-train list``, the opening of ``--help``, and the check of the
command line's keys before Hydra composes (a typo gets the nearest key, a wrong type our template).
"""

from __future__ import annotations

import difflib
import re
import textwrap
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from compress_train.runner.config.presets import CONF

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


# Words that end with a full stop without ending the sentence ("def Alg. 1", "Tang et al. 2021").
ABBREVIATIONS = frozenset(
    "al alg algs app approx cf ch cor def defs e.g eq eqs etc fig figs i.e lem no nos prop ref resp sec secs "
    "tab thm thms vs".split()
)


def first_sentence(text: str) -> str:
    """``text`` up to its first full stop (or ``!``/``?``) that ends a sentence: one followed by a space or
    the end, outside parentheses and brackets, and not after an abbreviation such as "Alg.", "et al.",
    "e.g." or "Fig."; the whole text when no stop ends it."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch in ".!?" and depth == 0 and (i + 1 == len(text) or text[i + 1].isspace()) and text[i - 1 : i] != ".":
            word = re.split(r"[\s(`'\"]", text[:i])[-1].lower()
            if ch != "." or word not in ABBREVIATIONS:
                return text[: i + 1]
    return text


def describe(path: Path) -> str:
    """The first sentence of a YAML file's header comment (``# @package`` lines skipped): see
    ``first_sentence``."""
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
    return first_sentence(" ".join(lines))


def presets() -> list[str]:
    """Experiment presets as they are typed: ``experiment=aiade/rate``."""
    root = CONF / "experiment"
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def _entry(name: str, text: str, width: int = 110) -> list[str]:
    """``  name  text`` wrapped under the text's column."""
    lines = textwrap.wrap(text, width=width - 37) or [""]
    first = f"  {name:<34} {lines[0]}" if len(name) <= 34 else f"  {name}\n{'':37}{lines[0]}"
    return [first, *(f"{'':37}{line}" for line in lines[1:])]


def preset_lines(name: str, sizes: dict, claims: list[dict]) -> list[str]:
    """Per scale: runs, steps, the time estimate and the verdicts of the claims naming the preset."""
    from compress_train.runner import plan, verdicts

    out = []
    for scale, size in sizes.items():
        said = verdicts.phrase(verdicts.counts(claims, name, scale))
        out.append(f"scale={scale}: {plan.size_line(size)}" + (f"; {said}" if said else ""))
    return out


def listing() -> str:
    """Every option of every group and every preset, each with the first sentence of its description;
    a preset also with its runs, steps and estimated time per scale (``runner/plan.py``) and the
    verdicts of the paper claims naming it (``docs/results/claims.json``, when it exists)."""
    from compress_train.runner import plan, verdicts

    out = []
    for group in GROUPS:
        out.append(f"{group}=")
        for path in sorted((CONF / group).rglob("*.yaml")):
            name = str(path.relative_to(CONF / group).with_suffix(""))
            out += _entry(name, describe(path))
    out.append("experiment=   (a paper's figure or table; add scale=paper for the paper's own settings;")
    out.append(f"              times are ESTIMATES from steps/s measured on a {plan.speed.MACHINE}, runner/speed.py)")
    sizes = plan.preset_sizes(presets())
    claims = verdicts.load()
    for name in presets():
        out += _entry(name, describe(CONF / "experiment" / f"{name}.yaml"))
        out += [f"{'':37}{line}" for line in preset_lines(name, sizes[name], claims)]
    return "\n".join(out)


def preset_help(name: str) -> str:
    """``compress-train experiment=NAME --help``: the preset's whole header comment, then its runs,
    steps and estimated time per scale, and the verdicts of the claims naming it."""
    from compress_train.runner import plan, verdicts

    path = CONF / "experiment" / f"{name}.yaml"
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not line.lstrip("#").strip().startswith("@package"):
            header.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    claims = verdicts.load()
    sizes = plan.preset_sizes([name])[name]
    out = [f"experiment={name}", *header, ""]
    out += preset_lines(name, sizes, claims)
    out.append(f"(times are ESTIMATES from steps/s measured on a {plan.speed.MACHINE}; runner/speed.py)")
    items = verdicts.items(claims, name)
    if items:
        out.append("paper items: " + "; ".join(items))
    out.append(f"compress-train -m experiment={name} --dry-run   # every job and its directory, none started")
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
    value = re.search(r"Value '([^']*)' is not a valid bool", text)
    if value is not None:
        return f"`{full_key}` must be true or false, but is {value.group(1)!r}."
    return None
