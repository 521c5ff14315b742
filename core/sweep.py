"""The paper's sweep: tasks x seeds, each run with its task's settings (resolved by ``run_re2.py``
from the paper's appendix table), run here or submitted to Slurm as one job array through submitit.

    python -m core.sweep [TASK ...] [-j N] [-n] [--seeds "1 2"] [--logdir DIR] [-- RUN FLAGS]
    python -m core.sweep --slurm [--time=1-00:00:00 --partition=cpu ...] [-j N] [TASK ...] [-- RUN FLAGS]
    python -m core.sweep --status [LOGDIR]

From Python (a notebook, a script)::

    from core.sweep import Sweep
    sweep = Sweep(["Hopper-v4"], seeds=[1, 2], flags=["-num_frames", "200000"], logdir="logs")
    submission = sweep.submit(partition="cpu", time="1-00:00:00", parallel=10)
    for job, run in zip(submission.jobs, submission.runs):
        print(job.job_id, job.state, run.run_dir)
    print("\\n".join(sweep.status()))

Every run is start-or-resume (``core/lifecycle.py``): its folder is fixed by what it is, so the same
sweep again resumes its unfinished runs and skips its finished ones. On Slurm each array task runs
``RunJob``: before the time limit (or at preemption, where the cluster sends the same signal) submitit
calls ``RunJob.checkpoint``, which stops the run with SIGTERM (it checkpoints within seconds and exits
143) and hands submitit the same call to requeue; the requeued call resumes the run.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import submitit
from submitit.core.job_environment import JobEnvironment
from submitit.core.utils import FailedSubmissionError, UncompletedJobError

from core.lifecycle import EXIT_BAD_INPUT, current_state, identity, lock_holder, run_name, status_lines
from core.lifecycle import main as lifecycle_main
from parameters import ParameterError, explicit_flags, parse_args, writable

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("HalfCheetah-v4", "Hopper-v4", "Walker2d-v4", "Ant-v4", "Humanoid-v4", "Swimmer-v4")
SEEDS = (1, 2, 3, 4, 5)
SIGNAL_LEAD_S = 120  # submitit's time-limit signal comes this long before the limit (Slurm: up to 60 s earlier)
MIN_TIME_MIN = 5  # a shorter --time leaves no room to start, learn and checkpoint
STOP_WAIT_S = SIGNAL_LEAD_S - 30  # how long the signal handler waits for the run to checkpoint and exit
MAX_TIME_LIMITS = 100  # time-limit requeues per run before submitit gives up (submitting again continues)
NO_LIMIT = "365-00:00:00"  # --time for a partition whose jobs have no time limit (submitit needs a number)
SET_BY_SWEEP = ("array", "output", "error", "requeue", "no-requeue", "signal", "open-mode", "chdir", "ntasks",
                "ntasks-per-node", "nodes", "wrap")
STOPPED = (130, 143)  # the run's exit codes after SIGINT / SIGTERM, checkpoint written


class SweepError(ValueError):
    """Bad input for a sweep: one line naming the option and what it accepts (exit 2)."""


class SubmitError(RuntimeError):
    """Slurm is missing or refused the job; nothing was submitted (exit 1)."""


# ---------------------------------------------------------------------- sbatch options -> submitit
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


# ---------------------------------------------------------------------- one run as a job
class RunJob(submitit.helpers.Checkpointable):
    """``python run_re2.py -env TASK -seed SEED -logdir LOGDIR ...`` as the call a job (or a local worker) makes.

    It runs the command as a child process, because the run must stop between two learner iterations:
    a signal handler cannot checkpoint in the middle of one. The child does not see submitit's
    time-limit signal (it is blocked there); this call turns it into the run's own stop, SIGTERM."""

    def __init__(self, task: str, seed: int, run_dir: str, command: list[str]):
        self.task, self.seed, self.run_dir, self.command = task, seed, run_dir, list(command)
        self._child: subprocess.Popen | None = None
        self._code: int | None = None
        self._stop_at: float | None = None

    def __getstate__(self) -> dict:  # the attempt's child process is not part of the call submitit pickles
        return {"task": self.task, "seed": self.seed, "run_dir": self.run_dir, "command": self.command}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        return f"RunJob({self.task} seed {self.seed} -> {self.run_dir})"

    @property
    def name(self) -> str:
        return f"{self.task} seed {self.seed}"

    def start(self, stdout=None) -> None:
        """Start the run (its output to ``stdout``, a file, or this process's own) and a thread that reaps it."""
        usr_sig = getattr(signal, "SIG" + JobEnvironment.USR_SIG)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {usr_sig})  # inherited by the child, and kept there
        try:
            self._child = subprocess.Popen(self.command, cwd=ROOT, stdout=stdout, stderr=subprocess.STDOUT if stdout else None)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child = self._child
        threading.Thread(target=lambda: setattr(self, "_code", child.wait()), daemon=True).start()

    def wait(self, timeout: float | None = None) -> int | None:
        """The run's exit code once it has exited, None if still running after ``timeout`` seconds.
        Polls an attribute that the reaper thread sets, so that a signal handler may wait too."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._code is None and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
        return self._code

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Ask the run to checkpoint and exit (it does so between two learner iterations)."""
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        if self._child is not None and self._code is None:
            self._child.send_signal(sig)

    def exited(self, code: int) -> str:
        after = f", {time.monotonic() - self._stop_at:.1f} s after the stop signal" if self._stop_at is not None else ""
        return f"run exited with code {code}{after}"

    def __call__(self) -> dict:
        """In a Slurm job: one attempt at the run. Returns its outcome when it finished (or another
        process holds it); raises SystemExit with the run's code when it stopped at a checkpoint
        (Slurm requeues it after a requeue or preemption, nothing comes back after scancel)."""
        attempt = int(os.environ.get("SLURM_RESTART_COUNT", "0")) + 1
        where = f"{JobEnvironment().job_id} on {socket.gethostname()}" if os.environ.get("SUBMITIT_EXECUTOR") else socket.gethostname()
        print(f"{self.name}, attempt {attempt} ({where}): {shlex.join(self.command)}", flush=True)

        def on_term(_signum, _frame) -> None:  # requeue, preemption, scancel: Slurm sends TERM to the job
            if self._code is None:  # (after a time-limit checkpoint the run has already exited)
                print("SIGTERM received (requeue, preemption or cancellation): the run writes its checkpoint", flush=True)
                self.stop()

        previous = signal.signal(signal.SIGTERM, on_term)
        try:
            self.start()
            if self._stop_at is not None:  # TERM came before the run existed: pass it on now
                self.stop()
            code = self.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
        print(self.exited(code), flush=True)
        if code == 0:
            return {"run_dir": self.run_dir, "outcome": "finished"}
        holder = lock_holder(self.run_dir) if code == EXIT_BAD_INPUT else None
        if holder:
            print(f"skipped: {self.run_dir} is held by {holder}", flush=True)
            return {"run_dir": self.run_dir, "outcome": f"skipped (held by {holder})"}
        if code in STOPPED:
            print("stopped at a checkpoint; it resumes when this task is requeued or the sweep is submitted again", flush=True)
            raise SystemExit(code)  # not an Exception: submitit records no result for an attempt that did not end the run
        raise RuntimeError(f"{self.name}: the run failed (exit {code}); its messages are above in this log")

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        """submitit's handler of the time-limit (and preemption) signal: stop the run at a checkpoint,
        then hand back the same call, which submitit requeues."""
        print(f"SIG{JobEnvironment.USR_SIG} received (time limit near, or preemption): the run writes its checkpoint",
              flush=True)
        self.stop()
        code = self.wait(STOP_WAIT_S) if self._child is not None else None
        if self._child is None:
            print("the run had not started yet", flush=True)
        elif code is None:
            print(f"the run has not exited {STOP_WAIT_S} s after SIGTERM: requeued anyway, it resumes from its last "
                  "checkpoint", flush=True)
        else:
            print(f"{self.exited(code)}; submitit requeues this task, which resumes the run", flush=True)
        # submitit now runs `scontrol requeue` from inside the job step, which Slurm signals (TERM) as soon as it
        # takes the request: blocked here, and in scontrol (it inherits the mask), TERM cannot kill the request.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        return submitit.helpers.DelayedSubmission(RunJob(self.task, self.seed, self.run_dir, self.command))


