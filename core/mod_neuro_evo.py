"""SSNE on the population of linear policy heads (ALGORITHM.md §5; ERL-Re² paper §3.3).

The population is two stacked tensors, ``weight [N, A, ls]`` and ``bias [N, A]``; member i
acts as ``tanh(weight[i] @ feature + bias[i])``. Every operator works in place. All random
draws come from the run's ``numpy.random.Generator`` and are made on the host, then moved to
the tensors' device, so a seed gives bit-identical results on CPU and CUDA.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.ddpg import policy_rows

WEIGHT_LIMIT = 1e6  # |w| clip after mutation (reference: weight_magnitude_limit)
TOURNAMENT_SIZE = 3
ELITE_CLONES = ("reference", "snapshot")  # values of -elite_clone

# Mutation branch codes returned by ``mutate_rows``.
NORMAL, SUPER, RESET = 0, 1, 2


def _host_to(x: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """Cast host draws to ``like``'s dtype on the host, then move them to its device."""
    return torch.as_tensor(x, dtype=like.dtype).to(like.device)


def _index(x, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.int64), device=like.device)


@torch.no_grad()
def behaviour_crossover(
    weight: torch.Tensor, bias: torch.Tensor, i: int, j: int, rng: np.random.Generator
) -> None:
    """Behaviour-level crossover of members i and j (§5): whole rows ``[W[r], b[r]]`` move.

    n ~ U{0..2A-1}; n times, with probability 1/2 row r is copied from j into i, otherwise
    from i into j. Sequentially, once an op has touched row r both parents hold the same
    row r, so row r ends as the original row of the source of the FIRST op touching it.
    """
    n_rows = weight.shape[-2]
    n = int(rng.integers(0, 2 * n_rows))
    from_j = rng.random(n) < 0.5  # True: copy j -> i
    rows = rng.integers(0, n_rows, size=n)
    touched, first = np.unique(rows, return_index=True)
    into_i = _index(touched[from_j[first]], weight)
    into_j = _index(touched[~from_j[first]], weight)
    pair = _index([i, j], weight)
    parents = policy_rows(weight[pair], bias[pair])  # [2, A, ls+1], a copy of the originals
    child = parents.clone()
    child[0, into_i] = parents[1, into_i]
    child[1, into_j] = parents[0, into_j]
    weight[pair], bias[pair] = child[..., :-1], child[..., -1]


def mutation_gate(rng: np.random.Generator) -> bool:
    """Whether a member is mutated at all: probability min(1, 2u), u ~ U(0,1) (§5)."""
    u = rng.random()
    return bool(rng.random() < 2.0 * u)


@torch.no_grad()
def mutate_rows(
    weight: torch.Tensor, i: int, frac: float, prob_reset_and_sup: float, rng: np.random.Generator
) -> np.ndarray:
    """Row-wise mutation of ``weight[i]`` without the gate; returns the branch of each row.

    Each row gets ``int(frac * ls)`` distinct columns and one v ~ U(0,1): v < p super
    (w += N(0, 10|w|)), p <= v < 2p reset (w = N(0,1)), else normal (w += N(0, 0.1|w|)).
    The head is then clipped to ±1e6.
    """
    n_rows, ls = weight.shape[-2:]
    k = int(frac * ls)
    cols = rng.random((n_rows, ls)).argsort(axis=1)[:, :k]  # k distinct columns per row
    v = rng.random(n_rows)
    z = rng.standard_normal((n_rows, k))
    p = prob_reset_and_sup
    branch = np.where(v < p, SUPER, np.where(v < 2 * p, RESET, NORMAL))
    head = weight[i]
    idx = _index(cols, weight)
    w = head.gather(1, idx)
    z_t = _host_to(z, weight)
    scale = _host_to(np.where(branch == SUPER, 10.0, 0.1)[:, None], weight)
    reset = torch.as_tensor(branch == RESET, device=weight.device)[:, None]
    head.scatter_(1, idx, torch.where(reset, z_t, w + z_t * (scale * w.abs())))
    head.clamp_(-WEIGHT_LIMIT, WEIGHT_LIMIT)
    return branch


@torch.no_grad()
def behaviour_mutation(
    weight: torch.Tensor, i: int, frac: float, prob_reset_and_sup: float, rng: np.random.Generator
) -> None:
    """Behaviour-level mutation of member i's weight (biases untouched), §5."""
    if mutation_gate(rng):
        mutate_rows(weight, i, frac, prob_reset_and_sup, rng)


@dataclass
class EpochRecord:
    """What one SSNE epoch did (member indices), for logging and tests."""

    elites: list[int] = field(default_factory=list)
    winners: list[int] = field(default_factory=list)
    unselected: list[int] = field(default_factory=list)
    new_elites: list[int] = field(default_factory=list)
    mutated: list[int] = field(default_factory=list)


