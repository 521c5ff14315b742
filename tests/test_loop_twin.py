"""The generation loop (``core.agent.Agent``) equals a plain implementation of ALGORITHM.md §3.

``PlainLoop`` below is written from the specification, not from ``core/agent.py`` or ``core/rollout.py``:
one environment, one episode at a time, a Python loop per step, the returns and the H-step fitness
written out as sums, the replay buffer a list of transitions. It replays the run's random draws: its
own numpy generators come from the run's seed exactly as the run makes them, and it draws from them
in the order §3 takes its steps (the MC-or-H coin, the reset seeds, the SSNE epoch, the RL episode's
reset seed and per-step actions; the tests' reset seeds from the second generator), so that every
episode is the run's episode. The learner and the SSNE operators are black boxes with twins of their
own (tests/test_reference_update.py, tests/test_evolution.py): the plain loop calls them, on a learner
of its own built from the same seed. Everything the loop itself decides is computed here: which
episodes run and what they return, which frames are stored and counted, how many learner iterations
run and which of them step the actor, what is synced where, what the selection rates and the
reported scores are.

After every generation the run's logged row (timing aside), its replay buffer, its population heads
and its whole learner (parameters, targets, optimiser states, generator) must equal the plain loop's. Each
case also asserts that the situations it exists for actually happened in the run (a termination
inside H, a truncation inside H, ...), read off the plain loop's own record.

Float arithmetic: the plain loop sums ``γ^t·r_t`` with ``γ**t`` and takes the bootstrap's ``γ^L``
with Python's ``pow``, the run accumulates ``γ^t`` as a running product and uses numpy's ``power``;
the two differ by rounding only. Fitness values and the statistics made from them are therefore
compared to within a bound on that rounding (a few ulps of the sum of the terms' magnitudes), every
other field exactly. Heads and learner are compared exactly: the two loops rank the same members,
so the SSNE epochs and everything after them are bit for bit the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import gymnasium as gym
import numpy as np
import pytest
import torch

from core.agent import Agent
from core.ddpg import ERLRe2Learner
from core.learner_config import LearnerConfig
from core.mod_neuro_evo import SSNE
from core.replay_memory import Batch
from parameters import parse_args

EPS = 2.0**-52
COMMON = ["-test_episodes", "2", "-batch_size", "16", "-wandb_mode", "disabled", "-seed", "1"]


# ---------------------------------------------------------------------- the plain loop
@dataclass
class Episode:
    rewards: list[float]
    transitions: list[tuple]  # (s, a, r, s', terminated) per step
    terminated: bool
    truncated: bool  # by the time limit
    last_obs: np.ndarray

    @property
    def length(self) -> int:
        return len(self.rewards)


class PlainBuffer:
    """The shared replay buffer (§2): a list of transitions ``(s, a, r, s', not_done)`` in float32, not_done
    0 only after a termination. ``sample`` draws a uniform minibatch with replacement from the generator it
    is given (the learner's, as the run's buffer does)."""

    def __init__(self):
        self.rows: list[tuple[np.ndarray, ...]] = []
        # The dtype each action had in the authors' code: float64 for the RL agent's exploration actions
        # (float32 policy output + float64 numpy noise), float32 for warm-up draws and population actions.
        self.dtypes: list[type] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, s, a, r, s2, terminated: bool, exploration: bool = False) -> None:
        f32 = np.float32
        self.rows.append((np.asarray(s, f32), np.asarray(a, f32), np.array([r], f32), np.asarray(s2, f32),
                          np.array([0.0 if terminated else 1.0], f32)))
        self.dtypes.append(np.float64 if exploration else np.float32)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """A uniform minibatch; ``no_exploration``: the authors' ``np.array`` of the sampled actions is float32."""
        idx = torch.randint(0, len(self.rows), (batch_size,), generator=generator).tolist()
        float32 = np.result_type(*(self.dtypes[i] for i in idx)) == np.float32
        return Batch(*(torch.from_numpy(np.stack(col)) for col in zip(*(self.rows[i] for i in idx))),
                     no_exploration=torch.tensor(float32))

    def table(self) -> np.ndarray:
        return np.stack([np.concatenate(row) for row in self.rows])


@dataclass
class Record:
    """What happened in one generation, for the situations each case must show."""
    kind: str = "none"
    episodes: list[Episode] = field(default_factory=list)  # the population's stored episodes
    rl_episode: Episode | None = None
    rl_frames_before: int = 0
    iterations: int = 0
    synced: int | None = None
    weakest: int | None = None
    new_elite: int | None = None
    row: dict = field(default_factory=dict)
    fitness: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)  # rounding bound of each member's fitness
    tol: dict = field(default_factory=dict)  # rounding bound of each float field made from the fitness


