"""Super-mutated ("wild") heads in both codes' populations, HalfCheetah-v4 at about 150k frames.

SSNE's super mutation multiplies each weight of a head's row by 1 + 10·N(0, 1) and its reset redraws a row from
N(0, 1); either leaves a head whose mean |W| is 1.5-3x the RL head's. Four measurements, the same for both codes:

    python wild_heads.py probe RUN_DIR GENS          # continue one of this project's runs from its checkpoint in memory
                                                     # (nothing written) and print each generation's fitness and every
                                                     # head's mean |W| / the RL head's, after the SSNE epoch and after the sync
    python wild_heads.py persist PROBE_OUTPUT...     # how long wild heads stay and how they score: the authors' stats.jsonl
                                                     # (seeds 4-10, 60k-150k) beside this project's probe outputs
    python wild_heads.py pevfa ours RUN_DIR | theirs CHECKPOINT.pkl   # the PeVFA's value of copies of the RL head with one
                                                     # super-mutated or reset row, against the RL head, at 2,000 buffer states
    python wild_heads.py weak                        # from committed rows: weak members while the runs went, last rows
    python wild_heads.py hstep ours RUN_DIR | theirs CHECKPOINT.pkl   # the H-step fitness (this project's rollouts and
                                                     # bootstrap) of 36 copies of the RL head with one super-mutated row
                                                     # against 24 plain copies

``theirs`` reads a checkpoint of the authors' code written by ../../authors_code/tools/authors_resume.py (a pickle of
their modules' state_dicts and buffer; none of their code is imported) and loads φ, the RL head and the PeVFA into this
project's networks, which compute what theirs do (one learner iteration agrees to 4e-14 in float64). Run it from a
checkout of this project at 7535667 (the networks of the runs compared) with that checkout first on sys.path.
"""
from __future__ import annotations

import ast
import json
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parents[2]
SETTINGS = RESULTS / "halfcheetah_gap/more_seeds/HalfCheetah-v4__ERL-Re2__seed4"  # the paper's settings (config.json)
WILD = 1.7  # a head whose mean |W| exceeds 1.7x the RL head's: a super-mutated row (about 2.2x) or two resets
PHI = (("l1.weight", "w_l1.weight"), ("l1.bias", "w_l1.bias"), ("ln1.gain", "lnorm1.gamma"), ("ln1.bias", "lnorm1.beta"),
       ("l2.weight", "w_l2.weight"), ("l2.bias", "w_l2.bias"), ("ln2.gain", "lnorm2.gamma"), ("ln2.bias", "lnorm2.beta"))
PEVFA = (("policy_w_l1", "policy_w_l2", "policy_w_l3", "w_l1", "lnorm1", "w_l2", "lnorm2", "w_out"),
         ("policy_w_l4", "policy_w_l5", "policy_w_l6", "w_l3", "lnorm3", "w_l4", "lnorm4", "w_out_2"))


def agent_from(run_dir: str, at_checkpoint: bool = True):
    """This project's agent for a run, at the run's checkpoint (or fresh, with the run's settings)."""
    from core.agent import Agent
    from core.checkpoint import load_checkpoint
    from parameters import recorded_settings

    cfg = json.loads(Path(run_dir, "config.json").read_text())
    agent = Agent(recorded_settings({**cfg["settings"], "env": cfg["env"], "seed": cfg["seed"]}), torch.device("cpu"))
    if at_checkpoint:
        agent.load_state(load_checkpoint(run_dir))
    return agent


@torch.no_grad()
def load_theirs(learner, checkpoint: str) -> np.ndarray:
    """The authors' φ, RL head and PeVFA into this project's learner; returns their buffer's states."""
    with open(checkpoint, "rb") as f:
        st = pickle.load(f)
    t = st["td3"]
    for ours, theirs in PHI:
        learner.phi.get_parameter(ours).copy_(t["state_embedding"][theirs])
    learner.rl_weight.copy_(t["actor"]["w_out.weight"])
    learner.rl_bias.copy_(t["actor"]["w_out.bias"])
    pv, enc, val = t["PVN"], learner.pevfa.encoder, learner.pevfa.value
    for k, (p1, p2, p3, l1, n1, l2, n2, lo) in enumerate(PEVFA):
        for w, b, name in ((enc.w1, enc.b1, p1), (enc.w2, enc.b2, p2), (enc.w3, enc.b3, p3), (val.w2, val.b2, l2), (val.w3, val.b3, lo)):
            w[k].copy_(pv[name + ".weight"].t())
            b[k, 0].copy_(pv[name + ".bias"])
        w1 = pv[l1 + ".weight"].t()  # their first value layer reads [state, action, χ]: ours keeps χ's rows apart
        n = val.w1[k].shape[0]
        val.w1[k].copy_(w1[:n])
        val.w1_cond[k].copy_(w1[n:])
        val.b1[k, 0].copy_(pv[l1 + ".bias"])
        for ln, name in ((val.ln1, n1), (val.ln2, n2)):
            ln.gain[k, 0].copy_(pv[name + ".gamma"])
            ln.bias[k, 0].copy_(pv[name + ".beta"])
    b = st["buffer"]
    return np.stack([b["state"][i].astype(np.float64).reshape(-1) for i in range(b["n"])])