class SSNE:
    """Sub-structure neuro-evolution over the linear heads (ALGORITHM.md §5, PDERL/ERL-Re²)."""

    def __init__(
        self,
        pop_size: int,
        frac: float,
        prob_reset_and_sup: float,
        rng: np.random.Generator,
        mutation_prob: float = 0.9,
        elite_clone: str = "reference",
    ) -> None:
        if elite_clone not in ELITE_CLONES:
            raise ValueError(f"elite_clone must be one of {ELITE_CLONES} (got {elite_clone!r})")
        self.pop_size = pop_size
        self.elite_clone = elite_clone
        self.frac = frac
        self.prob_reset_and_sup = prob_reset_and_sup
        self.rng = rng
        self.mutation_prob = mutation_prob
        self.num_elitists = max(1, int(0.2 * pop_size))
        self.rl_policy: int | None = None
        self.selection_stats = {"elite": 0.0, "selected": 0.0, "discarded": 0.0, "total": 0.0}
        self.last_epoch = EpochRecord()

    def _tournament(self, ranked: np.ndarray) -> list[int]:
        """N - e tournaments, each the best of 3 uniform ranks; unique winners, even count."""
        n = len(ranked)
        best = self.rng.integers(0, n, size=(n - self.num_elitists, TOURNAMENT_SIZE)).min(axis=1)
        # Unique winners in the order a Python set yields them, as the reference (list(set(...))):
        # the order decides which winners are paired and which one is duplicated.
        winners = list({int(ranked[r]) for r in best})
        if len(winners) % 2:
            winners.append(winners[int(self.rng.integers(len(winners)))])
        return winners

    def _update_selection_stats(self, elites, winners, unselected) -> None:
        if self.rl_policy is None:
            return
        stats = self.selection_stats
        stats["total"] += 1.0
        if self.rl_policy in elites:
            stats["elite"] += 1.0
        elif self.rl_policy in winners:
            stats["selected"] += 1.0
        elif self.rl_policy in unselected:
            stats["discarded"] += 1.0
        self.rl_policy = None

    @torch.no_grad()
    def epoch(self, weight: torch.Tensor, bias: torch.Tensor, fitness) -> int:
        """One SSNE epoch in place (§5); returns the index of the first new elite."""
        rng = self.rng
        fit = np.asarray(torch.as_tensor(fitness).cpu(), dtype=np.float64).reshape(-1)
        n = len(fit)
        # Best first, exactly as the reference ranks: argsort(fitness)[::-1], so among equal fitness
        # the higher index ranks first. During the warm-up every fitness is 0 and every rank a tie.
        # kind="stable": the reference's numpy 1.x sorted a population this small by insertion sort
        # (stable); numpy 2's default sort is not stable on every machine (AVX-512), which would
        # order partly tied members differently.
        ranked = np.argsort(fit, kind="stable")[::-1]
        elites = [int(x) for x in ranked[: self.num_elitists]]
        winners = self._tournament(ranked)
        chosen = set(elites) | set(winners)
        unselected = [int(x) for x in rng.permutation([m for m in range(n) if m not in chosen])]
        self._update_selection_stats(elites, winners, unselected)
        record = EpochRecord(elites, list(winners), list(unselected))

        # Elites are cloned one after another from the live population, as the reference: once the
        # unselected slots run out, an elite's clone can land on a winner slot that holds an elite not
        # yet cloned, which is then cloned from the overwritten slot (two or more elites). "snapshot"
        # clones every elite from a copy taken before the first clone.
        source_w, source_b = (weight[elites].clone(), bias[elites].clone()) if self.elite_clone == "snapshot" else (None, None)
        new_elites = []
        for k, elite in enumerate(elites):
            slot = unselected.pop(0) if unselected else winners.pop(0) if winners else elite
            if source_w is None:
                weight[slot], bias[slot] = weight[elite].clone(), bias[elite].clone()
            else:
                weight[slot], bias[slot] = source_w[k], source_b[k]
            new_elites.append(slot)

        if len(unselected) % 2:
            unselected.append(unselected[int(rng.integers(len(unselected)))])
        for a, b in zip(unselected[0::2], unselected[1::2]):
            src_a = new_elites[int(rng.integers(len(new_elites)))]
            src_b = winners[int(rng.integers(len(winners)))]
            weight[a], bias[a] = weight[src_a], bias[src_a]
            weight[b], bias[b] = weight[src_b], bias[src_b]
            behaviour_crossover(weight, bias, a, b, rng)

        for m in range(n):
            if m not in new_elites and rng.random() < self.mutation_prob:
                behaviour_mutation(weight, m, self.frac, self.prob_reset_and_sup, rng)
                record.mutated.append(m)
        record.new_elites = new_elites
        self.last_epoch = record
        return new_elites[0]

    def selection_rates(self) -> dict[str, float | None]:
        """Share of synced RL heads that were elite / selected / discarded (None before any)."""
        total = self.selection_stats["total"]
        return {
            f"{key}_rate": (self.selection_stats[key] / total if total else None)
            for key in ("elite", "selected", "discarded")
        }


@torch.no_grad()
def sync_rl_to_population(
    weight: torch.Tensor,
    bias: torch.Tensor,
    rl_weight: torch.Tensor,
    rl_bias: torch.Tensor,
    fitness,
    new_elite: int | None,
) -> int:
    """RL -> EA (§3 step 7): overwrite the lowest-fitness member, never the new elite."""
    n = weight.shape[0]
    slot = int(np.argmin(np.asarray(torch.as_tensor(fitness).cpu(), dtype=np.float64)))
    if slot == new_elite:
        slot = (slot + 1) % n
    weight[slot] = rl_weight.to(weight)
    bias[slot] = rl_bias.to(bias)
    return slot


__all__ = [
    "SSNE",
    "EpochRecord",
    "behaviour_crossover",
    "behaviour_mutation",
    "mutate_rows",
    "mutation_gate",
    "sync_rl_to_population",
]
