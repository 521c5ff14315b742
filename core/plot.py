"""Learning curves and a results table from run directories.

    python -m core.plot <logdir> [<logdir> ...] [-out DIR]

Every directory (at any depth) holding both ``progress.csv`` and ``config.json`` is a run. Runs
are grouped by task, variant and any algorithmic setting that differs between runs of that task
and variant; seeds of a group are aligned on frames (never on row index) as step functions.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from core.tasks import PAPER_SCORES, task_family

# Settings that are per-run bookkeeping, never a reason to split runs into groups.
IGNORED_SETTINGS: frozenset[str] = frozenset({
    "seed", "logdir", "resume", "num_frames", "checkpoint_every", "threads", "disable_cuda",
    "wandb_mode", "wandb_project", "capture_video",
})
VARIANT_ORDER = ("ERL-Re2", "EA only", "RL only")
GRID_POINTS = 100
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
    """Runs keyed by (task, label); label = variant + ``key=value`` for each setting that differs
    between runs of the same task and variant (bookkeeping settings in IGNORED_SETTINGS aside)."""
    by_variant: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by_variant.setdefault((run.task, run.variant), []).append(run)
    groups: dict[tuple[str, str], list[Run]] = {}
    for (task, variant), members in by_variant.items():
        settings = [r.config.get("settings", {}) for r in members]
        keys = sorted(set().union(*settings) - IGNORED_SETTINGS)
        differing = [k for k in keys if len({json.dumps(s.get(k), sort_keys=True)
                                             for s in settings}) > 1]
        for run, s in zip(members, settings):
            label = " ".join([variant] + [f"{k}={_fmt_value(s.get(k))}" for k in differing])
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


def _stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, population std and count over axis 0, ignoring NaN."""
    ok = np.isfinite(values)
    n = ok.sum(axis=0)
    filled = np.where(ok, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / n
        std = np.sqrt(np.where(ok, (values - mean) ** 2, 0.0).sum(axis=0) / n)
    return mean, std, n


def final_score(runs: Sequence[Run]) -> tuple[float, float, float, int]:
    """(frames, mean, population std, n) at the last frame count all runs reached."""
    frames = common_frames(runs)[1]
    mean, std, n = _stats(align(runs, [frames]))
    return frames, float(mean[0]), float(std[0]), int(n[0])


def _paper(task: str, algo: str) -> str:
    score = PAPER_SCORES.get(task, {}).get(algo)
    return "—" if score is None else f"{score:.0f}"


def summary_table(groups: dict[tuple[str, str], list[Run]]) -> str:
    """Markdown table: one row per group, score at the last frame count all its seeds reached."""
    lines = ["| task | variant | frames | score (mean ± std, n seeds) | paper ERL-Re² | paper TD3 |",
             "|---|---|---:|---:|---:|---:|"]
    for (task, label), runs in groups.items():
        frames, mean, std, n = final_score(runs)
        lines.append(f"| {task} | {label} | {frames:,.0f} | {mean:.1f} ± {std:.1f} (n={n}) "
                     f"| {_paper(task, 'ERL-Re2')} | {_paper(task, 'TD3')} |")
    footnote = ("Score: best_reward at the last frame count all of the group's seeds reached "
                "(each seed's latest logged value); ± is the population standard deviation "
                "(ddof=0) over seeds. Paper scores are read off the paper's curves at 1M frames.")
    lines += ["", footnote]
    return "\n".join(lines) + "\n"


def plot_groups(groups: dict[tuple[str, str], list[Run]], path: str | Path) -> None:
    """One panel per task: mean best_reward over seeds with a 95% band, paper marks dashed."""
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
            (line,) = ax.plot(grid, mean, label=f"{label} (n={len(runs)})",
                              marker="o" if grid.size == 1 else None)
            if len(runs) > 1:
                with np.errstate(invalid="ignore", divide="ignore"):
                    half = np.where(n > 1, 1.96 * std / np.sqrt(n), np.nan)
                ax.fill_between(grid, mean - half, mean + half, color=line.get_color(),
                                alpha=0.2, linewidth=0)
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
    fig.savefig(path, dpi=120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.plot", description=__doc__.split("\n")[0])
    parser.add_argument("logdirs", nargs="+", help="directories searched (any depth) for runs")
    parser.add_argument("-out", "--out", help="output folder (default: the first logdir)")
    args = parser.parse_args(argv)
    runs = find_runs(args.logdirs)
    if not runs:
        print(f"error: no runs with data under {' '.join(args.logdirs)}", file=sys.stderr)
        return 1
    out = Path(args.out or args.logdirs[0])
    out.mkdir(parents=True, exist_ok=True)
    groups = group_runs(runs)
    table = summary_table(groups)
    (out / "results.md").write_text(table)
    plot_groups(groups, out / "learning_curves.png")
    print(table, end="")
    print(f"wrote {out / 'results.md'} and {out / 'learning_curves.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
