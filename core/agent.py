"""The ERL-Re² generation loop (ALGORITHM.md §3).

One generation: fitness of the population (MC with probability θ, else the H-step return
bootstrapped with the PeVFA; all zeros during the warm-up) → champion test → SSNE epoch (also
during the warm-up, as the reference) → one RL episode and ``gen_frames``
learner iterations → RL test → RL→EA sync → report.
"""
from __future__ import annotations

import math
import random
import time
from argparse import Namespace
from collections.abc import Callable

import fastrand
import numpy as np
import torch

from core.ddpg import ERLRe2Learner
from core.learner_config import LearnerConfig
from core.mod_neuro_evo import SSNE, sync_rl_to_population
from core.replay_memory import ReplayMemory
from core.rollout import EnvPool, Episodes, run_episodes
from parameters import MIN_BUFFER, REPORTED_SCORES  # MIN_BUFFER: transitions needed before learning: min(MIN_BUFFER, init_steps)

EXPLORATION_STD = 0.1


def reported_score(champion: float | None, rl: float | None, kind: str) -> float | None:
    """A generation's best_reward from its two tests (None: that test did not run). "reference": the
    authors' max(RL test, champion test) with 0 for a test that did not run (their scores start at 0), so
    a negative score is reported as 0 when only one test ran; "tests_run": the best test that ran."""
    if kind == "reference":
        return max(0.0 if champion is None else champion, 0.0 if rl is None else rl)
    if kind != "tests_run":
        raise ValueError(f"reported_score must be one of {REPORTED_SCORES} (got {kind!r})")
    ran = [v for v in (champion, rl) if v is not None]
    return max(ran) if ran else None


class NonFiniteLoss(RuntimeError):
    pass


