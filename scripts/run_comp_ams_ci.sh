#!/usr/bin/env bash
# Regenerate docs/results/comp_ams/: every COMP-AMS preset at scale=ci, then the reports.
# Usage: bash scripts/run_comp_ams_ci.sh [SWEEP_ROOT]   (default outputs/comp_ams_ci)
# Each preset's wall time is printed; on 2 CPU cores the whole script takes about an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-outputs/comp_ams_ci}
bin=.venv/bin
for fig in fig1 fig2 fig3_mnist fig3_imdb fig3_cifar10; do
  start=$(date +%s)
  "$bin/compress-train" -m "experiment=comp_ams/$fig" scale=ci "hydra.sweep.dir=$root/$fig" > "$root-$fig.log" 2>&1 \
    || { echo "$fig failed, see $root-$fig.log"; exit 1; }
  echo "$fig: $(( $(date +%s) - start )) s"
done
for fig in fig1 fig2 fig3_mnist fig3_imdb fig3_cifar10; do
  extra=()
  [ "$fig" = fig2 ] && extra=(--target-loss 0.5)
  [[ "$fig" = fig1 || "$fig" = fig3_* ]] && extra=(--best-lr)
  "$bin/compress-report" "$root/$fig" --out "docs/results/comp_ams/$fig" --title "COMP-AMS $fig (scale=ci)" "${extra[@]}"
done
