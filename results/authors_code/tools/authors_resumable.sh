#!/usr/bin/env bash
# The authors' code with the paper's settings, as ../shared/reference/run.sh runs it (same flags, same
# environment variables), made resumable by authors_resume.py: start-or-resume, the same command again goes on
# from OUTDIR/checkpoint.pkl. Each session writes OUTDIR/parts/progress.K.csv; OUTDIR/progress.csv is their
# merge (a part's rows up to the generation the next part resumed after). Evidence tooling kept in results/: nothing in the project imports it; it runs their copy, made by the harness, outside the tree.
# Usage: authors_resumable.sh ENV SEED FRAMES OUTDIR [extra run_re2.py flags...]
# Env: ERLRE2_CODE (default /work/erlre2-authors), ERLRE2_PYTHON, ERLRE2_RL_ONLY=1, ERLRE2_INIT_STEPS (smoke only), CKPT_SECONDS.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
env_id="$1"; seed="$2"; frames="$3"; outdir="$4"; shift 4
code="${ERLRE2_CODE:-/work/erlre2-authors}"; py="${ERLRE2_PYTHON:-python}"
task="${env_id%%-v*}"; version="${env_id#"$task"}"; version="${version#-}"
if [ -z "$version" ] || [ "$version" = v2 ]; then version=v4; fi
# The paper's per-task settings (TD3 version), as this project keeps them in core/tasks.py.
repo="$(cd "$here/../../.." && pwd)"
set_=$(cd "$repo" && "$py" -c "import sys; from core.tasks import TD3_SETTINGS as S; s = S.get(sys.argv[1]); print(s.theta, s.frac, s.time_steps, s.K, s.gamma) if s else sys.exit(1)" "$task") \
    || { echo "authors_resumable.sh: error: no paper settings for '$task' (accepted: HalfCheetah, Hopper, Walker2d, Ant, Humanoid, Swimmer)" >&2; exit 2; }
read -r theta frac time_steps K gamma <<< "$set_"
mkdir -p "$outdir/parts"; outdir="$(cd "$outdir" && pwd)"
k=$(ls "$outdir/parts" | grep -c '^progress\.[0-9]*\.csv$' || true)
ea_flag=-EA; if [ -n "${ERLRE2_RL_ONLY:-}" ]; then ea_flag=""; fi
runner=("$py" "$here/authors_resume.py" "$outdir/checkpoint.pkl")
if [ -n "${ERLRE2_INIT_STEPS:-}" ]; then runner+=(/work/shared/reference/short_warmup.py "$ERLRE2_INIT_STEPS"); fi
cmd=("${runner[@]}" "$code/run_re2.py" -env="$task-v2" -seed="$seed" -num_frames="$frames"
     -disable_cuda -OFF_TYPE=1 -pr=64 -pop_size=5 -prob_reset_and_sup=0.05
     -time_steps="$time_steps" -theta="$theta" -frac="$frac" -gamma="$gamma" -TD3_noise=0.2
     ${ea_flag} -RL -K="$K" -state_alpha=0.0 -actor_alpha=1.0 -EA_actor_alpha=1.0 -tau=0.005
     -logdir="$outdir" -csv="$outdir/parts/progress.$k.csv" "$@")
export ERLRE2_GYM_VERSION="$version" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONUNBUFFERED=1
export AUTHORS_STATS="$outdir/stats.jsonl"
export WANDB_MODE="${WANDB_MODE:-disabled}" WANDB_DIR="$outdir" WANDB_SILENT=true
{
    echo "# part $k: $(date -u +%Y-%m-%dT%H:%M:%SZ)  gymnasium $task-$version  WANDB_MODE=$WANDB_MODE  (authors_resumable.sh, start-or-resume)"
    [ -f "$code/HARNESS.txt" ] && sed 's/^/# /' "$code/HARNESS.txt"
    printf '%q ' "${cmd[@]}"; echo
} >> "$outdir/command.txt"
cd "$outdir"
set +e
"${cmd[@]}" >> "$outdir/console.log" 2>&1
rc=$?
set -e
python "$here/merge_parts.py" "$outdir"
exit $rc
