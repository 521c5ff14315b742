#!/usr/bin/env bash
# The evidence runs of results/README.md: HalfCheetah-v4 and Hopper-v4, 100k frames, full
# ERL-Re2 vs the RL-only ablation (-RL), seeds 1 and 2, paper settings (init_steps 10,000).
# Two queues of one-thread jobs, balanced so both finish at about the same time on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT_DIR:-results}  # where the run folders go (the runs may execute from a frozen worktree)
COMMON=(-num_frames 100000 -wandb_mode disabled -threads 1)
queue() {  # queue <task-for-full> <task-for-rl-only>
  LOGDIR="$OUT/erl_re2" SEEDS="1 2" bash run.sh -j 1 "$1" -- "${COMMON[@]}"
  LOGDIR="$OUT/rl_only" SEEDS="1 2" bash run.sh -j 1 "$2" -- "${COMMON[@]}" -RL
}
queue HalfCheetah-v4 Hopper-v4 &
queue Hopper-v4 HalfCheetah-v4 &
wait
python -m core.plot "$OUT/erl_re2" "$OUT/rl_only" -out "$OUT"
