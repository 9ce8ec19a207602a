"""``compress_train.run``: one ``compress-train`` run from Python, composed with Hydra's compose API.

The same config as the command line (``pkg://compress_train.conf``), the same checks (an unknown
key, option or bad value raises ``ConfigError`` naming the key, before anything is written), the
same launchers (``launcher=sim`` in this process, ``launcher=torchrun`` as worker processes) and
the same run directory (``outputs/runs/<date>/<time>`` under the working directory, unless
``run_dir`` or ``hydra.run.dir=...`` says otherwise). The overrides are stored in
``RUN_DIR/.hydra/overrides.yaml`` as Hydra does for the CLI (``logger=wandb`` reads them from
there). Log lines go to the ``compress_train`` logger: ``logging.basicConfig(level="INFO")`` shows them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from compress_train.runner import preflight
from compress_train.runner.cli import length_overrides, schedule_overrides
from compress_train.runner.config.check import ConfigError, check_config
from compress_train.runner.launch import launch
from compress_train.runner.loggers.wandb import OVERRIDES_FILE

SUMMARY = "summary.json"


def _plain(overrides: Sequence[str]) -> list[str]:
    """The overrides as a list of strings; a sweep (``a,b``) is refused: ``run`` runs one config."""
    if isinstance(overrides, str):
        raise TypeError("`overrides` is a list of 'key=value' strings, e.g. ['seed=1'], not one string")
    overrides = [str(o) for o in overrides]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as err:  # noqa: BLE001 - Hydra's parser says what is malformed
        raise ConfigError([f"malformed override: {err}"]) from None
    sweeps = [o.key_or_group for o in parsed if o.is_sweep_override()]
    if sweeps:
        raise ConfigError(
            [
                f"`{k}` is given several values; run() runs one config (sweep with "
                "`compress-train -m ...`, or call run() once per value)"
                for k in sweeps
            ]
        )
    return overrides


def run(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the config ``compress-train OVERRIDES...`` would run, in this process, and return its
    summary (``summary.json``'s content) plus ``run_dir`` (its absolute path). A run that diverges returns status
    ``diverged``; Ctrl-C returns ``interrupted`` (with a checkpoint to continue from with
    ``resume=auto``); a bad config raises ``ConfigError``, bad data ``DataFileError``."""
    overrides = length_overrides(schedule_overrides(_plain(overrides)))
    if run_dir is not None:
        overrides = [o for o in overrides if not o.startswith("hydra.run.dir=")]
        overrides.append(f"hydra.run.dir={Path(run_dir)}")
    try:
        preflight.check(overrides, multirun=False)
    except preflight.PreflightError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() != "invalid configuration:"]
        raise ConfigError(lines) from None
    with initialize_config_module(config_module="compress_train.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    where = Path(cfg.hydra.run.dir)
    with open_dict(cfg):
        del cfg["hydra"]
    check_config(cfg)
    where.mkdir(parents=True, exist_ok=True)
    (where / OVERRIDES_FILE).parent.mkdir(exist_ok=True)
    task_overrides = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    (where / OVERRIDES_FILE).write_text(OmegaConf.to_yaml(OmegaConf.create(task_overrides)))
    summary = launch(cfg, where)
    if summary is None:
        summary = json.loads((where / SUMMARY).read_text())
    return {**summary, "run_dir": str(where.absolute())}
