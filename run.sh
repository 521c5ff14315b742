#!/usr/bin/env bash
# The paper's sweep: six MuJoCo tasks x seeds 1-5, each with its task settings (resolved by
# run_re2.py from the paper's appendix table), up to -j N jobs at once, one log file per job.
#
#   bash run.sh                          # all six tasks, seeds 1-5
#   bash run.sh HalfCheetah-v4 Hopper-v4 # only these tasks
#   SEEDS="1 2" bash run.sh -j 2 Hopper-v4 -- -num_frames 100000 -RL
#   bash run.sh -n                       # dry run: print the commands, run nothing
#
# Everything after "--" is passed to every run_re2.py job. Job logs: $LOGDIR/jobs/<task>__seed<seed>.log
set -euo pipefail
cd "$(dirname "$0")"

JOBS=$(nproc 2>/dev/null || echo 1)
DRY_RUN=${DRY_RUN:-0}
SEEDS=${SEEDS:-"1 2 3 4 5"}
LOGDIR=${LOGDIR:-./logs}
PYTHON=${PYTHON:-python}
TASKS=()
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    -j) JOBS="$2"; shift 2 ;;
    -j*) JOBS="${1#-j}"; shift ;;
    -n|--dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    -*) echo "run.sh: error: unknown option $1 (accepted: -j N, -n, --, -h)" >&2; exit 2 ;;
    *) TASKS+=("$1"); shift ;;
  esac
done
[ ${#TASKS[@]} -gt 0 ] || TASKS=(HalfCheetah-v4 Hopper-v4 Walker2d-v4 Ant-v4 Humanoid-v4 Swimmer-v4)
if ! [[ "$JOBS" =~ ^[1-9][0-9]*$ ]]; then echo "run.sh: error: -j must be a positive integer (got $JOBS)" >&2; exit 2; fi
CORES=$(nproc 2>/dev/null || echo 1)
THREADS=$(( CORES / JOBS > 0 ? CORES / JOBS : 1 ))

[ "$DRY_RUN" = 1 ] || mkdir -p "$LOGDIR/jobs"
running=0
status=0
for task in "${TASKS[@]}"; do
  for seed in $SEEDS; do
    cmd=("$PYTHON" run_re2.py -env "$task" -seed "$seed" -logdir "$LOGDIR" -threads "$THREADS" "${EXTRA[@]}")
    log="$LOGDIR/jobs/${task}__seed${seed}.log"
    if [ "$DRY_RUN" = 1 ]; then
      printf '%q ' "${cmd[@]}"; printf '> %q 2>&1\n' "$log"
      continue
    fi
    if [ "$running" -ge "$JOBS" ]; then
      wait -n || status=1
      running=$((running - 1))
    fi
    echo "start: $task seed $seed -> $log"
    "${cmd[@]}" > "$log" 2>&1 &
    running=$((running + 1))
  done
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