def seed_everything(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """One seed drives everything: Python, fastrand, torch (network init) and the two numpy
    generators of the run (training draws; test-episode resets, kept apart so that tests never
    change training)."""
    random.seed(seed)
    fastrand.pcg32_seed(seed)
    torch.manual_seed(seed)
    train_ss, test_ss = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(train_ss), np.random.default_rng(test_ss)


def make_learner_config(args: Namespace, state_dim: int, action_dim: int) -> LearnerConfig:
    """The learner's settings from a run's settings (training, and ``core.evaluate`` rebuilding it)."""
    return LearnerConfig(
        state_dim=state_dim, action_dim=action_dim, pop_size=args.pop_size, pr=args.pr, gamma=args.gamma, tau=args.tau,
        TD3_noise=args.TD3_noise, K=args.K, actor_alpha=args.actor_alpha, EA_actor_alpha=args.EA_actor_alpha,
        OFF_TYPE=args.OFF_TYPE, use_all=args.use_all, rl_algo=args.rl_algo, EA=args.EA, batch_size=args.batch_size,
        pevfa_rows=args.pevfa_rows, phi_grad=args.phi_grad, critic_actions=args.critic_actions, compile=args.compile,
    )


class Agent:
    def __init__(self, args: Namespace, device: torch.device):
        self.args = args
        self.rng, self.test_rng = seed_everything(args.seed)
        n = args.pop_size
        self.pop_pool = EnvPool(args.env, n * args.num_evals, args.max_episode_steps) if args.EA else None
        self.rl_pool = EnvPool(args.env, 1, args.max_episode_steps)
        self.test_pool = EnvPool(args.env, args.test_episodes, args.max_episode_steps)
        s, a = self.rl_pool.state_dim, self.rl_pool.action_dim
        self.learner = ERLRe2Learner(make_learner_config(args, s, a), device, seed=args.seed)
        # The full -buffer_size ring (its storage grows as it fills): transitions do not depend on the budget,
        # so a run extended on resume is the run it would have been with the larger budget from the start.
        self.memory = ReplayMemory(s, a, args.buffer_size, device)
        self.ssne = SSNE(n, args.frac, args.prob_reset_and_sup, self.rng, elite_clone=args.elite_clone) if args.EA else None
        self.frames = self.rl_frames = self.games = self.generation = self.evo_times = self.ssne_epochs = 0
        self.elapsed = 0.0  # wall seconds of earlier sessions of this run (resume)
        self._pending: dict | None = None  # a generation paused inside its learner iterations
        # The member holding the head with the best last fitness (None before any fitness).
        self.champion: dict | None = None
        self._session_start = time.perf_counter()

    # ------------------------------------------------------------------ §3, one generation
    def train(self, pause: Callable[[], bool] | None = None) -> dict | None:
        """One generation; returns its progress row. When ``pause()`` becomes true during the learner
        iterations, returns None with the generation left pending (``self.pending``, saved by
        ``state()``); the next call finishes it exactly as an uninterrupted call would have."""
        if self._pending is None:
            self._pending = self._collect()
        gen = self._pending
        if gen["iterations_done"] < gen["iterations"]:
            gen["iterations_done"] = self.learner.train_iterations(
                self.memory, gen["iterations"], self.evo_times, start=gen["iterations_done"], pause=pause)
            if gen["iterations_done"] < gen["iterations"]:
                return None
        self._pending = None
        return self._finish(gen)

    @property
    def pending(self) -> str | None:
        """What is left of a generation paused inside its learner iterations, or None."""
        gen = self._pending
        if gen is None:
            return None
        return (f"generation {self.generation} in progress: {gen['iterations'] - gen['iterations_done']} of "
                f"{gen['iterations']} learner iterations left")

    def _collect(self) -> dict:
        """Steps 2-5 up to the learner: fitness, champion test, SSNE epoch, the RL episode. Returns the
        generation in progress (all a checkpoint needs to finish it)."""
        args, learner = self.args, self.learner
        self.generation += 1
        gen_frames = 0
        row: dict = dict.fromkeys(("champion_score", "rl_score", "fitness_max", "fitness_mean"))
        row["fitness_kind"] = "none"

        # 2. Fitness (EA only once the RL agent has finished its random warm-up; all zeros before).
        ea_active = args.EA and (not args.RL or self.rl_frames >= args.init_steps)
        fitness, new_elite = np.zeros(args.pop_size), None
        if ea_active:
            self.evo_times += 1
            use_mc = not args.RL or self.rng.random() < args.theta
            fitness, episodes = self.mc_fitness() if use_mc else self.h_step_fitness()
            gen_frames += episodes.frames
            self.games += len(episodes.lengths)
            row.update(fitness_kind="mc" if use_mc else "h_step", fitness_max=float(fitness.max()), fitness_mean=float(fitness.mean()))
            # 3. Champion test.
            row["champion_score"] = self.test(int(np.argmax(fitness)))
        # 4. One SSNE epoch on the linear heads, every generation from the first, as the reference
        #    (during the warm-up on all-zero fitness), unless -skip_warmup_evolution.
        if args.EA and (ea_active or not args.skip_warmup_evolution):
            new_elite = self.ssne.epoch(learner.pop_weight, learner.pop_bias, fitness)
            self.ssne_epochs += 1
            if ea_active:
                # The epoch moves members, but the first new elite is an unmutated copy of the best
                # head, and the RL sync never overwrites it: that slot is the champion from now on.
                self.champion = {"member": new_elite, "fitness": float(fitness.max()), "fitness_kind": row["fitness_kind"],
                                 "generation": self.generation}

        # 5. RL: one episode, then about one learner iteration per frame collected this generation.
        iterations = 0
        if args.RL:
            episode = self.rl_episode()
            gen_frames += episode.frames
            self.rl_frames += episode.frames
            self.games += 1
            if self.rl_frames >= args.init_steps and len(self.memory) >= min(MIN_BUFFER, args.init_steps):
                iterations = gen_frames
        return {"row": row, "gen_frames": gen_frames, "fitness": [float(f) for f in fitness],
                "new_elite": None if new_elite is None else int(new_elite), "iterations": iterations, "iterations_done": 0}

    def _finish(self, gen: dict) -> dict:
        """Steps 6-8 after the learner: RL test, RL→EA sync, report."""
        args, learner, row = self.args, self.learner, dict(gen["row"])
        if args.RL:
            # 6. RL test.
            row["rl_score"] = self.test(learner.rl_index)
            # 7. RL → EA sync into the weakest member, never over the new elite. The RL frame count is
            #    checked after this generation's RL episode, so the generation that crosses init_steps
            #    already syncs (as the reference).
            if args.EA and self.rl_frames >= args.init_steps and self.generation % args.sync_period == 0:
                self.ssne.rl_policy = sync_rl_to_population(
                    learner.pop_weight, learner.pop_bias, learner.rl_weight.detach(), learner.rl_bias.detach(),
                    np.asarray(gen["fitness"]), gen["new_elite"]
                )
        self.frames += gen["gen_frames"]

        # 8. Report.
        losses = learner.pop_losses()
        for name, value in losses.items():
            if value is not None and not math.isfinite(value):
                raise NonFiniteLoss(f"non-finite {name} ({value}) at generation {self.generation}")
        rates = self.ssne.selection_rates() if self.ssne else {}
        row.update(losses, **rates, frames=self.frames, generation=self.generation, games=self.games,
                   rl_frames=self.rl_frames, evo_times=self.evo_times, ssne_epochs=self.ssne_epochs, best_reward=reported_score(row["champion_score"], row["rl_score"], args.reported_score))
        return row

    # ------------------------------------------------------------------ rollouts
    def _policy(self, heads: np.ndarray):
        return self.learner.policy(heads)

    def _reset_seeds(self, n: int, rng: np.random.Generator) -> list[int]:
        return rng.integers(0, 2**31 - 1, size=n).tolist()

    def mc_fitness(self) -> tuple[np.ndarray, Episodes]:
        """Mean undiscounted return of ``num_evals`` full noise-free episodes per member (stored)."""
        heads = np.repeat(np.arange(self.args.pop_size), self.args.num_evals)
        ep = run_episodes(self.pop_pool, self._policy(heads), self._reset_seeds(len(heads), self.rng), memory=self.memory)
        return ep.returns.reshape(self.args.pop_size, self.args.num_evals).mean(1), ep

    def h_step_fitness(self) -> tuple[np.ndarray, Episodes]:
        """``Σ_{t<H} γ^t r_t + γ^H·min(V1, V2)(s_H, π(s_H), χ(π))`` with the current PeVFA; no
        bootstrap after a termination, a bootstrap after a time-limit truncation."""
        gamma, heads = self.args.gamma, np.arange(self.args.pop_size)
        ep = run_episodes(self.pop_pool, self._policy(heads), self._reset_seeds(len(heads), self.rng),
                          horizon=self.args.time_steps, gamma=gamma, memory=self.memory)
        bootstrap = gamma ** ep.lengths * self.learner.pevfa_value(ep.last_obs, heads)
        return ep.returns + np.where(ep.terminated, 0.0, bootstrap), ep

    def rl_episode(self) -> Episodes:
        """Uniform random actions until ``init_steps`` RL frames, then ``clip(π_RL(s) + N(0, 0.1))``."""
        a_dim, warmup = self.rl_pool.action_dim, self.rl_frames < self.args.init_steps
        act = self.learner.policy(np.array([self.learner.rl_index]))

        def policy(obs: np.ndarray, idx: np.ndarray) -> np.ndarray:
            if warmup:
                return self.rng.uniform(-1.0, 1.0, size=(len(idx), a_dim))
            noise = self.rng.normal(0.0, EXPLORATION_STD, size=(len(idx), a_dim))
            return np.clip(act(obs, idx) + noise, -1.0, 1.0)

        return run_episodes(self.rl_pool, policy, self._reset_seeds(1, self.rng), memory=self.memory, exploration=not warmup)

    def test(self, head: int) -> float:
        """Mean return of ``test_episodes`` noise-free episodes of one actor (not stored)."""
        heads = np.full(self.args.test_episodes, head)
        return float(run_episodes(self.test_pool, self._policy(heads), self._reset_seeds(len(heads), self.test_rng)).returns.mean())

    def wall_time(self) -> float:
        """Seconds this run has been running, across resumes."""
        return self.elapsed + time.perf_counter() - self._session_start

    # ------------------------------------------------------------------ checkpointing
    def state(self) -> dict:
        torch_rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            torch_rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "learner": self.learner.checkpoint_state(),
            "memory": self.memory.state_dict(),
            "ssne": {"rl_policy": self.ssne.rl_policy, "selection_stats": dict(self.ssne.selection_stats)} if self.ssne else None,
            "pending": self._pending,
            "champion": self.champion,
            "counters": {**{k: getattr(self, k) for k in ("frames", "rl_frames", "games", "generation", "evo_times", "ssne_epochs")},
                         "elapsed": self.wall_time()},
            "rng": {"numpy": self.rng.bit_generator.state, "numpy_test": self.test_rng.bit_generator.state,
                    "python": random.getstate(), "torch": torch_rng},
        }

    def load_state(self, state: dict) -> None:
        self.learner.load_checkpoint_state(state["learner"])
        self.memory.load_state_dict(state["memory"])
        if self.ssne is not None:
            self.ssne.rl_policy = state["ssne"]["rl_policy"]
            self.ssne.selection_stats.update(state["ssne"]["selection_stats"])
        for k, v in state["counters"].items():
            setattr(self, k, v)
        self._pending = state["pending"]
        self.champion = state.get("champion")  # absent from checkpoints written before it was kept
        self._session_start = time.perf_counter()
        rng = state["rng"]
        self.rng.bit_generator.state = rng["numpy"]
        self.test_rng.bit_generator.state = rng["numpy_test"]
        random.setstate(rng["python"])
        torch.set_rng_state(rng["torch"]["cpu"])
        if "cuda" in rng["torch"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["torch"]["cuda"])

    def close(self) -> None:
        for pool in (self.pop_pool, self.rl_pool, self.test_pool):
            if pool is not None:
                pool.close()
