#!/usr/bin/env bash
# Regenerate docs/results/def/: the def presets at scale=ci (SGD row, Table 1, Table 4), then the reports.
# Usage: bash scripts/run_def_ci.sh [SWEEP_ROOT]   (default outputs/def_ci)
# The MNIST CNN runs at model.hidden=32 (a quarter of its default width) so that the 99 runs fit in
# about an hour and a half on 2 CPU cores; each sweep's wall time is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-outputs/def_ci}
bin=.venv/bin
mkdir -p "$root"
for exp in sgd table1 table4; do
  start=$(date +%s)
  "$bin/compress-train" -m "experiment=def/$exp" scale=ci model.hidden=32 threads=1 "hydra.sweep.dir=$root/$exp" \
    > "$root/$exp.log" 2>&1 || { echo "$exp failed, see $root/$exp.log"; exit 1; }
  echo "$exp: $(( $(date +%s) - start )) s"
done
"$bin/compress-report" "$root/table1" "$root/sgd" --out docs/results/def/table1 --title "def Table 1 / Fig. 1 (scale=ci)"
"$bin/compress-report" "$root/table4" "$root/sgd" --out docs/results/def/table4 --title "def Table 4 / Fig. 3 (scale=ci)"
