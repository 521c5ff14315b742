#!/usr/bin/env bash
# The fifteen runs of results/README.md, after the Adam fix and with the reference's generation loop:
# every run with the paper's per-task settings, init_steps 10,000, 10 test episodes, one thread,
# wandb off, a checkpoint every 10k frames. Two jobs at a time (xargs -P 2), ordered by seed so that
# an interrupted campaign has whole seeds first. Re-running the script resumes every unfinished run
# from its checkpoint and skips finished ones, so it can be started again after any interruption.
#
#   git worktree add --detach /work/evidence-src ade35ac     # the frozen commit of these runs
#   SRC=/work/evidence-src OUT=/work/evidence nohup bash /work/evidence-src/results/run_evidence_after_fix.sh &
#
# SRC must be that commit: its run folders are <env>__seed<seed>__<time> and its checkpoints format v1,
# which later commits (start-or-resume, checksummed checkpoints) name and read differently.
#
# Then copy each run's config.json, progress.csv and jobs/*.log into results/after_fix/ (no checkpoints).
set -euo pipefail
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
OUT=${OUT:-$SRC/results/after_fix}
export SRC OUT PYTHON=${PYTHON:-python}

run_one() {  # run_one <group> <env> <seed> <frames> [extra flags...]
  local group=$1 env=$2 seed=$3 frames=$4; shift 4
  local dir="$OUT/$group" existing cmd
  mkdir -p "$dir/jobs"
  existing=$(find "$dir" -maxdepth 1 -type d -name "${env}__seed${seed}__*" | sort | head -n 1)
  if [ -n "$existing" ] && [ -f "$existing/checkpoint.pt" ]; then
    cmd=(-resume "$existing")
  else
    # A folder without a checkpoint crashed before its first one: start that run afresh.
    if [ -n "$existing" ]; then rm -rf "$existing"; fi
    cmd=(-env "$env" -seed "$seed" -num_frames "$frames" -logdir "$dir" -threads 1 -wandb_mode disabled
         -checkpoint_every 10000 "$@")
  fi
  echo "$(date -u +%FT%TZ) start $group $env seed $seed: ${cmd[*]}"
  OMP_NUM_THREADS=1 nice -n 19 "$PYTHON" "$SRC/run_re2.py" "${cmd[@]}" >> "$dir/jobs/${env}__seed${seed}.log" 2>&1 \
    && echo "$(date -u +%FT%TZ) done $group $env seed $seed" \
    || echo "$(date -u +%FT%TZ) exit $? $group $env seed $seed"
}
export -f run_one

for seed in 1 2 3; do
  echo "erl_re2 HalfCheetah-v4 $seed 200000"
  echo "rl_only HalfCheetah-v4 $seed 100000 -RL"
  echo "erl_re2 Hopper-v4 $seed 100000"
  echo "rl_only Hopper-v4 $seed 100000 -RL"
  echo "erl_re2_skip_warmup_evolution Hopper-v4 $seed 100000 -skip_warmup_evolution"
done | xargs -P 2 -L 1 bash -c 'run_one "$@"' _
