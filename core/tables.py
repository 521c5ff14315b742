"""The report's markdown tables (``results.md``): the variants of each task side by side, the
aggregates across tasks with IQM [95% CI], and the optional tables of ``python -m core.plot`` (scores at
frame counts, best so far, per-seed values, RL test windows, wall time and speed).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from core import stats
from core.run_data import Run, aggregates, align, best_so_far, by_seed, common_frames, mean_std_n, reaching
from core.tasks import PAPER_SCORES, PUBLISHED_TD3_1M, TD3_REFERENCES


def _num(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"  # normalised scores are near 1, raw ones in the thousands


def _iqm_cell(scores: np.ndarray) -> str:
    """``IQM [lo, hi]`` over the rows of a [runs, tasks] matrix; † marks an n too small for a CI."""
    point, lo, hi = stats.iqm_with_ci(scores)
    return f"{_num(point)} [{_num(lo)}, {_num(hi)}]" + ("" if stats.meaningful(len(scores)) else " †")


def aggregate_table(groups: dict[tuple[str, str], list[Run]]) -> str:
    """Markdown: per aggregate (a frame budget and a set of tasks), per variant, IQM [95% CI] of the
    seeds' scores at that budget divided by the TD3 reference at that budget; or one sentence saying
    why there is none."""
    found = aggregates(groups)
    if not found:
        budgets = ", ".join(f"{f:,}" for f in sorted(TD3_REFERENCES))
        return (f"Across tasks: no table. An aggregate compares variants on the same tasks at one frame budget "
                f"with a TD3 reference score at that budget ({budgets} frames), and no variant has every seed of "
                "two or more such tasks past one of them.\n")
    lines = []
    for agg in found:
        lines += [(f"Across tasks at {agg.frames:,} frames: each seed's score at {agg.frames:,} frames divided by "
                   f"{agg.reference} for its task, aggregated over tasks and seeds."), "",
                  f"| variant | tasks | seeds per task | score / TD3 at {agg.frames:,}: IQM [95% CI] | mean |",
                  "|---|---|---:|---:|---:|"]
        lines += [f"| {label} | {', '.join(agg.tasks)} | {len(m)} | {_iqm_cell(m)} | {m.mean():.2f} |"
                  for label, m in agg.scores.items()]
        lines.append("")
    return "\n".join(lines)


def _paper(task: str, algo: str) -> str:
    score = PAPER_SCORES.get(task, {}).get(algo)
    return "—" if score is None else f"{score:.0f}"


def _published_td3(task: str) -> str:
    return "; ".join(f"{source} {m:,.0f} ± {s:,.0f}" for source, (m, s) in PUBLISHED_TD3_1M.get(task, {}).items()) or "—"


def _score_cell(runs: Sequence[Run], frames: float) -> str:
    mean, std, n = mean_std_n(align(runs, [frames]))
    return f"{mean[0]:.1f} ± {std[0]:.1f} (n={int(n[0])})"


def summary_table(groups: dict[tuple[str, str], list[Run]]) -> str:
    """Markdown table: one row per group; the variants of a task side by side at the last frame count
    every seed of every variant of that task reached, then each group at its own last common frame count."""
    task_frames: dict[str, float] = {}
    for (task, _), runs in groups.items():
        task_frames[task] = min(task_frames.get(task, math.inf), common_frames(runs)[1])
    lines = [("| task | variant | frames (task) | score | IQM [95% CI] | frames (own) | score | paper ERL-Re² @1M | paper TD3 @1M "
             "| published TD3 @1M |"), "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    small_n = False
    for (task, label), runs in groups.items():
        frames, own = task_frames[task], common_frames(runs)[1]
        small_n |= not stats.meaningful(len(runs))
        lines.append(f"| {task} | {label} | {frames:,.0f} | {_score_cell(runs, frames)} "
                     f"| {_iqm_cell(align(runs, [frames]))} | {own:,.0f} | {_score_cell(runs, own)} "
                     f"| {_paper(task, 'ERL-Re2')} | {_paper(task, 'TD3')} | {_published_td3(task)} |")
    footnote = ("Score: best_reward, each seed's latest value logged at or before the frame count, mean ± population "
                "standard deviation (ddof=0) over seeds. *frames (task)*: the last frame count that every seed of every "
                "variant of the task reached, so that the variants of a task compare at equal frames; *frames (own)*: "
                "the last one every seed of this group reached. The paper's scores are at 1M frames: comparable only "
                "with runs that reached 1M. Published TD3: each seed's best mean test return within 1M steps, mean ± std "
                "over 10 seeds (Tianshou's benchmark, v3 tasks; the TD3 paper's Table 1, v1 tasks), as tabulated in "
                "thu-ml/tianshou's examples/mujoco/README.md (commit 0c0424e).")
    lines += ["", footnote, "", aggregate_table(groups).rstrip("\n")]
    lines += ["", (f"IQM: interquartile mean (the 25 % trimmed mean, over seeds; across tasks over seeds × tasks); [CI]: 95 % "
                   f"stratified-bootstrap confidence interval (rliable, percentile, {stats.REPS} replications, "
                   f"seed {stats.BOOTSTRAP_SEED}).")]
    if small_n:
        lines.append(f"† n < {stats.MIN_MEANINGFUL_N} seeds: a bootstrap over so few seeds cannot estimate the "
                     "uncertainty; these intervals are not meaningful at this n.")
    return "\n".join(lines) + "\n"


def scores_at_table(groups: dict[tuple[str, str], list[Run]], at: Sequence[float]) -> str:
    """Markdown: per group, best_reward at each frame count of ``at`` as mean ± std (n), over the
    seeds that ran at least that far (— when none did)."""
    head = " | ".join(f"at {f:,.0f}" for f in at)
    lines = [f"| task | variant | {head} |", "|---|---|" + "---:|" * len(at)]
    for (task, label), runs in groups.items():
        cells = []
        for f in at:
            reached = reaching(runs, f)
            if not reached:
                cells.append("—")
                continue
            values = align(by_seed(reached), [f])
            mean, std, n = mean_std_n(values)
            cells.append(f"{mean[0]:.1f} ± {std[0]:.1f} ({int(n[0])}) [" + ", ".join(f"{v:.1f}" for v in values[:, 0]) + "]")
        lines.append(f"| {task} | {label} | " + " | ".join(cells) + " |")
    lines += ["", ("Each seed's best_reward at the frame count: its latest row logged at or before it (rows are "
                   "generations, so up to one generation earlier); mean ± population std (ddof=0) over the seeds "
                   "that ran at least that far (their number) [each seed's value, seed 1 first].")]
    return "\n".join(lines) + "\n"


def best_so_far_table(groups: dict[tuple[str, str], list[Run]], every: float) -> str:
    """Markdown: one row per multiple of ``every`` frames, one column per group: the mean over
    seeds of each seed's best-so-far best_reward (its highest value logged up to that frame)."""
    end = max(r.curve()[0][-1] for runs in groups.values() for r in runs)
    points = np.arange(every, end + 1, every)
    keys = list(groups)
    lines = ["| frames | " + " | ".join(f"{t} {label}" for t, label in keys) + " |",
             "|---:|" + "---:|" * len(keys)]
    for f in points:
        cells = []
        for key in keys:
            reached = reaching(groups[key], f)
            mean, _, n = mean_std_n(best_so_far(reached, [f])) if reached else (None, None, [0])
            cells.append(f"{mean[0]:.1f} ({int(n[0])})" if reached and n[0] else "—")
        lines.append(f"| {f:,.0f} | " + " | ".join(cells) + " |")
    lines += ["", ("Mean over seeds of each seed's best-so-far best_reward (the highest value it logged at or "
                   "before the frame count; the curve most implementations publish), over the seeds that ran at "
                   "least that far, their number in brackets.")]
    return "\n".join(lines) + "\n"


