#!/usr/bin/env bash
# The `def` claims at scale=long (full MNIST, the ci CNN at width 32, 4 epochs = 1,872 steps a run), in the
# order that settles the most claims soonest. Every piece is its own resumable sweep: re-running this script
# skips finished jobs (resume=auto), so a session cut short carries on in the next.
# Usage: bash scripts/run_def_long.sh [SWEEP_ROOT] [PIECE...]   (default root outputs/def_long; all pieces)
# About 10 minutes a run on one thread of an idle 2-core machine; 69 runs in all. Run two copies on two
# pieces at once (`... outputs/def_long table1_ef_defa` and `... outputs/def_long table1_rest`) to use both cores.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-outputs/def_long}
shift || true
bin=.venv/bin
common=(scale=long threads=1 resume=auto)
declare -A pieces=(
  [sgd]="experiment=def/sgd"
  [table1_ef_defa]="experiment=def/table1 method=def/ef,def/def_a"
  [table1_rest]="experiment=def/table1 method=def/def,def/psync,def/saef"
  [ef_bn]="experiment=def/table1 method=def/ef model.batch_norm=true"
  [sgd_bn]="experiment=def/sgd model.batch_norm=true"
  [ef_lr]="experiment=def/table1 method=def/ef method_args.ratio=64 method_args.lr_ef=0.003,0.001"
  [table4]="experiment=def/table4 method_args.lam=0.1,0.8"
  [ef21]="experiment=def/table1 method=def/ef21"
)
order=(sgd table1_ef_defa table1_rest ef_bn sgd_bn ef_lr table4 ef21)
[ $# -gt 0 ] && order=("$@")
mkdir -p "$root"
for piece in "${order[@]}"; do
  [ -n "${pieces[$piece]+x}" ] || { echo "unknown piece $piece (one of ${!pieces[*]})"; exit 2; }
  start=$(date +%s)
  # shellcheck disable=SC2086
  "$bin/compress-train" -m ${pieces[$piece]} "${common[@]}" "hydra.sweep.dir=$root/$piece" \
    >> "$root/$piece.log" 2>&1 || echo "$piece: some job failed, see $root/$piece.log"
  echo "$piece: $(( $(date +%s) - start )) s" | tee -a "$root/times.txt"
done
