"""Atomic, verifiable checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is written to a temporary file, fsynced and moved over the previous one with
``os.replace``, so a crash or a full disk never leaves a half-written ``checkpoint.pt``. It carries a
SHA-256 of its content (every tensor's bytes and every value, in order), so bytes altered on disk
are refused on load instead of silently resuming from corrupted weights or buffer rows.
"""
from __future__ import annotations

import errno
import hashlib
import os
import pickle
import shutil
import zipfile

# torch is imported inside the functions: `status` and the refusal of bad input need CheckpointError only.

FORMAT = "erl-re2-checkpoint-v2"
OLD_FORMATS = ("erl-re2-checkpoint-v1",)
FILENAME = "checkpoint.pt"
# The policy file: the networks that act (φ and every head), the champion record and the frame count, no
# buffer, critics or optimiser states; written beside each checkpoint, so a finished run's final agents can be
# kept (and played by core.evaluate) without the checkpoint.
POLICY_FORMAT = "erl-re2-policy-v1"
POLICY_FILENAME = "policy.pt"
HEADS = ("pop_weight", "pop_bias", "rl_weight", "rl_bias")


def acting_network(name: str) -> bool:
    """Whether a learner parameter is needed to act: φ (not its target) and the heads."""
    return name.startswith("phi.") or name in HEADS


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, unreadable, foreign or altered."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (the previous one is left as it was)."""


def content_digest(obj) -> str:
    """SHA-256 over a checkpoint's values in order: tensors by dtype, shape and raw bytes, the rest by
    type and repr. Independent of torch's file layout, so it checks what is loaded, not how it was stored."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h: hashlib._Hash, x) -> None:
    import torch

    if isinstance(x, torch.Tensor):
        t = x.detach().to("cpu").contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    elif isinstance(x, dict):
        h.update(f"D{len(x)}".encode())
        for k, v in x.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(x, (list, tuple)):  # the loader may hand a tuple back as a list: same digest
        h.update(f"L{len(x)}".encode())
        for v in x:
            _feed(h, v)
    elif x is None or isinstance(x, (bool, int, float, str, bytes)):
        h.update(f"{type(x).__name__}:{x!r};".encode())
    else:
        raise TypeError(f"checkpoint value of unsupported type {type(x).__name__}")


class _CountingSink:
    """A file-like object that only counts bytes: the exact size a checkpoint needs on disk."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def save_checkpoint(run_dir: str, state: dict) -> str:
    """Write ``state`` to ``<run_dir>/checkpoint.pt`` via a temporary file and ``os.replace``.

    On a write failure (a full disk above all) the temporary file is removed, the previous checkpoint
    is untouched and CheckpointWriteError says how much space the checkpoint needed."""
    return _write(os.path.join(run_dir, FILENAME), FORMAT, state, "checkpoint")


def save_policy(run_dir: str, state: dict) -> str:
    """Write the acting part of a checkpoint's ``state`` to ``<run_dir>/policy.pt`` (atomic, checksummed
    as a checkpoint; about 0.6 MB for HalfCheetah, 1.2 MB for Humanoid, whose φ reads 376 inputs)."""
    counters = state.get("counters", {})
    policy = {"run_name": state.get("run_name"), "counters": {k: counters.get(k) for k in ("frames", "generation")},
              "champion": state.get("champion"),
              "networks": {k: v for k, v in state["learner"]["networks"].items() if acting_network(k)}}
    return _write(os.path.join(run_dir, POLICY_FILENAME), POLICY_FORMAT, policy, "policy file")


def _write(path: str, fmt: str, state: dict, kind: str) -> str:
    import torch

    tmp = f"{path}.tmp"
    payload = {"format": fmt, "sha256": content_digest(state), **state}
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        # torch's zip writer turns the OS error into a RuntimeError, so judge "full" by the free space.
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        sink = _CountingSink()
        torch.save(payload, sink)
        free = shutil.disk_usage(os.path.dirname(path) or ".").free
        cause = exc if isinstance(exc, OSError) else exc.__context__  # torch keeps the OSError as the context
        full = free < sink.size or getattr(cause, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        what = "disk full" if full else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise CheckpointWriteError(
            f"could not write {kind} {path} ({what}): it needs {_mib(sink.size)} ({sink.size:,} bytes), "
            f"{_mib(free)} free there; the temporary file was removed"
        ) from None
    return path


def load_checkpoint(run_dir: str, flag: str = "-resume") -> dict:
    """Read a run's checkpoint; a missing, truncated, foreign or altered file raises CheckpointError
    whose message starts with ``flag`` (the argument that named the run directory)."""
    return _read(os.path.join(run_dir, FILENAME), FORMAT, "checkpoint", flag)


def load_policy(run_dir: str, flag: str = "RUN_DIR") -> dict:
    """Read a run's policy file (see ``save_policy``), refused as a checkpoint would be."""
    return _read(os.path.join(run_dir, POLICY_FILENAME), POLICY_FORMAT, "policy file", flag)


def _read(path: str, fmt: str, what: str, flag: str) -> dict:
    import torch

    if not os.path.isfile(path):
        raise CheckpointError(f"{flag}: no {what} at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{flag}: {path} is not a readable {what} ({type(exc).__name__})") from None
    if isinstance(state, dict) and state.get("format") in OLD_FORMATS:
        raise CheckpointError(f"{flag}: {path} was written by an older version of this code (format {state['format']}, "
                              "no checksum); resume it with the git commit recorded in its config.json")
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise CheckpointError(f"{flag}: {path} is not an ERL-Re2 {what} of format {fmt}")
    content = {k: v for k, v in state.items() if k not in ("format", "sha256")}
    if content_digest(content) != state.get("sha256"):
        raise CheckpointError(f"{flag}: {path} is corrupt: its content does not match its SHA-256 checksum "
                              "(bytes altered on disk); refusing to use it")
    return content