def _seeds_cell(values: Sequence[float]) -> str:
    """``mean ± std (n) [v1, v2, ...]`` (population std, ddof=0; the values in the order given)."""
    v = np.asarray(values, dtype=float)
    return f"{v.mean():,.0f} ± {v.std():,.0f} ({v.size}) [" + ", ".join(f"{x:,.0f}" for x in v) + "]"


def best_at_table(groups: dict[tuple[str, str], list[Run]], at: Sequence[float]) -> str:
    """Markdown: per group, each seed's best-so-far best_reward at each frame count of ``at`` and their
    mean ± std, over the seeds that ran at least that far (seed 1 first)."""
    lines = ["| task | variant | " + " | ".join(f"best so far at {f:,.0f}" for f in at) + " |",
             "|---|---|" + "---:|" * len(at)]
    for (task, label), runs in groups.items():
        cells = []
        for f in at:
            reached = reaching(by_seed(runs), f)
            cells.append(_seeds_cell(best_so_far(reached, [f])[:, 0]) if reached else "—")
        lines.append(f"| {task} | {label} | " + " | ".join(cells) + " |")
    lines += ["", ("Each seed's highest best_reward logged at or before the frame count; mean ± population std "
                   "(ddof=0) (number of seeds) [each seed's value, seed 1 first], over the seeds that ran that far.")]
    return "\n".join(lines) + "\n"


