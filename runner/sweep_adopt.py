"""A sweep extended with new values keeps its finished runs under ``resume=auto``.

Hydra names a job's directory ``<num>_<overrides>`` (``hydra.sweep.subdir``), and ``num`` is the job's
place in the sweep's cartesian product: add a seed or a learning rate and most jobs move to another
number, so ``resume=auto`` would find none of their directories and train them all again. Before the
sweep starts, each job whose directory does not exist takes over the one directory of the same sweep
whose name differs from it only in the number (the same overrides: the same run); resume then checks
its config key by key as for any run (``resume_rules``) and carries on or has nothing to do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path


def _parts(name: str) -> tuple[int, str] | None:
    """``"12_seed=0,workers=2"`` -> (12, "seed=0,workers=2"); None for a name Hydra did not number."""
    num, sep, rest = name.partition("_")
    return (int(num), rest) if sep and num.isdigit() and rest else None


def renumbered(directories: list[str]) -> list[tuple[Path, Path]]:
    """(existing, planned) moves for a sweep whose planned job ``directories`` (one per job, in a
    common sweep folder) would leave finished runs under other numbers. A job takes a directory over
    only where exactly one existing directory has its overrides and no planned job already owns that
    directory; jobs whose overrides repeat within the sweep are left alone (ambiguous)."""
    planned = [Path(d) for d in directories]
    if not planned:
        return []
    sweep = planned[0].parent
    if not sweep.is_dir() or any(p.parent != sweep for p in planned):
        return []
    slugs = Counter(parts[1] for p in planned if (parts := _parts(p.name)))
    names = {p.name for p in planned}
    existing: dict[str, list[Path]] = {}
    for d in sweep.iterdir():
        parts = _parts(d.name)
        if d.is_dir() and parts and d.name not in names:
            existing.setdefault(parts[1], []).append(d)
    moves = []
    for target in planned:
        parts = _parts(target.name)
        if parts is None or target.exists() or slugs[parts[1]] != 1:
            continue
        candidates = existing.get(parts[1], [])
        if len(candidates) == 1:
            moves.append((candidates[0], target))
    return moves


def adopt(directories: list[str], log: Callable[[str], None] = print) -> int:
    """Rename each directory ``renumbered`` finds to its job's new name; returns how many moved."""
    moves = renumbered(directories)
    for old, new in moves:
        old.rename(new)
    if moves:
        log(
            f"resume=auto: {len(moves)} finished or interrupted run(s) of this sweep renumbered to their "
            f"jobs' new places (e.g. {moves[0][0].name} -> {moves[0][1].name}): the sweep's values changed"
        )
    return len(moves)
