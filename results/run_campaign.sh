#!/usr/bin/env bash
# The evidence campaign for the authors'-code defaults (-pevfa_rows reference, -phi_grad reference), in
# two parts, from one frozen commit, two jobs at a time, one torch thread each, nice 19:
#
#   part 1 (results/reference_defaults/): HalfCheetah-v4, seeds 1-3, 200k frames: the defaults (group
#           erl_re2) and the reference rows with the paper's pre-step φ gradient (group phi_grad_paper,
#           -phi_grad paper): the rows' effect alone, beside results/after_fix/ (both paper variants,
#           the earlier defaults);
#   part 2 (results/1M/): HalfCheetah-v4 and Hopper-v4, seeds 1-3, the defaults, 1M frames. Part 1's
#           default HalfCheetah runs are the first 200k frames of these (they run in $OUT/1M/erl_re2):
#           the same command with -num_frames 1000000 extends each finished 200k run from its final
#           checkpoint, exactly as a 1M run would have continued (transitions do not depend on the budget);
#           --copy puts their rows up to 200k into results/reference_defaults/erl_re2/.
#
# Start-or-resume: run it again (in a new session, after any interruption) and every unfinished run
# continues from its checkpoint (written every 10 minutes and every 10k frames); finished runs exit at
# once. Run folders and checkpoints live under $OUT and are never committed (copy() takes their rows).
#
#   git -C /work/main worktree add --detach /work/campaign-src <commit>     # once: the frozen commit
#   SRC=/work/campaign-src OUT=/work/campaign nohup bash /work/campaign-src/results/run_campaign.sh \
#       >> /work/campaign/driver.log 2>&1 &
#   bash results/run_campaign.sh --copy      # any time: copy config.json, progress.csv and job logs of
#                                            # the runs so far into results/ (no checkpoints); a record
#                                            # committed from an earlier machine that reaches further is kept
#   bash results/run_campaign.sh --queue     # the jobs in the order they would start (finished ones are
#                                            # skipped when reached), nothing run
#
# A fresh machine has none of the checkpoints: a run that had not finished starts again from frame 0 there
# (its committed rows stay until the new run reaches further), and a run whose finished rows are committed is
# skipped. Part 2 then starts the runs that are furthest behind in results/ first (see part2), so each new
# machine adds frames where they are missing instead of repeating the leaders' first frames.
#
# Pause for a benchmark with `pkill -STOP -f campaign-src/run_re2.py` (and -CONT after).
set -euo pipefail
SRC=${SRC:-/work/campaign-src}
OUT=${OUT:-/work/campaign}
JOBS=${JOBS:-2}  # runs at a time (one thread each)
REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
export SRC OUT REPO PYTHON=${PYTHON:-python}

last_frames() {  # last_frames <progress.csv>: the frame count of its last row (0 when it has none)
  [ -f "$1" ] && awk -F, 'NR > 1 && NF > 1 { f = $1 } END { print f + 0 }' "$1" || echo 0
}
export -f last_frames

copy_run() {  # copy_run <run folder> <destination folder> <job log> [last frame count]: config.json,
  #            progress.csv (cut after its first row at or past the frame count when one is given) and the job
  #            log into <destination>/../jobs/. A committed record that reaches further than the live run, or
  #            that already reaches the cut (a run finished on an earlier machine whose checkpoints were lost
  #            with it), is kept, never shortened or replaced by another machine's run.
  local have live name
  have=$(last_frames "$2/progress.csv"); live=$(last_frames "$1/progress.csv")
  if [ "$have" -gt "$live" ] || { [ -n "${4:-}" ] && [ "$have" -ge "$4" ]; }; then
    echo "kept ${2#"$REPO"/} ($have frames; the live run has $live)"; return
  fi
  mkdir -p "$2" "$(dirname "$2")/jobs"
  cp "$1/config.json" "$2/"
  if [ -n "${4:-}" ]; then
    awk -F, -v last="$4" 'NR == 1 { print; next } { print } $1 + 0 >= last + 0 { exit }' "$1/progress.csv" > "$2/progress.csv"
  else
    cp "$1/progress.csv" "$2/"
  fi
  cp "$3" "$(dirname "$2")/jobs/"
  echo "copied ${2#"$REPO"/} ($(last_frames "$2/progress.csv") frames)"
}

