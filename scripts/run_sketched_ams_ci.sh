#!/usr/bin/env bash
# Regenerate docs/results/sketched_ams/: the sketched_ams Fig. 1 preset at scale=ci (18 runs), then its report.
# Usage: bash scripts/run_sketched_ams_ci.sh [SWEEP_ROOT]   (default outputs/sketched_ams_ci)
# The MNIST CNN runs at model.hidden=32 (d = 314,090; the preset's sketch and k are scaled to it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-outputs/sketched_ams_ci}
bin=.venv/bin
mkdir -p "$root"
start=$(date +%s)
"$bin/compress-train" -m experiment=sketched_ams/fig1 scale=ci model.hidden=32 threads=1 "hydra.sweep.dir=$root/fig1" \
  > "$root/fig1.log" 2>&1 || { echo "fig1 failed, see $root/fig1.log"; exit 1; }
echo "fig1: $(( $(date +%s) - start )) s"
"$bin/compress-report" "$root/fig1" --out docs/results/sketched_ams/fig1 --title "sketched_ams Fig. 1 (scale=ci)"
