"""Learning curves, sample-efficiency curves and a results table from run directories.

    python -m core.plot <logdir> [<logdir> ...] [-out DIR] [-at FRAMES ...] [-every FRAMES] [-seeds]

Every directory (at any depth) holding both ``progress.csv`` and ``config.json`` is a run. Runs
are grouped by task, variant and any algorithmic setting that differs between runs of that task
and variant; seeds of a group are aligned on frames (never on row index) as step functions.
Groups are only compared at equal frames: the variants of a task at the frames all of them reached,
and aggregates across tasks at a budget with a TD3 reference score (``core.tasks.TD3_REFERENCES``).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from core import stats
from core.tasks import PAPER_SCORES, TD3_REFERENCES, task_family
from parameters import parser_defaults, recorded_settings

# Settings that are per-run bookkeeping, never a reason to split runs into groups.
IGNORED_SETTINGS: frozenset[str] = frozenset({
    "seed", "logdir", "resume", "num_frames", "checkpoint_every", "threads", "disable_cuda",
    "wandb_mode", "wandb_project", "capture_video",
})
VARIANT_SETTINGS: frozenset[str] = frozenset({"env", "EA", "RL"})  # named by the task and the variant
VARIANT_ORDER = ("ERL-Re2", "EA only", "RL only")
GRID_POINTS = 100
CURVE_POINTS = 25  # points of the sample-efficiency curves (each one bootstrapped)
SCORE = "best_reward"


@dataclass
class Run:
    path: Path
    config: dict
    columns: dict[str, np.ndarray] = field(repr=False)

    @property
    def task(self) -> str:
        return self.config.get("task") or task_family(self.config["env"])

    @property
    def variant(self) -> str:
        return self.config.get("variant", "?")

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(frames, best_reward) sorted by frames, rows with a missing value dropped."""
        f, y = self.columns["frames"], self.columns[SCORE]
        ok = np.isfinite(f) & np.isfinite(y)
        order = np.argsort(f[ok], kind="stable")
        return f[ok][order], y[ok][order]


def _column(values: list[str]) -> np.ndarray:
    """Floats (empty cell -> NaN) when every non-empty cell parses, else strings."""
    try:
        return np.array([float(v) if v.strip() else math.nan for v in values], dtype=float)
    except ValueError:
        return np.array(values, dtype=object)


