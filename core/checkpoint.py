"""Atomic checkpoints: everything a run needs to continue exactly where it stopped."""
from __future__ import annotations

import os
import pickle
import zipfile

import torch

FORMAT = "erl-re2-checkpoint-v1"
FILENAME = "checkpoint.pt"


class CheckpointError(ValueError):
    pass


def save_checkpoint(run_dir: str, state: dict) -> str:
    """Write ``state`` to ``<run_dir>/checkpoint.pt`` via a temporary file and ``os.replace``, so a
    crash mid-write never leaves a half-written checkpoint."""
    path = os.path.join(run_dir, FILENAME)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(run_dir: str, flag: str = "-resume") -> dict:
    """Read a run's checkpoint; a missing, truncated or foreign file raises CheckpointError whose
    message starts with ``flag`` (the argument that named the run directory)."""
    path = os.path.join(run_dir, FILENAME)
    if not os.path.isfile(path):
        raise CheckpointError(f"{flag}: no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{flag}: {path} is not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{flag}: {path} is not an ERL-Re2 checkpoint of format {FORMAT}")
    return state
