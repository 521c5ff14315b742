"""Runs as the report reads them: each run folder's ``progress.csv`` and ``config.json``, runs grouped
by task, variant and the settings that set them apart, their scores aligned on frames (never on row
index) as step functions, and the aggregates across tasks at a budget with a TD3 reference score
(``core.tasks.TD3_REFERENCES``). The tables are in ``core/tables.py``, the figures in ``core/plot.py``.
"""
from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.tasks import TD3_REFERENCES, task_family
from parameters import parser_defaults, recorded_settings

# Settings that are per-run bookkeeping, never a reason to split runs into groups.
IGNORED_SETTINGS: frozenset[str] = frozenset({
    "seed", "logdir", "resume", "num_frames", "checkpoint_every", "threads", "disable_cuda",
    "wandb_mode", "wandb_project", "capture_video",
})
VARIANT_SETTINGS: frozenset[str] = frozenset({"env", "EA", "RL"})  # named by the task and the variant
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


def mean_std_n(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def by_seed(runs: Sequence[Run]) -> list[Run]:
    """The runs in seed order (then by folder), so that tables and curves list seeds alike everywhere."""
    return sorted(runs, key=lambda r: (r.config.get("seed", 0), str(r.path)))


def reaching(runs: Sequence[Run], frames: float) -> list[Run]:
    """The runs whose last row is at or past ``frames``."""
    return [r for r in runs if r.curve()[0][-1] >= frames]


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
            if task in td3 and len(reaching(runs, frames)) == len(runs):
                by_label.setdefault(label, []).append((task, by_seed(runs)))
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
