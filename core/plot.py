"""Learning curves, sample-efficiency curves and a results table from run directories.

    python -m core.plot <logdir> [<logdir> ...] [-out DIR] [-at FRAMES ...] [-every FRAMES] [-seeds]

Every directory (at any depth) holding both ``progress.csv`` and ``config.json`` is a run. Runs
are grouped by task, variant and any algorithmic setting that differs between runs of that task
and variant; seeds of a group are aligned on frames (never on row index) as step functions.
Groups are only compared at equal frames: the variants of a task at the frames all of them reached,
and aggregates across tasks at a budget with a TD3 reference score (``core.tasks.TD3_REFERENCES``).

This module draws the figures and runs the command line; reading, grouping and aligning runs:
``core/run_data.py``; the tables: ``core/tables.py``.
"""
from __future__ import annotations

import argparse
import math
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from core import stats
from core.run_data import SCORE, Run, aggregates, align, by_seed, common_frames, find_runs, frame_grid, group_runs, mean_std_n
from core.tables import best_at_table, best_so_far_table, cost_table, rl_window_table, scores_at_table, summary_table
from core.tasks import PAPER_SCORES

CURVE_POINTS = 25  # points of the sample-efficiency curves (each one bootstrapped)


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
            mean, std, n = mean_std_n(align(runs, grid))
            (line,) = ax.plot(grid, mean, label=_legend_label(f"{label} (n={len(runs)})"),
                              marker="o" if grid.size == 1 else None)
            if len(runs) > 1:
                with np.errstate(invalid="ignore", divide="ignore"):
                    half = np.where(n > 1, 1.96 * std / np.sqrt(n), np.nan)
                ax.fill_between(grid, mean - half, mean + half, color=line.get_color(),
                                alpha=0.2, linewidth=0)
            if seeds:
                for run in by_seed(runs):
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


def frame_window(text: str) -> tuple[float, float]:
    """``LO:HI`` (frames, e.g. ``80000:100000``) → (LO, HI) with 0 <= LO < HI."""
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be LO:HI in frames, e.g. 80000:100000 (got {text!r})") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        raise argparse.ArgumentTypeError(f"must be LO:HI with 0 <= LO < HI (got {text!r})")
    return lo, hi


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
