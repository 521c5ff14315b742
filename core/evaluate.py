"""Evaluate a saved run: noise-free episodes of its champion, its RL agent or every actor, and videos.

    python -m core.evaluate RUN_DIR [-episodes N] [-actor champion|rl|all] [-video DIR] [-seed S]

Only ``config.json`` and ``checkpoint.pt`` are read, or, where there is no checkpoint, ``policy.pt``
(the acting networks a run writes beside each checkpoint: all a finished run's agents need, about
0.6 MB). Both are replaced atomically, so a run that is still going can be evaluated: this sees its
last complete checkpoint. The networks are
rebuilt from the run's settings and φ and the heads act exactly as in the run's test episodes
(same rollout code, same rescaling of [-1, 1] to the task's action bounds).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.checkpoint import FILENAME, POLICY_FILENAME, CheckpointError, acting_network, load_checkpoint, load_policy
from parameters import recorded_settings, writable

if TYPE_CHECKING:  # torch and the learner are imported only once the input is known to be good
    from core.ddpg import ERLRe2Learner

EXIT_BAD_INPUT = 2
ACTORS = ("champion", "rl", "all")
PROG = "python -m core.evaluate"


class RunError(ValueError):
    """A run directory that cannot be evaluated, or an actor it does not have (one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse would print the usage too)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Play noise-free episodes of a saved ERL-Re2 run's actors; optionally record MP4s.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by run_re2.py (config.json + checkpoint.pt)")
    p.add_argument("-episodes", type=int, default=10, help="noise-free episodes per actor (default 10)")
    p.add_argument("-actor", choices=ACTORS, default="all",
                   help="champion (member with the best last fitness), rl (the RL agent) or all (every member and the RL agent)")
    p.add_argument("-video", metavar="DIR", default=None, help="write one MP4 per actor (its first episode) into DIR")
    p.add_argument("-seed", type=int, default=None, help="seed of the episodes' resets (default: the run's seed + 100)")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.episodes <= 0:
        raise RunError(f"-episodes must be a positive integer (got {args.episodes})")
    if args.seed is not None and args.seed < 0:
        raise RunError(f"-seed must be an integer >= 0 (got {args.seed})")
    if args.video is not None and not writable(args.video):
        raise RunError(f"-video: cannot create or write to '{args.video}'")
    return args


def open_run(run_dir: str) -> tuple[dict, argparse.Namespace, dict]:
    """(config, settings, checkpoint) of a run directory; any problem is a RunError naming it."""
    if not os.path.isdir(run_dir):
        raise RunError(f"RUN_DIR: no such directory: {run_dir}")
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
        if not all(k in config["settings"] for k in ("env", "seed", "pop_size", "EA", "RL", "max_episode_steps")):
            raise KeyError("settings")
        settings = recorded_settings(config["settings"])
    except (OSError, ValueError, KeyError, TypeError):
        raise RunError(f"RUN_DIR: {run_dir} is not an ERL-Re2 run directory (no readable config.json)") from None
    policy = not os.path.isfile(os.path.join(run_dir, FILENAME)) and os.path.isfile(os.path.join(run_dir, POLICY_FILENAME))
    try:
        state = load_policy(run_dir) if policy else load_checkpoint(run_dir, flag="RUN_DIR")
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    if state.get("run_name") != config.get("run_name"):
        raise RunError(f"RUN_DIR: the {'policy file' if policy else 'checkpoint'} in {run_dir} belongs to run "
                       f"{state.get('run_name')!r}, not {config.get('run_name')!r}")
    state["source"] = "policy file" if policy else "checkpoint"
    return config, settings, state


def choose_actors(which: str, settings: argparse.Namespace, state: dict) -> list[tuple[str, int]]:
    """(label, index into the learner's ``actors()``) for each actor to play."""
    n, ea, rl = settings.pop_size, settings.EA, settings.RL
    champion = state.get("champion")
    if which == "champion":
        if not ea:
            raise RunError("-actor champion: this run is RL only (no population); accepted here: rl, all")
        if "champion" not in state:
            raise RunError("-actor champion: the checkpoint predates the champion record (older version); "
                           "accepted here: rl, all")
        if champion is None:
            raise RunError("-actor champion: no champion yet (evolution had no fitness at this checkpoint); "
                           "accepted here: rl, all")
        return [("champion", champion["member"])]
    if which == "rl":
        if not rl:
            raise RunError("-actor rl: this run is EA only (its RL head never trained); accepted here: champion, all")
        return [("rl", n)]
    best = champion["member"] if champion else None
    members = [(f"member{i}" + (" (champion)" if i == best else ""), i) for i in range(n)] if ea else []
    return members + ([("rl", n)] if rl else [])