def mutated(head: torch.Tensor, seed: int, mode: str) -> torch.Tensor:
    """A copy of ``head`` with one row super-mutated or reset (the row and the draws fixed by ``seed``)."""
    g = np.random.default_rng(seed)
    w = head.clone()
    row = int(g.integers(head.shape[0]))
    z = torch.as_tensor(g.standard_normal(head.shape[1]), dtype=w.dtype)
    w[row] = z if mode == "reset" else w[row] + z * 10 * w[row].abs()
    return w


def ratios(learner) -> np.ndarray:
    return (learner.pop_weight.abs().mean((1, 2)) / learner.rl_weight.detach().abs().mean()).numpy()


def probe(run_dir: str, gens: int) -> None:
    agent = agent_from(run_dir)
    epoch = agent.ssne.epoch

    def logged_epoch(weight, bias, fitness):
        new_elite = epoch(weight, bias, fitness)
        rec = agent.ssne.last_epoch
        print(f"  after epoch: fit={np.round(np.asarray(fitness), 0).tolist()} elites={rec.elites} winners={rec.winners} "
              f"unselected={rec.unselected} new_elite={new_elite} mutated={rec.mutated} ratios={np.round(ratios(agent.learner), 2).tolist()}")
        return new_elite

    agent.ssne.epoch = logged_epoch
    for _ in range(gens):
        row = agent.train()
        print(f"gen {agent.generation} frames {agent.frames} sync->{agent.ssne.rl_policy} kind={row['fitness_kind']} "
              f"ratios={np.round(ratios(agent.learner), 2).tolist()}", flush=True)


def authors_stats(seed: int) -> list[dict]:
    """The authors' per-generation figures of one seed (``stats.jsonl`` written by their resumable wrapper)."""
    path = RESULTS / f"authors_code/HalfCheetah-v4__seed{seed}/stats.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _summary(name: str, runs: list[list[tuple[list[float], list[float] | None]]]) -> None:
    """runs: per run, per generation (head ratios after the sync, the next generation's fitness of those heads)."""
    wild = after = gens = gens_wild = 0
    fresh, older = [], []
    for seq in runs:
        for t, (r, fit_next) in enumerate(seq):
            gens += 1
            gens_wild += max(r) > WILD
            for m, x in enumerate(r):
                if x <= WILD:
                    continue
                if t + 1 < len(seq):
                    wild += 1
                    after += any(abs(y - x) / x < 0.05 for y in seq[t + 1][0])
                if fit_next is not None and max(fit_next) > 0:
                    seen = t > 0 and any(abs(y - x) / x < 0.05 for y in seq[t - 1][0])
                    (older if seen else fresh).append(fit_next[m] / max(fit_next))
    print(f"{name}: a wild head after the epoch and sync in {gens_wild} of {gens} generations ({gens_wild / gens:.2f}); "
          f"of {wild} wild heads {after} ({after / max(wild, 1):.2f}) still there one generation later; their next fitness / the "
          f"generation's best, median: new {np.median(fresh):.2f} (n {len(fresh)}), older {np.median(older):.2f} (n {len(older)})")


def persist(probe_outputs: list[str]) -> None:
    theirs = []
    for s in range(4, 11):
        rows = [r for r in authors_stats(s) if 60_000 <= r["frames"] <= 152_000]
        theirs.append([(list(np.array(r["pop_abs_w"]) / r["rl_abs_w"]), rows[t + 1]["fitness"] if t + 1 < len(rows) else None)
                       for t, r in enumerate(rows)])
    _summary("the authors' code, seeds 4-10, 60k-150k", theirs)
    ours = []
    for path in probe_outputs:
        text = Path(path).read_text().splitlines()
        fits = [ast.literal_eval(re.search(r"fit=(\[[^\]]*\])", line).group(1)) for line in text if "after epoch" in line]
        gens = [ast.literal_eval(re.search(r"ratios=(\[.*\])", line).group(1)) for line in text if line.startswith("gen")]
        ours.append([(r, fits[t + 1] if t + 1 < len(fits) else None) for t, r in enumerate(gens)])
    _summary(f"this project, {len(ours)} runs continued from 150k", ours)


@torch.no_grad()
def pevfa(kind: str, path: str) -> None:
    agent = agent_from(path, True) if kind == "ours" else agent_from(str(SETTINGS), False)
    learner = agent.learner
    if kind == "ours":
        memory = agent.memory
        states = memory.data[: memory.size, : memory.state_dim].double().numpy()
    else:
        states = load_theirs(learner, path)
    s = states[np.random.default_rng(12345).choice(len(states), 2000, replace=False)].astype(np.float32)
    rl_w, rl_b = learner.rl_weight.detach().clone(), learner.rl_bias.detach().clone()
    values = {"plain": [], "super": [], "reset": []}
    for seed in range(24):
        for mode, found in values.items():
            learner.pop_weight[0].copy_(rl_w if mode == "plain" else mutated(rl_w, seed, mode))
            learner.pop_bias[0].copy_(rl_b)
            found.append(float(learner.pevfa_value(s, np.zeros(len(s), dtype=int)).mean()))
    v = float(np.mean(values["plain"]))
    print(f"{kind} {path}: V(RL head) {v:.1f}; one super-mutated row {np.mean(values['super']):.1f} ({np.mean(values['super']) / v - 1:+.2f}, "
          f"{min(values['super']):.0f} to {max(values['super']):.0f}); one reset row {np.mean(values['reset']):.1f} ({np.mean(values['reset']) / v - 1:+.2f})")


