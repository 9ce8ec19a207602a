#!/usr/bin/env bash
# Create .venv/ at the repository root and install compress-train into it (editable, with the
# test extras). Idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch and torchvision pinned to the builds this project is tested with (pip takes them from
# the local wheel cache where one exists).
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,wandb]'
# mypy's view of the package (compress_train.* -> the top-level folders): links under build/mypy
.venv/bin/python scripts/mypy_tree.py > /dev/null