class PlainLoop:
    """ALGORITHM.md §3, one generation at a time, one episode at a time."""

    def __init__(self, args):
        self.args = args
        # The run's generators: training draws, and the test episodes' reset seeds kept apart.
        train_seq, test_seq = np.random.SeedSequence(args.seed).spawn(2)
        self.rng, self.test_rng = np.random.default_rng(train_seq), np.random.default_rng(test_seq)
        self.env = gym.make(args.env, max_episode_steps=args.max_episode_steps)
        space = self.env.action_space
        self.low, self.high = space.low.astype(np.float64), space.high.astype(np.float64)
        s_dim, self.a_dim = self.env.observation_space.shape[0], space.shape[0]
        settings = {f.name: getattr(args, f.name) for f in fields(LearnerConfig) if hasattr(args, f.name)}
        torch.manual_seed(args.seed)  # the networks' initialisation
        self.learner = ERLRe2Learner(LearnerConfig(state_dim=s_dim, action_dim=self.a_dim, **settings), "cpu", seed=args.seed)
        self.buffer = PlainBuffer()
        self.ssne = SSNE(args.pop_size, args.frac, args.prob_reset_and_sup, self.rng, elite_clone=args.elite_clone) if args.EA else None
        self.frames = self.rl_frames = self.games = self.generation = self.evo_times = self.epochs = 0
        self.synced_slot: int | None = None  # the RL head's slot since the last sync, until the next epoch
        self.placement = {"elite": 0, "selected": 0, "discarded": 0}
        self.champion: dict | None = None
        self.records: list[Record] = []

    # -------------------------------------------------------------- episodes
    def episode(self, act, seed: int, horizon: int | None = None) -> Episode:
        """One episode from ``reset(seed)`` until it terminates, is truncated by the time limit, or has
        taken ``horizon`` steps; ``act(obs)`` gives an action in [-1, 1], sent rescaled to the bounds."""
        obs, _ = self.env.reset(seed=int(seed))
        ep = Episode([], [], False, False, obs)
        while not (ep.terminated or ep.truncated or (horizon is not None and ep.length == horizon)):
            action = act(obs)
            nxt, reward, ep.terminated, ep.truncated, _ = self.env.step(self.low + (action + 1.0) * 0.5 * (self.high - self.low))
            ep.rewards.append(float(reward))
            ep.transitions.append((obs, action, reward, nxt, ep.terminated))
            obs = ep.last_obs = nxt
        return ep

    def store(self, episodes: list[Episode], exploration: bool = False) -> None:
        """Every transition of episodes played together goes to the buffer; the run plays them in
        lockstep, so the buffer holds step 0 of each (in episode order), then step 1 of each, ..."""
        for t in range(max(ep.length for ep in episodes)):
            for ep in episodes:
                if t < ep.length:
                    self.buffer.add(*ep.transitions[t], exploration=exploration)
        self.frames += sum(ep.length for ep in episodes)
        self.games += len(episodes)

    def actor(self, head: int):
        """Noise-free actions of actor ``head`` (population 0..N-1, RL N) from the learner."""
        return lambda obs: self.learner.act(obs[None], np.array([head]))[0]

    def seeds(self, n: int, rng: np.random.Generator) -> list[int]:
        return rng.integers(0, 2**31 - 1, size=n).tolist()

    def test(self, head: int) -> float:
        """Mean undiscounted return of ``test_episodes`` noise-free episodes; not stored."""
        returns = [sum(self.episode(self.actor(head), s).rewards) for s in self.seeds(self.args.test_episodes, self.test_rng)]
        return sum(returns) / len(returns)

    # -------------------------------------------------------------- fitness
    def mc_fitness(self, rec: Record) -> list[float]:
        n, k = self.args.pop_size, self.args.num_evals
        seeds = self.seeds(n * k, self.rng)  # member 0's episodes first
        rec.episodes = [self.episode(self.actor(i), seeds[i * k + e]) for i in range(n) for e in range(k)]
        return [sum(sum(ep.rewards) for ep in rec.episodes[i * k:(i + 1) * k]) / k for i in range(n)]

    def h_step_fitness(self, rec: Record) -> tuple[list[float], list[float]]:
        """``Σ_{t<L} γ^t r_t + γ^L·min(V1, V2)(s_L, π(s_L), χ(π))``, L ≤ H the steps taken, with no
        bootstrap after a termination; returns the fitness and each one's rounding scale."""
        n, gamma, horizon = self.args.pop_size, self.args.gamma, self.args.time_steps
        seeds = self.seeds(n, self.rng)
        rec.episodes = [self.episode(self.actor(i), seeds[i], horizon) for i in range(n)]
        # The PeVFA asked once for the N members' last states (its float32 rounding depends on the batch).
        values = self.learner.pevfa_value(np.stack([ep.last_obs for ep in rec.episodes]), np.arange(n))
        fitness, scale = [], []
        for ep, v in zip(rec.episodes, values):
            terms = [gamma**t * r for t, r in enumerate(ep.rewards)]
            if not ep.terminated:
                terms.append(gamma**ep.length * float(v))
            fitness.append(sum(terms))
            scale.append((len(terms) + 2) * EPS * sum(abs(x) for x in terms))
        return fitness, scale

    # -------------------------------------------------------------- one generation
    def generation_step(self) -> dict:
        args, learner, n = self.args, self.learner, self.args.pop_size
        rec = Record(rl_frames_before=self.rl_frames)
        self.generation += 1
        frames_before = self.frames
        row = {"champion_score": None, "rl_score": None, "fitness_max": None, "fitness_mean": None}
        tol = {}
        fitness, scale = [0.0] * n, [0.0] * n

        # 2. Fitness, once the RL agent's warm-up is over (at once without RL).
        evolving = args.EA and (not args.RL or self.rl_frames >= args.init_steps)
        if evolving:
            self.evo_times += 1
            mc = not args.RL or self.rng.random() < args.theta  # EA alone: always MC, no coin drawn
            rec.kind = "mc" if mc else "h_step"
            if mc:
                fitness = self.mc_fitness(rec)
                k = args.num_evals
                eps = [rec.episodes[i * k:(i + 1) * k] for i in range(n)]
                scale = [(sum(e.length for e in m) + k + 2) * EPS * sum(abs(r) for e in m for r in e.rewards) / k for m in eps]
            else:
                fitness, scale = self.h_step_fitness(rec)
            self.store(rec.episodes)
            row.update(fitness_kind=rec.kind, fitness_max=max(fitness), fitness_mean=sum(fitness) / n)
            tol["fitness_max"] = max(scale)
            tol["fitness_mean"] = max(scale) + n * EPS * sum(abs(f) for f in fitness)
            # 3. Champion test: the member with the highest fitness (the first of equals).
            best = max(range(n), key=lambda i: fitness[i])
            row["champion_score"] = self.test(best)
        else:
            row["fitness_kind"] = "none"

        # 4. One SSNE epoch every generation, also during the warm-up on all-zero fitness (not then with
        #    -skip_warmup_evolution).
        if args.EA and (evolving or not args.skip_warmup_evolution):
            rec.new_elite = self.ssne.epoch(learner.pop_weight, learner.pop_bias, fitness)
            self.epochs += 1
            if self.synced_slot is not None:  # where the RL head synced last landed in this epoch
                epoch = self.ssne.last_epoch
                place = ("elite" if self.synced_slot in epoch.elites else "selected" if self.synced_slot in epoch.winners
                         else "discarded" if self.synced_slot in epoch.unselected else None)
                assert place is not None, f"slot {self.synced_slot} is neither elite, winner nor unselected"
                self.placement[place] += 1
                self.synced_slot = None
            if evolving:
                self.champion = {"member": rec.new_elite, "fitness": max(fitness), "fitness_kind": rec.kind,
                                 "generation": self.generation}

        # 5. RL: one episode (random actions for the whole episode if it starts inside the warm-up, else the
        #    actor plus N(0, 0.1), clipped), then one learner iteration per frame stored in this generation.
        if args.RL:
            rl = args.pop_size  # the RL head's index among the actors
            policy = self.actor(rl)
            exploring = self.rl_frames >= args.init_steps
            if not exploring:
                def act(obs):
                    return -1.0 + 2.0 * self.rng.random((1, self.a_dim))[0]  # U(-1, 1)
            else:
                def act(obs):
                    noise = 0.1 * self.rng.standard_normal((1, self.a_dim))[0]
                    return np.clip(policy(obs) + noise, -1.0, 1.0)
            rec.rl_episode = self.episode(act, self.seeds(1, self.rng)[0])
            self.store([rec.rl_episode], exploration=exploring)
            self.rl_frames += rec.rl_episode.length
            if self.rl_frames >= args.init_steps and len(self.buffer) >= min(5000, args.init_steps):
                rec.iterations = self.frames - frames_before
            for it in range(rec.iterations):  # the policy-delay count restarts every generation
                batch = self.buffer.sample(args.batch_size, learner.generator)
                learner._iteration(batch, policy_step=it % 2 == 0, use_ea_loss=self.evo_times > 0)
            # 6. RL test.
            row["rl_score"] = self.test(rl)
            # 7. Sync into the weakest member (the first of equals), or the next one if that is the new
            #    elite, every sync_period generations once the RL frames (counted after this episode)
            #    reach init_steps.
            if args.EA and self.rl_frames >= args.init_steps and self.generation % args.sync_period == 0:
                rec.weakest = min(range(n), key=lambda i: fitness[i])
                rec.synced = (rec.weakest + 1) % n if rec.weakest == rec.new_elite else rec.weakest
                with torch.no_grad():
                    learner.pop_weight[rec.synced] = learner.rl_weight
                    learner.pop_bias[rec.synced] = learner.rl_bias
                self.synced_slot = rec.synced

        # 8. Report.
        tests = [x for x in (row["champion_score"], row["rl_score"]) if x is not None]
        if args.reported_score == "reference":  # the authors' scores start at 0: a test that did not run reports 0
            tests = [0.0 if x is None else x for x in (row["champion_score"], row["rl_score"])]
        synced = sum(self.placement.values())
        row.update(learner.pop_losses(), frames=self.frames, generation=self.generation, games=self.games,
                   rl_frames=self.rl_frames, evo_times=self.evo_times, ssne_epochs=self.epochs,
                   best_reward=max(tests) if tests else None)
        if args.EA:  # without EA the row has no rates (empty cells in progress.csv)
            row.update({f"{k}_rate": (v / synced if synced else None) for k, v in self.placement.items()})
        rec.row, rec.fitness, rec.scale, rec.tol = row, fitness, scale, tol
        self.records.append(rec)
        return row

    def close(self):
        self.env.close()


