"""The tree speaks of the project, not of how it was built: no code, test, config, script or document
refers to a work item or a work period ("issue" with a number, a numbered or current "stop", the
current "session"). Where a change came from is in git's history."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOTS = ("algorithms", "compressors", "conf", "datasets", "docs", "models", "runner", "scripts", "tests", ".ci")
FILES = ("README.md", "pyproject.toml")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".sh", ".txt", ".toml", ".cfg", ""}
HISTORY = re.compile(r"\bissue[ -]?#?\d+|\bthis\s+stop\b|\bstop\s+\d+\b|\bthis\s+session\b", re.IGNORECASE)
# a phrase that reads like history but is not: (file, the line's text)
ALLOWED = {
    ("tests/conftest.py", "this " + "session"),  # the pytest session the fixture pins data for
}


def tree() -> list[Path]:
    found = [ROOT / f for f in FILES if (ROOT / f).is_file()]
    for top in ROOTS:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                found.append(path)
    return found


def history_lines(paths: list[Path]) -> list[str]:
    """``path:line: text`` for every line holding a history phrase (the allowed ones left out)."""
    out = []
    for path in paths:
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        rel = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        for number, line in enumerate(text.splitlines(), 1):
            if any((rel, m.group(0).lower()) not in ALLOWED for m in HISTORY.finditer(line)):
                out.append(f"{rel}:{number}: {line.strip()}")
    return out


def test_the_pattern_catches_each_kind_of_history_word(tmp_path):
    sample = tmp_path / "x.md"
    words = ["Iss" + "ue 13", "iss" + "ue-14", "this  st" + "op", "at st" + "op 11", "This sess" + "ion"]
    sample.write_text("\n".join(f"said {w} here" for w in words) + "\nissues remain; stop the run; a session\n")
    lines = history_lines([sample])
    assert len(lines) == len(words), lines


def test_no_history_words_in_the_tree():
    found = history_lines(tree())
    assert not found, "history words (git keeps the history):\n" + "\n".join(found)
