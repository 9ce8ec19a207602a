"""What an experiment preset's file says, read without composing it: ``conf/experiment/<preset>.yaml``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONF = Path(__file__).resolve().parents[2] / "conf"


def preset_scales(preset: str) -> dict:
    """A preset's ``scales:`` mapping as plain data, interpolations left unresolved; {} where it has none
    or the file cannot be read."""
    try:
        data = OmegaConf.load(CONF / "experiment" / f"{preset}.yaml")
    except (OSError, ValueError):
        return {}
    scales = data.get("scales") if isinstance(data, DictConfig) else None
    return OmegaConf.to_container(scales, resolve=False) if isinstance(scales, DictConfig) else {}  # type: ignore[return-value]
