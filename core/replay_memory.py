"""The shared replay buffer (ALGORITHM.md §2): a float32 ring of ``capacity`` rows on the learner's device.

Its storage grows by doubling up to ``capacity`` as rows arrive, so a short run does not reserve a
full buffer, yet the ring only wraps at ``capacity``: a run's transitions (and so its results) do
not depend on its frame budget, and a finished run can be extended exactly.

Each transition is one packed row ``[s | a | r | s' | not_done]`` so a minibatch is a single
gather. ``not_done`` is 0 only when the episode *terminated*; a time-limit truncation keeps
bootstrapping.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    state: torch.Tensor  # [B, S]
    action: torch.Tensor  # [B, A], in [-1, 1]
    reward: torch.Tensor  # [B, 1]
    next_state: torch.Tensor  # [B, S]
    not_done: torch.Tensor  # [B, 1]
    # 0-dim bool: no row of the batch holds an RL exploration action (every action was a warm-up draw or a
    # population member's), i.e. in the authors' code every action was a float32 array (see ERLRe2Learner's
    # ``critic_actions``). None where unknown.
    no_exploration: torch.Tensor | None = None


INITIAL_ROWS = 65_536


class ReplayMemory:
    def __init__(self, state_dim: int, action_dim: int, capacity: int = 1_000_000, device: str | torch.device = "cpu"):
        self.state_dim, self.action_dim, self.capacity = state_dim, action_dim, int(capacity)
        self.device = torch.device(device)
        rows = min(self.capacity, INITIAL_ROWS)
        self.data = torch.empty(rows, 2 * state_dim + action_dim + 2, dtype=torch.float32, device=self.device)
        # Per row: the action was the RL agent's exploration action (policy + Gaussian noise, after the warm-up).
        self.exploration = torch.zeros(rows, dtype=torch.bool, device=self.device)
        self.ptr = 0  # next row to write
        self.size = 0  # rows filled
        s, a = state_dim, action_dim
        self._splits = (s, a, 1, s, 1)

    def __len__(self) -> int:
        return self.size

    def _reserve(self, rows: int) -> None:
        """Grow the storage (doubling, at most ``capacity``) to hold rows ``[0, rows)``."""
        if rows <= len(self.data):
            return
        grown = torch.empty(min(self.capacity, max(rows, 2 * len(self.data))), self.data.shape[1],
                            dtype=self.data.dtype, device=self.device)
        grown[: self.size] = self.data[: self.size]
        self.data = grown
        flags = torch.zeros(len(grown), dtype=torch.bool, device=self.device)
        flags[: self.size] = self.exploration[: self.size]
        self.exploration = flags

    def add(self, state: np.ndarray, action: np.ndarray, reward: np.ndarray, next_state: np.ndarray, terminated: np.ndarray,
            exploration: bool = False) -> None:
        """Store M transitions at once (arrays with a leading axis of length M); ``exploration``: their actions are
        the RL agent's exploration actions."""
        rows = np.concatenate(
            [
                np.asarray(state, np.float32).reshape(-1, self.state_dim),
                np.asarray(action, np.float32).reshape(-1, self.action_dim),
                np.asarray(reward, np.float32).reshape(-1, 1),
                np.asarray(next_state, np.float32).reshape(-1, self.state_dim),
                1.0 - np.asarray(terminated, np.float32).reshape(-1, 1),
            ],
            axis=1,
        )
        m = rows.shape[0]
        if m == 0:
            return
        if m > self.capacity:  # only the newest `capacity` rows can survive
            rows, m = rows[-self.capacity :], self.capacity
        self._reserve(min(self.capacity, self.ptr + m))
        rows_t = torch.from_numpy(rows).to(self.device, non_blocking=True)
        first = min(m, self.capacity - self.ptr)
        self.data[self.ptr : self.ptr + first] = rows_t[:first]
        self.exploration[self.ptr : self.ptr + first] = exploration
        if first < m:  # wrap around
            self.data[: m - first] = rows_t[first:]
            self.exploration[: m - first] = exploration
        self.ptr = (self.ptr + m) % self.capacity
        self.size = min(self.size + m, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """A uniform minibatch drawn with the run's generator (on the buffer's device, no host sync)."""
        idx = torch.randint(0, self.size, (batch_size,), device=self.device, generator=generator)
        return Batch(*self.data.index_select(0, idx).split(self._splits, dim=1),
                     no_exploration=~self.exploration.index_select(0, idx).any())

    # --- checkpointing: only the filled part is saved -------------------------------------------
    def state_dict(self) -> dict:
        data = self.data[: self.size]
        # torch.save writes a view's whole storage: copy when only part of the ring is filled.
        data = data.cpu() if self.size == len(self.data) else data.clone().cpu()
        flags = self.exploration[: self.size].clone().cpu()
        return {"data": data, "exploration": flags, "ptr": self.ptr, "size": self.size, "capacity": self.capacity}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity or state["data"].shape[1] != self.data.shape[1]:
            raise ValueError("replay buffer shape does not match this run")
        self.size = 0  # nothing of the current rows needs keeping while the storage grows
        self._reserve(int(state["size"]))
        self.size, self.ptr = int(state["size"]), int(state["ptr"])
        self.data[: self.size] = state["data"].to(self.device)
        # Checkpoints written before the flag was kept: no row marked (such runs ran with -critic_actions batch,
        # which never reads it).
        flags = state.get("exploration")
        self.exploration[: self.size] = False if flags is None else flags.to(self.device)
