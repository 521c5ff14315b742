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
``RunJob`` (``core/run_job.py``): before the time limit (or at preemption, where the cluster sends the
same signal) submitit calls ``RunJob.checkpoint``, which stops the run with SIGTERM (it checkpoints
within seconds and exits 143) and hands submitit the same call to requeue; the requeued call resumes
the run. The sbatch options: ``core/slurm_options.py``; the command line: ``core/sweep_cli.py``.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import io
import os
import shlex
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import submitit
from submitit.core.utils import FailedSubmissionError, UncompletedJobError

from core.lifecycle import EXIT_BAD_INPUT
from core.run_dir import identity, lock_holder, run_name
from core.run_job import STOPPED, RunJob
from core.run_status import current_state, status_lines
from core.slurm_options import MIN_TIME_MIN, SweepError, partition_time_limit, slurm_minutes, slurm_parameters
from parameters import ParameterError, explicit_flags, parse_args, writable

TASKS = ("HalfCheetah-v4", "Hopper-v4", "Walker2d-v4", "Ant-v4", "Humanoid-v4", "Swimmer-v4")
SEEDS = (1, 2, 3, 4, 5)
MAX_TIME_LIMITS = 100  # time-limit requeues per run before submitit gives up (submitting again continues)


class SubmitError(RuntimeError):
    """Slurm is missing or refused the job; nothing was submitted (exit 1)."""


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


if __name__ == "__main__":  # python -m core.sweep, as bash run.sh runs it
    from core.sweep_cli import main

    sys.exit(main())
