"""Speed benchmark: ``python -m core.bench [-quick] [-disable_cuda] [-threads N]``.

1. Update: ms per learner iteration at HalfCheetah sizes (pop 5, K 1, batch 128, pr 64), the
   matmul FLOPs of one iteration, and the floor: the same matmuls (recorded op by op, same
   shapes) replayed alone on this machine. ``update_vs_floor`` = iteration time / floor time.
   Measured at 1 thread (one job per core, as a sweep runs) and at the machine's thread count
   (``-threads`` or every core), each against its own floor at the same thread count.
2. Rollouts: µs per frame of one generation's episodes (5 population members in lockstep, then
   10 champion and 10 RL test episodes), against bare ``env.step`` of the same instances, in the
   same lockstep order, for the same number of steps; and the share of it spent in the policy calls.
3. End to end: frames/s of a short run with the paper's settings past init (the generation loop of
   ``core.agent`` in a fresh process), the hours a 1M-frame run would take at that rate (one
   iteration per frame, so the rate past init holds), and its efficiency: (matmul floor × learner
   iterations + bare ``env.step`` time × environment steps, test episodes included) ÷ wall time,
   i.e. how close the run is to what this hardware allows, whatever the day's speed.
4. Sweep: two 1-thread jobs side by side (what ``run.sh`` does on 2 cores) against one 2-thread
   job, frames/s per job and in total.
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from core.ddpg import ERLRe2Learner
from core.learner_config import LearnerConfig
from core.replay_memory import ReplayMemory
from core.rollout import EnvPool, run_episodes

MATMULS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default, torch.ops.aten.baddbmm.default}


class _RecordMatmuls(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in MATMULS:
            self.calls.append((func, [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)],
                               [tuple(a.stride()) for a in args if isinstance(a, torch.Tensor)]))
        return func(*args, **(kwargs or {}))


def _flops(func, shapes) -> int:
    if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
        (m, k), (_, n) = shapes[-2], shapes[-1]
        return 2 * m * k * n
    b, m, k = shapes[-2]
    return 2 * b * m * k * shapes[-1][-1]


def _strided(shape: tuple, stride: tuple, device: torch.device) -> torch.Tensor:
    """A random tensor with this exact layout (expanded operands keep their zero strides)."""
    storage = 1 + sum((n - 1) * st for n, st in zip(shape, stride))
    return torch.randn(storage, device=device).as_strided(shape, stride)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: torch.device, repeats: int) -> float:
    """Seconds per call (median of 3 rounds)."""
    rounds = []
    for _ in range(3):
        _sync(device)
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        _sync(device)
        rounds.append((time.perf_counter() - t) / repeats)
    return sorted(rounds)[1]


def _filled_learner(device: torch.device, state_dim: int = 17, action_dim: int = 6, compile: bool = False) -> tuple[ERLRe2Learner, ReplayMemory]:
    torch.manual_seed(0)
    cfg = LearnerConfig(state_dim=state_dim, action_dim=action_dim, pop_size=5, K=1, batch_size=128, pr=64, compile=compile)
    learner = ERLRe2Learner(cfg, device)
    memory = ReplayMemory(state_dim, action_dim, 20_000, device)
    rng = np.random.default_rng(0)
    n = 20_000
    memory.add(rng.normal(size=(n, state_dim)), rng.uniform(-1, 1, (n, action_dim)), rng.normal(size=n),
               rng.normal(size=(n, state_dim)), rng.random(n) < 0.01)
    return learner, memory


def bench_update(device: torch.device, iterations: int, threads: int, compile: bool = False) -> dict:
    torch.set_num_threads(threads)
    learner, memory = _filled_learner(device, compile=compile)
    t = time.perf_counter()
    learner.train_iterations(memory, 20, evo_times=1)  # warm-up (and the compile with -compile)
    warmup_s = time.perf_counter() - t
    # Time pairs of iterations (one with and one without the delayed policy step).
    sec = _timed(lambda: learner.train_iterations(memory, 2, evo_times=1), device, iterations // 2) / 2
    learner.pop_losses()
    if compile:  # the floor is the eager iteration's matmuls (the compiled one calls the same ones)
        learner, memory = _filled_learner(device)
    recorder = _RecordMatmuls()
    with recorder:
        learner.train_iterations(memory, 2, evo_times=1)
    flops = sum(_flops(f, s) for f, s, _ in recorder.calls) / 2

    # The floor: exactly these matmuls (op, shapes, memory layout), run back to back.
    calls = []
    for func, shapes, strides in recorder.calls:
        tensors = [_strided(s, st, device) for s, st in zip(shapes, strides)]
        calls.append((func, tensors))

    def replay() -> None:
        for func, tensors in calls:
            func(*tensors)

    floor = _timed(replay, device, max(iterations // 4, 5)) / 2
    return {"update_ms": sec * 1e3, "update_matmul_gflop": flops / 1e9, "matmul_floor_ms": floor * 1e3,
            "matmul_gflops_per_s": flops / floor / 1e9, "update_vs_floor": sec / floor, "matmuls_per_iteration": len(calls) / 2,
            "update_warmup_s": warmup_s}


def bench_rollouts(device: torch.device, env_id: str, max_steps: int) -> dict:
    learner, memory = _filled_learner(device)
    pop, tests = EnvPool(env_id, 5, max_steps), EnvPool(env_id, 10, max_steps)
    a_dim = pop.action_dim

    batches = ((pop, np.arange(5), memory), (tests, np.zeros(10, int), None), (tests, np.full(10, 5), None))

    acting = [0.0]  # seconds inside the policy calls (the rest: env.step and the rollout's bookkeeping)

    def timed(policy):
        def act(states: np.ndarray, idx: np.ndarray) -> np.ndarray:
            t0 = time.perf_counter()
            actions = policy(states, idx)
            acting[0] += time.perf_counter() - t0
            return actions
        return act

    def generation() -> list[np.ndarray]:
        lengths = []
        for pool, heads, mem in batches:
            ep = run_episodes(pool, timed(learner.policy(heads)), list(range(len(heads))), memory=mem)
            lengths.append(ep.lengths)
        return lengths

    generation()  # warm-up
    acting[0] = 0.0
    t = time.perf_counter()
    lengths = generation()
    policy_s = time.perf_counter() - t
    frames = int(sum(x.sum() for x in lengths))

    # Bare environment: the same instances stepped in the same lockstep order for the same
    # number of steps, with random actions and nothing else (no policy, no bookkeeping).
    actions = np.random.default_rng(0).uniform(-1, 1, (1000, a_dim))
    t = time.perf_counter()
    for (pool, heads, _), steps in zip(batches, lengths):
        envs = pool.envs[: len(heads)]
        for i, env in enumerate(envs):
            env.reset(seed=i)
        for step in range(int(steps.max())):
            for env, n in zip(envs, steps):
                if step < n:
                    env.step(actions[step % 1000])
    bare_s = time.perf_counter() - t
    pop.close()
    tests.close()
    return {"rollout_us_per_frame": policy_s / frames * 1e6, "env_us_per_frame": bare_s / frames * 1e6,
            "rollout_vs_env": policy_s / bare_s, "rollout_frames": frames, "rollout_acting_us_per_frame": acting[0] / frames * 1e6}


def end_to_end_job(env_id: str, num_frames: int, init_steps: int, max_steps: int | None, threads: int, seed: int,
                   disable_cuda: bool, compile: bool = False) -> dict:
    """One run with the paper's settings (``core.agent``'s generation loop, as ``run_re2.py`` drives it
    without logging and checkpoints), measured past init: frames, wall seconds, learner iterations
    and environment steps (every ``env.step``, test episodes included)."""
    from core.agent import Agent
    from parameters import parse_args

    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() and not disable_cuda else "cpu")
    with tempfile.TemporaryDirectory() as logdir:
        flags = ["-env", env_id, "-num_frames", str(num_frames), "-init_steps", str(init_steps), "-seed", str(seed),
                 "-wandb_mode", "disabled", "-logdir", logdir, "-threads", str(threads)]
        flags += (["-max_episode_steps", str(max_steps)] if max_steps else []) + (["-compile"] if compile else [])
        args, _ = parse_args(flags)
    agent = Agent(args, device)
    pools = [p for p in (agent.pop_pool, agent.rl_pool, agent.test_pool) if p is not None]

    def counters() -> tuple[int, float, int, int]:
        return agent.frames, agent.wall_time(), agent.learner.total_it, sum(p.steps for p in pools)

    start = counters()
    while agent.frames < num_frames:
        agent.train()
        if agent.rl_frames < init_steps:
            start = counters()  # the window opens after the last generation that ends inside the warm-up
    end = counters()
    agent.close()
    frames, seconds, iterations, env_steps = (e - s for e, s in zip(end, start))
    return {"frames": frames, "seconds": seconds, "iterations": iterations, "env_steps": env_steps, "fps": frames / seconds,
            "threads": threads}


def _spawn_jobs(env_id: str, sizes: tuple[int, int, int | None], threads: list[int], disable_cuda: bool,
                compile: bool = False) -> list[dict]:
    """Run ``end_to_end_job`` in fresh processes, all at the same time, one per entry of ``threads``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    procs = []
    for seed, t in enumerate(threads, start=1):
        job = json.dumps([env_id, *sizes, t, seed, disable_cuda, compile])
        procs.append(subprocess.Popen([sys.executable, "-m", "core.bench", "-job", job], cwd=root, stdout=subprocess.PIPE, text=True))
    out = []
    for proc in procs:
        stdout, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"end-to-end job failed with exit code {proc.returncode}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def efficiency(job: dict, floor_ms: float, env_us: float) -> float:
    """(matmul floor × iterations + bare env.step × env steps) ÷ wall time of the job's window."""
    return (floor_ms * 1e-3 * job["iterations"] + env_us * 1e-6 * job["env_steps"]) / job["seconds"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.bench")
    p.add_argument("-quick", action="store_true", help="smaller counts (one to two minutes)")
    p.add_argument("-disable_cuda", action="store_true")
    p.add_argument("-threads", type=int, default=None, help="the machine's thread count (default: every core)")
    p.add_argument("-env", default="HalfCheetah-v4")
    p.add_argument("-compile", action="store_true", help="measure run_re2.py -compile (update: compile timed apart; end to end: inside the window)")
    p.add_argument("-job", default=None, help=argparse.SUPPRESS)  # internal: one end-to-end job (JSON argument list)
    args = p.parse_args(argv)
    if args.job:
        print(json.dumps(end_to_end_job(*json.loads(args.job))))
        return 0
    threads = args.threads or os.cpu_count() or 1
    device = torch.device("cuda" if torch.cuda.is_available() and not args.disable_cuda else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores, {threads} threads)"
    out: dict = {"device": name, "torch": torch.__version__, "quick": args.quick, "threads": threads, "compile": args.compile}
    print(f"device: {name}")

    floors = {}
    for t in sorted({1, threads}, reverse=True):
        u = bench_update(device, 100 if args.quick else 1000, t, args.compile)
        floors[t] = u["matmul_floor_ms"]
        if t == threads:  # the figures of earlier versions of this benchmark (machine thread count)
            out.update(u)
        out.update({f"{k}_{t}t": v for k, v in u.items() if k in ("update_ms", "matmul_floor_ms", "update_vs_floor")})
        print(f"1. update, {t} thread{'s' * (t > 1)}: {u['update_ms']:.2f} ms/iteration; {u['update_matmul_gflop']:.3f} GFLOP of "
              f"matmuls ({u['matmuls_per_iteration']:.0f} matmuls); the same matmuls alone: {u['matmul_floor_ms']:.2f} ms "
              f"({u['matmul_gflops_per_s']:.1f} GFLOP/s) -> {u['update_vs_floor']:.2f}x the matmul floor"
              + (f" (-compile: first 20 iterations with the compile {u['update_warmup_s']:.0f} s)" if args.compile else ""))
    torch.set_num_threads(threads)

    r = bench_rollouts(device, args.env, 200 if args.quick else 1000)
    out.update(r)
    print(f"2. rollouts: {r['rollout_us_per_frame']:.1f} us/frame over {r['rollout_frames']} frames (5 members + 20 tests); "
          f"bare env.step {r['env_us_per_frame']:.1f} us -> {r['rollout_vs_env']:.2f}x; of the rollout's time per frame, "
          f"{r['rollout_acting_us_per_frame']:.1f} us in the policy (row-by-row φ, see SharedStateRepresentation.acting)")

    # frames, init_steps, episode cap: -quick is one generation past a short warm-up, with 200-step episodes
    sizes = (1001, 1000, 200) if args.quick else (30_000, 10_000, None)
    (e,) = _spawn_jobs(args.env, sizes, [threads], args.disable_cuda, args.compile)
    eff = efficiency(e, floors[threads], r["env_us_per_frame"])
    out.update({"end_to_end_fps": e["fps"], "end_to_end_frames": e["frames"], "projected_1M_hours": 1e6 / e["fps"] / 3600,
                "end_to_end_iterations": e["iterations"], "end_to_end_env_steps": e["env_steps"], "end_to_end_seconds": e["seconds"],
                "end_to_end_efficiency": eff})
    quick = " (-quick: 200-step episodes)" if args.quick else ""
    print(f"3. end to end{quick}, {threads} thread{'s' * (threads > 1)}: {e['fps']:.1f} frames/s past init over {e['frames']} frames "
          f"-> {out['projected_1M_hours']:.2f} h projected for 1M frames; efficiency {eff:.2f} "
          f"(floor {floors[threads]:.2f} ms x {e['iterations']} iterations + env.step {r['env_us_per_frame']:.1f} us x "
          f"{e['env_steps']} steps = {floors[threads] * 1e-3 * e['iterations'] + r['env_us_per_frame'] * 1e-6 * e['env_steps']:.1f} s "
          f"of {e['seconds']:.1f} s)")

    if device.type == "cpu":
        pair = _spawn_jobs(args.env, sizes, [1, 1], args.disable_cuda, args.compile)
        (two,) = [e] if threads == 2 else _spawn_jobs(args.env, sizes, [2], args.disable_cuda, args.compile)
        out.update({"sweep_1t_pair_fps": [j["fps"] for j in pair], "sweep_1t_pair_total_fps": sum(j["fps"] for j in pair),
                    "sweep_2t_job_fps": two["fps"], "sweep_1t_pair_efficiency": [efficiency(j, floors[1], r["env_us_per_frame"]) for j in pair]})
        print(f"4. sweep: two 1-thread jobs side by side {pair[0]['fps']:.1f} + {pair[1]['fps']:.1f} = "
              f"{out['sweep_1t_pair_total_fps']:.1f} frames/s (efficiency {out['sweep_1t_pair_efficiency'][0]:.2f}, "
              f"{out['sweep_1t_pair_efficiency'][1]:.2f}); one 2-thread job {two['fps']:.1f} frames/s")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
