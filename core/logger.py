"""What a run leaves: ``config.json``, ``progress.csv`` (one row per generation, flushed as it
is written), one stdout line per generation, and the same metrics in wandb (offline by default:
no login, no network)."""
from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import uuid
from argparse import Namespace
from importlib import metadata
from typing import TYPE_CHECKING

from core.checkpoint import CheckpointError
from core.tasks import task_family

if TYPE_CHECKING:  # torch is imported only once a run starts
    import torch

COLUMNS = (
    "frames", "generation", "games", "time_s", "fps", "champion_score", "rl_score", "best_reward",
    "fitness_kind", "fitness_max", "fitness_mean", "critic_loss", "actor_loss", "pevfa_loss", "ea_loss",
    "elite_rate", "selected_rate", "discarded_rate", "rl_frames", "evo_times", "ssne_epochs",
)


def read_config(run_dir: str) -> dict:
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
        # Settings added after the run started: their defaults, or the behaviour the run had (recorded_settings).
        config["settings"] = _recorded_settings(config["settings"])
        return config
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"-resume: {run_dir} is not an ERL-Re2 run directory (no readable config.json)") from None


def _recorded_settings(settings: dict) -> dict:
    from parameters import recorded_settings  # parameters imports nothing of core.logger; imported late to keep this module light

    return vars(recorded_settings(settings))


def announce(run_dir: str, config: dict, args: Namespace, device: torch.device) -> None:
    """The run's first stdout lines: what runs where, and what an ablation leaves out."""
    print(f"ERL-Re2 | {config['variant']} | {args.env} | seed {args.seed} | device {device} | run dir {run_dir}", flush=True)
    if args.env.endswith("-v4"):
        print(f"{args.env}: the v4 tasks are the default, the closest to the paper's v2 under old gym "
              f"(gymnasium calls v4 out of date; -env {args.env[:-1]}5 runs v5).", flush=True)
    if not args.RL:
        print("RL is off (EA-only ablation): evolution starts at once with full-episode (MC) fitness; "
              "phi and the PeVFA stay at their initialisation.", flush=True)
    elif not args.EA:
        print("EA is off (RL-only ablation): no population, no PeVFA; the RL head and phi learn by TD3.", flush=True)


def variant(args: Namespace) -> str:
    return "ERL-Re2" if args.EA and args.RL else ("EA only" if args.EA else "RL only")


