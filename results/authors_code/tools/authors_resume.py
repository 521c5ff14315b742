"""Run the authors' run_re2.py (the copy made by ../shared/reference/setup.sh) so that it can stop and resume.

Their code has no checkpoint. This wrapper changes none of its computations: at the start of a generation (after
the previous generation's CSV row is written), at most every CKPT_SECONDS, it saves everything their loop
carries from one generation to the next: the population's actors, the TD3 networks and Adam states, the shared
replay buffer (every stored tuple, each array with its own dtype: the float64 RL exploration actions and the
float32 others stay apart, as their torch.FloatTensor sees them), the counters, the SSNE bookkeeping, and every
random stream: Python's random, numpy's global generator, torch's generator, the environment's reset and
action-space generators, and fastrand (unseeded by their code: replayed from process start by the recorded
sequence of pcg32bounded bounds). On start, if the checkpoint exists, the first generation loads it and goes on.
Left out, as they change no computation: the per-agent ReplayMemory copies (written, never read with the flags
of the paper's runs), the Trackers (never updated by the patched main loop).

Usage: python results/authors_code/tools/authors_resume.py CHECKPOINT CODE_DIR/run_re2.py [their flags...]   (env CKPT_SECONDS, default 600)
"""
import os
import pickle
import sys
import time

ck_path = os.path.abspath(sys.argv[1])
script = os.path.abspath(sys.argv[2])
sys.argv = [script] + sys.argv[3:]
sys.path.insert(0, os.path.dirname(os.path.abspath(next(a for a in sys.argv if a.endswith("run_re2.py")))))  # also via short_warmup.py
EVERY = float(os.environ.get("CKPT_SECONDS", "600"))

import random

import fastrand
import numpy as np
import torch

_bounded = fastrand.pcg32bounded
BOUNDS = []


def _counted(n):
    BOUNDS.append(int(n))
    return _bounded(n)


fastrand.pcg32bounded = _counted  # their mod_neuro_evo calls fastrand.pcg32bounded(...) through the module

import core.agent as their_agent

COUNTERS = ("num_games", "num_frames", "gen_frames", "iterations", "rl_agent_frames", "evo_times", "total_use", "old_fitness",
            "step", "use_real", "best_train_reward", "time_since_improv", "ns_r", "ns_delta")
TD3_MODULES = ("actor", "actor_target", "critic", "critic_target", "PVN", "PVN_Target", "state_embedding",
               "state_embedding_target", "old_state_embedding")
TD3_OPTS = ("actor_optimizer", "critic_optimizer", "PVN_optimizer", "state_embedding_optimizer")


def _env_core(env):
    return env.env.unwrapped  # gym_compat.OldGymAPI -> gymnasium's env


def pack_buffer(storage):
    """Their list of (state, next_state, action, reward, done_bool, next_action, policy_params) tuples, packed by
    column; arrays keep their dtype (per-row dtype codes), the episode's shared params array is stored once."""
    cols = list(zip(*storage)) if storage else [[]] * 7
    out = {"n": len(storage)}
    for k, name in ((0, "state"), (1, "next_state"), (2, "action"), (5, "next_action")):
        arrs = [np.asarray(x) for x in cols[k]]
        out[name + "_dtype"] = np.array([a.dtype.str for a in arrs])
        out[name + "_shape"] = [a.shape for a in arrs]
        out[name] = np.stack([a.astype(np.float64).reshape(-1) for a in arrs]) if arrs else np.zeros((0, 0))
    out["reward"] = list(cols[3])  # Python floats / numpy scalars, as stored
    out["done"] = list(cols[4])
    params, index, ids = [], [], {}
    for p in cols[6]:
        if id(p) not in ids:
            ids[id(p)] = len(params)
            params.append(p)
        index.append(ids[id(p)])
    out["params"], out["params_index"] = params, np.array(index, dtype=np.int64)
    return out


def unpack_buffer(b):
    n = b["n"]
    cols = {}
    for name in ("state", "next_state", "action", "next_action"):
        cols[name] = [b[name][i].astype(np.dtype(b[name + "_dtype"][i])).reshape(b[name + "_shape"][i]) for i in range(n)]
    return [(cols["state"][i], cols["next_state"][i], cols["action"][i], b["reward"][i], b["done"][i], cols["next_action"][i],
             b["params"][b["params_index"][i]]) for i in range(n)]


