"""Run ERL-Re²: ``python run_re2.py -env HalfCheetah-v4 -seed 1`` (``-h`` lists every flag).

Continue an interrupted run with ``python run_re2.py -resume <run dir>``.
"""
from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from argparse import Namespace
from importlib import metadata

from core.checkpoint import FILENAME, CheckpointError, load_checkpoint, save_checkpoint
from core.logger import error, truncate_progress, write_json_atomic
from core.tasks import task_family
from parameters import ParameterError, build_parser, parse_args, validate

EXIT_BAD_INPUT = 2
EXIT_FOR_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


def variant(args: Namespace) -> str:
    return "ERL-Re2" if args.EA and args.RL else ("EA only" if args.EA else "RL only")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
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


def new_run(args: Namespace, sources: dict[str, str]) -> tuple[str, dict]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{args.env}__seed{args.seed}__{stamp}"
    run_dir = os.path.join(args.logdir, name)
    k = 1
    while os.path.exists(run_dir):  # two runs started in the same second
        k += 1
        run_dir = os.path.join(args.logdir, f"{name}-{k}")
    os.makedirs(run_dir)
    config = {
        "run_name": os.path.basename(run_dir), "env": args.env, "task": task_family(args.env), "seed": args.seed,
        "variant": variant(args), "settings": vars(args), "sources": sources, "versions": _versions(),
        "git_commit": _git_commit(), "wandb_run_id": uuid.uuid4().hex[:12],
    }
    write_json_atomic(os.path.join(run_dir, "config.json"), config)
    return run_dir, config


def open_resumed_run(run_dir: str) -> tuple[Namespace, dict, dict]:
    """Config and checkpoint of an existing run; any problem is a one-line error and nothing is touched."""
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path) as f:
            config = json.load(f)
        # Settings added after the run was made take their defaults.
        args = Namespace(**{**vars(build_parser().parse_args([])), **config["settings"]})
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"-resume: {run_dir} is not an ERL-Re2 run directory (no readable config.json)") from None
    state = load_checkpoint(run_dir)
    if state.get("run_name") != config["run_name"]:
        raise CheckpointError(f"-resume: the checkpoint in {run_dir} belongs to run {state.get('run_name')!r}, not {config['run_name']!r}")
    config["wandb_run_id"] = state.get("wandb_run_id", config["wandb_run_id"])  # continue the same wandb run
    return args, config, state


def main(argv: list[str] | None = None) -> int:
    try:
        args, sources = parse_args(argv)
        if args.resume is not None:
            run_dir = args.resume
            args, config, state = open_resumed_run(run_dir)
            validate(args)
        else:
            state = None
    except (ParameterError, CheckpointError) as exc:
        error(str(exc))
        return EXIT_BAD_INPUT

    capture_video = getattr(args, "capture_video", False)  # absent from runs started before the flag
    if capture_video:
        from core.video import ensure_gl_backend

        ensure_gl_backend()  # before MuJoCo is first imported
    import torch  # heavy imports only once the input is known to be good

    from core.agent import Agent, NonFiniteLoss
    from core.logger import RunLogger

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.disable_cuda else "cpu")
    if state is None:
        run_dir, config = new_run(args, sources)
    agent = Agent(args, device)
    if state is not None:
        agent.load_state(state)
        truncate_progress(os.path.join(run_dir, "progress.csv"), agent.generation)
        print(f"Resuming {run_dir} at frame {agent.frames:,} (generation {agent.generation})", flush=True)
        if agent.frames >= args.num_frames:
            print("This run has already finished.", flush=True)
            return 0
    print(f"ERL-Re2 | {config['variant']} | {args.env} | seed {args.seed} | device {device} | run dir {run_dir}", flush=True)
    if not args.RL:
        print("RL is off (EA-only ablation): evolution starts at once with full-episode (MC) fitness; "
              "phi and the PeVFA stay at their initialisation.", flush=True)
    elif not args.EA:
        print("EA is off (RL-only ablation): no population, no PeVFA; the RL head and phi learn by TD3.", flush=True)

    logger = RunLogger(run_dir, config, args.wandb_mode, args.wandb_project, args.num_frames)
    videos = None
    if capture_video:
        from core.video import CheckpointVideos

        videos = CheckpointVideos(run_dir, args.env, args.max_episode_steps, args.seed, logger.log_video)
    stop: list[int] = []
    previous = {sig: signal.signal(sig, lambda s, _f: stop.append(s)) for sig in EXIT_FOR_SIGNAL}

    def checkpoint() -> str:
        path = save_checkpoint(run_dir, {**agent.state(), "run_name": config["run_name"], "wandb_run_id": config["wandb_run_id"]})
        if videos is not None and not stop:  # a signalled run should exit promptly
            videos.capture(agent)
        return path

    last_checkpoint = os.path.join(run_dir, FILENAME) if state is not None else None
    next_checkpoint = (agent.frames // args.checkpoint_every + 1) * args.checkpoint_every
    code = 0
    try:
        while agent.frames < args.num_frames and not stop:
            row = agent.train()
            row["time_s"] = round(agent.wall_time(), 3)
            row["fps"] = round(agent.frames / row["time_s"], 2) if row["time_s"] > 0 else None
            logger.log(row)
            if agent.frames >= next_checkpoint:
                last_checkpoint = checkpoint()
                next_checkpoint = (agent.frames // args.checkpoint_every + 1) * args.checkpoint_every
        last_checkpoint = checkpoint()
        if stop:
            name = signal.Signals(stop[0]).name
            print(f"{name} received: checkpoint written to {last_checkpoint} at frame {agent.frames:,}. "
                  f"Resume with: python run_re2.py -resume {run_dir}", flush=True)
            code = EXIT_FOR_SIGNAL[stop[0]]
        else:
            print(f"Finished {agent.frames:,} frames. Logs in {run_dir}", flush=True)
    except NonFiniteLoss as exc:
        where = last_checkpoint or "none (no checkpoint written yet)"
        error(f"{exc}; last good checkpoint: {where}")
        code = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logger.close()
        agent.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
