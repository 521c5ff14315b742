#!/usr/bin/env bash
# The paper's sweep: six MuJoCo tasks x seeds 1-5, each with its task settings (resolved by
# run_re2.py from the paper's appendix table). Every run is start-or-resume: launching the same
# sweep again resumes its unfinished runs and skips its finished ones.
#
#   bash run.sh                          # all six tasks, seeds 1-5, up to -j N runs at once here
#   bash run.sh HalfCheetah-v4 Hopper-v4 # only these tasks
#   SEEDS="1 2" bash run.sh -j 2 Hopper-v4 -- -num_frames 100000 -RL
#   bash run.sh -n                       # dry run: print the commands, run nothing
#   bash run.sh --slurm --partition=cpu --time=1-00:00:00 -j 10   # one Slurm job array, <= 10 runs at once
#   bash run.sh --slurm -n Hopper-v4     # print the job script, submit nothing
#   bash run.sh --status [LOGDIR]        # one line per run: frames, best reward, fps, state
#
# Everything after "--" is passed to every run. Environment: SEEDS (1 2 3 4 5), LOGDIR (./logs,
# relative to this folder), PYTHON (python). With --slurm, these sbatch options are passed on:
# --partition --time --cpus-per-task (= torch threads per run, default 1) --gpus-per-task --gres
# --mem --mem-per-cpu --account --qos --constraint --reservation --nodelist --exclude --job-name
# --mail-type --mail-user (as --opt=value or --opt value); -j N caps the runs at once (default: all).
# Logs: $LOGDIR/jobs/<task>__seed<seed>.log here, $LOGDIR/jobs/<jobid>_<index>.log on Slurm.
set -euo pipefail
cd "$(dirname "$0")"

DRY_RUN=${DRY_RUN:-0}
SEEDS=${SEEDS:-"1 2 3 4 5"}
LOGDIR=${LOGDIR:-./logs}
PYTHON=${PYTHON:-python}
SLURM_LEAD_S=120  # the time-limit warning comes this long before the limit: time to checkpoint
MODE=local
JOBS=
TASKS=()
EXTRA=()
SBATCH_OPTS=()
declare -A GIVEN=()
CPUS_PER_TASK=1
PASSED_ON="--partition --time --cpus-per-task --gpus-per-task --gres --mem --mem-per-cpu --account --qos --constraint --reservation --nodelist --exclude --job-name --mail-type --mail-user"

die() { echo "run.sh: error: $*" >&2; exit 2; }

