"""Tests for SSNE on the linear policy heads (core/mod_neuro_evo.py, ALGORITHM.md §5)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.ddpg import policy_rows
from core.mod_neuro_evo import (
    NORMAL,
    RESET,
    SSNE,
    SUPER,
    behaviour_crossover,
    behaviour_mutation,
    mutate_rows,
    mutation_gate,
    sync_rl_to_population,
)

LS = 300


def population(n: int = 10, a: int = 6, seed: int = 0, device: str = "cpu"):
    """Distinct weights, biases and fitness values for every member."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(n, a, LS, generator=g).to(device)
    bias = torch.randn(n, a, generator=g).to(device)
    fitness = np.random.default_rng(seed).permutation(n).astype(np.float64) * 10.0
    return weight, bias, fitness


def run_epoch(seed: int, n: int = 10, mutation_prob: float = 0.9, device: str = "cpu", elite_clone: str = "reference"):
    weight, bias, fitness = population(n, seed=seed, device=device)
    ssne = SSNE(n, frac=0.1, prob_reset_and_sup=0.05, rng=np.random.default_rng(seed),
                mutation_prob=mutation_prob, elite_clone=elite_clone)
    new_elite = ssne.epoch(weight, bias, fitness)
    return ssne, new_elite, weight, bias


def gate_seed(opens: bool) -> int:
    """A seed whose first gate draw opens (or keeps closed) the mutation gate."""
    return next(s for s in range(1000) if mutation_gate(np.random.default_rng(s)) == opens)


# ----------------------------------------------------------------------------- epoch
@pytest.mark.parametrize("seed", range(5))
def test_elites_survive_epoch_bit_for_bit(seed):
    """-elite_clone snapshot: every elite reaches its new slot unchanged, whatever the slots."""
    w0, b0, fitness = population(seed=seed)
    ssne, new_elite, weight, bias = run_epoch(seed, elite_clone="snapshot")
    rec = ssne.last_epoch
    assert rec.elites == [int(x) for x in np.argsort(-fitness)[: ssne.num_elitists]]
    assert len(rec.new_elites) == ssne.num_elitists == 2
    assert new_elite == rec.new_elites[0]
    for old, new in zip(rec.elites, rec.new_elites):
        assert torch.equal(weight[new], w0[old]) and torch.equal(bias[new], b0[old])
    assert not set(rec.new_elites) & set(rec.mutated)
    # Elites go to the first unselected slots, then (none left) to the winners' slots.
    assert rec.new_elites == (rec.unselected + rec.winners)[: ssne.num_elitists]


def epoch_with_winners(elite_clone: str, winners: list[int], n: int = 10):
    """One epoch whose tournament returns ``winners`` (no mutation), from the same population."""
    weight, bias, fitness = population(n, seed=7)
    ssne = SSNE(n, frac=0.1, prob_reset_and_sup=0.05, rng=np.random.default_rng(7), mutation_prob=0.0,
                elite_clone=elite_clone)
    ssne._tournament = lambda ranked: list(winners)
    ssne.epoch(weight, bias, fitness)
    return ssne.last_epoch, weight, bias


def test_reference_elite_clone_reads_the_live_population():
    """The authors' elitism: each elite is cloned from the population as the earlier clones left it. With
    no unselected slot, the first elite's clone lands on the winner slot of the second elite, which is then
    cloned from there (the first elite's weights twice); a snapshot clones the second elite itself."""
    w0, b0, fitness = population(10, seed=7)
    ranked = [int(x) for x in np.argsort(-fitness)]
    first, second = ranked[:2]
    winners = [second] + ranked[2:]  # every member chosen: no unselected slot is left
    runs = {kind: epoch_with_winners(kind, winners) for kind in ("reference", "snapshot")}
    for kind, (rec, weight, bias) in runs.items():
        assert rec.elites == [first, second] and rec.unselected == [] and rec.new_elites == [second, ranked[2]]
        # The plain definition: clone one elite after another in place, from the live (or the initial) rows.
        w, b = w0.clone(), b0.clone()
        for elite, slot in zip(rec.elites, rec.new_elites):
            src = (w, b) if kind == "reference" else (w0, b0)
            w[slot], b[slot] = src[0][elite].clone(), src[1][elite].clone()
        for slot in rec.new_elites:
            assert torch.equal(weight[slot], w[slot]) and torch.equal(bias[slot], b[slot]), (kind, slot)
    assert torch.equal(runs["reference"][1][ranked[2]], w0[first])
    assert torch.equal(runs["snapshot"][1][ranked[2]], w0[second])


