#!/usr/bin/env bash
# The runs behind docs/results/claims.md at scale=ci: each preset's sweep (resumable: a re-run skips finished
# jobs), its run records committed beside its report (docs/results/<preset>/run_records.jsonl), then the
# claims table regenerated (compress-claims). The longer horizon: scripts/run_def_long.sh.
# Usage: bash scripts/run_claims.sh [PRESET...]   (default: every ci preset a claim names, cheapest first)
# ci runs train on the embedded stand-ins whatever is cached (COMPRESS_TRAIN_DATA points at a folder of
# their own), as the committed ci results did; one thread each; each preset's wall time is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${CLAIMS_ROOT:-outputs/claims_ci}
bin=.venv/bin
export COMPRESS_TRAIN_DATA=${CLAIMS_CI_DATA:-$PWD/$root/stand_in_data}
presets=(aiade/rate aiade/kappa aiade/bits aiade/sgd hard_threshold/fig1 def/sgd hard_threshold/fig3 comp_ams/fig3_imdb
  sketched_ams/fig1 comp_ams/fig2 hard_threshold/fig2_lstm hard_threshold/fig2_ncf hard_threshold/fig2_cnn
  hard_threshold/table1 comp_ams/fig3_mnist comp_ams/fig1 def/table1 def/table4 sketched_ams/sketch_size)
[ $# -gt 0 ] && presets=("$@")
declare -A extra=(  # the overrides the committed results used (the CNN at a quarter width keeps them CPU-sized)
  [def/sgd]="model.hidden=32" [def/table1]="model.hidden=32" [def/table4]="model.hidden=32"
  [sketched_ams/fig1]="model.hidden=32" [sketched_ams/sketch_size]="model.hidden=32"
)
mkdir -p "$root" "$COMPRESS_TRAIN_DATA"
for preset in "${presets[@]}"; do
  start=$(date +%s)
  log="$root/${preset//\//_}.log"
  # shellcheck disable=SC2086
  "$bin/compress-train" -m "experiment=$preset" scale=ci ${extra[$preset]:-} threads=1 resume=auto \
    "hydra.sweep.dir=$root/$preset" >> "$log" 2>&1 || echo "$preset: a job failed or diverged, see $log"
  "$bin/compress-claims" record "$root/$preset" --out "docs/results/$preset"
  echo "$preset: $(( $(date +%s) - start )) s" | tee -a "$root/times.txt"
done
"$bin/compress-claims"
