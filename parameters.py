"""Command line of ERL-Re²: the reference's single-dash flags, per-task defaults from the paper's
appendix, and validation that refuses bad input (exit 2, one line) before any work is done."""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
from dataclasses import asdict

from core.learner_config import CRITIC_ACTIONS, VARIANTS
from core.mod_neuro_evo import ELITE_CLONES
from core.tasks import close_task_names, default_sync_period, task_family, task_settings

# Settings for tasks the paper did not run: the reference's command-line defaults, i.e. what its code
# runs with on a task its scripts do not cover (K at most pop_size + 1, as its randperm slice gives).
BUILTIN_TASK_DEFAULTS = {"theta": 0.5, "frac": 0.1, "time_steps": 1, "K": 5, "gamma": 0.99}
TASK_DEPENDENT = ("theta", "frac", "time_steps", "K", "gamma", "sync_period")
MIN_BUFFER = 5000  # transitions needed before learning starts: min(MIN_BUFFER, init_steps)
REPORTED_SCORES = ("reference", "tests_run")  # values of -reported_score (core.agent.reported_score)
# Settings that may change when a run continues (-resume, or the same command again): they do not
# change what the run computes, only how long, where and how fast it runs and how often it saves.
RESUMABLE = ("num_frames", "threads", "wandb_mode", "checkpoint_every", "checkpoint_minutes", "disable_cuda", "logdir",
             "capture_video")
# Settings that are not part of a run's identity (its directory name): the above, plus these.
NOT_IDENTITY = (*RESUMABLE, "wandb_project", "resume", "tag", "env", "seed", "EA", "RL")


class ParameterError(ValueError):
    """Bad command-line input: the message names the flag and what it accepts."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints the usage too)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def finite_float(text: str) -> float:
    """A float flag's type: nan and inf are refused up front (they would surface as a NaN loss much later)."""
    value = float(text)  # a ValueError becomes argparse's "invalid float value"
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
    return value


finite_float.__name__ = "float"  # argparse names the type in its message: "invalid float value: 'x'"