@pytest.mark.parametrize("n", [5, 9])
def test_elite_clone_kinds_agree_with_one_elite(n):
    """With one elite (pop_size below 10, the paper's 5) the two ways of cloning give the same epoch."""
    for seed in range(20):
        ref, snap = (run_epoch(seed, n, elite_clone=kind) for kind in ("reference", "snapshot"))
        assert ref[0].num_elitists == 1 and ref[1] == snap[1]
        assert torch.equal(ref[2], snap[2]) and torch.equal(ref[3], snap[3])


def test_unknown_elite_clone_is_refused():
    with pytest.raises(ValueError, match="elite_clone"):
        SSNE(5, 0.1, 0.05, np.random.default_rng(0), elite_clone="copy")


@pytest.mark.parametrize("seed", range(5))
def test_epoch_tournament_and_partition(seed):
    n = 10
    _, _, fitness = population(n, seed=seed)
    ssne, _, _, _ = run_epoch(seed, n)
    rec = ssne.last_epoch
    # Replay the tournament draws: best of 3 uniform ranks, unique winners in Python-set order.
    ranked = np.argsort(fitness)[::-1]
    best = np.random.default_rng(seed).integers(0, n, size=(n - 2, 3)).min(axis=1)
    unique = list({int(ranked[r]) for r in best})
    assert rec.winners[: len(unique)] == unique
    # An odd count gets one of the winners again, an even one nothing.
    assert len(rec.winners) == len(unique) + len(unique) % 2 and set(rec.winners) == set(unique)
    assert sorted(set(rec.elites) | set(rec.winners) | set(rec.unselected)) == list(range(n))
    assert not set(rec.unselected) & (set(rec.elites) | set(rec.winners))
    assert sorted(rec.mutated) == rec.mutated and set(rec.mutated) <= set(range(n))


@pytest.mark.parametrize("seed", range(5))
def test_offspring_rows_come_from_elites_or_winners(seed):
    w0, b0, _ = population(seed=seed)
    ssne, _, weight, bias = run_epoch(seed, mutation_prob=0.0)
    rec = ssne.last_epoch
    assert rec.mutated == []
    parents = policy_rows(w0[rec.elites + rec.winners], b0[rec.elites + rec.winners])
    rows = policy_rows(weight, bias)
    for m in range(weight.shape[0]):
        for r in range(weight.shape[1]):
            assert (rows[m, r] == parents[:, r]).all(dim=-1).any(), (m, r)


def test_epoch_mutates_with_mutation_prob():
    ssne = run_epoch(0, n=10, mutation_prob=1.0)[0]
    rec = ssne.last_epoch
    assert rec.mutated == [m for m in range(10) if m not in rec.new_elites]


def test_same_seed_same_epoch_different_seed_different():
    _, e1, w1, b1 = run_epoch(3)
    _, e2, w2, b2 = run_epoch(3)
    assert e1 == e2 and torch.equal(w1, w2) and torch.equal(b1, b2)
    weight, bias, fitness = population(seed=3)
    SSNE(10, 0.1, 0.05, np.random.default_rng(4)).epoch(weight, bias, fitness)
    assert not torch.equal(weight, w1)


# ------------------------------------------------------------------------- crossover
def sequential_crossover(weight, bias, i, j, rng):
    """The definition in ALGORITHM.md §5, one copy at a time."""
    a = weight.shape[1]
    n = int(rng.integers(0, 2 * a))
    from_j = rng.random(n) < 0.5
    rows = rng.integers(0, a, size=n)
    for into_i, r in zip(from_j, rows):
        dst, src = (i, j) if into_i else (j, i)
        weight[dst, r] = weight[src, r]
        bias[dst, r] = bias[src, r]


@pytest.mark.parametrize("a", [1, 3, 6, 17])
def test_crossover_matches_sequential_definition(a):
    for seed in range(40):
        w0, b0, _ = population(4, a=a, seed=seed)
        w_vec, b_vec, w_seq, b_seq = w0.clone(), b0.clone(), w0.clone(), b0.clone()
        behaviour_crossover(w_vec, b_vec, 1, 3, np.random.default_rng(seed))
        sequential_crossover(w_seq, b_seq, 1, 3, np.random.default_rng(seed))
        assert torch.equal(w_vec, w_seq) and torch.equal(b_vec, b_seq), seed