def write_json_atomic(path: str, obj: dict) -> None:
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:  # a full disk: leave no partial temporary file behind
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def new_config(run_dir: str, args: Namespace, sources: dict[str, str]) -> dict:
    """config.json of a new run: every setting and where it came from, versions, commit, wandb id."""
    return {
        "run_name": os.path.basename(run_dir), "env": args.env, "task": task_family(args.env), "seed": args.seed,
        "variant": variant(args), "settings": vars(args), "sources": sources, "versions": _versions(),
        "git_commit": _git_commit(), "wandb_run_id": uuid.uuid4().hex[:12],
    }


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("torch", "gymnasium", "mujoco", "numpy", "fastrand", "wandb"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _git_commit() -> str | None:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "rev-parse", "HEAD"], check=False, cwd=here, capture_output=True, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def truncate_progress(path: str, generation: int) -> None:
    """Keep the whole rows up to ``generation``: rows written after the checkpoint a run resumes from
    are dropped (they are recomputed), and so is a row torn by a crash (no newline, or missing cells).
    Rows of an older column layout are rewritten under the current header (missing cells empty)."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        text = f.read()
    lines = text.split("\n")
    whole = lines[:-1]  # the piece after the last newline is empty, or a torn row
    parsed = list(csv.reader(whole))
    header = parsed[0] if parsed else list(COLUMNS)
    kept = [list(COLUMNS)]
    for cells in parsed[1:]:
        if len(cells) != len(header):
            continue
        row = dict(zip(header, cells))
        try:
            if int(row["generation"]) > generation:
                continue
        except (KeyError, ValueError):
            continue
        kept.append([row.get(c, "") for c in COLUMNS])
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(kept)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def last_row(path: str) -> dict | None:
    """The last whole row of a progress.csv (for ``status``), or None."""
    try:
        with open(path, newline="") as f:
            lines = f.read().split("\n")[:-1]
    except OSError:
        return None
    if len(lines) < 2:
        return None
    header, cells = next(csv.reader(lines[:1])), next(csv.reader(lines[-1:]))
    return dict(zip(header, cells)) if len(cells) == len(header) else None


def _cell(value) -> str:
    return "" if value is None else str(value)


class RunLogger:
    def __init__(self, run_dir: str, config: dict, wandb_mode: str, wandb_project: str, num_frames: int,
                 warmup_rl_frames: int = 0, start: tuple[int, float] | None = (0, 0.0)):
        """``warmup_rl_frames``: RL frames of random actions before learning starts (0: none); ``start``:
        (frames, wall seconds) where this process took the run up, None when that was inside a generation
        (its first row's frames were partly collected before). The ETA uses the rate from the later of
        ``start`` (else the first row) and the warm-up's last row: a warm-up generation runs far faster
        than a learning one."""
        path = os.path.join(run_dir, "progress.csv")
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        self._file = open(path, "a", newline="")  # noqa: SIM115 (kept open for the whole run)
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(COLUMNS)
            self._file.flush()
        self.num_frames = num_frames
        self.warmup_rl_frames = warmup_rl_frames
        self._mark = start  # (frames, seconds) the ETA's rate is measured from
        self._wandb = None
        if wandb_mode != "disabled":
            os.environ.setdefault("WANDB_SILENT", "true")
            import wandb

            self._wandb = wandb.init(
                project=wandb_project, name=config["run_name"], id=config["wandb_run_id"], dir=run_dir,
                config=config, mode=wandb_mode, resume="allow",
                group=f"{config['task']} {config['variant']}", job_type=config["variant"], tags=[config["task"], config["variant"]],
            )

    def log(self, row: dict) -> None:
        self._csv.writerow([_cell(row.get(c)) for c in COLUMNS])
        self._file.flush()
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in row.items() if v is not None}, step=row["frames"])
        print(self.line(row, self.update_eta(row)), flush=True)

    def update_eta(self, row: dict) -> str:
        """Take the next row into the rate (moving its starting mark while the warm-up lasts) and give the
        time left at that rate; during the warm-up, when it will be known."""
        if row.get("time_s") is None:
            return "-"
        warmup = (row.get("rl_frames") or 0) < self.warmup_rl_frames
        if warmup or self._mark is None:
            self._mark = (row["frames"], row["time_s"])
            return "after warm-up" if warmup else "-"
        frames, seconds = row["frames"] - self._mark[0], row["time_s"] - self._mark[1]
        if frames <= 0 or seconds <= 0:
            return "-"
        left = max(self.num_frames - row["frames"], 0) * seconds / frames
        return f"{int(left // 3600)}h{int(left % 3600 // 60):02d}m"

    def log_video(self, name: str, path: str, frames: int) -> None:
        """A recorded episode, logged to wandb at the frame count of the checkpoint it shows."""
        if self._wandb is not None:
            import wandb

            self._wandb.log({f"video/{name}": wandb.Video(path, format="mp4")}, step=frames)

    @staticmethod
    def line(row: dict, eta: str) -> str:
        def score(v):
            return "-" if v is None else f"{v:.1f}"

        fps = row["fps"] or 0.0
        return (f"gen {row['generation']:5d} | frames {row['frames']:9,d} | best {score(row['best_reward']):>9} | "
                f"champion {score(row['champion_score']):>9} | rl {score(row['rl_score']):>9} | "
                f"fitness {row['fitness_kind']:6} | fps {fps:7.1f} | ETA {eta}")

    def close(self) -> None:
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish()


def error(message: str) -> None:
    sys.stderr.write(f"run_re2.py: error: {message}\n")
