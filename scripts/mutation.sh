#!/usr/bin/env bash
# Mutation testing of the update rules (do the tests catch a changed operator or constant?) with mutmut 3; not part of CI.
#
#   .venv/bin/python -m pip install mutmut          # once (mutmut >= 3)
#   bash scripts/mutation.sh [STAGE_DIR]            # default ${TMPDIR:-/tmp}/compress-train-mutation
#   (cd STAGE_DIR && ../path/to/.venv/bin/mutmut show <mutant>)   # the diff of one survivor
#
# mutmut names modules after their paths and imports the mutated copy from mutants/src, but
# this repository maps algorithms/, compressors/, ... into compress_train.* (pyproject
# package-dir). So the script stages a tree with that layout (src/compress_train/<folder>),
# the tests, conf/ and pyproject.toml (for pytest's options), writes scripts/mutmut.cfg there
# as setup.cfg (the modules to mutate and the fast test selection: the by-hand and compressor
# unit tests, -n 0 -x), and runs mutmut in ONE process (--max-children 1). The mutated copy
# shadows the editable install because mutants/src comes first on sys.path. At the end it
# prints every mutant that was not killed ("survived", "no tests", "timeout", ...).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
stage=${1:-${TMPDIR:-/tmp}/compress-train-mutation}
mutmut=$repo/.venv/bin/mutmut
[ -x "$mutmut" ] || { echo "mutmut not found at $mutmut: .venv/bin/python -m pip install mutmut" >&2; exit 2; }
rm -rf "$stage"
mkdir -p "$stage/src"
# every package of pyproject's [tool.setuptools.package-dir] at its import path, e.g.
# algorithms/ -> src/compress_train/algorithms/, runner/api/ -> src/compress_train/
"$repo/.venv/bin/python" - "$repo" "$stage/src" <<'PY'
import shutil, sys, tomllib
from pathlib import Path
repo, dest = Path(sys.argv[1]), Path(sys.argv[2])
mapping = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
for package, folder in sorted(mapping.items()):  # parents first: compress_train before compress_train.x
    shutil.copytree(repo / folder, dest / package.replace(".", "/"), dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
(dest / "compress_train" / "__init__.py").touch()
PY
cp -r "$repo/tests" "$repo/conf" "$stage/"
cp "$repo/pyproject.toml" "$stage/"
cp "$repo/scripts/mutmut.cfg" "$stage/setup.cfg"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
cd "$stage"
start=$(date +%s)
"$mutmut" run --max-children 1
echo "mutmut run: $(( $(date +%s) - start )) s in $stage"
"$mutmut" results
