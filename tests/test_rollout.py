"""Rollouts store a terminal mask only for terminations (ALGORITHM.md §2).

That lockstep episodes equal the same episodes played one by one, bit for bit (returns, lengths,
last observations and the stored transitions in order), is checked by tests/test_loop_twin.py, whose
plain generation loop plays every population, RL and test episode of a run on its own, on Hopper
(terminations, episodes of different lengths, H-step returns) and HalfCheetah (truncations)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from core.replay_memory import ReplayMemory
from core.rollout import EnvPool, run_episodes


def test_terminal_mask_is_stored_only_for_termination():
    pool = EnvPool("Hopper-v4", 3, max_episode_steps=30)
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