def save(agent):
    env = _env_core(agent.env)
    st = {
        "pop": [g.actor.state_dict() for g in agent.pop],
        "td3": {k: getattr(agent.rl_agent, k).state_dict() for k in TD3_MODULES},
        "td3_opt": {k: getattr(agent.rl_agent, k).state_dict() for k in TD3_OPTS},
        "buffer": pack_buffer(agent.replay_buffer.storage),
        "buffer_ptr": agent.replay_buffer.ptr,
        "counters": {k: getattr(agent, k) for k in COUNTERS},
        "evolver": {"rl_policy": agent.evolver.rl_policy, "selection_stats": dict(agent.evolver.selection_stats),
                    "current_gen": agent.evolver.current_gen},
        "rng": {"random": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                "fastrand_bounds": list(BOUNDS)},
        "env": {"np_random": env.np_random.bit_generator.state,
                "action_space": agent.env.action_space.np_random.bit_generator.state,
                "next_seed": agent.env._next_seed},
        "saved_at": time.time(),
    }
    tmp = ck_path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(st, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, ck_path)
    print(f"authors_resume: checkpoint at {agent.num_frames} frames, generation {agent.iterations} -> {ck_path}", flush=True)


def load(agent):
    with open(ck_path, "rb") as f:
        st = pickle.load(f)
    for g, sd in zip(agent.pop, st["pop"]):
        g.actor.load_state_dict(sd)
    for k in TD3_MODULES:
        getattr(agent.rl_agent, k).load_state_dict(st["td3"][k])
    for k in TD3_OPTS:
        getattr(agent.rl_agent, k).load_state_dict(st["td3_opt"][k])
    agent.replay_buffer.storage = unpack_buffer(st["buffer"])
    agent.replay_buffer.ptr = st["buffer_ptr"]
    for k, v in st["counters"].items():
        setattr(agent, k, v)
    agent.evolver.rl_policy = st["evolver"]["rl_policy"]
    agent.evolver.selection_stats = st["evolver"]["selection_stats"]
    agent.evolver.current_gen = st["evolver"]["current_gen"]
    random.setstate(st["rng"]["random"])
    np.random.set_state(st["rng"]["numpy"])
    torch.set_rng_state(st["rng"]["torch"])
    assert not BOUNDS, "fastrand was used before the checkpoint was loaded"
    for n in st["rng"]["fastrand_bounds"]:  # replay fastrand from its process-start state
        _counted(n)
    env = _env_core(agent.env)
    env.np_random.bit_generator.state = st["env"]["np_random"]
    agent.env.action_space.np_random.bit_generator.state = st["env"]["action_space"]
    agent.env._next_seed = st["env"]["next_seed"]
    print(f"authors_resume: resumed at {agent.num_frames} frames, generation {agent.iterations} from {ck_path}", flush=True)


_train = their_agent.Agent.train
_num_frames = {"target": None}


def train(self):
    if not getattr(self, "_resume_checked", False):
        self._resume_checked = True
        if os.path.exists(ck_path):
            load(self)
            if self.num_frames > self.args.num_frames:
                print("authors_resume: the checkpoint is past -num_frames; nothing to do", flush=True)
                sys.exit(0)
        self._last_save = time.time()
    elif time.time() - self._last_save >= EVERY:
        save(self)
        self._last_save = time.time()
    stats = _train(self)
    _log_stats(self, stats)
    return stats


STATS_PATH = os.environ.get("AUTHORS_STATS")  # optional: one JSON line per generation of their internal figures


def _log_stats(agent, stats):
    """Their generation's own figures (the wandb row's, which the harness's CSV leaves out), read, never changed."""
    if not STATS_PATH:
        return
    import json

    sel = agent.evolver.selection_stats
    with torch.no_grad():
        row = _stats_row(agent, stats, sel)
    with open(STATS_PATH, "a") as f:
        f.write(json.dumps(row) + "\n")


def _stats_row(agent, stats, sel):
    return {"generation": agent.iterations, "frames": agent.num_frames, "gen_frames": agent.gen_frames,
           "evo_times": agent.evo_times, "fitness": [float(x) for x in np.asarray(stats["before_rewards"]).reshape(-1)],
           "elite_index": int(stats["elite_index"]), "champion_score": float(stats["test_score"]),
           "rl_score": float(stats["ddpg_reward"]), "actor_loss": float(stats["pg_loss"]), "critic_loss": float(stats["bc_loss"]),
           "pevfa_loss": float(np.mean(stats["pvn_loss"])),
           "elite_rate": sel["elite"] / sel["total"], "selected_rate": sel["selected"] / sel["total"],
           "discarded_rate": sel["discarded"] / sel["total"],
           "pop_abs_w": [float(g.actor.w_out.weight.abs().mean()) for g in agent.pop],
           "rl_abs_w": float(agent.rl_agent.actor.w_out.weight.abs().mean())}


their_agent.Agent.train = train
import runpy

runpy.run_path(script, run_name="__main__")