def cost_table(groups: dict[tuple[str, str], list[Run]]) -> str:
    """Markdown: one row per run: its last frame count, its wall time (``time_s`` of its last row: seconds
    run, summed over resumes) and frames/s, and the commit it ran."""
    lines = ["| task | variant | seed | frames | wall time | frames/s | commit |", "|---|---|---:|---:|---:|---:|---|"]
    for (task, label), runs in groups.items():
        for run in by_seed(runs):
            frames, seconds = run.columns["frames"], run.columns.get("time_s")
            last = float(frames[-1])
            ok = seconds is not None and seconds.dtype != object and np.isfinite(seconds[-1]) and seconds[-1] > 0
            wall = f"{seconds[-1] / 3600:.2f} h" if ok else "—"
            fps = f"{last / seconds[-1]:.1f}" if ok else "—"
            commit = (run.config.get("git_commit") or "—")[:7]
            lines.append(f"| {task} | {label} | {run.config.get('seed', '?')} | {last:,.0f} | {wall} | {fps} | {commit} |")
    lines += ["", ("Wall time: the `time_s` column of the run's last row, the seconds it ran, summed over resumes "
                   "(time lost to an interruption after the last checkpoint is run again and counted again; time "
                   "paused with SIGSTOP counts); frames/s = frames / wall time, warm-up included.")]
    return "\n".join(lines) + "\n"


def rl_window_table(groups: dict[tuple[str, str], list[Run]], windows: Sequence[tuple[float, float]]) -> str:
    """Markdown: per group, each seed's mean RL test score (``rl_score``) over its rows with LO <= frames
    <= HI, and their mean ± std; a seed with no RL test in a window is left out of it."""
    lines = ["| task | variant | " + " | ".join(f"RL test, mean over {lo:,.0f}–{hi:,.0f}" for lo, hi in windows) + " |",
             "|---|---|" + "---:|" * len(windows)]
    for (task, label), runs in groups.items():
        cells = []
        for lo, hi in windows:
            means = []
            for run in by_seed(runs):
                frames, rl = run.columns["frames"], run.columns.get("rl_score")
                if rl is None or rl.dtype == object:
                    continue
                inside = rl[(frames >= lo) & (frames <= hi) & np.isfinite(rl)]
                if inside.size:
                    means.append(float(inside.mean()))
            cells.append(_seeds_cell(means) if means else "—")
        lines.append(f"| {task} | {label} | " + " | ".join(cells) + " |")
    lines += ["", ("Each seed's mean RL test score (rl_score, the mean of the RL agent's noise-free test episodes) "
                   "over its generations logged inside the window; mean ± population std (ddof=0) (number of "
                   "seeds) [each seed's value, seed 1 first].")]
    return "\n".join(lines) + "\n"
