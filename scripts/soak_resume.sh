#!/usr/bin/env bash
# Soak test of checkpoint/resume under torchrun (not run in CI): one long run whose workers are
# killed KILLS times at random steps, against the same run uninterrupted. PASS when every metrics
# row (time_* keys aside), the totals and the final parameters are equal.
#
#   scripts/soak_resume.sh                       # 200 steps, 5 kills, launcher.max_restarts=2
#   STEPS=60 KILLS=3 scripts/soak_resume.sh      # a quick one
#
# Each death is a SIGKILL of one worker (rank drawn at random):
# - the first of every CLI invocation through COMPRESS_TRAIN_KILL_AT=RANK:STEP (right after STEP;
#   it fires only on a torchrun group's first attempt), the next ones by `kill -9` of a random
#   worker process once a random later step is logged (it may land mid-step or mid-checkpoint);
# - torchrun's elastic agent restarts the group up to launcher.max_restarts (RESTARTS) times per
#   invocation, every rank resuming from the newest complete checkpoint; the death after that ends
#   the invocation (exit code 2, summary.json `failed`) and the script starts the CLI again with
#   resume=auto. RESTARTS=0 tests only the re-runs.
# Environment: STEPS (200), KILLS (5), RESTARTS (2), CHECKPOINT_EVERY (10), SEED (random; the draws),
# WORK (a new temporary folder; the runs are kept there), EXTRA (more overrides, e.g. "algo=ef_sgd
# compressor=threshold compressor.lam=0.01").
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLI=${CLI:-$ROOT/.venv/bin/compress-train}
PY=${PY:-$ROOT/.venv/bin/python}
STEPS=${STEPS:-200}
KILLS=${KILLS:-5}
RESTARTS=${RESTARTS:-2}
CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-10}
SEED=${SEED:-$(( $(date +%s) % 32768 ))}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/soak_resume.XXXXXX")}
RANDOM=$SEED
mkdir -p "$WORK"
SOAKED=$WORK/soaked WHOLE=$WORK/whole

# shellcheck disable=SC2206
SETUP=(dataset.download=false logger.progress=false launcher=torchrun workers=2 "launcher.max_restarts=$RESTARTS"
       "train.checkpoint_every=$CHECKPOINT_EVERY" model.hidden=16 train.batch_size=20 threads=1
       "train.max_steps=$STEPS" train.epochs=null train.log_every=2 train.eval_every=20 ${EXTRA:-})

last_step() {  # the step of the last complete metrics row (0 when none)
  local line
  line=$(tail -n 2 "$1/metrics.jsonl" 2>/dev/null | grep -o '^{"step": [0-9]*.*}$' | tail -1)
  [[ $line =~ ^\{\"step\":\ ([0-9]+) ]] && echo "${BASH_REMATCH[1]}" || echo 0
}

newest_checkpoint() {  # the step of the newest complete checkpoint (0 when none)
  local m
  m=$(ls -d "$1"/checkpoints/step_*/manifest.json 2>/dev/null | sort | tail -1)
  if [ -n "$m" ]; then basename "$(dirname "$m")" | sed 's/step_0*//; s/^$/0/'; else echo 0; fi
}

status_of() {
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]+"/summary.json")).get("status"))' "$1" 2>/dev/null
}

draw_step() {  # a step in [from+1, STEPS-1], early enough that the kills left ($2) still fit
  local from=$1 left=${2:-1} span
  (( from + 1 >= STEPS - 1 )) && { echo $(( STEPS - 1 )); return; }
  span=$(( (STEPS - 1 - from) / (left > 0 ? left : 1) ))
  echo $(( from + 1 + RANDOM % (span > 0 ? span : 1) ))
}

workers_of() {  # the worker pids of the CLI process $1 (children of its torchrun agent)
  local agent
  agent=$(pgrep -P "$1" -f torch.distributed.run | head -1)
  [ -n "$agent" ] && pgrep -P "$agent"
}