minutes_of() {  # Slurm time formats -> whole minutes; "" when not a time
  local t=$1 d=0 h=0 m=0 s=0
  if [[ $t =~ ^([0-9]+)-([0-9]+)(:([0-9]+)(:([0-9]+))?)?$ ]]; then
    d=${BASH_REMATCH[1]}; h=${BASH_REMATCH[2]}; m=${BASH_REMATCH[4]:-0}; s=${BASH_REMATCH[6]:-0}
  elif [[ $t =~ ^([0-9]+):([0-9]+):([0-9]+)$ ]]; then
    h=${BASH_REMATCH[1]}; m=${BASH_REMATCH[2]}; s=${BASH_REMATCH[3]}
  elif [[ $t =~ ^([0-9]+):([0-9]+)$ ]]; then
    m=${BASH_REMATCH[1]}; s=${BASH_REMATCH[2]}
  elif [[ $t =~ ^[0-9]+$ ]]; then
    m=$t
  else
    return 0
  fi
  echo $(( ((10#$d * 24 + 10#$h) * 60 + 10#$m) + 10#$s / 60 ))
}

sbatch_option() {  # check one sbatch option and keep it for the job script's #SBATCH lines
  local name=$1 value=$2
  [ -z "${GIVEN[$name]:-}" ] || die "--$name given twice (got ${GIVEN[$name]} and $value)"
  case "$name" in
    time)
      local minutes; minutes=$(minutes_of "$value")
      if [[ ! $value =~ ^(UNLIMITED|unlimited|infinite|INFINITE)$ ]] && { [ -z "$minutes" ] || [ "$minutes" -lt 5 ]; }; then
        die "--time must be a Slurm time (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) of at least 5 minutes, or UNLIMITED (got $value)"
      fi ;;
    cpus-per-task)
      [[ $value =~ ^[1-9][0-9]*$ ]] || die "--cpus-per-task must be a positive integer (got $value)"
      CPUS_PER_TASK=$value ;;
    gpus-per-task)
      [[ $value =~ ^([A-Za-z0-9_.-]+:)?[1-9][0-9]*$ ]] || die "--gpus-per-task must be N or TYPE:N with N >= 1 (got $value)" ;;
    mem|mem-per-cpu)
      [[ $value =~ ^[1-9][0-9]*[KMGT]?$ ]] || die "--$name must be a size such as 4G or 500M (got $value)" ;;
    *)
      [[ $value =~ ^[^[:space:]\"\'\\\$\`%]+$ ]] || die "--$name needs a value without spaces, quotes, \$ or % (got '$value')" ;;
  esac
  GIVEN[$name]=$value
  SBATCH_OPTS+=("--$name=$value")
}

while [ $# -gt 0 ]; do
  case "$1" in
    --status)
      [ "$MODE" = local ] && [ ${#TASKS[@]} -eq 0 ] && [ -z "$JOBS" ] || die "--status must come first: bash run.sh --status [LOGDIR]"
      [ $# -le 2 ] || die "--status takes one optional argument, the log directory (got: ${*:2})"
      exec "$PYTHON" -m core.lifecycle status "${2:-$LOGDIR}" ;;
    --slurm) MODE=slurm; shift ;;
    -j) [ $# -ge 2 ] || die "-j needs a number of runs at once"; JOBS="$2"; shift 2 ;;
    -j*) JOBS="${1#-j}"; shift ;;
    -n|--dry-run) DRY_RUN=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    --array*|--output*|--error*|--requeue|--no-requeue|--signal*|--open-mode*|--chdir*|--ntasks*|--nodes*|--wrap*)
      die "${1%%=*} is set by run.sh in the job script (one array task per run, requeue, signal, logs); cap the runs at once with -j N" ;;
    --*=*)
      name=${1%%=*}
      [[ " $PASSED_ON " == *" $name "* ]] || die "unknown option $name (accepted: -j N, -n, --slurm, --status [LOGDIR], -h, --, and with --slurm: $PASSED_ON)"
      sbatch_option "${name#--}" "${1#*=}"; shift ;;
    --*)
      [[ " $PASSED_ON " == *" $1 "* ]] || die "unknown option $1 (accepted: -j N, -n, --slurm, --status [LOGDIR], -h, --, and with --slurm: $PASSED_ON)"
      [ $# -ge 2 ] && [[ $2 != -* ]] || die "$1 needs a value ($1=VALUE or $1 VALUE)"
      sbatch_option "${1#--}" "$2"; shift 2 ;;
    -*) die "unknown option $1 (accepted: -j N, -n, --slurm, --status [LOGDIR], -h, --, and with --slurm: $PASSED_ON)" ;;
    *) TASKS+=("$1"); shift ;;
  esac