def read_run(path: Path) -> Run | None:
    """The run in ``path``, or ``None`` (with a warning) when it has no usable data rows."""
    with open(path / "progress.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "frames" not in rows[0] or SCORE not in rows[0]:
        print(f"warning: skipping {path}: progress.csv has no data rows", file=sys.stderr)
        return None
    config = json.loads((path / "config.json").read_text())
    columns = {k: _column([r.get(k) or "" for r in rows]) for k in rows[0] if k is not None}
    run = Run(path=path, config=config, columns=columns)
    if run.curve()[0].size == 0:
        print(f"warning: skipping {path}: no row with frames and {SCORE}", file=sys.stderr)
        return None
    return run


def find_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Every run directory (any depth) under ``paths`` with both files, in path order."""
    dirs: set[Path] = set()
    for p in map(Path, paths):
        candidates = [p / "progress.csv", *p.rglob("progress.csv")] if p.is_dir() else []
        dirs.update(c.parent.resolve() for c in candidates
                    if c.is_file() and (c.parent / "config.json").is_file())
    return [run for d in sorted(dirs) if (run := read_run(d)) is not None]


def _fmt_value(value: object) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def group_runs(runs: Sequence[Run]) -> dict[tuple[str, str], list[Run]]:
    """Runs keyed by (task, label); label = variant + ``key=value`` for each setting that is not at its
    built-in default, and each per-task setting that differs between runs of the same task and variant
    (bookkeeping settings in IGNORED_SETTINGS aside)."""
    by_variant: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by_variant.setdefault((run.task, run.variant), []).append(run)
    defaults = parser_defaults()  # today's defaults, not those a run recorded before a default changed
    groups: dict[tuple[str, str], list[Run]] = {}
    for (task, variant), members in by_variant.items():
        settings = [vars(recorded_settings(r.config.get("settings", {}))) for r in members]
        keys = sorted(set().union(*settings) - IGNORED_SETTINGS)
        differing = [k for k in keys if len({json.dumps(s.get(k), sort_keys=True)
                                             for s in settings}) > 1]
        for run, s in zip(members, settings):
            # A setting at its built-in default is not named: the same variant reads the same in every task.
            # One away from a built-in default is named even when every run of the group shares it (runs
            # recorded before a default changed); per-task settings (no built-in default) only when they differ.
            named = [k for k in keys if k not in VARIANT_SETTINGS and (
                (k in differing and (defaults.get(k) is None or s.get(k) != defaults[k]))
                or (defaults.get(k) is not None and s.get(k) != defaults[k]))]
            label = " ".join([variant] + [f"{k}={_fmt_value(s.get(k))}" for k in named])
            groups.setdefault((task, label), []).append(run)

    def order(key: tuple[str, str]) -> tuple:
        variant = groups[key][0].variant
        rank = VARIANT_ORDER.index(variant) if variant in VARIANT_ORDER else len(VARIANT_ORDER)
        return key[0], rank, key[1]

    return {k: groups[k] for k in sorted(groups, key=order)}


def common_frames(runs: Sequence[Run]) -> tuple[float, float]:
    """(smallest first frame, last frame count that every run reached)."""
    curves = [r.curve()[0] for r in runs]
    return min(f[0] for f in curves), min(f[-1] for f in curves)


def frame_grid(runs: Sequence[Run], n: int = GRID_POINTS) -> np.ndarray:
    start, end = common_frames(runs)
    return np.linspace(start, end, n) if end > start else np.array([end], dtype=float)


def align(runs: Sequence[Run], grid: np.ndarray | Sequence[float]) -> np.ndarray:
    """[n_runs, len(grid)]: each run's last best_reward logged at or before each grid frame
    (NaN before its first row)."""
    grid = np.asarray(grid, dtype=float)
    out = np.full((len(runs), grid.size), np.nan)
    for i, run in enumerate(runs):
        frames, score = run.curve()
        idx = np.searchsorted(frames, grid, side="right") - 1
        out[i, idx >= 0] = score[idx[idx >= 0]]
    return out


def best_so_far(runs: Sequence[Run], grid: np.ndarray | Sequence[float]) -> np.ndarray:
    """Like ``align`` but each run's highest best_reward logged at or before each grid frame."""
    grid = np.asarray(grid, dtype=float)
    out = np.full((len(runs), grid.size), np.nan)
    for i, run in enumerate(runs):
        frames, score = run.curve()
        best = np.maximum.accumulate(score)
        idx = np.searchsorted(frames, grid, side="right") - 1
        out[i, idx >= 0] = best[idx[idx >= 0]]
    return out


def _stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, population std and count over axis 0, ignoring NaN."""
    ok = np.isfinite(values)
    n = ok.sum(axis=0)
    filled = np.where(ok, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / n
        std = np.sqrt(np.where(ok, (values - mean) ** 2, 0.0).sum(axis=0) / n)
    return mean, std, n


def final_scores(runs: Sequence[Run]) -> tuple[float, np.ndarray]:
    """(frames, each run's score) at the last frame count all runs reached, in the order of ``runs``."""
    frames = common_frames(runs)[1]
    return frames, align(runs, [frames])[:, 0]


def _by_seed(runs: Sequence[Run]) -> list[Run]:
    return sorted(runs, key=lambda r: (r.config.get("seed", 0), str(r.path)))


def _num(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"  # normalised scores are near 1, raw ones in the thousands


def _iqm_cell(scores: np.ndarray) -> str:
    """``IQM [lo, hi]`` over the rows of a [runs, tasks] matrix; † marks an n too small for a CI."""
    point, lo, hi = stats.iqm_with_ci(scores)
    return f"{_num(point)} [{_num(lo)}, {_num(hi)}]" + ("" if stats.meaningful(len(scores)) else " †")


@dataclass
class Aggregate:
    """Variants compared across the same tasks at one frame budget, each seed's score there divided by
    the TD3 reference score at that budget for its task."""
    frames: int
    reference: str
    tasks: list[str]
    members: dict[str, list[list[Run]]]  # label -> per task, its runs (the same number of seeds each)
    scores: dict[str, np.ndarray]  # label -> [seeds, tasks] normalised scores


def aggregates(groups: dict[tuple[str, str], list[Run]]) -> list[Aggregate]:
    """One aggregate per reference budget (``TD3_REFERENCES``) and set of two or more tasks: the
    groups whose every seed ran at least that far, on tasks with a reference score at that budget,
    scored at the budget; variants share a table only when they cover the same tasks, and each
    task contributes as many seeds as the task with the fewest (the lowest seeds are kept)."""
    out = []
    for frames, (reference, td3) in sorted(TD3_REFERENCES.items()):
        by_label: dict[str, list[tuple[str, list[Run]]]] = {}
        for (task, label), runs in groups.items():
            if task in td3 and len(_reached(runs, frames)) == len(runs):
                by_label.setdefault(label, []).append((task, _by_seed(runs)))
        by_tasks: dict[tuple[str, ...], dict[str, list[list[Run]]]] = {}
        for label, cols in by_label.items():
            if len(cols) >= 2:
                n = min(len(runs) for _, runs in cols)
                by_tasks.setdefault(tuple(t for t, _ in cols), {})[label] = [runs[:n] for _, runs in cols]
        for tasks, members in by_tasks.items():
            scores = {label: np.stack([align(runs, [frames])[:, 0] / td3[task] for task, runs in zip(tasks, per_task)], axis=1)
                      for label, per_task in members.items()}
            out.append(Aggregate(frames, reference, list(tasks), members, scores))
    return out


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


def _score_cell(runs: Sequence[Run], frames: float) -> str:
    mean, std, n = _stats(align(runs, [frames]))
    return f"{mean[0]:.1f} ± {std[0]:.1f} (n={int(n[0])})"


def summary_table(groups: dict[tuple[str, str], list[Run]]) -> str:
    """Markdown table: one row per group; the variants of a task side by side at the last frame count
    every seed of every variant of that task reached, then each group at its own last common frame count."""
    task_frames: dict[str, float] = {}
    for (task, _), runs in groups.items():
        task_frames[task] = min(task_frames.get(task, math.inf), common_frames(runs)[1])
    lines = ["| task | variant | frames (task) | score | IQM [95% CI] | frames (own) | score | paper ERL-Re² @1M | paper TD3 @1M |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    small_n = False
    for (task, label), runs in groups.items():
        frames, own = task_frames[task], common_frames(runs)[1]
        small_n |= not stats.meaningful(len(runs))
        lines.append(f"| {task} | {label} | {frames:,.0f} | {_score_cell(runs, frames)} "
                     f"| {_iqm_cell(align(runs, [frames]))} | {own:,.0f} | {_score_cell(runs, own)} "
                     f"| {_paper(task, 'ERL-Re2')} | {_paper(task, 'TD3')} |")
    footnote = ("Score: best_reward, each seed's latest value logged at or before the frame count, mean ± population "
                "standard deviation (ddof=0) over seeds. *frames (task)*: the last frame count that every seed of every "
                "variant of the task reached, so that the variants of a task compare at equal frames; *frames (own)*: "
                "the last one every seed of this group reached. The paper's scores are at 1M frames: comparable only "
                "with runs that reached 1M.")
    lines += ["", footnote, "", aggregate_table(groups).rstrip("\n")]
    lines += ["", (f"IQM: interquartile mean (the 25 % trimmed mean, over seeds; across tasks over seeds × tasks); [CI]: 95 % "
                   f"stratified-bootstrap confidence interval (rliable, percentile, {stats.REPS} replications, "
                   f"seed {stats.BOOTSTRAP_SEED}).")]
    if small_n:
        lines.append(f"† n < {stats.MIN_MEANINGFUL_N} seeds: a bootstrap over so few seeds cannot estimate the "
                     "uncertainty; these intervals are not meaningful at this n.")
    return "\n".join(lines) + "\n"


def _reached(runs: Sequence[Run], frames: float) -> list[Run]:
    """The runs whose last row is at or past ``frames``."""
    return [r for r in runs if r.curve()[0][-1] >= frames]


def scores_at_table(groups: dict[tuple[str, str], list[Run]], at: Sequence[float]) -> str:
    """Markdown: per group, best_reward at each frame count of ``at`` as mean ± std (n), over the
    seeds that ran at least that far (— when none did)."""
    head = " | ".join(f"at {f:,.0f}" for f in at)
    lines = [f"| task | variant | {head} |", "|---|---|" + "---:|" * len(at)]
    for (task, label), runs in groups.items():
        cells = []
        for f in at:
            reached = _reached(runs, f)
            if not reached:
                cells.append("—")
                continue
            values = align(_by_seed(reached), [f])
            mean, std, n = _stats(values)
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
            reached = _reached(groups[key], f)
            mean, _, n = _stats(best_so_far(reached, [f])) if reached else (None, None, [0])
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
            reached = _reached(_by_seed(runs), f)
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
        for run in _by_seed(runs):
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


def frame_window(text: str) -> tuple[float, float]:
    """``LO:HI`` (frames, e.g. ``80000:100000``) → (LO, HI) with 0 <= LO < HI."""
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be LO:HI in frames, e.g. 80000:100000 (got {text!r})") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        raise argparse.ArgumentTypeError(f"must be LO:HI with 0 <= LO < HI (got {text!r})")
    return lo, hi


def rl_window_table(groups: dict[tuple[str, str], list[Run]], windows: Sequence[tuple[float, float]]) -> str:
    """Markdown: per group, each seed's mean RL test score (``rl_score``) over its rows with LO <= frames
    <= HI, and their mean ± std; a seed with no RL test in a window is left out of it."""
    lines = ["| task | variant | " + " | ".join(f"RL test, mean over {lo:,.0f}–{hi:,.0f}" for lo, hi in windows) + " |",
             "|---|---|" + "---:|" * len(windows)]
    for (task, label), runs in groups.items():
        cells = []
        for lo, hi in windows:
            means = []
            for run in _by_seed(runs):
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


def _legend_label(text: str) -> str:
    """A legend entry wrapped onto lines of at most 36 characters, so that long variant names stay in the panel."""
    return textwrap.fill(text, 36)


def learning_curves(groups: dict[tuple[str, str], list[Run]], seeds: bool = False) -> Figure:
    """One panel per task: mean best_reward over seeds with a 95% band over the frames every seed reached,
    paper marks dashed; with ``seeds``, also each seed's own curve as a thin line to its last row."""
    tasks = sorted({task for task, _ in groups})
    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig = Figure(figsize=(5.0 * ncols, 3.8 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, task in zip(axes, tasks):
        for (t, label), runs in groups.items():
            if t != task:
                continue
            grid = frame_grid(runs)
            mean, std, n = _stats(align(runs, grid))
            (line,) = ax.plot(grid, mean, label=_legend_label(f"{label} (n={len(runs)})"),
                              marker="o" if grid.size == 1 else None)
            if len(runs) > 1:
                with np.errstate(invalid="ignore", divide="ignore"):
                    half = np.where(n > 1, 1.96 * std / np.sqrt(n), np.nan)
                ax.fill_between(grid, mean - half, mean + half, color=line.get_color(),
                                alpha=0.2, linewidth=0)
            if seeds:
                for run in _by_seed(runs):
                    frames, score = run.curve()
                    ax.plot(frames, score, color=line.get_color(), linewidth=0.7, alpha=0.45, drawstyle="steps-post",
                            gid=f"seed {run.config['seed']}")
        for algo, color in (("ERL-Re2", "black"), ("TD3", "gray")):
            if algo in PAPER_SCORES.get(task, {}):
                ax.axhline(PAPER_SCORES[task][algo], color=color, linestyle="--", linewidth=1,
                           label=f"paper {algo} @1M")
        ax.set_title(task)
        ax.set_xlabel("frames")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_ylabel(SCORE)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    if seeds:
        fig.suptitle("thin lines: each seed's own curve, to its last row", fontsize="medium")
    return fig


def plot_groups(groups: dict[tuple[str, str], list[Run]], path: str | Path, seeds: bool = False) -> None:
    learning_curves(groups, seeds).savefig(path, dpi=120)


def _curve_grid(runs: Sequence[Run]) -> np.ndarray:
    """CURVE_POINTS frames from the latest first row to the last common frame: every run has a value at each."""
    start, end = max(r.curve()[0][0] for r in runs), common_frames(runs)[1]
    return np.linspace(start, end, CURVE_POINTS) if end > start else np.array([end], dtype=float)


def _draw_iqm(ax, grid: np.ndarray, scores: np.ndarray, label: str) -> None:
    if not np.isfinite(scores).all():  # runs that share no frame range: nothing to aggregate
        return
    mid, lo, hi = stats.iqm_curve(scores)
    (line,) = ax.plot(grid, mid, label=label, marker="o" if grid.size == 1 else None)
    ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)


def plot_sample_efficiency(groups: dict[tuple[str, str], list[Run]], path: str | Path) -> None:
    """IQM over seeds with its 95% CI against frames: one panel per task, and one for all tasks with
    the aggregates of ``aggregates`` (scores at a reference budget over TD3's score at that budget)."""
    tasks = sorted({task for task, _ in groups})
    across = aggregates(groups)
    panels = tasks + (["all tasks"] if across else [])
    ncols = min(3, len(panels))
    fig = Figure(figsize=(5.0 * ncols, 3.8 * math.ceil(len(panels) / ncols)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(math.ceil(len(panels) / ncols), ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels):
        if panel == "all tasks":
            series: dict[str, list[tuple[int, tuple[float, float, float]]]] = {}
            for agg in across:
                for label, matrix in agg.scores.items():
                    series.setdefault(f"{label}: {', '.join(agg.tasks)}", []).append((agg.frames, stats.iqm_with_ci(matrix)))
            for name, points in series.items():
                frames = [f for f, _ in points]
                mid, lo, hi = (np.array(v) for v in zip(*(p for _, p in points)))
                ax.errorbar(frames, mid, yerr=[mid - lo, hi - mid], marker="o", capsize=3, label=name)
            ax.set_xlim(0, 1.1 * max(agg.frames for agg in across))
            ax.set_ylabel("score / TD3 at the same frames")
        else:
            for (task, label), runs in groups.items():
                if task == panel:
                    grid = _curve_grid(runs)
                    _draw_iqm(ax, grid, align(runs, grid)[:, None, :], _legend_label(f"{label} (n={len(runs)})"))
            ax.set_ylabel(f"{SCORE} (IQM)")
        ax.set_title(panel)
        ax.set_xlabel("frames")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    note = "" if all(stats.meaningful(len(r)) for r in groups.values()) else \
        f"; n < {stats.MIN_MEANINGFUL_N} seeds: intervals not meaningful"
    fig.suptitle(f"IQM over seeds, 95% stratified-bootstrap CI (rliable){note}", fontsize="medium")
    fig.savefig(path, dpi=120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.plot", description=__doc__.split("\n")[0])
    parser.add_argument("logdirs", nargs="+", help="directories searched (any depth) for runs")
    parser.add_argument("-out", "--out", help="output folder (default: the first logdir)")
    parser.add_argument("-at", "--at", type=float, nargs="+", metavar="FRAMES",
                        help="also tabulate each group's score at these frame counts (mean ± std (n))")
    parser.add_argument("-every", "--every", type=float, metavar="FRAMES",
                        help="also tabulate the mean best-so-far score every FRAMES frames")
    parser.add_argument("-best_at", "--best_at", type=float, nargs="+", metavar="FRAMES",
                        help="also tabulate each seed's best-so-far score at these frame counts, and their mean ± std")
    parser.add_argument("-rl_window", "--rl_window", type=frame_window, nargs="+", metavar="LO:HI",
                        help="also tabulate each seed's mean RL test score over these frame windows, and their mean ± std")
    parser.add_argument("-cost", "--cost", action="store_true",
                        help="also tabulate each run's frames, wall time, frames/s and commit")
    parser.add_argument("-seeds", "--seeds", action="store_true",
                        help="also draw each seed's own learning curve (thin lines, each to its last row)")
    args = parser.parse_args(argv)
    for flag, values in (("-at", args.at or []), ("-every", [args.every] if args.every is not None else []),
                         ("-best_at", args.best_at or [])):
        if any(not math.isfinite(v) or v <= 0 for v in values):
            parser.error(f"{flag} takes positive frame counts, got {' '.join(map(str, values))}")
    runs = find_runs(args.logdirs)
    if not runs:
        print(f"error: no runs with data under {' '.join(args.logdirs)}", file=sys.stderr)
        return 1
    out = Path(args.out or args.logdirs[0])
    out.mkdir(parents=True, exist_ok=True)
    groups = group_runs(runs)
    table = summary_table(groups)
    if args.at:
        table += "\n## Score at fixed frame counts\n\n" + scores_at_table(groups, args.at)
    if args.every:
        table += f"\n## Best-so-far score every {args.every:,.0f} frames\n\n" + best_so_far_table(groups, args.every)
    if args.best_at:
        table += "\n## Best-so-far score per seed\n\n" + best_at_table(groups, args.best_at)
    if args.rl_window:
        table += "\n## Mean RL test score over frame windows, per seed\n\n" + rl_window_table(groups, args.rl_window)
    if args.cost:
        table += "\n## Runs: frames, wall time and speed\n\n" + cost_table(groups)
    (out / "results.md").write_text(table)
    plot_groups(groups, out / "learning_curves.png", args.seeds)
    plot_sample_efficiency(groups, out / "sample_efficiency.png")
    print(table, end="")
    print(f"wrote {out / 'results.md'}, {out / 'learning_curves.png'} and {out / 'sample_efficiency.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