def build_learner(settings: argparse.Namespace, state: dict, state_dim: int, action_dim: int) -> ERLRe2Learner:
    """The run's learner on the CPU with the parameters that act (φ, heads) from the checkpoint or the
    policy file; the rest stays at its initialisation, unused."""
    from core.agent import make_learner_config
    from core.ddpg import ERLRe2Learner

    learner = ERLRe2Learner(make_learner_config(settings, state_dim, action_dim), "cpu", seed=settings.seed)
    networks = state["networks"] if "networks" in state else state.get("learner", {}).get("networks")
    try:
        missing, unexpected = learner.load_state_dict(networks, strict=False)
        if unexpected or any(acting_network(k) for k in missing):
            raise KeyError(unexpected or missing)
    except (KeyError, TypeError, RuntimeError, AttributeError):
        raise RunError(f"RUN_DIR: the networks of its {state.get('source', 'checkpoint')} do not match the sizes in config.json") from None
    return learner


@dataclass
class ActorResult:
    label: str
    returns: np.ndarray
    lengths: np.ndarray
    video: str | None = None
    video_frames: int = 0


def play(learner: ERLRe2Learner, settings: argparse.Namespace, actors: list[tuple[str, int]], episodes: int, seed: int,
         video_dir: str | None, frames: int) -> list[ActorResult]:
    """``episodes`` noise-free episodes per actor, all in one lockstep batch on the same reset seeds
    (common random numbers make the actors' rows comparable); with ``video_dir``, each actor's first
    episode is recorded to ``<video_dir>/<frames>_<actor>.mp4``."""
    from core.rollout import EnvPool, run_episodes
    from core.video import evaluation_reset_seeds

    reset_seeds = evaluation_reset_seeds(seed, episodes)
    heads = np.repeat([h for _, h in actors], episodes)
    names = [label.split(" ")[0] for label, _ in actors]
    videos = {k * episodes: os.path.join(video_dir, f"{frames}_{name}.mp4") for k, name in enumerate(names)} if video_dir else {}
    if videos:
        from core.video import recording_pool

        pool = recording_pool(settings.env, len(heads), settings.max_episode_steps, videos)
    else:
        pool = EnvPool(settings.env, len(heads), settings.max_episode_steps)
    try:
        ep = run_episodes(pool, learner.policy(heads), reset_seeds * len(actors))
        written = {i: pool.envs[i].writer.close() for i in videos}
    finally:
        pool.close()
    return [ActorResult(label, ep.returns[k * episodes:(k + 1) * episodes], ep.lengths[k * episodes:(k + 1) * episodes],
                        videos.get(k * episodes), written.get(k * episodes, 0))
            for k, (label, _) in enumerate(actors)]


def format_table(results: list[ActorResult]) -> str:
    lines = ["| actor | return (mean ± std) | episode length (mean) |", "|---|---:|---:|"]
    for r in results:
        lines.append(f"| {r.label} | {r.returns.mean():.1f} ± {r.returns.std():.1f} | {r.lengths.mean():.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        config, settings, state = open_run(args.run_dir)
        actors = choose_actors(args.actor, settings, state)
        import gymnasium as gym

        if settings.env not in gym.registry:
            raise RunError(f"RUN_DIR: the run's task {settings.env!r} is not registered in this gymnasium")
        if args.video is not None:
            from core.video import no_renderer_message, renderer_problem

            problem = renderer_problem(settings.env)
            if problem:
                raise RunError(f"-video: {no_renderer_message(problem)}")
    except RunError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return EXIT_BAD_INPUT

    import torch

    torch.set_num_threads(1)  # acting is a few small matmuls per step; more threads only add overhead
    from core.rollout import make_env

    probe = make_env(settings.env)
    state_dim, action_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
    probe.close()
    try:
        learner = build_learner(settings, state, state_dim, action_dim)
    except RunError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return EXIT_BAD_INPUT

    seed = settings.seed + 100 if args.seed is None else args.seed
    counters = state.get("counters", {})
    frames = int(counters.get("frames", 0))
    results = play(learner, settings, actors, args.episodes, seed, args.video, frames)
    print(f"{settings.env} | {config.get('variant', '?')} | seed {settings.seed} | {state['source']} at {frames:,} frames "
          f"(generation {counters.get('generation', '?')}) | {args.episodes} noise-free episodes per actor, resets from seed {seed}")
    print(format_table(results))
    print("± is the standard deviation over episodes (ddof=0).")
    for r in results:
        if r.video:
            print(f"video: {r.video} ({r.video_frames} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
