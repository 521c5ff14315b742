"""A run's lifecycle: start-or-resume, signals, checkpoint cadence, the run's exit, and
``python -m core.lifecycle status LOGDIR``. The run's directory (identity → directory, one process per
directory): ``core/run_dir.py``; its recorded state (status.json, what ``status`` prints):
``core/run_status.py``.

The contract a launcher (``core/sweep.py``, a Slurm array) relies on: ``python run_re2.py -env E -seed S
-logdir L [flags]`` starts the run, resumes it from its checkpoint if it was interrupted, or skips it
if it has finished; exit 0 when finished (also when already finished), 143 / 130 after SIGTERM /
SIGINT (checkpoint written), 2 for bad input or a run directory held by another process, 1 for a
failure (non-finite loss, a checkpoint that cannot be written).
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import sys
import time

from core.checkpoint import (
    FILENAME,
    POLICY_FILENAME,
    CheckpointError,
    CheckpointWriteError,
    load_checkpoint,
    load_policy,
    save_checkpoint,
    save_policy,
)
from core.logger import announce, error, new_config, read_config, truncate_progress, write_json_atomic
from core.run_dir import RunHeld, RunLock, identity, run_name
from core.run_status import STATUS_FILE, status_lines, write_status
from parameters import EARLIER_BEHAVIOUR, RESUMABLE, ParameterError, parse_args, recorded_settings, resume_overrides

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_FOR_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


# ---------------------------------------------------------------------- start or resume
class Run:
    """An opened run: its directory (locked), settings, config and, when resuming, its checkpoint."""

    def __init__(self, run_dir: str, args: argparse.Namespace, config: dict, state: dict | None, lock: RunLock):
        self.run_dir, self.args, self.config, self.state, self.lock = run_dir, args, config, state, lock


def _apply_changes(run_dir: str, config: dict, changes: dict, frames: int) -> argparse.Namespace:
    """Apply the settings that may change on resume and record them in config.json."""
    old = config["settings"]
    changed = {k: [old.get(k), v] for k, v in changes.items() if old.get(k) != v}
    if changed:
        config["settings"] = {**old, **changes}
        config.setdefault("resumes", []).append({"at_frames": frames, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "changed": changed})
        for k in changed:
            config["sources"][k] = "flag (on resume)"
        write_json_atomic(os.path.join(run_dir, "config.json"), config)
    return recorded_settings(config["settings"])


def _open_checkpoint(run_dir: str, config: dict) -> dict:
    state = load_checkpoint(run_dir)
    if state.get("run_name") != config["run_name"]:
        raise CheckpointError(f"-resume: the checkpoint in {run_dir} belongs to run {state.get('run_name')!r}, not {config['run_name']!r}")
    config["wandb_run_id"] = state.get("wandb_run_id", config["wandb_run_id"])  # continue the same wandb run
    return state


def open_run(argv: list[str]) -> Run:
    """Start-or-resume. Raises ParameterError / CheckpointError (bad input, exit 2) or RunHeld (exit 2).

    ``-resume RUN_DIR``: that run, with the resumable flags given applied. Otherwise the directory is
    ``<logdir>/<run_name(identity)>``: its checkpoint is resumed (with this command's resumable
    settings); without a checkpoint (a first attempt that died before its first checkpoint) the run is
    started afresh in it: its old progress.csv is removed, a new wandb run id is drawn."""
    args, sources = parse_args(argv)
    if args.resume is not None:
        run_dir = args.resume.rstrip("/") or "/"
        config = read_config(run_dir)
        changes = resume_overrides(argv, config["settings"])
        if not os.path.isfile(os.path.join(run_dir, FILENAME)):
            raise CheckpointError(f"-resume: no checkpoint at {os.path.join(run_dir, FILENAME)}")
    else:
        ident = identity(args)
        run_dir = os.path.join(args.logdir, run_name(ident))
        os.makedirs(run_dir, exist_ok=True)
    lock = RunLock(run_dir)
    try:
        if args.resume is not None:
            state = _open_checkpoint(run_dir, config)
            return Run(run_dir, _apply_changes(run_dir, config, changes, state["counters"]["frames"]), config, state, lock)
        if os.path.isfile(os.path.join(run_dir, FILENAME)):
            config = read_config(run_dir)
            if config.get("identity") != json.loads(json.dumps(ident)):
                raise CheckpointError(f"{run_dir} holds a run with other settings than this command's (see its config.json); "
                                      "use -tag to start a separate run")
            recorded_project = config["settings"].get("wandb_project")
            if args.wandb_project != recorded_project:
                raise ParameterError(f"-wandb_project cannot change when a run continues (this run logs to {recorded_project!r})")
            state = _open_checkpoint(run_dir, config)
            # Same identity, other learner variants: the run was recorded before these defaults changed.
            earlier = {k: config["settings"][k] for k in EARLIER_BEHAVIOUR if config["settings"][k] != getattr(args, k)}
            if earlier:
                print(f"{run_dir} was started before today's defaults of {', '.join('-' + k for k in earlier)}: it continues "
                      f"as it started ({' '.join(f'-{k} {v}' for k, v in earlier.items())})", flush=True)
            changes = {k: getattr(args, k) for k in RESUMABLE}
            return Run(run_dir, _apply_changes(run_dir, config, changes, state["counters"]["frames"]), config, state, lock)
        if os.path.isfile(os.path.join(run_dir, POLICY_FILENAME)):  # a kept run: its checkpoint was removed on purpose
            raise CheckpointError(f"{run_dir} holds a run's {POLICY_FILENAME} but no {FILENAME} (a run kept without its "
                                  "checkpoint): starting afresh would delete it; use another -logdir or -tag")
        if os.path.exists(os.path.join(run_dir, "config.json")) or os.path.exists(os.path.join(run_dir, "progress.csv")):
            print(f"{run_dir} has no checkpoint (its first attempt stopped before writing one): starting it afresh", flush=True)
            for stale in ("progress.csv", "progress.csv.tmp", f"{FILENAME}.tmp", f"{POLICY_FILENAME}.tmp", "config.json.tmp",
                          STATUS_FILE):
                try:
                    os.remove(os.path.join(run_dir, stale))
                except FileNotFoundError:
                    pass
        config = new_config(run_dir, args, sources)
        config["identity"] = ident
        write_json_atomic(os.path.join(run_dir, "config.json"), config)
        return Run(run_dir, args, config, None, lock)
    except BaseException:
        os.close(lock.fd)  # in-process callers (tests) must get the directory back
        raise


# ---------------------------------------------------------------------- signals and checkpoint cadence
class StopFlag:
    """SIGINT / SIGTERM set the flag; the run checks it between learner iterations and phases."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self._previous = {sig: signal.signal(sig, lambda s, _f: self.signals.append(s)) for sig in EXIT_FOR_SIGNAL}

    def __bool__(self) -> bool:
        return bool(self.signals)

    @property
    def name(self) -> str:
        return signal.Signals(self.signals[0]).name

    @property
    def exit_code(self) -> int:
        return EXIT_FOR_SIGNAL[self.signals[0]]

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Cadence:
    """A checkpoint every ``every_frames`` frames (checked at generation ends) and every ``minutes``
    minutes (checked between learner iterations too), whichever comes first; 0 minutes = off."""

    def __init__(self, every_frames: int, minutes: float, frames: int):
        self.every_frames, self.seconds = every_frames, minutes * 60.0
        self.saved(frames)

    def saved(self, frames: int) -> None:
        self.next_frames = (frames // self.every_frames + 1) * self.every_frames
        self.last_time = time.monotonic()

    def frames_due(self, frames: int) -> bool:
        return frames >= self.next_frames

    def time_due(self) -> bool:
        return self.seconds > 0 and time.monotonic() - self.last_time >= self.seconds


def run_main(argv: list[str] | None = None) -> int:
    """``python run_re2.py ...``: open the run (refusals: one line, exit 2), then train it."""
    argv = sys.argv[1:] if argv is None else argv
    stop = StopFlag()  # from the start: a SIGTERM while loading a checkpoint still exits 143 cleanly
    try:
        try:
            opened = open_run(argv)
        except (ParameterError, CheckpointError) as exc:
            error(str(exc))
            return EXIT_BAD_INPUT
        except RunHeld as exc:
            print(f"run_re2.py: {exc}", file=sys.stderr, flush=True)
            return EXIT_BAD_INPUT
        try:
            return execute(opened, stop)
        finally:
            os.close(opened.lock.fd)  # released on exit anyway; in-process callers (tests) get it back now
    finally:
        stop.restore()


def _policy_of_finished_run(run_dir: str, state: dict) -> None:
    """A finished run's policy.pt is its final checkpoint's: written here where it is missing or not that
    checkpoint's (deleted, or the run finished before policy files were written)."""
    try:
        policy = load_policy(run_dir)
        if policy["counters"]["frames"] == state["counters"]["frames"] and policy["run_name"] == state.get("run_name"):
            return
    except (CheckpointError, KeyError, TypeError):
        pass
    try:
        save_policy(run_dir, state)
        print(f"wrote {os.path.join(run_dir, POLICY_FILENAME)} from the final checkpoint", flush=True)
    except OSError as exc:  # a full disk: the run is still finished
        error(f"{exc}; the run is finished, its checkpoint intact")


def execute(run: Run, stop: StopFlag) -> int:
    args, run_dir, state = run.args, run.run_dir, run.state
    logged = 0  # generation of the last row in progress.csv that the checkpoint covers
    if state is not None:
        logged = state.get("logged_generation", state["counters"]["generation"])
        truncate_progress(os.path.join(run_dir, "progress.csv"), logged)  # later rows are recomputed; a torn row goes
        frames = state["counters"]["frames"]
        if frames >= args.num_frames and state.get("pending") is None:
            print(f"{run_dir} has already finished ({frames:,} of {args.num_frames:,} frames): nothing to do", flush=True)
            _policy_of_finished_run(run_dir, state)
            write_status(run_dir, state="finished", exit_code=EXIT_OK, reason=None)
            return EXIT_OK
    if stop:
        print(f"{stop.name} received before the run started: nothing to save; the run is as it was", flush=True)
        return stop.exit_code
    write_status(run_dir, state="running", pid=os.getpid(), host=socket.gethostname(), exit_code=None, reason=None)
    agent = logger = None
    code, outcome, reason = EXIT_FAILED, "failed", "crashed"
    saved_at = (state["counters"]["frames"], os.path.join(run_dir, FILENAME)) if state is not None else None
    try:
        if args.capture_video:
            from core.video import ensure_gl_backend

            ensure_gl_backend()  # before MuJoCo first renders
        import torch  # heavy imports only once the input is known to be good

        from core.agent import Agent, NonFiniteLoss
        from core.logger import RunLogger

        if args.threads:
            torch.set_num_threads(args.threads)
        device = torch.device("cuda" if torch.cuda.is_available() and not args.disable_cuda else "cpu")
        announce(run_dir, run.config, args, device)
        agent = Agent(args, device)
        if state is not None:
            agent.load_state(state)
            print(f"Resuming {run_dir} at frame {agent.frames:,} (generation {logged})", flush=True)
        logger = RunLogger(run_dir, run.config, args.wandb_mode, args.wandb_project, args.num_frames,
                           warmup_rl_frames=args.init_steps if args.RL else 0,
                           start=None if agent.pending else (agent.frames, agent.wall_time()))
        videos = None
        if args.capture_video:
            from core.video import CheckpointVideos

            videos = CheckpointVideos(run_dir, args.env, args.max_episode_steps, args.seed, logger.log_video)
        cadence = Cadence(args.checkpoint_every, args.checkpoint_minutes, agent.frames)
        saved = state is not None  # the agent's state is the checkpoint on disk

        def checkpoint() -> tuple[int, str]:
            state = {**agent.state(), "run_name": run.config["run_name"], "wandb_run_id": run.config["wandb_run_id"],
                     "logged_generation": logged}
            # The acting networks alone first: a checkpoint on disk always has its policy file beside it, so a
            # checkpoint at the budget (a finished run) never stands next to an older policy.
            save_policy(run_dir, state)
            path = save_checkpoint(run_dir, state)
            cadence.saved(agent.frames)
            write_status(run_dir, checkpoint_frames=agent.frames, checkpoint_generation=logged)
            if videos is not None and not stop:  # a signalled run should exit promptly
                videos.capture(agent)
            return agent.frames, path

        try:
            while not stop and (agent.frames < args.num_frames or agent.pending):
                row = agent.train(pause=lambda: bool(stop) or cadence.time_due())
                saved = False
                if row is None:  # paused inside a generation: save it as it stands (then go on, unless stopping)
                    saved_at, saved = checkpoint(), True
                    continue
                row["time_s"] = round(agent.wall_time(), 3)
                row["fps"] = round(agent.frames / row["time_s"], 2) if row["time_s"] > 0 else None
                logger.log(row)
                logged = row["generation"]
                if cadence.frames_due(agent.frames) or cadence.time_due():
                    saved_at, saved = checkpoint(), True
            if not saved:
                saved_at = checkpoint()
        except NonFiniteLoss as exc:
            where = f"{saved_at[1]} (frame {saved_at[0]:,})" if saved_at else "none (no checkpoint written yet)"
            error(f"{exc}; last good checkpoint: {where}")
            reason = str(exc)
            return code
        if stop:
            print(f"{stop.name} received: checkpoint written to {saved_at[1]} at frame {agent.frames:,}"
                  f"{f' ({agent.pending})' if agent.pending else ''}. Resume with: python run_re2.py -resume {run_dir}", flush=True)
            code, outcome, reason = stop.exit_code, "stopped", None
        else:
            print(f"Finished {agent.frames:,} frames. Logs in {run_dir}", flush=True)
            code, outcome, reason = EXIT_OK, "finished", None
        return code
    except OSError as exc:  # CheckpointWriteError included
        if not isinstance(exc, CheckpointWriteError) and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            reason = f"{type(exc).__name__}: {exc}"
            raise
        kept = f"the previous checkpoint {saved_at[1]} (frame {saved_at[0]:,}) and progress.csv are intact" if saved_at else \
            "no checkpoint had been written yet"
        again = f"python run_re2.py -resume {run_dir}" if saved_at else "the same command"
        error(f"{exc}; {kept}; free space, then continue with: {again}")
        reason = str(exc)
        return code
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        write_status(run_dir, state=outcome, exit_code=code, reason=reason)
        if logger is not None:
            logger.close()
        if agent is not None:
            agent.close()


# ---------------------------------------------------------------------- status LOGDIR
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.lifecycle", description="Runs under a log directory.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("status", help="one line per run: task, variant, seed, frames done/budget, last best_reward, "
                       "frames/s, state (running, finished, stopped, failed), run directory")
    s.add_argument("logdir", nargs="?", default="./logs")
    args = p.parse_args(argv)
    if not os.path.isdir(args.logdir):
        print(f"python -m core.lifecycle status: error: no directory {args.logdir}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for line in status_lines(args.logdir):
        print(line)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
