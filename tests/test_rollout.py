"""Batched lockstep episodes give the same returns and stored transitions as the same episodes
played one by one (so that running them in lockstep, for speed, changes no number)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from core.ddpg import ERLRe2Learner, LearnerConfig
from core.replay_memory import ReplayMemory
from core.rollout import EnvPool, run_episodes

TOL = {"rtol": 1e-5, "atol": 1e-5}


def setup(env_id: str, m: int, steps: int):
    torch.manual_seed(0)
    pool = EnvPool(env_id, m, max_episode_steps=steps)
    learner = ERLRe2Learner(LearnerConfig(state_dim=pool.state_dim, action_dim=pool.action_dim, pop_size=m))
    return pool, learner


def episodes_from_memory(memory: ReplayMemory, lengths: np.ndarray, batched: bool) -> list[np.ndarray]:
    """Split stored rows back into episodes (lockstep stores one row per live episode per step)."""
    rows = memory.data[: memory.size].numpy()
    if not batched:
        return np.split(rows, np.cumsum(lengths)[:-1])
    out, k = [[] for _ in lengths], 0
    for t in range(lengths.max()):
        for e in range(len(lengths)):
            if t < lengths[e]:
                out[e].append(rows[k])
                k += 1
    return [np.stack(o) for o in out]


@pytest.mark.parametrize(("env_id", "steps", "horizon", "gamma"), [
    ("HalfCheetah-v4", 60, None, 1.0),  # full episodes, time-limit truncation
    ("Hopper-v4", 200, None, 1.0),  # episodes of different lengths that terminate
    ("Hopper-v4", 200, 40, 0.99),  # H-step returns, cut at H or terminated before
])
def test_lockstep_equals_one_by_one(env_id, steps, horizon, gamma):
    m = 4
    pool, learner = setup(env_id, m, steps)
    heads, seeds = np.arange(m), [11, 12, 13, 14]
    memory = ReplayMemory(pool.state_dim, pool.action_dim, 10_000)
    batched = run_episodes(pool, lambda obs, idx: learner.act(obs, heads[idx]), seeds, horizon, gamma, memory)

    singles, single_memory = [], ReplayMemory(pool.state_dim, pool.action_dim, 10_000)
    for i in range(m):
        h = heads[i : i + 1]
        singles.append(run_episodes(pool, lambda obs, idx, h=h: learner.act(obs, h[idx]), [seeds[i]], horizon, gamma, single_memory))

    assert np.array_equal(batched.lengths, [s.lengths[0] for s in singles])
    assert np.array_equal(batched.terminated, [s.terminated[0] for s in singles])
    np.testing.assert_allclose(batched.returns, [s.returns[0] for s in singles], **TOL)
    np.testing.assert_allclose(batched.last_obs, np.concatenate([s.last_obs for s in singles]), **TOL)
    assert memory.size == single_memory.size == batched.frames
    for a, b in zip(episodes_from_memory(memory, batched.lengths, True), episodes_from_memory(single_memory, batched.lengths, False)):
        np.testing.assert_allclose(a, b, **TOL)
    if env_id == "Hopper-v4" and horizon is None:
        assert batched.terminated.any() and len(set(batched.lengths)) > 1  # the mask was exercised
    pool.close()


def test_terminal_mask_is_stored_only_for_termination():
    pool, _ = setup("Hopper-v4", 3, 30)
    memory = ReplayMemory(pool.state_dim, pool.action_dim, 1000)
    # Fixed actions: two that make the hopper fall (terminate) and a standing one that survives to the
    # 30-step time limit (truncated). How many steps a fall takes is the physics' floating point on this
    # CPU, so the lengths are those of the same episodes stepped by hand here.
    actions = np.array([[1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, 1.0, -1.0]])
    ep = run_episodes(pool, lambda obs, idx: actions[idx], [1, 2, 3], memory=memory)
    by_hand = []
    for action, seed in zip(actions, [1, 2, 3]):
        env = gym.make("Hopper-v4", max_episode_steps=30)
        env.reset(seed=seed)
        steps, term, trunc = 0, False, False
        while not (term or trunc):
            _, _, term, trunc, _ = env.step(action)
            steps += 1
        by_hand.append((steps, term))
        env.close()
    assert [(int(n), bool(t)) for n, t in zip(ep.lengths, ep.terminated)] == by_hand
    assert ep.terminated.tolist() == [True, False, True] and ep.lengths[1] == 30 and max(ep.lengths[[0, 2]]) < 30
    not_done = memory.data[: memory.size, -1].numpy()
    assert (not_done == 0).sum() == 2  # exactly the two terminal steps
    last_rows = memory.data[: memory.size].numpy()
    # the truncated episode's final transition (the last row stored) still bootstraps
    assert last_rows[-1, -1] == 1.0
    pool.close()
