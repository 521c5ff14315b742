"""The speed benchmark's figures are what its docstring says they are (``core.bench``; docs/speed.md).

Nothing here times anything against a limit: it checks, at tiny sizes, that each section runs and
that its derived figures are the stated ratios of its measured ones, so that a change to the
learner or the rollouts cannot leave the benchmark broken or measuring something else.
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


def test_update_section_figures_are_consistent(keep_threads):
    out = bench.bench_update(torch.device("cpu"), iterations=4, threads=1)
    assert out["update_ms"] > 0 and out["matmul_floor_ms"] > 0
    assert out["update_vs_floor"] == pytest.approx(out["update_ms"] / out["matmul_floor_ms"])
    # HalfCheetah sizes: the same matmuls every time (a change here means the iteration changed)
    assert out["matmuls_per_iteration"] == 56
    assert out["update_matmul_gflop"] == pytest.approx(0.704904576)
    assert out["matmul_gflops_per_s"] == pytest.approx(out["update_matmul_gflop"] / out["matmul_floor_ms"] * 1e3)


def test_rollout_section_counts_every_frame_and_splits_off_the_policy():
    out = bench.bench_rollouts(torch.device("cpu"), "HalfCheetah-v4", max_steps=20)
    # 5 members + 10 champion + 10 RL test episodes of 20 steps (HalfCheetah never terminates)
    assert out["rollout_frames"] == 25 * 20
    assert out["rollout_vs_env"] == pytest.approx(out["rollout_us_per_frame"] / out["env_us_per_frame"])
    assert 0 < out["rollout_acting_us_per_frame"] < out["rollout_us_per_frame"]


def test_efficiency_is_floor_work_over_wall_time():
    job = {"iterations": 1000, "env_steps": 20_000, "seconds": 10.0}
    # 1000 × 4 ms + 20,000 × 50 µs = 4 s + 1 s of the 10 s window
    assert bench.efficiency(job, floor_ms=4.0, env_us=50.0) == pytest.approx(0.5)
    assert math.isclose(bench.efficiency({**job, "seconds": 5.0}, 4.0, 50.0), 1.0)