done
[ ${#TASKS[@]} -gt 0 ] || TASKS=(HalfCheetah-v4 Hopper-v4 Walker2d-v4 Ant-v4 Humanoid-v4 Swimmer-v4)
if [ "$MODE" = local ] && [ ${#SBATCH_OPTS[@]} -gt 0 ]; then
  die "${SBATCH_OPTS[0]%%=*} is an sbatch option: it needs --slurm"
fi
if [ -n "$JOBS" ] && ! [[ "$JOBS" =~ ^[1-9][0-9]*$ ]]; then die "-j must be a positive integer (got $JOBS)"; fi
read -r -a SEED_LIST <<< "$SEEDS"
[ ${#SEED_LIST[@]} -gt 0 ] || die "SEEDS must list at least one seed (got '$SEEDS')"
for seed in "${SEED_LIST[@]}"; do
  [[ $seed =~ ^[0-9]+$ ]] || die "SEEDS must be non-negative integers separated by spaces (got '$SEEDS')"
done
CORES=$(nproc 2>/dev/null || echo 1)
if [ "$MODE" = slurm ]; then
  THREADS=$CPUS_PER_TASK
else
  JOBS=${JOBS:-$CORES}
  THREADS=$(( CORES / JOBS > 0 ? CORES / JOBS : 1 ))
fi

# Refuse a bad task or flag now, with run_re2.py's own checks, rather than once per run (or once
# per array task, hours later in a queue). A dry run checks against a throw-away log folder.
"$PYTHON" - "$LOGDIR" "$THREADS" "$DRY_RUN" "${#TASKS[@]}" "${TASKS[@]}" "${EXTRA[@]}" <<'PY' || exit $?
import sys
import tempfile

from parameters import ParameterError, explicit_flags, parse_args

logdir, threads, dry_run, n = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
tasks, extra = sys.argv[5:5 + n], sys.argv[5 + n:]
set_by_sweep = sorted(explicit_flags(extra) & {"env", "seed", "logdir", "resume"})
if set_by_sweep:
    sys.stderr.write(f"run.sh: error: -{set_by_sweep[0]} cannot follow --: the sweep sets it (tasks as arguments, SEEDS=..., LOGDIR=...)\n")
    sys.exit(2)
with tempfile.TemporaryDirectory() as scratch:
    for task in tasks:
        try:
            parse_args(["-env", task, "-logdir", scratch if dry_run else logdir, "-threads", threads, *extra])
        except ParameterError as exc:
            sys.stderr.write(f"run.sh: error: {exc}\n")
            sys.exit(2)
PY

run_command() {  # the command of one run, into the array RUN
  RUN=("$PYTHON" run_re2.py -env "$1" -seed "$2" -logdir "$3" -threads "$THREADS" "${EXTRA[@]}")
}

if [ "$MODE" = slurm ]; then
  [[ $LOGDIR != *[[:space:]%]* ]] || die "LOGDIR must not contain spaces or % with --slurm (it names the #SBATCH log files; got '$LOGDIR')"
  ABS_LOGDIR=$(realpath -m "$LOGDIR")
  N_RUNS=$(( ${#TASKS[@]} * ${#SEED_LIST[@]} ))
  CAP=${JOBS:-$N_RUNS}

  job_script() {
    echo "#!/bin/bash"
    echo "#SBATCH --job-name=${GIVEN[job-name]:-erl-re2}"
    echo "#SBATCH --array=0-$(( N_RUNS - 1 ))%$CAP"
    echo "#SBATCH --ntasks=1"
    [ -n "${GIVEN[cpus-per-task]:-}" ] || echo "#SBATCH --cpus-per-task=$CPUS_PER_TASK"
    for opt in "${SBATCH_OPTS[@]}"; do [[ $opt == --job-name=* ]] || echo "#SBATCH $opt"; done
    echo "#SBATCH --output=$ABS_LOGDIR/jobs/%A_%a.log"
    echo "#SBATCH --open-mode=append"
    echo "#SBATCH --requeue"
    echo "#SBATCH --signal=B:USR1@$SLURM_LEAD_S"
    cat <<EOF
# ERL-Re2 sweep written by run.sh: ${#TASKS[@]} task(s) x ${#SEED_LIST[@]} seed(s) = $N_RUNS runs, one array task
# each, at most $CAP at once. Every run is start-or-resume: its folder under -logdir is fixed by
# task, variant, flags and seed, so a requeued task continues from its checkpoint and a finished
# run is skipped. Before the time limit Slurm sends USR1 to this script: the run is told to
# checkpoint (TERM) and the task requeues itself. Preemption, scontrol requeue and scancel send
# TERM, passed on the same way; Slurm then decides whether the task comes back.
# On another scheduler: one job per run below, each started from $(pwd)
case "\$SLURM_ARRAY_TASK_ID" in
EOF
    local index=0
    for task in "${TASKS[@]}"; do
      for seed in "${SEED_LIST[@]}"; do
        run_command "$task" "$seed" "$ABS_LOGDIR"
        printf '  %d) run=(%s) ;;\n' "$index" "$(printf '%q ' "${RUN[@]}" | sed 's/ $//')"
        index=$((index + 1))
      done
    done
    cat <<EOF
  *) echo "no run for array index \$SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;
esac
cd $(printf '%q' "$(pwd)") || exit 1
task="\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}"
echo "array task \$task on \$(hostname), attempt \$(( \${SLURM_RESTART_COUNT:-0} + 1 )): \${run[*]}"
child=
time_limit=0
interrupted=0
trap 'interrupted=1; time_limit=1; [ -z "\$child" ] || kill -TERM "\$child" 2> /dev/null' USR1
trap 'interrupted=1; [ -z "\$child" ] || kill -TERM "\$child" 2> /dev/null' TERM
"\${run[@]}" &
child=\$!
code=127
interrupted=1
while [ "\$interrupted" = 1 ]; do  # a trapped signal ends 'wait' early: wait again for the run's own exit
  interrupted=0
  wait "\$child"
  status=\$?
  [ "\$status" = 127 ] || code=\$status  # 127: the run's exit was already collected
done
echo "run exited with code \$code"
if [ "\$code" = 2 ]; then
  echo "skipped (held by another process)"
  exit 0
fi
if [ "\$code" = 143 ] && [ "\$time_limit" = 1 ]; then
  echo "time limit near: checkpoint written, requeueing \$task"
  scontrol requeue "\$task"
fi
exit "\$code"
EOF
  }

  if [ "$DRY_RUN" = 1 ]; then
    job_script
    exit 0
  fi
  command -v sbatch > /dev/null || { echo "run.sh: error: --slurm needs sbatch on PATH (not found); 'bash run.sh --slurm -n' prints the job script" >&2; exit 1; }
  mkdir -p "$ABS_LOGDIR/jobs"
  script=$(mktemp "$ABS_LOGDIR/jobs/.sweep.XXXXXX")
  job_script > "$script"
  if ! submitted=$(sbatch --parsable "$script"); then
    rm -f "$script"
    echo "run.sh: error: sbatch refused the job (its message is above); nothing was submitted" >&2
    exit 1
  fi
  job=${submitted%%;*}
  mv "$script" "$ABS_LOGDIR/jobs/$job.sbatch"
  echo "submitted job $job: $N_RUNS runs (array 0-$(( N_RUNS - 1 )), at most $CAP at once), script $ABS_LOGDIR/jobs/$job.sbatch"
  echo "logs:   $ABS_LOGDIR/jobs/${job}_<index>.log"
  echo "watch:  squeue -j $job    bash run.sh --status $ABS_LOGDIR"
  echo "cancel: scancel $job"
  exit 0
fi

run_one() {  # one local run; exit 2 means another process holds its run folder: skip it
  local task=$1 seed=$2 log=$3 code=0
  shift 3
  "$@" >> "$log" 2>&1 || code=$?
  case "$code" in
    0) return 0 ;;
    2) echo "skipped (held by another process): $task seed $seed, see $log"; return 0 ;;
    *) echo "failed: $task seed $seed (exit $code), see $log" >&2; return 1 ;;
  esac
}

[ "$DRY_RUN" = 1 ] || mkdir -p "$LOGDIR/jobs"
running=0
status=0
for task in "${TASKS[@]}"; do
  for seed in "${SEED_LIST[@]}"; do
    run_command "$task" "$seed" "$LOGDIR"
    log="$LOGDIR/jobs/${task}__seed${seed}.log"
    if [ "$DRY_RUN" = 1 ]; then
      printf '%q ' "${RUN[@]}"; printf '>> %q 2>&1\n' "$log"
      continue
    fi
    if [ "$running" -ge "$JOBS" ]; then
      wait -n || status=1
      running=$((running - 1))
    fi
    echo "start: $task seed $seed -> $log"
    run_one "$task" "$seed" "$log" "${RUN[@]}" &
    running=$((running + 1))
  done
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
