#!/usr/bin/env bash
# Regenerate docs/results/aiade/ (seed 003) and docs/results/hard_threshold/fig1 (seed 002 Fig. 1):
# every preset at scale=ci, then the reports. Usage: bash scripts/run_aiade_ci.sh [SWEEP_ROOT]
# (default outputs/aiade_ci). Each preset's wall time is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-outputs/aiade_ci}
bin=.venv/bin
mkdir -p "$root"
for preset in aiade/rate aiade/kappa aiade/bits aiade/sgd hard_threshold/fig1; do
  start=$(date +%s)
  "$bin/compress-train" -m "experiment=$preset" scale=ci "hydra.sweep.dir=$root/$preset" > "$root/${preset//\//_}.log" 2>&1 \
    || { echo "$preset failed, see $root/${preset//\//_}.log"; exit 1; }
  echo "$preset: $(( $(date +%s) - start )) s"
done
for preset in aiade/rate aiade/kappa aiade/bits aiade/sgd hard_threshold/fig1; do
  "$bin/compress-report" "$root/$preset" --out "docs/results/$preset" --title "$preset (scale=ci)" > /dev/null
done
