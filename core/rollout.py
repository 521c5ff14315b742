"""Batched episodes: M episodes in lockstep, each on its own environment instance, one batched
policy call per step and an ``active`` mask for finished episodes (ALGORITHM.md §3).

Policies act in [-1, 1]; actions are rescaled to the task's bounds before ``env.step`` (Humanoid's
are ±0.4) and stored unscaled.
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from core.replay_memory import ReplayMemory

# policy(obs [m, S], env indices [m]) -> actions [m, A] in [-1, 1], for the m active episodes
Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]


# MuJoCo's compiler warns once per compiled model that the v4 task files use `settotalmass` (a
# run compiles sixteen): deprecated, still applied as before, so harmless here. Said once per process.
SETTOTALMASS = "compiler attribute 'settotalmass' is deprecated"
_said_settotalmass = False


def _mujoco_warning(message: str) -> None:
    """MuJoCo's warning handler: the known compiler deprecation once, in one line; any other warning as MuJoCo prints it.
    It never raises: MuJoCo's bindings abort the process on an exception from a handler (stderr on a full disk)."""
    global _said_settotalmass
    try:
        if message.startswith(SETTOTALMASS):
            if not _said_settotalmass:
                _said_settotalmass = True
                sys.stderr.write("MuJoCo: the task's model file sets its total mass with the deprecated compiler attribute "
                                 "'settotalmass' (still applied, harmless; said once, not per environment)\n")
            return
        sys.stderr.write(f"WARNING: {message}\n\n")
    except Exception:  # noqa: BLE001, S110 (a warning that cannot be printed must not kill the run)
        pass


def quiet_known_warnings() -> None:
    """Route MuJoCo's warnings through `_mujoco_warning`, and drop gymnasium's "v4 is out of date"
    (the run's header says once why v4 is the default). Every other warning stays visible."""
    import mujoco

    if mujoco.get_mju_user_warning() is not _mujoco_warning:
        mujoco.set_mju_user_warning(_mujoco_warning)
    warnings.filterwarnings("ignore", message=r".*The environment \S+-v4 is out of date", category=DeprecationWarning)


def make_env(env_id: str, max_episode_steps: int | None = None, **make_kwargs) -> gym.Env:
    """``gym.make``; ``make_kwargs`` go to the task (e.g. ``render_mode`` for recorded episodes)."""
    quiet_known_warnings()
    if max_episode_steps:
        make_kwargs["max_episode_steps"] = max_episode_steps
    return gym.make(env_id, **make_kwargs)


class EnvPool:
    """Environment instances created once and reused for every episode of one kind."""

    def __init__(self, env_id: str, n: int, max_episode_steps: int | None = None):
        self.envs = [make_env(env_id, max_episode_steps) for _ in range(n)]
        space = self.envs[0].action_space
        self.low, self.high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.state_dim = self.envs[0].observation_space.shape[0]
        self.action_dim = space.shape[0]
        self.steps = 0  # env.step calls made through run_episodes (the benchmark's efficiency figure)

    def __len__(self) -> int:
        return len(self.envs)

    def scale(self, action: np.ndarray) -> np.ndarray:
        """[-1, 1] → [low, high]."""
        return self.low + (action + 1.0) * 0.5 * (self.high - self.low)

    def close(self) -> None:
        for env in self.envs:
            env.close()


@dataclass
class Episodes:
    returns: np.ndarray  # Σ_t γ^t r_t per episode (undiscounted with γ = 1)
    lengths: np.ndarray  # steps taken
    terminated: np.ndarray  # ended in a terminal state (no bootstrap)
    last_obs: np.ndarray  # observation after the last step (s_H for the H-step fitness)

    @property
    def frames(self) -> int:
        return int(self.lengths.sum())


def run_episodes(
    pool: EnvPool,
    policy: Policy,
    reset_seeds: list[int],
    horizon: int | None = None,
    gamma: float = 1.0,
    memory: ReplayMemory | None = None,
    exploration: bool = False,
) -> Episodes:
    """Play ``len(reset_seeds)`` episodes on the pool's first instances in lockstep.

    An episode ends when the task terminates or truncates (time limit), or after ``horizon``
    steps. Transitions are stored in ``memory`` (if given) in step order, in one write at the end, marked as
    the RL agent's exploration when ``exploration``.
    """
    m = len(reset_seeds)
    envs = pool.envs[:m]
    obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, reset_seeds)])
    returns, lengths = np.zeros(m), np.zeros(m, dtype=np.int64)
    terminated, active = np.zeros(m, dtype=bool), np.ones(m, dtype=bool)
    discount = np.ones(m)
    stored: list[tuple] = []
    while active.any():
        idx = np.flatnonzero(active)
        actions = policy(obs[idx], idx)
        scaled = pool.scale(actions)
        next_obs = obs.copy()
        rewards, terms, ended = np.zeros(len(idx)), np.zeros(len(idx), dtype=bool), np.zeros(len(idx), dtype=bool)
        for k, i in enumerate(idx):
            o, r, term, trunc, _ = envs[i].step(scaled[k])
            next_obs[i], rewards[k], terms[k], ended[k] = o, r, term, term or trunc
        returns[idx] += discount[idx] * rewards
        discount[idx] *= gamma
        lengths[idx] += 1
        if memory is not None:
            stored.append((obs[idx], actions, rewards, next_obs[idx], terms))
        if horizon is not None:
            ended |= lengths[idx] >= horizon
        terminated[idx] = terms
        active[idx[ended]] = False
        obs = next_obs
    pool.steps += int(lengths.sum())
    if stored:  # one write, in the same order as step by step
        memory.add(*(np.concatenate(column) for column in zip(*stored)), exploration=exploration)
    return Episodes(returns, lengths, terminated, obs)