def run_tag(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,40}", text):
        raise argparse.ArgumentTypeError(f"must be 1-40 characters from A-Z a-z 0-9 . _ - (got {text!r})")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="run_re2.py", description="ERL-Re²: evolutionary RL with a shared state representation "
                "and individual linear policy representations (ICLR 2023).")
    a = p.add_argument
    a("-env", default="HalfCheetah-v4", help="Gymnasium MuJoCo task, e.g. HalfCheetah-v4, Hopper-v5")
    a("-seed", type=int, default=1, help="random seed; the paper uses 1 to 5")
    a("-pop_size", type=int, default=5, help="population size (number of linear policy heads evolved)")
    a("-pr", type=int, default=64, help="policy representation size (width of χ(π))")
    a("-OFF_TYPE", type=int, default=1, help="type of PeVFA: 1 = V(s, a, χ(π)), 2 = V(φ(s), χ(π))")
    a("-prob_reset_and_sup", type=finite_float, default=0.05, help="probability of resetting parameters and of super mutations")
    a("-time_steps", type=int, default=None, help="H, the step length of the H-step return (task default)")
    a("-theta", type=finite_float, default=None, help="probability of using MC (full-episode) fitness estimates (task default)")
    a("-frac", type=finite_float, default=None, help="mutation ratio: fraction of each head row mutated (task default)")
    a("-gamma", type=finite_float, default=None, help="discount factor γ for RL (task default)")
    a("-TD3_noise", type=finite_float, default=0.2, help="std of TD3's target-policy smoothing noise")
    a("-EA", action="store_true", help="use EA; given without -RL, runs the EA-only ablation")
    a("-RL", action="store_true", help="use RL; given without -EA, runs the RL-only ablation")
    a("-K", type=int, default=None, help="number of individuals selected to optimise the shared representation (task default)")
    a("-EA_actor_alpha", type=finite_float, default=1.0, help="coefficient balancing the weight of the PeVFA loss on φ")
    a("-actor_alpha", type=finite_float, default=1.0, help="coefficient balancing the weight of the RL loss on φ")
    a("-tau", type=finite_float, default=0.005, help="coefficient for soft target updates")
    a("-logdir", default="./logs", help="log location; each run writes <logdir>/<env>__<variant>[__<settings>][__<tag>]__seed<seed>/")
    a("-disable_cuda", action="store_true", help="run on the CPU even when CUDA is available")
    a("-num_evals", type=int, default=1, help="episodes per member for MC fitness")
    a("-sync_period", type=int, default=None, help="generations between RL→EA syncs (task default: 1 on HalfCheetah, Hopper, Walker2d, Ant, Humanoid; "
      "10 on Swimmer and any other task, as the reference)")
    a("-use_all", action="store_true", help="fit the PeVFA on all N+1 actors each iteration instead of one drawn at random")
    a("-skip_warmup_evolution", action="store_true",
      help="not the reference: run no SSNE epoch while the RL agent's random warm-up lasts (fitness is all "
           "zeros then, so the reference's epochs only mutate the heads at random and compound into saturated "
           "bang-bang controllers on long warm-ups such as Hopper's); evolution then starts from fresh heads")
    a("-pevfa_rows", default="reference", choices=VARIANTS,
      help="the rows of a policy head that the PeVFA's policy encoder reads: reference (default, the authors' code: "
           "[W.flatten(), b] reshaped to (A, ls+1), rows that straddle action dimensions, all biases in the last row) "
           "or paper (the true rows [W[j], b[j]] of the paper's policy representation). Measured on HalfCheetah-v4, "
           "3 seeds, both with -phi_grad paper: best so far at 200k frames 7,097 ± 351 with paper vs 6,209 ± 751 "
           "with reference (docs/differences.md)")
    a("-phi_grad", default="reference", choices=VARIANTS,
      help="φ's gradient in the actor step: reference (default, the authors' code as it ran on torch 1.1: the RL "
           "head is stepped first, φ's share of L_rl flows back through the post-step head weight with the "
           "pre-step actions, L_ea is built after the head's step) or paper (every gradient at the pre-step "
           "parameters, as the paper's equations). Measured on HalfCheetah-v4, 3 seeds, with the reference rows: "
           "best so far at 200k frames 6,209 ± 751 with paper vs 6,092 ± 259 with reference, no visible "
           "effect (docs/differences.md)")
    a("-critic_actions", default="reference", choices=CRITIC_ACTIONS,
      help="the action the TD3 critic's current Q reads: reference (default, the authors' code as it ran on the "
           "CPU: for a minibatch holding no RL exploration action, e.g. every minibatch of the generation that ends "
           "the warm-up, the raw target-smoothing noise, because their action tensor shares memory with the "
           "float32 numpy batch into which the noise is drawn) or batch (always the minibatch's actions, plain "
           "TD3). HalfCheetah-v4: docs/differences.md")
    a("-elite_clone", default="reference", choices=ELITE_CLONES,
      help="how SSNE clones its elites: reference (default, the authors' code: one after another from the live "
           "population, so once the unselected slots run out an elite can land on a winner slot holding an elite "
           "not yet cloned, which is then cloned from the overwritten slot) or snapshot (every elite cloned from "
           "a copy taken first). With fewer than three elites (pop_size < 15; the paper's 5 has one) both give "
           "the same population")
    a("-reported_score", default="reference", choices=REPORTED_SCORES,
      help="best_reward, the score each row reports: reference (default, the authors' code: max(champion test, "
           "RL test) with 0 for a test that did not run, so a negative score is reported as 0 during the RL "
           "warm-up and in RL-only or EA-only runs) or tests_run (the best test that ran, a score some policy "
           "earned). Both agree whenever both tests ran or the score is >= 0")
    a("-rl_algo", default="td3", choices=["td3", "ddpg"], help="RL learner: td3 (default) or ddpg")
    a("-num_frames", type=finite_float, default=1e6, help="environment frames (stored steps) to run for")
    a("-init_steps", type=int, default=10_000, help="RL frames of uniform random actions before learning starts")
    a("-test_episodes", type=int, default=10, help="noise-free episodes per champion / RL test")
    a("-max_episode_steps", type=int, default=None, help="episode time limit (task default, 1000 on MuJoCo)")
    a("-batch_size", type=int, default=128, help="minibatch size of every update")
    a("-buffer_size", type=finite_float, default=1e6, help="replay buffer capacity (transitions)")
    a("-checkpoint_every", type=finite_float, default=50_000, help="frames between checkpoints (one is also written at the end)")
    a("-checkpoint_minutes", type=finite_float, default=10.0,
      help="also checkpoint when this many minutes have passed since the last one, mid-generation too (0: off)")
    a("-resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    a("-tag", type=run_tag, default=None, help="label added to the run's directory name (a separate run of the same settings)")
    a("-threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    a("-compile", action="store_true", help="torch.compile each learner iteration whole: forward, backward, clipping, "
      "soft updates (off by default: faster per iteration after a compile of about a minute, not bit-identical "
      "to the eager default)")
    a("-wandb_mode", default="offline", choices=["offline", "online", "disabled"], help="wandb logging (offline needs no login)")
    a("-wandb_project", default="ERL-Re2", help="wandb project name")
    a("-capture_video", action="store_true",
      help="at each checkpoint, record one noise-free episode of the champion and of the RL agent to "
           "RUN_DIR/videos/<frames>_<actor>.mp4 (and to wandb); needs an offscreen MuJoCo renderer (EGL), "
           "without one the run warns once and continues without videos; training is unchanged either way")
    return p


def explicit_flags(argv: list[str]) -> set[str]:
    """Names of the flags actually given on the command line."""
    p = build_parser()
    for action in p._actions:
        action.default = argparse.SUPPRESS
    return set(vars(p.parse_args(argv)))


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, str]]:
    """Parse and resolve the settings; returns them and where each came from
    (``flag``, ``task default`` or ``built-in``). Raises ParameterError on bad input.

    With ``-resume`` only the flags given are meaningful (the rest comes from the run's config.json):
    the settings are returned unresolved and ``resume_overrides`` checks them."""
    argv = sys.argv[1:] if argv is None else argv
    for flag, replacement in REPLACED_FLAGS.items():
        if "-" + flag in argv:
            raise ParameterError(f"-{flag} no longer exists: the reference's rows are the default now; "
                                 f"{replacement} {{reference,paper}} chooses the layout")
    args = build_parser().parse_args(argv)
    given = explicit_flags(argv)
    sources = {k: ("flag" if k in given else "built-in") for k in vars(args)}
    if args.resume is not None:
        return args, sources
    resolve(args, sources)
    validate(args)
    return args, sources