echo "soak: $STEPS steps, $KILLS kills, launcher.max_restarts=$RESTARTS, checkpoint every $CHECKPOINT_EVERY, seed $SEED, in $WORK"
start=$SECONDS
kills=0 invocations=0
while :; do
  invocations=$((invocations + 1))
  (( invocations > KILLS + 3 )) && { echo "FAIL: more than $((KILLS + 3)) invocations"; exit 1; }
  resume=() env_kill=() from=$STEPS
  [ -d "$SOAKED" ] && resume=(resume=auto)
  if (( kills < KILLS )); then
    from=$(draw_step "$(newest_checkpoint "$SOAKED")" $((KILLS - kills)))
    spec="$((RANDOM % 2)):$from"
    env_kill=("COMPRESS_TRAIN_KILL_AT=$spec")
    kills=$((kills + 1))
    echo "  invocation $invocations (${resume[*]:-fresh}): kill $kills: COMPRESS_TRAIN_KILL_AT=$spec"
  else
    echo "  invocation $invocations (${resume[*]:-fresh}): no more kills"
  fi
  env "${env_kill[@]}" "$CLI" "hydra.run.dir=$SOAKED" "${SETUP[@]}" "${resume[@]}" \
    >>"$WORK/soaked.out" 2>>"$WORK/soaked.err" &
  cli=$!
  deaths=1  # this invocation's deaths (the env kill); torchrun restarts the group RESTARTS times
  # The next kills once a step past the last death is logged, which only a restarted group can log.
  while (( kills < KILLS && deaths <= RESTARTS && from + 1 <= STEPS - 1 )) && kill -0 "$cli" 2>/dev/null; do
    target=$(draw_step "$from" $((KILLS - kills)))
    while kill -0 "$cli" 2>/dev/null && (( $(last_step "$SOAKED") < target )); do sleep 0.2; done
    mapfile -t workers < <(workers_of "$cli")
    if (( ${#workers[@]} != 2 )); then sleep 0.2; continue; fi  # starting or restarting
    victim=${workers[$((RANDOM % 2))]}
    at=$(last_step "$SOAKED")
    (( at >= STEPS )) && break  # finished: nothing left to kill
    kill -9 "$victim" 2>/dev/null || continue
    kills=$((kills + 1)) deaths=$((deaths + 1))
    echo "    kill $kills: kill -9 worker pid $victim (last logged step $at)"
    while kill -0 "$cli" 2>/dev/null && workers_of "$cli" | grep -qx "${workers[0]}\|${workers[1]}"; do
      sleep 0.1
    done  # the old group is gone: whatever it logged is written
    from=$(( at > $(last_step "$SOAKED") ? at : $(last_step "$SOAKED") ))
  done
  wait "$cli"; rc=$?
  status=$(status_of "$SOAKED")
  echo "    exit code $rc, status $status, newest checkpoint step $(newest_checkpoint "$SOAKED")"
  [ "$status" = completed ] && break
  if [ "$rc" != 2 ] || [ "$status" != failed ]; then
    echo "FAIL: invocation $invocations ended with exit code $rc and status $status (see $WORK/soaked.err)"
    exit 1
  fi
done
soak_s=$((SECONDS - start))

start=$SECONDS
if ! "$CLI" "hydra.run.dir=$WHOLE" "${SETUP[@]}" >"$WORK/whole.out" 2>"$WORK/whole.err"; then
  echo "FAIL: the uninterrupted run failed (see $WORK/whole.err)"; exit 1
fi
whole_s=$((SECONDS - start))

"$PY" - "$SOAKED" "$WHOLE" "$kills" "$invocations" "$soak_s" "$whole_s" <<'EOF'
import json, sys
from pathlib import Path

import torch

from compress_train.runner import checkpoint

soaked, whole = Path(sys.argv[1]), Path(sys.argv[2])
kills, invocations, soak_s, whole_s = sys.argv[3:7]


def rows(run):
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("time_")}
            for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def params(run):
    return checkpoint.load(checkpoint.complete(run)[-1] / "shared.pt")["params"]


def totals(run):
    return {k: v for k, v in json.loads((run / "summary.json").read_text())["totals"].items()
            if not k.startswith("time_")}


a, b = rows(soaked), rows(whole)
differing = [i for i, (ra, rb) in enumerate(zip(a, b)) if ra != rb]
pa, pb = params(soaked), params(whole)
param_diff = (pa - pb).abs().max().item() if pa.shape == pb.shape else float("inf")
loss_diff = max((abs(ra["train_loss"] - rb["train_loss"]) for ra, rb in zip(a, b)), default=0.0)
summary = json.loads((soaked / "summary.json").read_text())
resumed = summary.get("resumed") or {}
ok = len(a) == len(b) > 0 and not differing and torch.equal(pa, pb) and totals(soaked) == totals(whole)
print(f"{'PASS' if ok else 'FAIL'}: {kills} kills over {invocations} invocation(s), {resumed.get('count', 0)} resumes "
      f"(from steps {resumed.get('from_steps', [])}); rows {len(a)} vs {len(b)}, {len(differing)} differing"
      f"{' (first: step %s)' % b[differing[0]].get('step') if differing else ''}; max |train_loss diff| {loss_diff:.3g}; "
      f"max |param diff| {param_diff:.3g} over {pa.numel()} parameters; totals {'equal' if totals(soaked) == totals(whole) else 'differ'}; "
      f"final train loss {a[-1]['train_loss']:.6f} vs {b[-1]['train_loss']:.6f}; "
      f"{soak_s} s soaked, {whole_s} s uninterrupted")
sys.exit(0 if ok else 1)
EOF