# ---------------------------------------------------------------------- the sweep
@dataclass
class Submission:
    """What ``Sweep.submit`` did: submitit's job handles, the run of each (same order), and the runs
    left out (finished, or held by a live process) with the reason."""

    jobs: list = field(default_factory=list)
    runs: list[RunJob] = field(default_factory=list)
    left_out: list[tuple[RunJob, str]] = field(default_factory=list)

    @property
    def job_id(self) -> str | None:
        """The job array's id (None when nothing was submitted)."""
        return self.jobs[0].job_id.split("_")[0] if self.jobs else None


def _checked(parse, *args):
    """``parameters``' parsing with its one-line refusals (ParameterError, or argparse's exit) as SweepError."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parse(*args)
    except ParameterError as exc:
        raise SweepError(str(exc)) from None
    except SystemExit:
        raise SweepError(err.getvalue().strip().split("error: ", 1)[-1]) from None


class Sweep:
    """Tasks x seeds, every run with the same extra run flags, under one log folder.

    Bad input (an unknown task, a bad run flag, a flag the sweep sets itself) raises SweepError here,
    before anything runs."""

    def __init__(self, tasks=TASKS, seeds=SEEDS, flags=(), logdir: str | os.PathLike = "logs"):
        self.tasks, self.flags, self.logdir = list(tasks), [str(f) for f in flags], os.path.abspath(logdir)
        if not self.tasks:
            raise SweepError("a sweep needs at least one task")
        if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
            raise SweepError(f"the seeds must be non-negative integers, at least one (got {seeds!r})")
        self.seeds = list(seeds)
        set_by_sweep = sorted(_checked(explicit_flags, self.flags) & {"env", "seed", "logdir", "resume"})
        if set_by_sweep:
            raise SweepError(f"-{set_by_sweep[0]} cannot be a run flag: the sweep sets it (tasks, --seeds or SEEDS, "
                             "--logdir or LOGDIR)")
        self._runs: list[tuple[str, int, str, int]] = []  # task, seed, run folder, frame budget
        with tempfile.TemporaryDirectory() as scratch:  # check the flags without creating the log folder yet
            for task in self.tasks:
                args, _ = _checked(parse_args, ["-env", task, "-logdir", scratch, *self.flags])
                for seed in self.seeds:
                    args.seed = seed
                    self._runs.append((task, seed, os.path.join(self.logdir, run_name(identity(args))), args.num_frames))

    @property
    def run_dirs(self) -> list[str]:
        """Every run's folder, tasks x seeds in order (it may not exist yet)."""
        return [run_dir for _, _, run_dir, _ in self._runs]

    def jobs(self, threads: int) -> list[RunJob]:
        """Every run as a call, with ``-threads threads``."""
        return [RunJob(task, seed, run_dir, [sys.executable, "run_re2.py", "-env", task, "-seed", str(seed),
                                             "-logdir", self.logdir, "-threads", str(threads), *self.flags])
                for task, seed, run_dir, _ in self._runs]

    def status(self) -> list[str]:
        """One line per run folder under the log folder (as ``bash run.sh --status``)."""
        return status_lines(self.logdir) if os.path.isdir(self.logdir) else []

    def _jobs_folder(self) -> Path:
        folder = Path(self.logdir, "jobs")
        if not writable(str(folder)):
            raise SweepError(f"--logdir: cannot create or write to '{folder}'")
        return folder

    # ------------------------------------------------------------------ on Slurm
    def plan(self, parallel: int | None = None, **sbatch) -> tuple[dict, list[RunJob], list[tuple[RunJob, str]]]:
        """What ``submit`` would do, nothing written: submitit's SlurmExecutor parameters, the runs to
        submit (array index order) and the runs left out with why (finished at this sweep's budget, or
        held by a live process). Without ``time``, the partition's own limit (``partition_time_limit``)."""
        if "time" not in sbatch:
            limit = partition_time_limit(sbatch.get("partition"))
            if (slurm_minutes(limit) or 0) < MIN_TIME_MIN:
                raise SweepError(f"--time not given, and the partition's time limit ({limit}) is under {MIN_TIME_MIN} "
                                 "minutes, too short to checkpoint in: give --time")
            sbatch = {**sbatch, "time": limit}
        params = slurm_parameters(sbatch)
        todo, left_out = [], []
        for job, (_, _, run_dir, budget) in zip(self.jobs(params["cpus_per_task"]), self._runs):
            holder = lock_holder(run_dir)
            if holder:
                left_out.append((job, f"running now, held by {holder}"))
            elif os.path.isdir(run_dir) and current_state(run_dir, budget)[0] == "finished":
                left_out.append((job, "finished"))
            else:
                todo.append(job)
        params["array_parallelism"] = parallel or max(1, len(todo))
        return params, todo, left_out

    def sbatch_script(self, parallel: int | None = None, **sbatch) -> str:
        """The job script ``submit`` would hand to sbatch (submitit 1.5.4 writes this text)."""
        from submitit.slurm.slurm import _make_sbatch_string

        params, todo, _ = self.plan(parallel, **sbatch)
        folder = Path(self.logdir, "jobs")
        command = f"{shlex.quote(sys.executable)} -u -m submitit.core._submit {shlex.quote(str(folder))}"
        return _make_sbatch_string(command=command, folder=folder, map_count=len(todo) if len(todo) > 1 else None, **params)

    def submit(self, parallel: int | None = None, **sbatch) -> Submission:
        """Submit the runs not finished yet as one Slurm job array, at most ``parallel`` at once (default:
        all), with these sbatch options (``time`` required; ``cpus_per_task``, default 1, is also each
        run's ``-threads``). Raises SweepError for a bad option, SubmitError when Slurm is missing or
        sbatch refuses (nothing is left behind then)."""
        params, todo, left_out = self.plan(parallel, **sbatch)
        if not todo:
            return Submission(left_out=left_out)
        folder = self._jobs_folder()
        try:
            executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=MAX_TIME_LIMITS)
        except RuntimeError as exc:
            raise SubmitError(f"--slurm needs Slurm's commands (sbatch, srun) on PATH: {exc}") from None
        executor.update_parameters(**params)
        before = set(os.listdir(folder))
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's refusal; it is in the exception
                jobs = executor.submit_array(todo)
        except (UncompletedJobError, FailedSubmissionError, OSError) as exc:  # sbatch refused, or its reply was not understood
            for name in set(os.listdir(folder)) - before:  # submitit's script and pickles of the refused job
                os.remove(folder / name)
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise SubmitError(f"sbatch refused the job ({lines[0] if lines else type(exc).__name__}); "
                              "nothing was submitted") from None
        return Submission(jobs=jobs, runs=todo, left_out=left_out)

    # ------------------------------------------------------------------ here
    def log_path(self, job: RunJob) -> str:
        return os.path.join(self.logdir, "jobs", os.path.basename(job.run_dir) + ".log")

    def run_here(self, parallel: int | None = None, echo=print) -> int:
        """Run the sweep on this machine, at most ``parallel`` runs at once (default: one per core, each
        with cores / parallel torch threads), each run's output appended to ``log_path(run)``. Returns 0
        when every run finished (or another process holds it), 1 when one failed or stopped; Ctrl-C or
        SIGTERM stops the runs started at a checkpoint and starts no other (130)."""
        cores = len(os.sched_getaffinity(0))
        parallel = parallel or cores
        jobs = self.jobs(max(1, cores // parallel))
        self._jobs_folder()
        started: list[RunJob] = []
        interrupted = threading.Event()

        def one(job: RunJob) -> bool:
            if interrupted.is_set():
                return False
            log = self.log_path(job)
            with open(log, "a") as out:
                echo(f"start: {job.name} -> {log}")
                started.append(job)
                job.start(stdout=out)
                if interrupted.is_set():
                    job.stop()
                code = job.wait()
            if code == 0:
                echo(f"finished: {job.name}")
                return True
            if code == EXIT_BAD_INPUT and lock_holder(job.run_dir):
                echo(f"skipped (held by another process): {job.name}, see {log}")
                return True
            echo(f"{'stopped' if code in STOPPED else 'failed'}: {job.name} (exit {code}), see {log}", file=sys.stderr)
            return False

        main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers can be set
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main_thread else None  # TERM: as Ctrl-C
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=parallel)
        try:
            futures = [pool.submit(one, job) for job in jobs]
            ok = all([f.result() for f in futures])  # noqa: C419 (every run, not up to the first failure)
        except KeyboardInterrupt:
            interrupted.set()
            for job in started:
                job.stop()
            pool.shutdown(wait=True, cancel_futures=True)
            echo("interrupted: the runs started wrote their checkpoints; run the sweep again to continue", file=sys.stderr)
            return 130
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
            pool.shutdown(wait=True)
        return 0 if ok else 1


# ---------------------------------------------------------------------- command line
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise SweepError(message)


class _SbatchOption(argparse.Action):
    """An sbatch option, kept under its name in ``namespace.sbatch``; given twice is an error."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if self.dest in namespace.sbatch:
            raise SweepError(f"--{self.dest} given twice (got {namespace.sbatch[self.dest]} and {values})")
        namespace.sbatch[self.dest] = values


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bash run.sh", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="The paper's sweep: tasks x seeds, every run start-or-resume (the same sweep again resumes "
                            "the unfinished runs and skips the finished ones). Here: at most -j runs at once, one log per "
                            "run in LOGDIR/jobs/. With --slurm: one Slurm job array through submitit; at the time limit "
                            "or preemption a run checkpoints and its task is requeued.",
                epilog="Everything after -- goes to every run (python run_re2.py -h lists the flags).\n"
                       "Environment: SEEDS and LOGDIR (defaults of --seeds and --logdir), PYTHON (run.sh's interpreter).\n\n"
                       "examples:\n"
                       "  bash run.sh                                      # six tasks x seeds 1-5 here\n"
                       "  SEEDS=\"1 2\" bash run.sh -j 2 Hopper-v4 -- -num_frames 100000 -RL\n"
                       "  bash run.sh -n                                   # print the commands, run nothing\n"
                       "  bash run.sh --slurm --partition=cpu --time=1-00:00:00 -j 10\n"
                       "  bash run.sh --slurm -n Hopper-v4                 # print the job script, submit nothing\n"
                       "  bash run.sh --status [LOGDIR]                    # one line per run")
    p.add_argument("tasks", nargs="*", metavar="TASK", help=f"gymnasium task ids (default: {' '.join(TASKS)})")
    p.add_argument("-j", dest="parallel", metavar="N", help="runs at once (default: one per core here, all on Slurm)")
    p.add_argument("-n", "--dry-run", action="store_true", help="print what would run or be submitted; do nothing")
    p.add_argument("--seeds", default=os.environ.get("SEEDS", " ".join(map(str, SEEDS))),
                   help="seeds separated by spaces (default: $SEEDS or 1 2 3 4 5)")
    p.add_argument("--logdir", default=os.environ.get("LOGDIR", "./logs"), help="log folder (default: $LOGDIR or ./logs)")
    p.add_argument("--status", action="store_true", help="--status [LOGDIR], alone: one line per run under LOGDIR")
    p.add_argument("--slurm", action="store_true", help="submit one Slurm job array instead of running here")
    group = p.add_argument_group("sbatch options, with --slurm (--opt=value or --opt value; --cpus-per-task is also "
                                 "each run's -threads, default 1)")
    explained = {"time": f"the job's time limit (default: the partition's, read with sinfo; at least {MIN_TIME_MIN} "
                         f"minutes): the run checkpoints {SIGNAL_LEAD_S} s before it and its task is requeued"}
    for name in SBATCH_OPTIONS:
        group.add_argument(f"--{name}", dest=name, action=_SbatchOption, metavar="V", default=argparse.SUPPRESS,
                           help=explained.get(name))
    return p


def parse_command_line(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """``[TASK ...] [options] [-- RUN FLAGS]`` -> the options (``sbatch``: the sbatch options given) and the run flags."""
    head, flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args, unknown = build_parser().parse_known_intermixed_args(head, argparse.Namespace(sbatch={}))
    for arg in unknown:
        name = arg.split("=", 1)[0]
        if name.lstrip("-") in SET_BY_SWEEP:
            raise SweepError(f"{name} is set by the sweep (one array task per run, requeue, signal, logs); "
                             "cap the runs at once with -j N")
        raise SweepError(f"unknown option {name} (accepted: TASK ..., -j N, -n, --seeds, --logdir, --status [LOGDIR], "
                         f"--slurm, -h, -- RUN FLAGS, and with --slurm: {' '.join('--' + o for o in SBATCH_OPTIONS)})")
    if args.status:
        raise SweepError("--status must come first and alone: bash run.sh --status [LOGDIR]")
    if args.parallel is not None:
        if not re.fullmatch(r"[1-9][0-9]*", args.parallel):
            raise SweepError(f"-j must be a positive integer (got {args.parallel})")
        args.parallel = int(args.parallel)
    if args.sbatch and not args.slurm:
        raise SweepError(f"--{next(iter(args.sbatch))} is an sbatch option: it needs --slurm")
    if not args.seeds.split() or not all(re.fullmatch(r"[0-9]+", s) for s in args.seeds.split()):
        raise SweepError(f"SEEDS / --seeds must be non-negative integers separated by spaces (got '{args.seeds}')")
    args.seeds = [int(s) for s in args.seeds.split()]
    return args, flags


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = argv[:argv.index("--")] if "--" in argv else argv
    try:
        if argv[:1] == ["--status"]:
            if len(argv) > 2:
                raise SweepError(f"--status takes one optional argument, the log folder (got: {' '.join(argv[1:])})")
            return lifecycle_main(["status", argv[1] if len(argv) == 2 else os.environ.get("LOGDIR", "./logs")])
        if "-h" in options or "--help" in options:
            build_parser().print_help()
            return 0
        args, flags = parse_command_line(argv)
        sweep = Sweep(args.tasks or TASKS, args.seeds, flags, args.logdir)
        if args.slurm:
            return _submit(sweep, args)
        if args.dry_run:
            cores = len(os.sched_getaffinity(0))
            for job in sweep.jobs(max(1, cores // (args.parallel or cores))):
                print(f"{shlex.join(job.command)} >> {shlex.quote(sweep.log_path(job))} 2>&1")
            return 0
        return sweep.run_here(args.parallel)
    except SweepError as exc:
        print(f"run.sh: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SubmitError as exc:
        print(f"run.sh: error: {exc}", file=sys.stderr)
        return 1


def _submit(sweep: Sweep, args: argparse.Namespace) -> int:
    if args.dry_run:
        _, todo, left_out = sweep.plan(args.parallel, **args.sbatch)
        print(sweep.sbatch_script(args.parallel, **args.sbatch))
        for index, job in enumerate(todo):
            print(f"# array index {index}: {shlex.join(job.command)}")
    else:
        submission = sweep.submit(args.parallel, **args.sbatch)
        todo, left_out = submission.runs, submission.left_out
    for job, reason in left_out:
        print(f"{'# ' if args.dry_run else ''}not submitted ({reason}): {job.name}, {job.run_dir}")
    if not todo:
        print(f"{'# ' if args.dry_run else ''}nothing to submit: all {len(left_out)} runs of this sweep are finished "
              "or running")
        return 0
    if args.dry_run:
        return 0
    job_id = submission.job_id
    print(f"submitted job array {job_id}: {len(todo)} runs, at most {min(len(todo), args.parallel or len(todo))} at once")
    for job, run in zip(submission.jobs, submission.runs):
        print(f"  {job.job_id:<10} {run.name:<22} {run.run_dir}")
    print(f"logs:   {sweep.logdir}/jobs/{job_id}_<index>_0_log.out (one per array task, every attempt)")
    print(f"watch:  squeue -j {job_id}    bash run.sh --status {sweep.logdir}")
    print(f"cancel: scancel {job_id}")
    return 0


if __name__ == "__main__":
    from core.sweep import main as _main  # by the module's own name, so that submitit pickles RunJob by reference

    sys.exit(_main())
