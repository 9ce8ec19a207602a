"""The sweep scripts behind the claims table name only jobs that validate: every piece of
``scripts/run_long.sh`` (its overrides on top of the preset's own axes at scale=long) and every preset of
``scripts/run_claims.sh``. A piece with a misspelt method or key would otherwise fail only when its turn
comes, hours into a queue of long sweeps."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from test_presets import preset_scales, sweep_params

from compress_train.runner.config.check import check_config
from compress_train.runner.preflight import group_errors

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def long_pieces() -> dict[str, list[str]]:
    """``[name]="overrides"`` entries of run_long.sh's ``pieces`` array."""
    text = (SCRIPTS / "run_long.sh").read_text()
    block = text[text.index("declare -A pieces=(") : text.index("\n)\n")]
    return {name: shlex.split(value) for name, value in re.findall(r'^\s*\[([\w/]+)\]="([^"]*)"', block, re.M)}


def claims_presets() -> list[str]:
    text = (SCRIPTS / "run_claims.sh").read_text()
    listed = text[text.index("presets=(") : text.index(")", text.index("presets=("))]
    return listed.removeprefix("presets=(").split()


def test_the_scripts_list_what_the_tests_read():
    pieces = long_pieces()
    assert len(pieces) >= 19 and "comp_ams/fig1_mvss" in pieces and "def/table4" in pieces
    assert all(p[0].startswith("experiment=") for p in pieces.values())
    presets = claims_presets()
    assert "aiade/rate" in presets and "comp_ams/fig3_cifar10" in presets
    assert len(presets) == len(set(presets))


@pytest.mark.parametrize("piece", sorted(long_pieces()))
def test_every_long_piece_validates_value_by_value(make_config, piece):
    """Each value of each of the piece's sweep axes, beside the first value of the others and the
    preset's single-valued axes (its scale's dataset and model), composes and validates at scale=long."""
    overrides = long_pieces()[piece]
    preset = overrides[0].removeprefix("experiment=")
    assert "long" in preset_scales(preset), f"{piece}: {preset} has no scale=long"
    axes = {k: v for k, v in sweep_params(make_config, preset, "long").items() if k != "seed"}
    axes.update({k: v.split(",") for k, v in (o.split("=", 1) for o in overrides[1:])})
    # compose alone would skip a misspelt method (an `optional` group): the CLI's own check
    assert not group_errors(OverridesParser.create().parse_overrides(overrides)), piece
    first = {k: v[0] for k, v in axes.items()}
    for key, values in axes.items():
        for value in values:
            job = {**first, key: value}
            cfg = make_config(overrides[0], "scale=long", "threads=1", "seed=0", *(f"{k}={v}" for k, v in job.items()))
            check_config(cfg)
            assert cfg.experiment_name == preset


def test_every_claims_preset_has_a_ci_scale():
    for preset in claims_presets():
        assert "ci" in preset_scales(preset), preset


def report_groups() -> dict[str, list[str]]:
    """``group OUT TITLE FLAGS SWEEP...`` lines of report_long.sh: each docs folder's sweep folders."""
    groups = {}
    for line in (SCRIPTS / "report_long.sh").read_text().splitlines():
        if line.startswith("group "):
            out, _title, _flags, *sweeps = shlex.split(line)[1:]
            groups[out] = sweeps
    return groups


def test_every_long_piece_is_recorded_by_one_report_group():
    """report_long.sh records each run_long.sh piece into exactly one docs folder (a renamed piece would
    otherwise be skipped, or counted twice by the claims)."""
    groups = report_groups()
    assert "def/long" in groups and "comp_ams/fig2_long" in groups
    for piece in long_pieces():
        owners = [out for out, sweeps in groups.items() if any(s in (piece, piece.split("/")[0]) for s in sweeps)]
        assert len(owners) == 1, (piece, owners)
    named = {s for sweeps in groups.values() for s in sweeps}
    assert named <= set(long_pieces()) | {"def"}, named - set(long_pieces())
