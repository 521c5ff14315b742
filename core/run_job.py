"""One run of a sweep as the call a Slurm array task (or a local worker) makes: ``RunJob`` runs
``run_re2.py`` as a child process, turns submitit's time-limit signal into the run's own stop (SIGTERM:
it checkpoints and exits 143) and hands submitit the same call to requeue (docs/slurm.md, "A job's life").
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import threading
import time

import submitit
from submitit.core.job_environment import JobEnvironment

from core.lifecycle import EXIT_BAD_INPUT
from core.run_dir import lock_holder
from core.slurm_options import ROOT, SIGNAL_LEAD_S

STOP_WAIT_S = SIGNAL_LEAD_S - 30  # how long the signal handler waits for the run to checkpoint and exit
STOPPED = (130, 143)  # the run's exit codes after SIGINT / SIGTERM, checkpoint written


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
