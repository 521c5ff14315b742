"""Speed benchmark: ``python -m core.bench [-quick] [-disable_cuda] [-threads N]``.

1. Update: ms per learner iteration at HalfCheetah sizes (pop 5, K 1, batch 128, pr 64), the
   matmul FLOPs of one iteration, and the floor: the same matmuls (recorded op by op, same
   shapes) replayed alone on this machine. ``update_vs_floor`` = iteration time / floor time.
2. Rollouts: µs per frame of one generation's episodes (5 population members in lockstep, then
   10 champion and 10 RL test episodes), against bare ``env.step`` of the same instances, in the
   same lockstep order, for the same number of steps.
3. End to end: frames/s of a short run with the paper's settings past init, and the hours a 1M-frame
   run would take at that rate (the iteration count is one per frame, so the rate past init holds).
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from core.ddpg import ERLRe2Learner, LearnerConfig
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


def _filled_learner(device: torch.device, state_dim: int = 17, action_dim: int = 6) -> tuple[ERLRe2Learner, ReplayMemory]:
    torch.manual_seed(0)
    learner = ERLRe2Learner(LearnerConfig(state_dim=state_dim, action_dim=action_dim, pop_size=5, K=1, batch_size=128, pr=64), device)
    memory = ReplayMemory(state_dim, action_dim, 20_000, device)
    rng = np.random.default_rng(0)
    n = 20_000
    memory.add(rng.normal(size=(n, state_dim)), rng.uniform(-1, 1, (n, action_dim)), rng.normal(size=n),
               rng.normal(size=(n, state_dim)), rng.random(n) < 0.01)
    return learner, memory


def bench_update(device: torch.device, iterations: int) -> dict:
    learner, memory = _filled_learner(device)
    learner.train_iterations(memory, 20, evo_times=1)  # warm-up
    # Time pairs of iterations (one with and one without the delayed policy step).
    sec = _timed(lambda: learner.train_iterations(memory, 2, evo_times=1), device, iterations // 2) / 2
    learner.pop_losses()
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
            "matmul_gflops_per_s": flops / floor / 1e9, "update_vs_floor": sec / floor, "matmuls_per_iteration": len(calls) / 2}


def bench_rollouts(device: torch.device, env_id: str, max_steps: int) -> dict:
    learner, memory = _filled_learner(device)
    pop, tests = EnvPool(env_id, 5, max_steps), EnvPool(env_id, 10, max_steps)
    a_dim = pop.action_dim

    batches = ((pop, np.arange(5), memory), (tests, np.zeros(10, int), None), (tests, np.full(10, 5), None))

    def generation() -> list[np.ndarray]:
        lengths = []
        for pool, heads, mem in batches:
            ep = run_episodes(pool, learner.policy(heads), list(range(len(heads))), memory=mem)
            lengths.append(ep.lengths)
        return lengths

    generation()  # warm-up
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
            "rollout_vs_env": policy_s / bare_s, "rollout_frames": frames}


def bench_end_to_end(env_id: str, num_frames: int, init_steps: int, disable_cuda: bool, threads: int | None) -> dict:
    """frames/s past init of a real run (subprocess, paper settings), read from its progress.csv."""
    import csv
    import subprocess

    with tempfile.TemporaryDirectory() as logdir:
        cmd = [sys.executable, "run_re2.py", "-env", env_id, "-num_frames", str(num_frames), "-init_steps", str(init_steps),
               "-wandb_mode", "disabled", "-logdir", logdir, "-checkpoint_every", str(10 * num_frames)]
        cmd += ["-disable_cuda"] if disable_cuda else []
        cmd += ["-threads", str(threads)] if threads else []
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
        (path,) = [os.path.join(d, "progress.csv") for d, _, files in os.walk(logdir) if "progress.csv" in files]
        with open(path, newline="") as f:
            table = list(csv.DictReader(f))
    past = [r for r in table if int(r["rl_frames"]) >= init_steps]
    start = table[table.index(past[0]) - 1] if table.index(past[0]) > 0 else past[0]
    frames = int(past[-1]["frames"]) - int(start["frames"])
    seconds = float(past[-1]["time_s"]) - float(start["time_s"])
    fps = frames / seconds
    return {"end_to_end_fps": fps, "end_to_end_frames": frames, "projected_1M_hours": 1e6 / fps / 3600}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.bench")
    p.add_argument("-quick", action="store_true", help="smaller counts (about a minute)")
    p.add_argument("-disable_cuda", action="store_true")
    p.add_argument("-threads", type=int, default=None)
    p.add_argument("-env", default="HalfCheetah-v4")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.disable_cuda else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    out: dict = {"device": name, "torch": torch.__version__, "quick": args.quick}
    print(f"device: {name}")

    u = bench_update(device, 100 if args.quick else 1000)
    out.update(u)
    print(f"1. update: {u['update_ms']:.2f} ms/iteration; {u['update_matmul_gflop']:.3f} GFLOP of matmuls "
          f"({u['matmuls_per_iteration']:.0f} matmuls); the same matmuls alone: {u['matmul_floor_ms']:.2f} ms "
          f"({u['matmul_gflops_per_s']:.1f} GFLOP/s) -> {u['update_vs_floor']:.2f}x the matmul floor")

    r = bench_rollouts(device, args.env, 200 if args.quick else 1000)
    out.update(r)
    print(f"2. rollouts: {r['rollout_us_per_frame']:.1f} us/frame over {r['rollout_frames']} frames (5 members + 20 tests); "
          f"bare env.step {r['env_us_per_frame']:.1f} us -> {r['rollout_vs_env']:.2f}x")

    frames, init = (4000, 2000) if args.quick else (30_000, 10_000)
    e = bench_end_to_end(args.env, frames, init, args.disable_cuda, args.threads)
    out.update(e)
    print(f"3. end to end: {e['end_to_end_fps']:.1f} frames/s past init over {e['end_to_end_frames']} frames "
          f"-> {e['projected_1M_hours']:.2f} h projected for 1M frames")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