@torch.no_grad()
def hstep(kind: str, path: str) -> None:
    from core.replay_memory import ReplayMemory

    agent = agent_from(path, True) if kind == "ours" else agent_from(str(SETTINGS), False)
    learner = agent.learner
    if kind == "theirs":
        load_theirs(learner, path)
    agent.memory = ReplayMemory(agent.memory.state_dim, agent.memory.action_dim, 10_000)  # the rollouts store: not in the run's buffer
    rl_w, rl_b = learner.rl_weight.detach().clone(), learner.rl_bias.detach().clone()
    plain, wild = [], []
    for rep in range(12):  # slots 0-1 plain copies, 2-4 one super-mutated row each
        for slot in range(5):
            learner.pop_weight[slot].copy_(rl_w if slot < 2 else mutated(rl_w, 100 * rep + slot, "super"))
            learner.pop_bias[slot].copy_(rl_b)
        fitness, _ = agent.h_step_fitness()
        plain += list(fitness[:2])
        wild += list(fitness[2:])
    plain, wild = np.array(plain), np.array(wild)
    print(f"{kind} {path}: H-step fitness, plain copies {plain.mean():.0f} ± {plain.std():.0f}; one super-mutated row: median "
          f"{np.median(wild):.0f}, {np.median(wild) / plain.mean():.2f} of the plain copies' mean")


def weak() -> None:
    """From committed rows alone: how often a population carried a weak member while the runs went (H-step
    generations of 60k-150k whose mean fitness is below 0.92 of the best, as one member at 0.6 of it would make), and
    which last rows had a wild head (the authors' ``stats.jsonl``; this project's 1M ``policy.pt``)."""
    import csv

    from scipy import stats

    def share(values: list[float]) -> float:
        return float(np.mean(np.array(values) < 0.92))

    ours, theirs = {}, {}
    for path in sorted((RESULTS / "halfcheetah_gap").glob("*/HalfCheetah-v4__ERL-Re2__seed*/progress.csv")):
        if path.parent.parent.name not in ("critic_reference", "more_seeds"):
            continue
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["fitness_kind"] == "h_step" and 60_000 <= float(r["frames"]) <= 150_000]
        ours[path.parent.name] = [float(r["fitness_mean"]) / float(r["fitness_max"]) for r in rows if float(r["fitness_max"]) > 0]
    for s in range(4, 11):
        rows = authors_stats(s)
        theirs[s] = [float(np.mean(r["fitness"]) / max(r["fitness"])) for r in rows
                     if 60_000 <= r["frames"] <= 150_000 and r["gen_frames"] == 2000 and max(r["fitness"]) > 0]
        last = rows[-1]
        print(f"the authors' seed {s}, last row ({last['frames']:,} frames): heads / RL head "
              f"{np.round(np.array(last['pop_abs_w']) / last['rl_abs_w'], 2).tolist()}")
    for path in sorted((RESULTS / "1M/erl_re2").glob("HalfCheetah-v4__*/policy.pt")):
        net = torch.load(path, map_location="cpu", weights_only=False)["networks"]
        r = net["pop_weight"].abs().mean((1, 2)) / net["rl_weight"].abs().mean()
        print(f"this project's {path.parent.name} at 1M, policy.pt: heads / RL head {[round(float(x), 2) for x in r]}")
    a, b = [share(v) for v in ours.values()], [share(v) for v in theirs.values()]
    pooled_a, pooled_b = [x for v in ours.values() for x in v], [x for v in theirs.values() for x in v]
    print(f"H-step generations 60k-150k with mean fitness < 0.92 of the best: this project {share(pooled_a):.2f} of "
          f"{len(pooled_a)} (per seed {np.round(a, 2).tolist()}), the authors' code {share(pooled_b):.2f} of {len(pooled_b)} "
          f"(per seed {np.round(b, 2).tolist()}); Mann-Whitney p over the seeds' shares {stats.mannwhitneyu(a, b).pvalue:.2f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "probe":
        probe(rest[0], int(rest[1]))
    elif cmd == "persist":
        persist(rest)
    elif cmd == "weak":
        weak()
    elif cmd in ("pevfa", "hstep"):
        (pevfa if cmd == "pevfa" else hstep)(rest[0], rest[1])
    else:
        sys.exit(f"wild_heads.py: error: unknown command {cmd!r} (accepted: probe, persist, pevfa, hstep, weak)")
