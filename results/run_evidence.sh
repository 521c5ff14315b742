#!/usr/bin/env bash
# The evidence runs of results/README.md: HalfCheetah-v4 and Hopper-v4, 100k frames, full
# ERL-Re2 vs the RL-only ablation (-RL), seeds 1 and 2, paper settings (init_steps 10,000).
# Two queues of one-thread jobs, balanced so both finish at about the same time on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
COMMON=(-num_frames 100000 -wandb_mode disabled -threads 1)
queue() {  # queue <task-for-full> <task-for-rl-only>
  LOGDIR=results/erl_re2 SEEDS="1 2" bash run.sh -j 1 "$1" -- "${COMMON[@]}"
  LOGDIR=results/rl_only SEEDS="1 2" bash run.sh -j 1 "$2" -- "${COMMON[@]}" -RL
}
queue HalfCheetah-v4 Hopper-v4 &
queue Hopper-v4 HalfCheetah-v4 &
wait
python -m core.plot results/erl_re2 results/rl_only -out results