def test_crossover_rows_come_whole_from_a_parent():
    swapped = 0
    for seed in range(40):
        w0, b0, _ = population(4, a=6, seed=seed)
        weight, bias = w0.clone(), b0.clone()
        behaviour_crossover(weight, bias, 0, 2, np.random.default_rng(seed))
        orig, rows = policy_rows(w0, b0), policy_rows(weight, bias)
        for child in (0, 2):
            for r in range(6):
                assert any(torch.equal(rows[child, r], orig[parent, r]) for parent in (0, 2))
        assert torch.equal(rows[[1, 3]], orig[[1, 3]])  # bystanders untouched
        swapped += int(not torch.equal(rows[0], orig[0]))
    assert swapped > 10  # crossover actually does something


# -------------------------------------------------------------------------- mutation
def test_mutation_normal_branch_changes_exactly_k_entries_per_row():
    frac, seed = 0.05, gate_seed(opens=True)
    w0, b0, _ = population(5, a=6, seed=seed)
    weight, bias = w0.clone(), b0.clone()
    behaviour_mutation(weight, 2, frac, 0.0, np.random.default_rng(seed))
    changed = weight != w0
    assert changed[2].sum(dim=1).tolist() == [int(frac * LS)] * 6
    assert not changed[[0, 1, 3, 4]].any()
    assert torch.equal(bias, b0)
    rel = ((weight[2] - w0[2]).abs() / w0[2].abs())[changed[2]]
    assert rel.max() < 0.1 * 6  # N(0, 0.1|w|): within six standard deviations
    # ... and of that spread: the root mean square of |dw|/|w| is 0.1 (within five standard errors)
    rms = float(rel.pow(2).mean().sqrt())
    assert abs(rms / 0.1 - 1) < 5 / np.sqrt(2 * rel.numel()), rms


def test_mutation_gate_closed_leaves_population_unchanged():
    seed = gate_seed(opens=False)
    w0 = population(3, seed=seed)[0]
    weight = w0.clone()
    behaviour_mutation(weight, 1, 0.1, 0.1, np.random.default_rng(seed))
    assert torch.equal(weight, w0)


def test_mutation_gate_rate():
    rng, trials = np.random.default_rng(0), 20000
    rate = np.mean([mutation_gate(rng) for _ in range(trials)])
    expected = 0.75  # P(v < 2u) = E[min(1, 2u)]
    assert abs(rate - expected) < 5 * np.sqrt(expected * (1 - expected) / trials)


def test_mutation_branch_proportions():
    rows, p, frac = 4000, 0.1, 0.05
    rng = np.random.default_rng(1)
    w0 = torch.as_tensor(1e-3 * rng.choice([-1.0, 1.0], size=(2, rows, LS)), dtype=torch.float32)
    weight = w0.clone()
    branch = mutate_rows(weight, 0, frac, p, np.random.default_rng(2))
    assert torch.equal(weight[1], w0[1])
    # Classify each row from its values: largest relative change max|dw|/|w| over k entries.
    rel = ((weight[0] - w0[0]).abs() / w0[0].abs()).max(dim=1).values.numpy()
    observed = np.where(rel < 0.6, NORMAL, np.where(rel < 100, SUPER, RESET))
    assert (observed == branch).all()
    assert ((weight[0] != w0[0]).sum(dim=1) == int(frac * LS)).all()
    for code, prob in ((SUPER, p), (RESET, p), (NORMAL, 1 - 2 * p)):
        sd = np.sqrt(rows * prob * (1 - prob))
        assert abs((observed == code).sum() - rows * prob) < 5 * sd, code


def test_mutation_clips_weights():
    weight = torch.full((1, 2, LS), 5e5)
    mutate_rows(weight, 0, 1.0, 0.5, np.random.default_rng(0))  # every row super-mutated
    assert weight.abs().max() <= 1e6 and (weight.abs() == 1e6).any()


