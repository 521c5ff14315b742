"""The speed benchmark's figures are what its docstring says they are (``core.bench``; docs/speed.md).

Nothing here times anything against a limit: it checks, at tiny sizes, that each section runs, that
it times the work it says it times, and, with that work's durations made known (a fake timer or
clock), that every figure comes out as stated, so that a change to the learner or the rollouts cannot
leave the benchmark broken or measuring something else.
"""
from __future__ import annotations

import math

import pytest
import torch

from core import bench


@pytest.fixture
def keep_threads():
    """bench_update sets the process's thread count; later tests get it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_update_section_figures_are_consistent(keep_threads, monkeypatch):
    """Each timed call is a pair of learner iterations, then the replay of their matmuls alone (the same
    ops and shapes): with those calls timed at known durations, every figure is the stated one."""
    durations = iter([0.010, 0.004])  # seconds per call: the pair of iterations, then the floor's replay
    timed_work = []

    def fake_timed(fn, device, repeats):
        recorder = bench._RecordMatmuls()
        with recorder:
            fn()
        timed_work.append([(func, shapes) for func, shapes, _ in recorder.calls])
        return next(durations)

    monkeypatch.setattr(bench, "_timed", fake_timed)
    out = bench.bench_update(torch.device("cpu"), iterations=4, threads=1)
    update, floor = timed_work
    assert len(update) == 2 * 56 and floor == update  # two iterations' matmuls, replayed op for op
    # HalfCheetah sizes: the same matmuls every time (a change here means the iteration changed)
    assert out["matmuls_per_iteration"] == 56
    assert out["update_matmul_gflop"] == pytest.approx(0.704904576, rel=1e-12)
    assert out["update_ms"] == pytest.approx(5.0, rel=1e-12) and out["matmul_floor_ms"] == pytest.approx(2.0, rel=1e-12)
    assert out["update_vs_floor"] == pytest.approx(2.5, rel=1e-12)
    assert out["matmul_gflops_per_s"] == pytest.approx(0.704904576 / 2e-3, rel=1e-12)


def test_rollout_section_counts_every_frame_and_splits_off_the_policy(monkeypatch):
    """On a clock that only env.step (50 µs) and the policy calls (30 µs) move, the section's figures
    are exact: every frame counted, the bare loop stepping as often as the rollouts, the policy's share
    per frame split off."""
    from core.ddpg import ERLRe2Learner

    now = [0.0]
    monkeypatch.setattr(bench, "time", type("Clock", (), {"perf_counter": staticmethod(lambda: now[0])}))
    steps, calls = [0], [0]

    class TimedPool(bench.EnvPool):
        def __init__(self, *args):
            super().__init__(*args)
            for env in self.envs:
                env.step = self._timed_step(env.step)

        @staticmethod
        def _timed_step(step):
            def timed(action):
                now[0] += 50e-6
                steps[0] += 1
                return step(action)
            return timed

    real_policy = ERLRe2Learner.policy

    def timed_policy(self, heads):
        act = real_policy(self, heads)

        def timed(states, idx):
            now[0] += 30e-6
            calls[0] += 1
            return act(states, idx)
        return timed

    monkeypatch.setattr(bench, "EnvPool", TimedPool)
    monkeypatch.setattr(ERLRe2Learner, "policy", timed_policy)
    out = bench.bench_rollouts(torch.device("cpu"), "HalfCheetah-v4", max_steps=20)
    # 5 members + 10 champion + 10 RL test episodes of 20 steps (HalfCheetah never terminates), each batch in
    # lockstep: 20 policy calls per batch; two generations (a warm-up, then the timed one) and the bare loop.
    assert out["rollout_frames"] == 25 * 20
    assert steps[0] == 3 * 500 and calls[0] == 2 * 3 * 20
    assert out["env_us_per_frame"] == pytest.approx(50.0, rel=1e-9)
    assert out["rollout_acting_us_per_frame"] == pytest.approx(60 * 30 / 500, rel=1e-9)
    assert out["rollout_us_per_frame"] == pytest.approx(50.0 + 60 * 30 / 500, rel=1e-9)
    assert out["rollout_vs_env"] == pytest.approx((50.0 + 60 * 30 / 500) / 50.0, rel=1e-9)


def test_efficiency_is_floor_work_over_wall_time():
    job = {"iterations": 1000, "env_steps": 20_000, "seconds": 10.0}
    # 1000 × 4 ms + 20,000 × 50 µs = 4 s + 1 s of the 10 s window
    assert bench.efficiency(job, floor_ms=4.0, env_us=50.0) == pytest.approx(0.5)
    assert math.isclose(bench.efficiency({**job, "seconds": 5.0}, 4.0, 50.0), 1.0)
