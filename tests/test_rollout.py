"""Rollouts store a terminal mask only for terminations (ALGORITHM.md §2).

That lockstep episodes equal the same episodes played one by one, bit for bit (returns, lengths,
last observations and the stored transitions in order), is checked by tests/test_loop_twin.py, whose
plain generation loop plays every population, RL and test episode of a run on its own, on Hopper
(terminations, episodes of different lengths, H-step returns) and HalfCheetah (truncations)."""
from __future__ import annotations

import numpy as np

from core.replay_memory import ReplayMemory
from core.rollout import EnvPool, run_episodes


def test_terminal_mask_is_stored_only_for_termination():
    pool = EnvPool("Hopper-v4", 3, max_episode_steps=30)
    memory = ReplayMemory(pool.state_dim, pool.action_dim, 1000)
    # Fixed actions: two that make the hopper fall (terminate in 10 and 7 steps) and a standing
    # one that survives to the 30-step time limit (truncated).
    actions = np.array([[1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, 1.0, -1.0]])
    ep = run_episodes(pool, lambda obs, idx: actions[idx], [1, 2, 3], memory=memory)
    assert ep.terminated.tolist() == [True, False, True] and ep.lengths.tolist() == [10, 30, 7]
    not_done = memory.data[: memory.size, -1].numpy()
    assert (not_done == 0).sum() == 2  # exactly the two terminal steps
    last_rows = memory.data[: memory.size].numpy()
    # the truncated episode's final transition (the last row stored) still bootstraps
    assert last_rows[-1, -1] == 1.0
    pool.close()
