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


INITIAL_ROWS = 65_536


class ReplayMemory:
    def __init__(self, state_dim: int, action_dim: int, capacity: int = 1_000_000, device: str | torch.device = "cpu"):
        self.state_dim, self.action_dim, self.capacity = state_dim, action_dim, int(capacity)
        self.device = torch.device(device)
        rows = min(self.capacity, INITIAL_ROWS)
        self.data = torch.empty(rows, 2 * state_dim + action_dim + 2, dtype=torch.float32, device=self.device)
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

    def add(self, state: np.ndarray, action: np.ndarray, reward: np.ndarray, next_state: np.ndarray, terminated: np.ndarray) -> None:
        """Store M transitions at once (arrays with a leading axis of length M)."""
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
        if first < m:  # wrap around
            self.data[: m - first] = rows_t[first:]
        self.ptr = (self.ptr + m) % self.capacity
        self.size = min(self.size + m, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """A uniform minibatch drawn with the run's generator (on the buffer's device, no host sync)."""
        idx = torch.randint(0, self.size, (batch_size,), device=self.device, generator=generator)
        return Batch(*self.data.index_select(0, idx).split(self._splits, dim=1))

    # --- checkpointing: only the filled part is saved -------------------------------------------
    def state_dict(self) -> dict:
        data = self.data[: self.size]
        # torch.save writes a view's whole storage: copy when only part of the ring is filled.
        data = data.cpu() if self.size == len(self.data) else data.clone().cpu()
        return {"data": data, "ptr": self.ptr, "size": self.size, "capacity": self.capacity}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity or state["data"].shape[1] != self.data.shape[1]:
            raise ValueError("replay buffer shape does not match this run")
        self.size = 0  # nothing of the current rows needs keeping while the storage grows
        self._reserve(int(state["size"]))
        self.size, self.ptr = int(state["size"]), int(state["ptr"])
        self.data[: self.size] = state["data"].to(self.device)
