"""A run's directory: its name, fixed by what the run is (identity → directory), and its lock, one
process per directory (docs/lifecycle.md, "Run identity and start-or-resume").
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import socket
import time

from core.logger import variant
from parameters import NOT_IDENTITY, build_parser, default_settings

LOCK_FILE = "run.lock"
# A directory name lists at most this many non-default settings in this many characters; more → a hash.
MAX_SETTINGS_IN_NAME, MAX_SETTINGS_CHARS = 4, 60


class RunHeld(RuntimeError):
    """The run directory is locked by another live process."""


def identity(args: argparse.Namespace) -> dict:
    """What the run is: task, variant, the settings that differ from their (task) defaults and change
    the algorithm's computation, seed and tag. Budget, threads, device, logging and checkpoint cadence
    are not part of it (a run may be extended or moved to other hardware and stay the same run)."""
    defaults = default_settings(args.env, args.rl_algo)
    defaults["rl_algo"] = build_parser().get_default("rl_algo")  # the table followed rl_algo; the name must show it
    changed = {k: v for k, v in sorted(vars(args).items()) if k not in NOT_IDENTITY and v != defaults.get(k)}
    return {"env": args.env, "variant": variant(args), "settings": changed, "tag": args.tag, "seed": args.seed}


def run_name(ident: dict) -> str:
    """``<env>__<variant>[__<k=v,...> | __cfg-<hash>][__<tag>]__seed<seed>``, e.g. ``HalfCheetah-v4__ERL-Re2__seed1``."""
    parts = [ident["env"], ident["variant"].replace(" ", "-")]
    settings = ident["settings"]
    if settings:
        text = ",".join(k if v is True else f"{k}={v}" for k, v in settings.items())
        if len(settings) > MAX_SETTINGS_IN_NAME or len(text) > MAX_SETTINGS_CHARS:  # the full list is in config.json
            text = "cfg-" + hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
        parts.append(text)
    if ident["tag"]:
        parts.append(ident["tag"])
    parts.append(f"seed{ident['seed']}")
    return "__".join(parts)


class RunLock:
    """``flock`` on ``<run_dir>/run.lock``: the kernel releases it when the holder exits in any way
    (SIGKILL included), so a crashed process never leaves a run stuck. The file records the holder's
    PID and host for the message the next process prints; the file itself is never deleted (deleting
    a lock file lets two processes lock two different files)."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, LOCK_FILE)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        # A few short retries: `status` probes the lock for an instant, which must not refuse a start.
        for attempt in range(6):
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 5:
                    holder = _read_holder(self.path)
                    os.close(self.fd)
                    raise RunHeld(f"{run_dir} is held by {holder} (another run_re2.py); not starting a second one") from None
                time.sleep(0.1)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()} {socket.gethostname()}\n".encode())


def _read_holder(path: str) -> str:
    for _ in range(5):  # the holder writes its PID just after locking
        try:
            with open(path) as f:
                pid, _, host = f.read().strip().partition(" ")
            if pid:
                return f"process {pid} on {host}" if host else f"process {pid}"
        except OSError:
            pass
        time.sleep(0.05)
    return "another process (PID not recorded yet)"


def lock_holder(run_dir: str) -> str | None:
    """Who holds the run's lock, or None when no live process does (a shared, non-blocking probe)."""
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        return _read_holder(path)
    finally:
        os.close(fd)