# ---------------------------------------------------------------------- the run against the plain loop
def compare_generation(agent: Agent, plain: PlainLoop, row: dict, agent_fitness: np.ndarray | None) -> None:
    rec, g = plain.records[-1], plain.generation
    # How many learner iterations ran; what was drawn; the stored transitions in order, with their masks.
    assert agent.learner.total_it == plain.learner.total_it, \
        f"generation {g}: {agent.learner.total_it} learner iterations so far (run) vs {plain.learner.total_it} (plain loop)"
    assert agent.rng.bit_generator.state == plain.rng.bit_generator.state, f"generation {g}: the training draws differ"
    assert agent.test_rng.bit_generator.state == plain.test_rng.bit_generator.state, f"generation {g}: the test draws differ"
    assert torch.equal(agent.learner.generator.get_state(), plain.learner.generator.get_state()), f"generation {g}: the learner's draws differ"
    assert len(agent.memory) == len(plain.buffer), f"generation {g}: {len(agent.memory)} transitions stored (run) vs {len(plain.buffer)}"
    assert np.array_equal(agent.memory.data[: len(agent.memory)].numpy(), plain.buffer.table()), f"generation {g}: the stored transitions differ"
    # The fitness the run ranked, member by member (all zeros before evolution starts).
    if agent_fitness is not None:
        assert len(agent_fitness) == len(rec.fitness)
        for i, (ours, theirs, bound) in enumerate(zip(agent_fitness, rec.fitness, rec.scale)):
            assert abs(ours - theirs) <= bound, f"generation {g}: fitness of member {i} {ours!r} (run) vs {theirs!r} (plain loop)"
    # The logged row, field by field.
    assert set(row) == set(rec.row), f"generation {g}: row fields {sorted(set(row) ^ set(rec.row))} in one row only"
    for key, theirs in rec.row.items():
        ours = row[key]
        if key in rec.tol:
            assert ours is not None and abs(ours - theirs) <= rec.tol[key], \
                f"generation {g}: {key} {ours!r} (run) vs {theirs!r} (plain loop), bound {rec.tol[key]:.1e}"
        else:
            assert ours == theirs, f"generation {g}: {key} {ours!r} (run) vs {theirs!r} (plain loop)"
    # Where the RL head went; the population's heads and the whole learner (parameters, targets), bit for bit.
    if agent.ssne is not None:
        assert agent.ssne.rl_policy == plain.synced_slot, f"generation {g}: RL head synced into {agent.ssne.rl_policy} (run) vs {plain.synced_slot}"
    theirs = plain.learner.state_dict()
    for name, tensor in agent.learner.state_dict().items():
        assert torch.equal(tensor, theirs[name]), f"generation {g}: the learner's {name} differs (by up to {(tensor - theirs[name]).abs().max():.2e})"
    assert identical(agent.learner.checkpoint_state(), plain.learner.checkpoint_state()), \
        f"generation {g}: the learners' optimiser states or loss sums differ"
    if plain.champion is None:
        assert agent.champion is None
    else:
        ours = dict(agent.champion)
        assert abs(ours.pop("fitness") - plain.champion["fitness"]) <= rec.tol.get("fitness_max", 0.0)
        assert ours == {k: v for k, v in plain.champion.items() if k != "fitness"}, f"generation {g}: champion {agent.champion}"