# ------------------------------------------------------------------ sync and statistics
def test_sync_writes_lowest_fitness_but_never_the_new_elite():
    weight, bias, _ = population(5)
    rl_w, rl_b = torch.full((6, LS), 7.0), torch.full((6,), -7.0)
    fitness = np.array([3.0, 1.0, 4.0, 0.5, 9.0])
    assert sync_rl_to_population(weight, bias, rl_w, rl_b, fitness, new_elite=0) == 3
    assert torch.equal(weight[3], rl_w) and torch.equal(bias[3], rl_b)
    w_before = weight.clone()
    assert sync_rl_to_population(weight, bias, rl_w, rl_b, fitness, new_elite=3) == 4
    assert torch.equal(weight[4], rl_w) and torch.equal(weight[:3], w_before[:3])
    fitness = np.array([3.0, 1.0, 4.0, 2.0, 0.0])
    assert sync_rl_to_population(weight, bias, rl_w, rl_b, fitness, new_elite=4) == 0


def test_selection_stats():
    n = 10
    ssne = SSNE(n, 0.1, 0.05, np.random.default_rng(0))
    rate_keys = ("elite_rate", "selected_rate", "discarded_rate")
    assert ssne.selection_rates() == dict.fromkeys(rate_keys)
    weight, bias, fitness = population(n)
    ssne.epoch(weight, bias, fitness)  # rl_policy None: nothing counted
    assert ssne.selection_stats["total"] == 0.0
    expected = {"elite": 0.0, "selected": 0.0, "discarded": 0.0}
    ranked = np.argsort(-fitness)
    for epoch in range(30):
        synced = int(ranked[0]) if epoch == 0 else int(ranked[2 + epoch % (n - 2)])
        ssne.rl_policy = synced
        ssne.epoch(weight, bias, fitness)
        rec = ssne.last_epoch
        key = "elite" if synced in rec.elites else "discarded"
        key = "selected" if synced in rec.winners and key != "elite" else key
        expected[key] += 1.0
        assert ssne.rl_policy is None
    assert expected["elite"] == 1.0 and expected["selected"] > 0 and expected["discarded"] > 0
    assert ssne.selection_stats == {**expected, "total": 30.0}
    assert ssne.selection_rates() == {f"{k}_rate": expected[k] / 30.0 for k in ("elite", "selected", "discarded")}


def test_all_equal_fitness_elite_is_the_reference_pick():
    """During the warm-up every fitness is 0: the reference ranks with argsort(fitness)[::-1], so the
    highest index is the elite, and the elite's copy goes to the first unselected slot."""
    for seed in range(5):
        n = 5
        weight, bias = torch.randn(n, 3, 8), torch.randn(n, 3)
        before = weight.clone()
        ssne = SSNE(n, 1.0, 0.05, np.random.default_rng(seed))
        new_elite = ssne.epoch(weight, bias, np.zeros(n))
        assert ssne.last_epoch.elites == [n - 1]
        assert new_elite == (ssne.last_epoch.unselected + ssne.last_epoch.winners)[0]
        assert torch.equal(weight[new_elite], before[n - 1])


def test_winners_in_python_set_order():
    """Unique tournament winners are kept in the order ``list(set(...))`` yields, as the reference."""
    n = 10
    for seed in range(10):
        ssne = SSNE(n, 1.0, 0.05, np.random.default_rng(seed))
        probe = np.random.default_rng(seed)
        best = probe.integers(0, n, size=(n - ssne.num_elitists, 3)).min(axis=1)
        expected = list({int(r) for r in best})
        winners = ssne._tournament(np.arange(n))
        assert winners[: len(expected)] == expected


@pytest.mark.parametrize("fitness", [[5.0, 5, 5, 0, 0, 0, 0, 0, 0, 0], [3.0, 7, 3, 3, 7, 0, 1, 1, 0, 3]])
def test_partly_tied_fitness_ranks_as_the_reference(fitness):
    """The reference's ``argsort(fitness)[::-1]`` ran on numpy 1.x, whose default sort is an insertion
    sort (stable) at a population's size: among equal fitness the higher index ranks first. numpy 2's
    default sort is not stable on some machines (AVX-512), so the ranking must ask for a stable sort."""
    n = len(fitness)
    ssne = SSNE(n, 1.0, 0.05, np.random.default_rng(0))
    ssne.epoch(torch.randn(n, 3, 8), torch.randn(n, 3), np.array(fitness))
    # Higher fitness first; within a tie, higher index first (a stable ascending sort, reversed).
    expected = sorted(range(n), key=lambda i: (fitness[i], i), reverse=True)
    assert ssne.last_epoch.elites == expected[: ssne.num_elitists]
    best = np.random.default_rng(0).integers(0, n, size=(n - ssne.num_elitists, 3)).min(axis=1)
    assert ssne.last_epoch.winners[: len(set(best))] == list({expected[r] for r in best})