def resolve(args: argparse.Namespace, sources: dict[str, str]) -> None:
    """Fill the task-dependent settings and the variant switches in place."""
    _check_env(args.env)
    paper = task_settings(args.env, args.rl_algo)
    defaults = asdict(paper) if paper else dict(BUILTIN_TASK_DEFAULTS)
    defaults["sync_period"] = default_sync_period(args.env)
    if not paper:
        defaults["K"] = min(defaults["K"], args.pop_size + 1)
    for name in TASK_DEPENDENT:
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
            sources[name] = "task default" if (paper or name == "sync_period") else "built-in"
    # -EA / -RL: neither → the full method; one → only that part (the ablations).
    ea, rl = args.EA, args.RL
    args.EA, args.RL = (ea or not rl), (rl or not ea)
    args.num_frames, args.buffer_size, args.checkpoint_every = int(args.num_frames), int(args.buffer_size), int(args.checkpoint_every)


# Settings whose default changed since runs were recorded: a config.json without the flag records a run made
# with the earlier behaviour, not with today's default. -pevfa_rows replaced -reference_pevfa_rows (true rows
# unless that flag was given); -phi_grad arrived when the reference's gradient became the default; -elite_clone
# and -reported_score when the reference's cloning and reported score did (a snapshot and the tests that ran before);
# -critic_actions when the critic first read the reference's actions (the batch's before).
REPLACED_FLAGS = {"reference_pevfa_rows": "-pevfa_rows"}
EARLIER_BEHAVIOUR = {"pevfa_rows": "paper", "phi_grad": "paper", "elite_clone": "snapshot", "reported_score": "tests_run",
                     "critic_actions": "batch"}


def recorded_settings(settings: dict) -> argparse.Namespace:
    """A run's settings as recorded in its config.json, with the parser's default for every flag
    added since that run started (all of them off by default), so readers need no fallbacks; a run
    recorded before a flag of ``EARLIER_BEHAVIOUR`` existed gets the behaviour it ran with (``EARLIER_BEHAVIOUR``,
    ``-reference_pevfa_rows`` read as ``-pevfa_rows reference``)."""
    settings = dict(settings)
    if settings.pop("reference_pevfa_rows", False):
        settings["pevfa_rows"] = "reference"
    earlier = {k: v for k, v in EARLIER_BEHAVIOUR.items() if k not in settings}
    return argparse.Namespace(**{**parser_defaults(), **earlier, **settings})