def identical(a, b) -> bool:
    """Nested dicts, lists and tensors equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    return a == b


def run_both(argv: list[str], generations: int, logdir) -> PlainLoop:
    args, _ = parse_args([*COMMON, *argv, "-logdir", str(logdir)])
    agent = Agent(args, torch.device("cpu"))
    plain = PlainLoop(args)
    ranked = []
    if agent.ssne is not None:
        epoch = agent.ssne.epoch

        def spy(weight, bias, fitness):  # the fitness the run ranks
            ranked.append(np.array(fitness, dtype=np.float64))
            return epoch(weight, bias, fitness)

        agent.ssne.epoch = spy
    try:
        for name, tensor in agent.learner.state_dict().items():
            assert torch.equal(tensor, plain.learner.state_dict()[name]), f"initial {name} differs"
        for _ in range(generations):
            epochs = len(ranked)
            row = agent.train()
            plain.generation_step()
            compare_generation(agent, plain, row, ranked[-1] if len(ranked) > epochs else None)
    finally:
        agent.close()
        plain.close()
    return plain


# ---------------------------------------------------------------------- the situations a run went through
def situations(plain: PlainLoop) -> set[str]:
    """Names of the §3 situations the run went through, read off the plain loop's record."""
    args, seen = plain.args, set()
    horizon, init = args.time_steps, args.init_steps
    for rec in plain.records:
        rl = rec.rl_episode
        seen.add(f"fitness {rec.kind}")
        for ep in rec.episodes:
            if rec.kind == "h_step":
                seen.add("H: terminated inside H" if ep.terminated else "H: truncated inside H, bootstrapped" if ep.truncated
                         else "H: cut at H, bootstrapped" if ep.length == horizon else "H: ???")
            else:
                seen.add("MC: terminated" if ep.terminated else "MC: truncated")
        if rec.kind == "mc" and args.num_evals > 1:
            seen.add("MC: mean over num_evals > 1")
        if len({ep.length for ep in rec.episodes}) > 1:
            seen.add("stored in lockstep order, episodes of different lengths")
        if rl is not None:
            after = rec.rl_frames_before + rl.length
            if after < init:
                seen.add("warm-up: no learner iteration" if rec.iterations == 0 else "warm-up: ???")
                if args.EA:
                    seen.add("warm-up: SSNE epoch" if rec.new_elite is not None else "warm-up: no SSNE epoch")
            elif rec.rl_frames_before < init:
                seen.add("crossing init_steps: random actions past init_steps" if after > init else "crossing init_steps: exactly at init_steps")
                if rec.iterations > 0:
                    seen.add("crossing init_steps: learner iterations")
                if rec.synced is not None:
                    seen.add("crossing init_steps: synced")
            else:
                seen.add("RL: exploration noise")
            if rec.iterations > rl.length:
                seen.add("iterations include the population's frames")
            if args.EA and after >= init:
                if rec.synced is None:
                    seen.add("sync: skipped by sync_period")
                else:
                    seen.add("sync: into the new elite's successor" if rec.weakest == rec.new_elite else "sync: into the weakest")
        scores = [rec.row[k] for k in ("champion_score", "rl_score") if rec.row[k] is not None]
        if len(scores) == 2:
            seen.add("report: both tests ran")
            if scores[0] != scores[1]:
                seen.add("report: both tests ran, the champion's the higher" if scores[0] > scores[1] else "report: both tests ran, the RL agent's the higher")
        elif scores and scores[0] < 0:
            seen.add("report: one test ran, its score negative")
    return seen


