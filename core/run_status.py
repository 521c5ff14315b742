"""A run's state as ``python -m core.lifecycle status`` and the sweep read it: ``status.json`` (written
by the run as it goes), its lock and its last progress row; running, finished, stopped or failed.
"""
from __future__ import annotations

import json
import os
import time

from core.checkpoint import FILENAME, CheckpointError
from core.logger import last_row, read_config, write_json_atomic
from core.run_dir import lock_holder

STATUS_FILE = "status.json"


def write_status(run_dir: str, **fields) -> None:
    """What ``status`` reads besides the lock and progress.csv; best effort (a full disk must not hide
    the real error), merged into the previous record."""
    path = os.path.join(run_dir, STATUS_FILE)
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = {}
    try:
        write_json_atomic(path, {**old, **fields, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    except OSError:
        pass


def run_state(run_dir: str, budget: int, frames: int, status: dict) -> str:
    """running: a live process holds the lock; finished: the budget is done; stopped: a checkpoint to
    resume from; failed: an error exit was recorded, or the process died before its first checkpoint."""
    if lock_holder(run_dir) is not None:
        return "running"
    recorded = status.get("state")
    if recorded == "failed":
        return "failed"
    if recorded == "finished":
        return "finished" if frames >= budget else "stopped"  # "stopped": its budget was extended since
    # "stopped", or "running" recorded by a process that died (SIGKILL, power): resumable if it saved.
    return "stopped" if os.path.isfile(os.path.join(run_dir, FILENAME)) else "failed"


def current_state(run_dir: str, budget: int) -> tuple[str, dict | None]:
    """The run's state now (``run_state``) for a budget of ``budget`` frames, and the last row of its
    progress.csv (None when it has none)."""
    try:
        with open(os.path.join(run_dir, STATUS_FILE)) as f:
            status = json.load(f)
    except (OSError, ValueError):
        status = {}
    row = last_row(os.path.join(run_dir, "progress.csv"))
    return run_state(run_dir, budget, int(row["frames"]) if row else 0, status), row


def status_lines(logdir: str) -> list[str]:
    lines = []
    for name in sorted(os.listdir(logdir)):
        run_dir = os.path.join(logdir, name)
        if not os.path.isfile(os.path.join(run_dir, "config.json")):
            continue
        try:
            config = read_config(run_dir)
        except CheckpointError:
            continue
        budget = int(config["settings"]["num_frames"])
        state, row = current_state(run_dir, budget)
        frames = int(row["frames"]) if row else 0
        best = f"{float(row['best_reward']):.1f}" if row and row.get("best_reward") else "-"
        fps = f"{float(row['fps']):.1f}" if row and row.get("fps") else "-"
        lines.append(f"{config['env']:<16} {config['variant'].replace(' ', '-'):<8} seed {config['seed']:<3} "
                     f"frames {frames:>9,}/{budget:<9,} best_reward {best:>9} fps {fps:>7} {state:<8} {name}")
    return lines