copy() {  # the committed part of each run (no checkpoints) and its job log
  local run name log
  for run in "$OUT"/1M/erl_re2/*__seed*/ "$OUT"/reference_defaults/phi_grad_paper/*__seed*/; do
    [ -f "$run/progress.csv" ] || continue
    name=$(basename "$run")
    log="$(dirname "$run")/jobs/${name%%__*}__seed${name##*__seed}.log"
    case "$run" in
      */1M/*) copy_run "$run" "$REPO/results/1M/erl_re2/$name" "$log"
              case "$name" in HalfCheetah*) copy_run "$run" "$REPO/results/reference_defaults/erl_re2/$name" "$log" 200000 ;; esac ;;
      *)      copy_run "$run" "$REPO/results/reference_defaults/phi_grad_paper/$name" "$log" ;;
    esac
  done
}

if [ "${1:-}" = "--copy" ]; then copy; exit 0; fi

run_one() {  # run_one <part> <group> <env> <seed> <frames> [extra flags...]
  local part=$1 group=$2 env=$3 seed=$4 frames=$5; shift 5
  local dir="$OUT/$part/$group" rc=0 record done lock
  record="$REPO/results/$part/$group"  # where the finished run's rows are committed
  [ "$frames" = 200000 ] && record="$REPO/results/reference_defaults/$group"
  # A committed record that reaches the budget is done, even where a run of it continues on this machine
  # (restarted from 0 after the checkpoints were lost): part 2's job takes that run on to 1M.
  for done in "$record/${env}__"*"__seed$seed/progress.csv"; do
    if [ "$(last_frames "$done")" -ge "$frames" ]; then
      echo "$(date -u +%FT%TZ) skip $part/$group $env seed $seed: finished to $frames frames, rows committed in ${done#"$REPO"/}"
      return 0
    fi
  done
  mkdir -p "$dir/jobs"
  # Part 1's 200k job and part 2's 1M job of one run can be in flight at once (the run's own lock would
  # refuse the second, leaving the run at 200k): the second waits for the first, then continues the run.
  lock="$dir/jobs/${env}__seed${seed}.lock"
  if ! flock -n "$lock" true; then
    echo "$(date -u +%FT%TZ) wait $part/$group $env seed $seed: another job of this run is running"
  fi
  echo "$(date -u +%FT%TZ) start $part/$group $env seed $seed to $frames frames"
  OMP_NUM_THREADS=1 flock "$lock" nice -n 19 "$PYTHON" "$SRC/run_re2.py" -env "$env" -seed "$seed" -num_frames "$frames" \
    -logdir "$dir" -threads 1 -wandb_mode disabled -checkpoint_every 10000 -checkpoint_minutes 10 "$@" \
    >> "$dir/jobs/${env}__seed${seed}.log" 2>&1 || rc=$?
  echo "$(date -u +%FT%TZ) exit $rc $part/$group $env seed $seed"
}
export -f run_one

part2() {  # part 2's runs, one line each: those with a checkpoint on this machine first (they resume), then
  #          the others from the fewest committed frames up, so that a fresh machine, which has lost every
  #          checkpoint, spends its hours on the runs that are furthest behind instead of repeating the same
  #          frames of the ones ahead
  local env seed key
  for env in HalfCheetah-v4 Hopper-v4; do
    for seed in 1 2 3; do
      if compgen -G "$OUT/1M/erl_re2/${env}__ERL-Re2*__seed$seed/checkpoint.pt" > /dev/null; then key=-1
      else key=$(last_frames "$REPO/results/1M/erl_re2/${env}__ERL-Re2__seed$seed/progress.csv"); fi
      echo "$key 1M erl_re2 $env $seed 1000000"
    done
  done | sort -n -k1,1 -s | cut -d' ' -f2-
}

queue() {  # every job, one line each: <part> <group> <env> <seed> <frames> [extra flags...]
  for seed in 1 2 3; do  # part 1: HalfCheetah to 200k, both arms, seed by seed
    echo "1M erl_re2 HalfCheetah-v4 $seed 200000"
    echo "reference_defaults phi_grad_paper HalfCheetah-v4 $seed 200000 -phi_grad paper"
  done
  part2  # part 2: HalfCheetah (the same runs extended) and Hopper to 1M, in the order part2 gives
}

if [ "${1:-}" = "--queue" ]; then queue; exit 0; fi  # print the jobs in the order they would start

queue | xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _
echo "$(date -u +%FT%TZ) campaign: every job has exited"
