"""What a run leaves: ``config.json``, ``progress.csv`` (one row per generation, flushed as it
is written), one stdout line per generation, and the same metrics in wandb (offline by default:
no login, no network)."""
from __future__ import annotations

import csv
import json
import math
import os
import sys

COLUMNS = (
    "frames", "generation", "games", "time_s", "fps", "champion_score", "rl_score", "best_reward",
    "fitness_kind", "fitness_max", "fitness_mean", "critic_loss", "actor_loss", "pevfa_loss", "ea_loss",
    "elite_rate", "selected_rate", "discarded_rate", "rl_frames", "evo_times", "ssne_epochs",
)


def write_json_atomic(path: str, obj: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def truncate_progress(path: str, generation: int) -> None:
    """Keep the rows up to ``generation`` (rows written after the checkpoint a run resumes from)."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[1]) <= generation]
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(kept)
    os.replace(tmp, path)


def _cell(value) -> str:
    return "" if value is None else str(value)


class RunLogger:
    def __init__(self, run_dir: str, config: dict, wandb_mode: str, wandb_project: str, num_frames: int):
        path = os.path.join(run_dir, "progress.csv")
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        self._file = open(path, "a", newline="")  # noqa: SIM115 (kept open for the whole run)
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(COLUMNS)
            self._file.flush()
        self.num_frames = num_frames
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
        print(self.line(row), flush=True)

    def log_video(self, name: str, path: str, frames: int) -> None:
        """A recorded episode, logged to wandb at the frame count of the checkpoint it shows."""
        if self._wandb is not None:
            import wandb

            self._wandb.log({f"video/{name}": wandb.Video(path, format="mp4")}, step=frames)

    def line(self, row: dict) -> str:
        def score(v):
            return "-" if v is None else f"{v:.1f}"

        fps = row["fps"] or 0.0
        eta = (self.num_frames - row["frames"]) / fps if fps > 0 else float("nan")
        eta_s = f"{int(eta // 3600)}h{int(eta % 3600 // 60):02d}m" if math.isfinite(eta) and eta >= 0 else "-"
        return (f"gen {row['generation']:5d} | frames {row['frames']:9,d} | best {score(row['best_reward']):>9} | "
                f"champion {score(row['champion_score']):>9} | rl {score(row['rl_score']):>9} | "
                f"fitness {row['fitness_kind']:6} | fps {fps:7.1f} | ETA {eta_s}")

    def close(self) -> None:
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish()


def error(message: str) -> None:
    sys.stderr.write(f"run_re2.py: error: {message}\n")
