#!/usr/bin/env bash
# Regenerate docs/results/sketched_ams/: the sketched_ams Fig. 1 preset at scale=ci (18 runs) and the sketch-size
# study (9 runs), then their reports.
# Usage: bash scripts/run_sketched_ams_ci.sh [SWEEP_ROOT] [PARTS]   (default outputs/sketched_ams_ci, "fig1 sketch_size")
# The MNIST CNN runs at model.hidden=32 (d = 314,090; the preset's sketch and k are scaled to it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-outputs/sketched_ams_ci}
bin=.venv/bin
mkdir -p "$root"
parts=${2:-fig1 sketch_size}
for part in $parts; do
start=$(date +%s)
"$bin/compress-train" -m experiment=sketched_ams/$part scale=ci model.hidden=32 threads=1 "hydra.sweep.dir=$root/$part" \
  > "$root/$part.log" 2>&1 || { echo "$part failed, see $root/$part.log"; exit 1; }
echo "$part: $(( $(date +%s) - start )) s"
"$bin/compress-report" "$root/$part" --out "docs/results/sketched_ams/$part" --title "sketched_ams $part (scale=ci)"
done