def parser_defaults() -> dict:
    """Every flag's default as the parser has it today (task-dependent ones None)."""
    parser = build_parser()
    return {a.dest: parser.get_default(a.dest) for a in parser._actions if a.dest != "help"}


def default_settings(env: str, rl_algo: str) -> dict:
    """Every setting as it would be with no flag but ``-env`` and ``-rl_algo``: what "non-default" means
    for a run's identity (a task default given explicitly is still the default)."""
    args = build_parser().parse_args(["-env", env, "-rl_algo", rl_algo])
    resolve(args, {k: "built-in" for k in vars(args)})
    return vars(args)


def resume_overrides(argv: list[str], recorded: dict) -> dict:
    """The settings given next to ``-resume``: those that may change are returned (to be applied and
    recorded); any other flag is refused, naming it, so that no flag is ever silently ignored."""
    args = build_parser().parse_args(argv)
    given = explicit_flags(argv) - {"resume"}
    may_change = [k for k in RESUMABLE if k != "logdir"]  # the directory is the one given to -resume
    refused = sorted(given - set(may_change))
    if refused:
        raise ParameterError(f"-{refused[0]} cannot be given with -resume (the run's directory and settings are fixed, "
                             f"see its config.json); with -resume only {', '.join('-' + k for k in may_change)} may change")
    out = {k: getattr(args, k) for k in sorted(given)}
    for k in ("num_frames", "checkpoint_every"):
        if k in out:
            out[k] = int(out[k])
    merged = argparse.Namespace(**{**recorded, **out})
    validate(merged, check_logdir=False)
    return out


def _check_env(env_id: str) -> None:
    import gymnasium as gym

    known = list(gym.registry)
    if env_id not in gym.registry:
        close = close_task_names(env_id, known) or close_task_names(task_family(env_id) + "-v4", known)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see gymnasium.registry for the available tasks"
        raise ParameterError(f"-env: unknown task '{env_id}'{hint}")


def validate(args: argparse.Namespace, check_logdir: bool = True) -> None:
    """Refuse settings the algorithm cannot run with; each message names the flag."""

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ParameterError(msg)

    need(args.pop_size >= 2, f"-pop_size must be an integer >= 2 (got {args.pop_size})")
    need(1 <= args.K <= args.pop_size + 1, f"-K must be in [1, pop_size + 1] = [1, {args.pop_size + 1}] (got {args.K})")
    for name in ("theta", "frac", "prob_reset_and_sup"):
        value = getattr(args, name)
        need(0.0 <= value <= 1.0, f"-{name} must be in [0, 1] (got {value})")
    need(2 * args.prob_reset_and_sup <= 1.0, f"-prob_reset_and_sup must be <= 0.5 so that 2·p <= 1 (got {args.prob_reset_and_sup})")
    need(args.OFF_TYPE in (1, 2), f"-OFF_TYPE must be 1 or 2 (got {args.OFF_TYPE})")
    need(0.0 < args.gamma <= 1.0, f"-gamma must be in (0, 1] (got {args.gamma})")
    need(0.0 < args.tau <= 1.0, f"-tau must be in (0, 1] (got {args.tau})")
    need(args.TD3_noise >= 0.0, f"-TD3_noise must be >= 0 (got {args.TD3_noise})")
    for name in ("pr", "time_steps", "num_evals", "sync_period", "num_frames", "test_episodes", "batch_size",
                 "buffer_size", "checkpoint_every"):
        need(getattr(args, name) > 0, f"-{name} must be a positive integer (got {getattr(args, name)})")
    need(args.init_steps >= 0, f"-init_steps must be an integer >= 0 (got {args.init_steps})")
    need(args.max_episode_steps is None or args.max_episode_steps > 0,
         f"-max_episode_steps must be a positive integer (got {args.max_episode_steps})")
    need(args.threads is None or args.threads > 0, f"-threads must be a positive integer (got {args.threads})")
    need(args.checkpoint_minutes >= 0, f"-checkpoint_minutes must be >= 0, 0 meaning off (got {args.checkpoint_minutes})")
    smallest = max(args.batch_size, min(MIN_BUFFER, args.init_steps))  # else the learner never starts or samples repeats
    need(args.buffer_size >= smallest, f"-buffer_size must be >= {smallest} = max(batch_size, min({MIN_BUFFER}, init_steps)) "
         f"(got {args.buffer_size})")
    need(not check_logdir or writable(args.logdir), f"-logdir: cannot create or write to '{args.logdir}'")


def writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            return True
    except OSError:
        return False
