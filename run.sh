#!/usr/bin/env bash
# The paper's sweep: six MuJoCo tasks x seeds 1-5, each with its task settings. Every run is
# start-or-resume: launching the same sweep again resumes its unfinished runs and skips its finished
# ones. The sweep itself is core/sweep.py (python -m core.sweep; from Python: core.sweep.Sweep).
#
#   bash run.sh                          # all six tasks, seeds 1-5, up to -j N runs at once here
#   bash run.sh HalfCheetah-v4 Hopper-v4 # only these tasks
#   SEEDS="1 2" bash run.sh -j 2 Hopper-v4 -- -num_frames 100000 -RL
#   bash run.sh -n                       # dry run: print the commands, run nothing
#   bash run.sh --slurm --partition=cpu --time=1-00:00:00 -j 10   # one Slurm job array, <= 10 runs at once
#   bash run.sh --slurm -n Hopper-v4     # print the job script, submit nothing
#   bash run.sh --status [LOGDIR]        # one line per run: frames, best reward, fps, state
#
# Everything after "--" is passed to every run; bash run.sh -h lists the options (and the sbatch
# options --slurm passes on). Environment: SEEDS (1 2 3 4 5), LOGDIR (./logs, relative to this
# folder), PYTHON (python).
set -euo pipefail
cd "$(dirname "$0")"
exec "${PYTHON:-python}" -m core.sweep "$@"
