#!/usr/bin/env bash
# GPU evidence in one command: scripts/gpu_check.py's JSON + Markdown report (pytest -m gpu, the
# compressors at d = 25M against a device copy, one paper network per paper against a plain step,
# the simulator on the device against the CPU), each part under its own time budget.
#
#   bash scripts/gpu_check.sh [OUTDIR]                  # on a CUDA machine; OUTDIR: docs/results/gpu/<card>/
#   bash scripts/gpu_check.sh --cpu-smoke OUTDIR        # the same end to end on the CPU at tiny sizes
#
# Options: --setup (always run scripts/setup.sh), --no-setup (never; default: only when .venv cannot
# import the project), --budget-s S (seconds for the whole call, set-up included; default 480).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
command="scripts/gpu_check.sh $*"
smoke=0 setup=auto budget=480 outdir=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-smoke) smoke=1 ;;
    --setup) setup=always ;;
    --no-setup) setup=never ;;
    --budget-s) budget="$2"; shift ;;
    --budget-s=*) budget="${1#*=}" ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "gpu_check.sh: unknown option $1 (allowed: --cpu-smoke --setup --no-setup --budget-s S)" >&2; exit 2 ;;
    *) outdir=("$1") ;;
  esac
  shift
done
if ! [[ "$budget" =~ ^[0-9]+$ ]] || [ "$budget" -lt 60 ]; then
  echo "gpu_check.sh: --budget-s must be a whole number of seconds >= 60, but is $budget" >&2
  exit 2
fi
if [ "$setup" = always ] || { [ "$setup" = auto ] && ! .venv/bin/python -c "import torch, compress_train" 2>/dev/null; }; then
  bash scripts/setup.sh
fi
setup_s=$(( $(date +%s) - start ))
left=$(( budget - setup_s - 15 ))  # 15 s for start-up and writing the report
args=("${outdir[@]}" --setup-s "$setup_s" --command "$command")
if [ "$smoke" = 1 ]; then
  args+=(--cpu-smoke)
else
  args+=(--budget-s "$(( left > 30 ? left : 30 ))")
fi
exec .venv/bin/python scripts/gpu_check.py "${args[@]}"