ALWAYS = {"warm-up: no learner iteration", "crossing init_steps: random actions past init_steps",
          "crossing init_steps: learner iterations", "RL: exploration noise", "iterations include the population's frames"}
# name: (flags, generations, the situations the run must go through)
CASES = {
    # Hopper terminates: H-step episodes end by a termination inside H or are cut at H, at different lengths.
    "hopper-h_step-sync1": (
        "-env Hopper-v4 -pop_size 5 -theta 0 -time_steps 15 -max_episode_steps 40 -init_steps 80 -sync_period 1", 10,
        ALWAYS | {"fitness h_step", "H: terminated inside H", "H: cut at H, bootstrapped", "report: both tests ran",
                  "stored in lockstep order, episodes of different lengths", "sync: into the weakest", "warm-up: SSNE epoch",
                  "crossing init_steps: synced"}),
    # Full episodes that terminate or reach the time limit; the fitness is their mean over two. Without the
    # warm-up's SSNE epochs (-skip_warmup_evolution; every other case has them), and with the learner's
    # paper variants (the other cases run its defaults), which the loop must pass on.
    "hopper-mc-num_evals2-skip_warmup_evolution-paper": (
        ("-env Hopper-v4 -pop_size 3 -theta 1 -num_evals 2 -max_episode_steps 30 -init_steps 60 -skip_warmup_evolution "
         "-pevfa_rows paper -phi_grad paper"), 6,
        ALWAYS | {"fitness mc", "MC: terminated", "MC: mean over num_evals > 1", "warm-up: no SSNE epoch",
                  "stored in lockstep order, episodes of different lengths"}),
    # HalfCheetah only truncates: with H (30) past the time limit (20) every H-step episode bootstraps after a
    # truncation. Its episodes all last 20 steps, so the run's draws do not depend on the physics: the MC-or-H
    # coin gives both kinds, and the generation that crosses init_steps (3, a sync generation with
    # sync_period 3) syncs into slot 1, the weakest of the all-zero fitness (0) being the new elite.
    "cheetah-truncation-sync3": (
        "-env HalfCheetah-v4 -pop_size 3 -theta 0.5 -time_steps 30 -max_episode_steps 20 -init_steps 50 -sync_period 3", 8,
        ALWAYS | {"fitness mc", "fitness h_step", "H: truncated inside H, bootstrapped", "MC: truncated",
                  "sync: skipped by sync_period", "sync: into the new elite's successor", "report: both tests ran",
                  "crossing init_steps: synced"}),
    "hopper-rl_only": (
        "-env Hopper-v4 -RL -max_episode_steps 40 -init_steps 60", 6,
        (ALWAYS - {"iterations include the population's frames"}) | {"fitness none"}),
    "cheetah-ea_only": (
        "-env HalfCheetah-v4 -EA -pop_size 3 -max_episode_steps 20", 3,
        {"fitness mc", "MC: truncated", "report: one test ran, its score negative"}),
    # The warm-up ends exactly at init_steps (fixed-length episodes, 3 x 20 = 60), as in every HalfCheetah
    # run (10 x 1,000 = 10,000): the crossing generation learns and syncs, the next one explores and evolves.
    # With the best test that ran as the score, both tests running and either one the higher.
    "cheetah-warmup_exact-tests_run": (
        "-env HalfCheetah-v4 -pop_size 3 -theta 0.5 -time_steps 30 -max_episode_steps 20 -init_steps 60 -reported_score tests_run", 8,
        (ALWAYS - {"crossing init_steps: random actions past init_steps"})
        | {"crossing init_steps: exactly at init_steps", "crossing init_steps: synced", "report: both tests ran, the champion's the higher",
           "report: both tests ran, the RL agent's the higher"}),
    # The other ways of cloning elites and of reporting a score (the authors' in every case above).
    "cheetah-ea_only-snapshot-tests_run": (
        "-env HalfCheetah-v4 -EA -pop_size 3 -max_episode_steps 20 -elite_clone snapshot -reported_score tests_run", 3,
        {"fitness mc", "MC: truncated", "report: one test ran, its score negative"}),
}


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("case", list(CASES))
def test_generation_loop_equals_plain_loop(case, tmp_path):
    flags, generations, required = CASES[case]
    plain = run_both(flags.split(), generations, tmp_path)
    seen = situations(plain)
    assert not any("???" in s for s in seen), sorted(seen)
    assert required <= seen, f"{case}: these situations never happened: {sorted(required - seen)}"
