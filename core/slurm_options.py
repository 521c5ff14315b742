"""The sbatch options of a sweep on Slurm: Slurm's time formats, each option's check, the partition's
own time limit (from sinfo), and their translation into submitit's SlurmExecutor parameters
(docs/slurm.md, "What is submitted").
"""
from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIGNAL_LEAD_S = 120  # submitit's time-limit signal comes this long before the limit (Slurm: up to 60 s earlier)
MIN_TIME_MIN = 5  # a shorter --time leaves no room to start, learn and checkpoint
NO_LIMIT = "365-00:00:00"  # --time for a partition whose jobs have no time limit (submitit needs a number)
SET_BY_SWEEP = ("array", "output", "error", "requeue", "no-requeue", "signal", "open-mode", "chdir", "ntasks",
                "ntasks-per-node", "nodes", "wrap")


class SweepError(ValueError):
    """Bad input for a sweep: one line naming the option and what it accepts (exit 2)."""



def slurm_minutes(text: str) -> int | None:
    """A Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) in minutes, seconds rounded up; None if not one."""
    match = re.fullmatch(r"(?:([0-9]+)-([0-9]+)(?::([0-9]+))?(?::([0-9]+))?|([0-9]+)(?::([0-9]+))?(?::([0-9]+))?)", text)
    if match is None:
        return None
    d, dh, dm, ds, a, b, c = (int(g) if g else 0 for g in match.groups())
    if match[1] is not None:
        seconds = ((d * 24 + dh) * 60 + dm) * 60 + ds
    elif match[7] is not None:  # HH:MM:SS
        seconds = (a * 60 + b) * 60 + c
    else:  # MM or MM:SS
        seconds = a * 60 + b
    return math.ceil(seconds / 60)


def _time(name: str, value: str) -> int:
    minutes = slurm_minutes(value)
    if minutes is None or minutes < MIN_TIME_MIN:
        raise SweepError(f"--{name} must be a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) of at least "
                         f"{MIN_TIME_MIN} minutes: the run is told to checkpoint {SIGNAL_LEAD_S} s before the limit (got {value})")
    return minutes


def _count(name: str, value: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]*", value):
        raise SweepError(f"--{name} must be a positive integer (got {value})")
    return int(value)


def _gpus(name: str, value: str) -> str:
    if not re.fullmatch(r"([A-Za-z0-9_.-]+:)?[1-9][0-9]*", value):
        raise SweepError(f"--{name} must be N or TYPE:N with N >= 1 (got {value})")
    return value


def _size(name: str, value: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*[KMGT]?", value):
        raise SweepError(f"--{name} must be a size such as 4G or 500M (got {value})")
    return value


def _word(name: str, value: str) -> str:
    if not re.fullmatch(r"[^\s\"'\\$`%]+", value):
        raise SweepError(f"--{name} needs a value without spaces, quotes, $ or % (got {value!r})")
    return value


# sbatch option -> (check and convert, submitit's parameter; None: passed as an extra #SBATCH line)
SBATCH_OPTIONS = {
    "partition": (_word, "partition"), "time": (_time, "time"), "cpus-per-task": (_count, "cpus_per_task"),
    "gpus-per-task": (_gpus, "gpus_per_task"), "gpus-per-node": (_gpus, "gpus_per_node"), "gres": (_word, "gres"),
    "mem": (_size, "mem"), "mem-per-cpu": (_size, "mem_per_cpu"), "mem-per-gpu": (_size, "mem_per_gpu"),
    "account": (_word, "account"), "qos": (_word, "qos"), "constraint": (_word, "constraint"),
    "reservation": (_word, None), "nodelist": (_word, "nodelist"), "exclude": (_word, "exclude"),
    "job-name": (_word, "job_name"), "mail-type": (_word, "mail_type"), "mail-user": (_word, "mail_user"),
    "comment": (_word, "comment"),
}


def partition_time_limit(partition: str | None) -> str:
    """The time limit a job gets on ``partition`` (None: the default partition) without --time, as sbatch
    gives it: the partition's DefaultTime, else its MaxTime (``NO_LIMIT`` when that is infinite), from sinfo."""
    try:
        listing = subprocess.run(["sinfo", "-h", "-o", "%P %L %l"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        why = exc.stderr.strip().splitlines()[-1] if getattr(exc, "stderr", None) else str(exc)
        raise SweepError(f"--time not given, and sinfo cannot tell the partition's time limit ({why}): give --time") from None
    for line in listing.splitlines():
        name, default, maximum = line.split()
        if name.rstrip("*") == partition or (partition is None and name.endswith("*")):
            return default if slurm_minutes(default) is not None else maximum if slurm_minutes(maximum) is not None else NO_LIMIT
    which = f"partition {partition}" if partition else "a default partition"
    raise SweepError(f"--time not given, and sinfo lists no {which} to read a time limit from: give --time or --partition")


def slurm_parameters(options: dict[str, object]) -> dict:
    """sbatch options (``{"time": "1-00:00:00", "cpus_per_task": 4, ...}``, dashes or underscores) ->
    submitit's SlurmExecutor parameters, each checked. ``--time`` is required: submitit needs the limit
    to tell a time-out from a preemption (``Sweep.plan`` fills it in from the partition when not given)."""
    params: dict = {"job_name": "erl-re2", "cpus_per_task": 1, "signal_delay_s": SIGNAL_LEAD_S, "stderr_to_stdout": True}
    extra: dict = {"requeue": True, "chdir": str(ROOT)}
    for key, value in options.items():
        name = key.replace("_", "-")
        if name in SET_BY_SWEEP:
            raise SweepError(f"--{name} is set by the sweep (one array task per run, requeue, signal, logs); "
                             "cap the runs at once with -j N")
        if name not in SBATCH_OPTIONS:
            raise SweepError(f"unknown sbatch option --{name} (accepted: {', '.join('--' + o for o in SBATCH_OPTIONS)})")
        check, param = SBATCH_OPTIONS[name]
        converted = check(name, str(value))
        if param is None:
            extra[name] = converted
        else:
            params[param] = converted
    if "time" not in params:
        raise SweepError("--slurm needs --time, the job's time limit (e.g. --time=1-00:00:00): the run checkpoints "
                         f"{SIGNAL_LEAD_S} s before it and submitit requeues it")
    # Slurm 22.05+ no longer passes sbatch's --cpus-per-task on to srun: ask for the same again.
    params["srun_args"] = [f"--cpus-per-task={params['cpus_per_task']}"]
    params["additional_parameters"] = extra
    return params
