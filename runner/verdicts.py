"""The verdicts of the paper claims that name a preset, read from ``docs/results/claims.json`` (written
by the claims evaluator, ``compress-report``): a list of objects with at least ``paper``, ``id``,
``item``, ``experiments`` (preset names such as ``def/table1``), ``scale`` and ``verdict``. No file,
no verdicts: ``compress-train list`` then shows none."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

CLAIMS = Path(__file__).resolve().parents[1] / "docs" / "results" / "claims.json"
ORDER = ("reproduced", "direction only", "not reproduced", "inconclusive", "not run")


def load(path: Path | None = None) -> list[dict]:
    """The entries of ``path`` (default ``CLAIMS``); [] when it is missing or unreadable (a list of
    objects is expected)."""
    try:
        data = json.loads((path or CLAIMS).read_text())
    except (OSError, ValueError):
        return []
    return [c for c in data if isinstance(c, dict)] if isinstance(data, list) else []


def counts(claims: list[dict], preset: str, scale: str | None = None) -> Counter:
    """How many claims naming ``preset`` (at ``scale``; a claim without one, null or "-", counts at every scale)
    have each verdict."""
    out: Counter = Counter()
    for c in claims:
        if preset in (c.get("experiments") or []) and (scale is None or c.get("scale") in (None, "", "-", scale)):
            out[str(c.get("verdict", "not run"))] += 1
    return out


def phrase(verdicts: Counter) -> str:
    """``claims: 2 reproduced, 1 not reproduced, 3 not run`` (known verdicts first); "" for none."""
    if not verdicts:
        return ""
    known = [v for v in ORDER if verdicts[v]] + sorted(v for v in verdicts if v not in ORDER)
    return "claims: " + ", ".join(f"{verdicts[v]} {v}" for v in known)


def items(claims: list[dict], preset: str) -> list[str]:
    """The paper items (``def`` Table 1, ...) of the claims naming ``preset``, in first-seen order."""
    seen: list[str] = []
    for c in claims:
        if preset in (c.get("experiments") or []):
            item = f"{c.get('paper', '?')} {c.get('item', '?')}"
            if item not in seen:
                seen.append(item)
    return seen
