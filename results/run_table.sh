#!/usr/bin/env bash
# The paper's table at its budget: the six tasks x seeds 1-3 to 1M frames, the defaults (task settings),
# from one frozen commit, two jobs at a time, one torch thread each, nice 19, a checkpoint every 10 minutes.
# Run folders and checkpoints live under $OUT; results/1M/$GROUP/ gets each run's config.json and
# progress.csv (and its job log), and, once the run has finished, its policy.pt (the final agents, about
# 0.6 MB; `python -m core.evaluate results/1M/$GROUP/<run>` plays them). Checkpoints are never committed.
#
#   git -C /work/main worktree add --detach /work/table-src <commit>      # once: the frozen commit
#   SRC=/work/table-src OUT=/work/table nohup bash /work/table-src/results/run_table.sh >> /work/table/driver.log 2>&1 &
#   bash results/run_table.sh --copy     # any time: copy the runs so far into results/ (a record committed from an
#                                        # earlier machine that reaches further is kept, never shortened)
#   bash results/run_table.sh --queue    # the runs in the order they would start, nothing run
#
# Start-or-resume: run it again (a new session, after any interruption) and every unfinished run continues from
# its checkpoint; a run whose committed rows reach the budget is skipped. Order: the runs with a checkpoint on
# this machine first (they resume), then the others from the fewest committed frames up (a fresh machine has lost
# every checkpoint: it spends its hours where frames are missing), ties in the order of $TASKS then $SEEDS.
# Pause for a benchmark with `kill -STOP <pid>` of each run (`pgrep -f table-src/run_re2.py` lists them; -CONT after).
set -euo pipefail
SRC=${SRC:-/work/table-src}
OUT=${OUT:-/work/table}
JOBS=${JOBS:-2}
GROUP=${GROUP:-table}
TASKS=${TASKS:-"HalfCheetah-v4 Hopper-v4 Walker2d-v4 Ant-v4 Humanoid-v4 Swimmer-v4"}
SEEDS=${SEEDS:-"1 2 3"}
FRAMES=${FRAMES:-1000000}
REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
RECORD="$REPO/results/1M/$GROUP"
export SRC OUT GROUP FRAMES REPO RECORD PYTHON=${PYTHON:-python}

last_frames() {  # last_frames <progress.csv>: the frame count of its last row (0 when there is none)
  [ -f "$1" ] && awk -F, 'NR > 1 && NF > 1 { f = $1 } END { print f + 0 }' "$1" || echo 0
}
export -f last_frames

copy() {  # each live run's config.json, progress.csv and job log; policy.pt once the run has finished
  local run name have live log
  for run in "$OUT"/*__seed*/; do
    [ -f "$run/progress.csv" ] || continue
    name=$(basename "$run")
    have=$(last_frames "$RECORD/$name/progress.csv"); live=$(last_frames "$run/progress.csv")
    if [ "$have" -gt "$live" ]; then
      echo "kept results/1M/$GROUP/$name ($have frames; the live run has $live)"; continue
    fi
    mkdir -p "$RECORD/$name" "$RECORD/jobs"
    cp "$run/config.json" "$run/progress.csv" "$RECORD/$name/"
    log="$OUT/jobs/${name%%__*}__seed${name##*__seed}.log"
    [ -f "$log" ] && cp "$log" "$RECORD/jobs/"
    # finished: the last row is logged before the final checkpoint and policy are written; status.json says so after
    if [ "$live" -ge "$FRAMES" ] && [ -f "$run/policy.pt" ] && grep -q '"state": "finished"' "$run/status.json" 2> /dev/null; then
      cp "$run/policy.pt" "$RECORD/$name/"
      echo "copied results/1M/$GROUP/$name ($live frames, finished: policy.pt too)"
    else
      echo "copied results/1M/$GROUP/$name ($live frames)"
    fi
  done
}

queue() {  # one line per run, "<task> <seed>", in the order they start
  local task seed key i=0
  for task in $TASKS; do
    for seed in $SEEDS; do
      if compgen -G "$OUT/${task}__*__seed$seed/checkpoint.pt" > /dev/null; then key=-1
      else key=$(last_frames "$RECORD/${task}__ERL-Re2__seed$seed/progress.csv"); fi
      echo "$key $i $task $seed"; i=$((i + 1))
    done
  done | sort -n -k1,1 -k2,2 | cut -d' ' -f3-
}

run_one() {  # run_one <task> <seed>
  local task=$1 seed=$2 rc=0
  if [ "$(last_frames "$RECORD/${task}__ERL-Re2__seed$seed/progress.csv")" -ge "$FRAMES" ]; then
    echo "$(date -u +%FT%TZ) skip $task seed $seed: its committed rows reach $FRAMES frames"; return 0
  fi
  mkdir -p "$OUT/jobs"
  echo "$(date -u +%FT%TZ) start $task seed $seed"
  OMP_NUM_THREADS=1 nice -n 19 "$PYTHON" "$SRC/run_re2.py" -env "$task" -seed "$seed" -num_frames "$FRAMES" -logdir "$OUT" \
    -threads 1 -wandb_mode disabled -checkpoint_minutes 10 >> "$OUT/jobs/${task}__seed${seed}.log" 2>&1 || rc=$?
  echo "$(date -u +%FT%TZ) exit $rc $task seed $seed"
}
export -f run_one

case "${1:-}" in
  --copy) copy ;;
  --queue) queue ;;
  "") queue | xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _
      echo "$(date -u +%FT%TZ) every job has exited" ;;
  *) echo "run_table.sh: error: unknown argument '$1' (accepted: --copy, --queue, or none to run)" >&2; exit 2 ;;
esac
