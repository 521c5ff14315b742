"""Tests for the shared replay buffer (core/replay_memory.py, ALGORITHM.md §2)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.replay_memory import Batch, ReplayMemory

S, A = 4, 2


def transitions(ids, terminated=None):
    """Transitions whose every field encodes the id ``i``: state = i, action = i/100, reward = 10·i,
    next_state = i + 0.5. ``ids`` may be any iterable of integers."""
    ids = np.asarray(list(ids), dtype=np.float64)
    m = len(ids)
    state = np.repeat(ids[:, None], S, axis=1)
    action = np.repeat(ids[:, None] / 100.0, A, axis=1)
    reward = 10.0 * ids
    next_state = state + 0.5
    if terminated is None:
        terminated = np.zeros(m, dtype=bool)
    return state, action, reward, next_state, np.asarray(terminated)


def stored_ids(mem: ReplayMemory) -> list[int]:
    """The ids in the filled rows, in row order."""
    data = mem.state_dict()["data"]
    return [round(v) for v in data[:, 0].tolist()]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_sample_shapes_dtype_and_consistent_rows():
    mem = ReplayMemory(S, A, capacity=100)
    mem.add(*transitions(range(10)))  # float64 and bool inputs
    assert len(mem) == 10
    batch = mem.sample(64, gen(0))
    assert isinstance(batch, Batch)
    shapes = {"state": (64, S), "action": (64, A), "reward": (64, 1), "next_state": (64, S), "not_done": (64, 1)}
    for name, shape in shapes.items():
        t = getattr(batch, name)
        assert tuple(t.shape) == shape, name
        assert t.dtype == torch.float32, name
    # every sampled row is one stored transition, fields aligned, and only filled rows are drawn
    i = batch.state[:, 0]
    assert torch.all((i >= 0) & (i <= 9) & (i == i.round()))
    assert torch.equal(batch.state, i[:, None].expand(64, S))
    assert torch.allclose(batch.action, (i / 100.0)[:, None].expand(64, A))
    assert torch.equal(batch.reward, 10.0 * i[:, None])
    assert torch.equal(batch.next_state, batch.state + 0.5)
    assert torch.equal(batch.not_done, torch.ones(64, 1))


def test_sample_only_from_filled_rows_of_large_buffer():
    mem = ReplayMemory(S, A, capacity=1000)
    mem.add(*transitions([7, 8, 9]))
    batch = mem.sample(256, gen(1))
    assert set(batch.state[:, 0].long().tolist()) == {7, 8, 9}


def test_wrap_around_overwrites_oldest_in_order():
    mem = ReplayMemory(S, A, capacity=5)
    mem.add(*transitions([0, 1, 2]))
    assert (len(mem), mem.ptr) == (3, 3)
    mem.add(*transitions([3, 4, 5, 6]))
    assert len(mem) == 5
    assert mem.ptr == 2
    # rows 3, 4 got ids 3, 4; the write wrapped so rows 0, 1 (ids 0, 1, the oldest) became 5, 6
    assert stored_ids(mem) == [5, 6, 2, 3, 4]
    # the next write overwrites the now-oldest transition (id 2)
    mem.add(*transitions([7]))
    assert stored_ids(mem) == [5, 6, 7, 3, 4]
    assert mem.ptr == 3
    batch = mem.sample(500, gen(0))
    assert set(batch.state[:, 0].long().tolist()) == {3, 4, 5, 6, 7}


def test_add_more_than_capacity_keeps_newest():
    mem = ReplayMemory(S, A, capacity=5)
    mem.add(*transitions(range(8)))
    assert len(mem) == 5
    assert sorted(stored_ids(mem)) == [3, 4, 5, 6, 7]
    mem.add(*transitions([8]))  # overwrites the oldest survivor (3)
    assert sorted(stored_ids(mem)) == [4, 5, 6, 7, 8]

    # the same with a non-zero write pointer before the oversized write
    mem = ReplayMemory(S, A, capacity=5)
    mem.add(*transitions([0, 1]))
    mem.add(*transitions(range(2, 9)))
    assert len(mem) == 5
    assert sorted(stored_ids(mem)) == [4, 5, 6, 7, 8]
    mem.add(*transitions([9]))  # must overwrite 4, the oldest
    assert sorted(stored_ids(mem)) == [5, 6, 7, 8, 9]


def test_empty_add_is_a_no_op():
    mem = ReplayMemory(S, A, capacity=5)
    mem.add(*transitions([0, 1]))
    mem.add(np.zeros((0, S)), np.zeros((0, A)), np.zeros(0), np.zeros((0, S)), np.zeros(0, dtype=bool))
    assert (len(mem), mem.ptr) == (2, 2)
    assert stored_ids(mem) == [0, 1]


def test_terminated_vs_truncated_mask():
    mem = ReplayMemory(S, A, capacity=10)
    # id 0: terminated; id 1: truncated by the time limit (stored with terminated False); id 2: ordinary
    terminated = np.array([True, False, False])
    mem.add(*transitions([0, 1, 2], terminated))
    batch = mem.sample(300, gen(3))
    ids = batch.state[:, 0].long()
    assert set(ids.tolist()) == {0, 1, 2}
    expected = (ids != 0).float()[:, None]
    assert torch.equal(batch.not_done, expected)
    assert torch.equal(mem.state_dict()["data"][:, -1], torch.tensor([0.0, 1.0, 1.0]))


def test_same_seed_same_sample_different_seed_different_sample():
    mem = ReplayMemory(S, A, capacity=2000)
    mem.add(*transitions(range(1000)))
    a, b, c = mem.sample(64, gen(11)), mem.sample(64, gen(11)), mem.sample(64, gen(12))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a.state, c.state)
    # consecutive draws from one generator differ
    g = gen(11)
    assert not torch.equal(mem.sample(64, g).state, mem.sample(64, g).state)


def test_state_dict_round_trip():
    mem = ReplayMemory(S, A, capacity=10)
    mem.add(*transitions(range(6), terminated=np.arange(6) % 4 == 0))
    mem.add(*transitions(range(6, 13), terminated=np.arange(6, 13) % 4 == 0))  # wrapped: size 10, ptr 3
    sd = mem.state_dict()
    assert sd["data"].shape == (10, 2 * S + A + 2)
    assert (sd["size"], sd["ptr"], sd["capacity"]) == (10, 3, 10)

    partial = ReplayMemory(S, A, capacity=10)
    partial.add(*transitions(range(7)))
    psd = partial.state_dict()
    assert psd["data"].shape[0] == 7  # only the filled part is saved

    for src, state in ((mem, sd), (partial, psd)):
        fresh = ReplayMemory(S, A, capacity=10)
        fresh.load_state_dict(state)
        assert (len(fresh), fresh.ptr) == (len(src), src.ptr)
        assert torch.equal(fresh.state_dict()["data"], src.state_dict()["data"])
        for x, y in zip(fresh.sample(32, gen(5)), src.sample(32, gen(5))):
            assert torch.equal(x, y)
        # the next write lands on the same row in both
        fresh.add(*transitions([99]))
        src.add(*transitions([99]))
        assert torch.equal(fresh.state_dict()["data"], src.state_dict()["data"])


def test_load_state_dict_rejects_other_shapes():
    mem = ReplayMemory(S, A, capacity=10)
    mem.add(*transitions(range(3)))
    with pytest.raises(ValueError, match="^replay buffer shape does not match this run$"):
        ReplayMemory(S, A, capacity=20).load_state_dict(mem.state_dict())
    with pytest.raises(ValueError, match="^replay buffer shape does not match this run$"):
        ReplayMemory(S + 1, A, capacity=10).load_state_dict(mem.state_dict())


def test_storage_grows_in_steps_but_behaves_as_a_preallocated_ring(monkeypatch):
    """The storage doubles as rows arrive (a short run does not reserve -buffer_size rows), yet rows,
    wrap-around, samples and checkpoints are those of a ring preallocated at full capacity."""
    import core.replay_memory as replay

    full = ReplayMemory(S, A, capacity=37)  # INITIAL_ROWS >= 37: allocated at once
    assert len(full.data) == 37
    monkeypatch.setattr(replay, "INITIAL_ROWS", 4)
    grown = ReplayMemory(S, A, capacity=37)
    assert len(grown.data) == 4
    start, sizes = 0, []
    for m in (1, 3, 5, 2, 9, 11, 6, 30, 4):
        for mem in (full, grown):
            mem.add(*transitions(range(start, start + m)))
        start += m
        sizes.append(len(grown.data))
        assert (grown.size, grown.ptr) == (full.size, full.ptr)
        assert stored_ids(grown) == stored_ids(full)
        for x, y in zip(grown.sample(16, gen(start)), full.sample(16, gen(start))):
            assert torch.equal(x, y)
    assert sizes == sorted(sizes) and sizes[0] == 4 and sizes[-1] == 37  # grew, then wrapped at capacity only
    partial = ReplayMemory(S, A, capacity=37)
    partial.add(*transitions(range(3)))
    restored = ReplayMemory(S, A, capacity=37)
    restored.load_state_dict(grown.state_dict())
    assert stored_ids(restored) == stored_ids(grown) and restored.ptr == grown.ptr
    restored.load_state_dict(partial.state_dict())
    assert stored_ids(restored) == [0, 1, 2] and len(restored) == 3


def test_exploration_flags_follow_rows_through_growth_wrap_and_checkpoint(monkeypatch):
    """Each row remembers whether its action was an RL exploration action; a minibatch reports whether it holds
    none (the authors' float32 action batch, see ERLRe2Learner._critic_loss), through growth, wrap-around and a
    checkpoint round trip."""
    import core.replay_memory as rm

    monkeypatch.setattr(rm, "INITIAL_ROWS", 4)  # the storage grows while rows arrive
    s, a = 3, 2
    mem = ReplayMemory(s, a, capacity=10)

    def rows(m, value):
        return (np.full((m, s), value), np.full((m, a), 0.5), np.full(m, value), np.full((m, s), value), np.zeros(m, bool))

    mem.add(*rows(6, 1.0))  # warm-up draws
    g = torch.Generator().manual_seed(0)
    assert all(bool(mem.sample(32, g).no_exploration) for _ in range(20))
    mem.add(*rows(3, 2.0), exploration=True)  # one RL episode: rows 6-8
    flags = [bool(mem.sample(4, g).no_exploration) for _ in range(200)]
    assert any(flags) and not all(flags)  # batches with and without an exploration row
    batch = mem.sample(64, g)  # the flag is the batch's own: rows with reward 2.0 are the exploration rows
    assert bool(batch.no_exploration) == (not bool((batch.reward == 2.0).any()))
    mem.add(*rows(5, 3.0))  # wraps: overwrites rows 0-3 (warm-up) with population rows
    assert mem.exploration.tolist()[: mem.size] == [False] * 4 + [False, False] + [True] * 3 + [False]
    copy = ReplayMemory(s, a, capacity=10)
    copy.load_state_dict(mem.state_dict())
    assert torch.equal(copy.exploration[: copy.size], mem.exploration[: mem.size])
    old = mem.state_dict()
    del old["exploration"]  # a checkpoint from before the flag: no row marked
    copy.load_state_dict(old)
    assert not copy.exploration[: copy.size].any()
