"""Tests for the ERL-Re² learner (core/ddpg.py, core/networks.py; ALGORITHM.md §1 and §4).

Where a quantity is checked against a "plain" computation, the plain version is an independent
per-sample implementation written here: explicit ``cat(x, χ)`` inputs, the reference LayerNorm
``gain * (x - mean) / (std_unbiased + 1e-6) + bias`` and one twin at a time.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from core.ddpg import ERLRe2Learner, policy_rows
from core.learner_config import LearnerConfig
from core.networks import LS
from core.replay_memory import Batch, ReplayMemory

S, A, N = 6, 3, 5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make_cfg(**kw) -> LearnerConfig:
    base = {"state_dim": S, "action_dim": A, "pop_size": N, "batch_size": 32}
    base.update(kw)
    return LearnerConfig(**base)


def make_learner(init_seed: int = 0, seed: int = 0, **kw) -> ERLRe2Learner:
    torch.manual_seed(init_seed)  # network init uses the global RNG
    return ERLRe2Learner(make_cfg(**kw), device="cpu", seed=seed)


def make_batch(b: int = 32, seed: int = 0, not_done: torch.Tensor | None = None) -> Batch:
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(b, S, generator=g)
    action = torch.rand(b, A, generator=g) * 2 - 1
    reward = torch.randn(b, 1, generator=g)
    next_state = torch.randn(b, S, generator=g)
    nd = torch.ones(b, 1) if not_done is None else not_done.reshape(b, 1).float()
    return Batch(state, action, reward, next_state, nd)


def make_memory(n: int = 256, seed: int = 0) -> ReplayMemory:
    """A fixed buffer from a simple deterministic system: reward = Σ action, never terminated."""
    rng = np.random.default_rng(seed)
    state = rng.standard_normal((n, S))
    action = rng.uniform(-1, 1, (n, A))
    mix = rng.standard_normal((S + A, S)) * 0.5
    next_state = np.tanh(np.concatenate([state, action], 1) @ mix)
    mem = ReplayMemory(S, A, capacity=n)
    mem.add(state, action, action.sum(1), next_state, np.zeros(n, dtype=bool))
    return mem


def snapshot(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def rl_params(learner):
    return [learner.rl_weight, learner.rl_bias]


def rl_target_params(learner):
    return [learner.rl_weight_target, learner.rl_bias_target]


def source_target_pairs(learner) -> dict[str, tuple[list, list]]:
    """Each trained network with its target copy, parameter lists aligned by name."""
    out = {}
    for name, src, tgt in (
        ("phi", learner.phi, learner.phi_target),
        ("critic", learner.critic, learner.critic_target),
        ("pevfa", learner.pevfa, learner.pevfa_target),
    ):
        sn, tn = dict(src.named_parameters()), dict(tgt.named_parameters())
        assert sn.keys() == tn.keys()
        out[name] = ([sn[k] for k in sn], [tn[k] for k in sn])
    out["rl_head"] = (rl_params(learner), rl_target_params(learner))
    return out


def all_moved(before, after) -> bool:
    return all(not torch.equal(x, y) for x, y in zip(before, after))


def all_equal(before, after) -> bool:
    return all(torch.equal(x, y) for x, y in zip(before, after))


@torch.no_grad()
def perturb_targets(learner, scale: float = 0.05, seed: int = 123) -> None:
    """Make every target differ from its source so that using the wrong one shows."""
    g = torch.Generator().manual_seed(seed)
    for _, tgts in source_target_pairs(learner).values():
        for t in tgts:
            t.add_(torch.randn(t.shape, generator=g) * scale)


# ---------------------------------------------------------------------------- plain reference
def ref_layernorm(x, gain, bias):
    mean = x.mean(-1, keepdim=True)
    std = x.std(-1, keepdim=True)  # unbiased, as in the reference
    return gain * (x - mean) / (std + 1e-6) + bias


def plain_encode(enc, k: int, rows: torch.Tensor) -> torch.Tensor:
    """Twin ``k``'s χ of head rows ``[..., A, ls+1]`` → ``[..., pr]`` (per row MLP, then mean)."""
    h = F.leaky_relu(rows @ enc.w1[k] + enc.b1[k, 0])
    h = F.leaky_relu(h @ enc.w2[k] + enc.b2[k, 0])
    h = h @ enc.w3[k] + enc.b3[k, 0]
    return h.mean(-2)


def plain_value(net, k: int, inp: torch.Tensor) -> torch.Tensor:
    """Twin ``k`` of a StackedValueMLP on explicit inputs ``[B, in (+ cond)]`` → ``[B, 1]``."""
    w1 = net.w1[k] if net.w1_cond is None else torch.cat([net.w1[k], net.w1_cond[k]], 0)
    h = F.leaky_relu(ref_layernorm(inp @ w1 + net.b1[k, 0], net.ln1.gain[k, 0], net.ln1.bias[k, 0]))
    h = F.leaky_relu(ref_layernorm(h @ net.w2[k] + net.b2[k, 0], net.ln2.gain[k, 0], net.ln2.bias[k, 0]))
    return h @ net.w3[k] + net.b3[k, 0]


def plain_pevfa(pevfa, k: int, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, layout: str) -> torch.Tensor:
    """V_k(cat(x, χ_k(π))) for one policy, χ computed separately for every sample (``layout``: -pevfa_rows)."""
    b = x.shape[0]
    rows = policy_rows(weight, bias, layout).unsqueeze(0).repeat(b, 1, 1)  # [B, A, ls+1]
    chi = plain_encode(pevfa.encoder, k, rows)  # [B, pr]
    return plain_value(pevfa.value, k, torch.cat([x, chi], -1))


def plain_act(phi, weight, bias, state):
    return torch.tanh(phi(state) @ weight.T + bias)


@torch.no_grad()
def plain_pevfa_loss(learner, batch: Batch, j: int) -> torch.Tensor:
    """Σ_k MSE(V_k(s, a, χ_k(π_j)), r + γ·mask·min_k V'_k(s', π_j(φ(s')), χ'_k(π_j))), OFF_TYPE 1."""
    w, b = learner.actors()
    w, b = w[j], b[j]
    a_next = plain_act(learner.phi, w, b, batch.next_state)  # the current φ, ALGORITHM.md §4a
    x_next = torch.cat([batch.next_state, a_next], -1)
    v_next = torch.minimum(*(plain_pevfa(learner.pevfa_target, k, x_next, w, b, learner.cfg.pevfa_rows) for k in range(2)))
    y = batch.reward + learner.cfg.gamma * batch.not_done * v_next
    x = torch.cat([batch.state, batch.action], -1)
    return sum(((plain_pevfa(learner.pevfa, k, x, w, b, learner.cfg.pevfa_rows) - y) ** 2).mean() for k in range(2))


# ---------------------------------------------------------------------------- policy rows
def test_policy_rows_layout():
    w = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    b = torch.tensor([100.0, 101.0, 102.0])
    rows = policy_rows(w, b)
    expected = torch.tensor([[0.0, 1, 2, 3, 100], [4, 5, 6, 7, 101], [8, 9, 10, 11, 102]])
    assert torch.equal(rows, expected)
    for j in range(3):
        assert torch.equal(rows[j], torch.cat([w[j], b[j : j + 1]]))
    # the reference code's layout: flatten W, append b, reshape to (A, ls+1)
    reference_defect = torch.cat([w.flatten(), b]).reshape(3, 5)
    assert reference_defect.shape == rows.shape
    assert not torch.equal(rows, reference_defect)


def test_policy_rows_population():
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(4, A, LS, generator=g), torch.randn(4, A, generator=g)
    rows = policy_rows(w, b)
    assert rows.shape == (4, A, LS + 1)
    for p in range(4):
        assert torch.equal(rows[p], policy_rows(w[p], b[p]))
        for j in range(A):
            assert torch.equal(rows[p, j, :LS], w[p, j])
            assert rows[p, j, LS] == b[p, j]


# ---------------------------------------------------------------------------- χ once per policy
def test_chi_once_per_policy_equals_per_sample():
    learner = make_learner()
    pevfa = learner.pevfa
    p, b = 4, 16
    g = torch.Generator().manual_seed(1)
    w, bias = torch.randn(p, A, LS, generator=g) * 0.1, torch.randn(p, A, generator=g) * 0.1
    x = torch.randn(b, S + A, generator=g)
    with torch.no_grad():
        chi = pevfa.policy_representation(policy_rows(w, bias))
        assert chi.shape == (2, p, learner.cfg.pr)
        batched = pevfa(x, chi)
        assert batched.shape == (2, p, b, 1)
        # one slice of inputs per policy gives the same as a shared input
        assert torch.allclose(pevfa(x.expand(p, b, S + A), chi), batched, atol=1e-6)
        for k in range(2):
            for q in range(p):
                rows_rep = policy_rows(w[q], bias[q]).unsqueeze(0).repeat(b, 1, 1)
                chi_sample = plain_encode(pevfa.encoder, k, rows_rep)
                assert torch.allclose(chi_sample, chi[k, q].expand(b, -1), rtol=0, atol=1e-6)  # measured: 0
                plain = plain_value(pevfa.value, k, torch.cat([x, chi_sample], -1))
                assert torch.allclose(batched[k, q], plain, rtol=0, atol=2e-6), (k, q)  # measured: 2.5e-7
        # twins really are different networks
        assert not torch.allclose(batched[0], batched[1])


def test_pevfa_value_matches_plain():
    learner = make_learner()
    g = torch.Generator().manual_seed(2)
    states = torch.randn(7, S, generator=g)
    heads = np.array([0, 5, 2, 2, 4, 1, 3])
    got = learner.pevfa_value(states.numpy(), heads)
    w, b = learner.actors()
    with torch.no_grad():
        for m in range(7):
            s = states[m : m + 1]
            a = plain_act(learner.phi, w[heads[m]], b[heads[m]], s)
            x = torch.cat([s, a], -1)
            v = min(plain_pevfa(learner.pevfa, k, x, w[heads[m]], b[heads[m]], learner.cfg.pevfa_rows).item() for k in range(2))
            assert got[m] == pytest.approx(v, rel=0, abs=2e-6)  # measured: 1.9e-7 (values ~0.07)
    acts = learner.act(states.numpy(), heads)
    with torch.no_grad():
        for m in range(7):
            assert np.allclose(acts[m], plain_act(learner.phi, w[heads[m]], b[heads[m]], states[m : m + 1])[0].numpy(), atol=1e-6)


# ---------------------------------------------------------------------------- one iteration
def test_iteration_moves_trained_nets_and_soft_updates_targets():
    learner = make_learner(tau=0.05, K=2)
    batch = make_batch()
    for _ in range(2):  # warm up so that targets differ from sources
        learner._iteration(batch, policy_step=learner.total_it % 2 == 0, use_ea_loss=True)
    assert learner.total_it == 2  # the policy step happens on this iteration
    pairs = source_target_pairs(learner)
    before = {n: (snapshot(s), snapshot(t)) for n, (s, t) in pairs.items()}
    pop_before = (learner.pop_weight.clone(), learner.pop_bias.clone())

    learner._iteration(batch, policy_step=learner.total_it % 2 == 0, use_ea_loss=True)

    assert learner.total_it == 3
    for name, (src, tgt) in pairs.items():
        old_src, old_tgt = before[name]
        assert all_moved(old_src, src), f"{name} did not move"
        for p_old_t, p_new_s, p_new_t in zip(old_tgt, src, tgt):
            expected = p_old_t + 0.05 * (p_new_s.detach() - p_old_t)
            assert torch.allclose(p_new_t, expected, atol=1e-6, rtol=0), name
        assert all_moved(old_tgt, tgt), f"{name} target did not move"
    assert torch.equal(learner.pop_weight, pop_before[0])
    assert torch.equal(learner.pop_bias, pop_before[1])
    losses = learner.pop_losses()
    assert all(losses[k] is not None and np.isfinite(losses[k]) for k in ("critic_loss", "actor_loss", "pevfa_loss", "ea_loss"))


def test_policy_delay_odd_iteration():
    learner = make_learner(tau=0.05)
    batch = make_batch()
    learner._iteration(batch, policy_step=learner.total_it % 2 == 0, use_ea_loss=True)
    assert learner.total_it == 1
    pairs = source_target_pairs(learner)
    before = {n: (snapshot(s), snapshot(t)) for n, (s, t) in pairs.items()}
    pop_before = (learner.pop_weight.clone(), learner.pop_bias.clone())

    learner._iteration(batch, policy_step=learner.total_it % 2 == 0, use_ea_loss=True)

    assert all_equal(before["phi"][0], pairs["phi"][0])
    assert all_equal(before["rl_head"][0], pairs["rl_head"][0])
    for name in pairs:
        assert all_equal(before[name][1], pairs[name][1]), f"{name} target moved"
    assert all_moved(before["critic"][0], pairs["critic"][0])
    assert all_moved(before["pevfa"][0], pairs["pevfa"][0])
    assert torch.equal(learner.pop_weight, pop_before[0]) and torch.equal(learner.pop_bias, pop_before[1])
    losses = learner.pop_losses()
    assert losses["actor_loss"] is not None  # from the first (even) iteration only


# ---------------------------------------------------------------------------- EA switches
def test_ea_off_leaves_pevfa_alone():
    mem = make_memory(64)
    learner = make_learner(EA=False)
    pevfa_before = snapshot(learner.pevfa.parameters())
    learner.train_iterations(mem, 4, evo_times=3)
    assert all_equal(pevfa_before, learner.pevfa.parameters())
    losses = learner.pop_losses()
    assert losses["pevfa_loss"] is None and losses["ea_loss"] is None
    assert np.isfinite(losses["critic_loss"]) and np.isfinite(losses["actor_loss"])
    assert learner.total_it == 4


def test_ea_on_losses_depend_on_evo_times():
    mem = make_memory(64)
    learner = make_learner(EA=True)
    pevfa_before = snapshot(learner.pevfa.parameters())
    learner.train_iterations(mem, 4, evo_times=0)
    losses = learner.pop_losses()
    assert losses["pevfa_loss"] is not None and np.isfinite(losses["pevfa_loss"])
    assert losses["ea_loss"] is None
    assert all_moved(pevfa_before, learner.pevfa.parameters())

    learner.train_iterations(mem, 4, evo_times=1)
    losses = learner.pop_losses()
    assert losses["pevfa_loss"] is not None and losses["ea_loss"] is not None
    assert np.isfinite(losses["ea_loss"])
    # pop_losses resets the accumulators
    assert all(v is None for v in learner.pop_losses().values())


def test_ea_loss_reaches_phi():
    batch = make_batch()
    learner = make_learner(actor_alpha=0.0, EA_actor_alpha=1.0, K=2)
    phi0, rl0 = snapshot(learner.phi.parameters()), snapshot(rl_params(learner))
    pevfa0, critic0 = snapshot(learner.pevfa.parameters()), snapshot(learner.critic.parameters())
    _, l_ea = learner._actor_step(batch, torch.tensor([0, 3]))
    assert l_ea is not None
    assert all_moved(phi0, learner.phi.parameters())
    assert all_moved(rl0, rl_params(learner))
    # only φ and the RL head move in the actor step
    assert all_equal(pevfa0, learner.pevfa.parameters())
    assert all_equal(critic0, learner.critic.parameters())


def test_rl_loss_scaled_by_actor_alpha_on_phi_only():
    batch = make_batch()
    learner = make_learner(actor_alpha=0.0, EA_actor_alpha=1.0)
    phi0, rl0 = snapshot(learner.phi.parameters()), snapshot(rl_params(learner))
    _, l_ea = learner._actor_step(batch, None)
    assert l_ea is None
    assert all_equal(phi0, learner.phi.parameters()), "φ moved although actor_alpha = 0 and no L_ea"
    assert all_moved(rl0, rl_params(learner)), "the RL head must step on the unscaled L_rl"

    # the head's gradient does not depend on actor_alpha: one step from identical learners agrees
    heads = []
    for alpha in (0.0, 1.0):
        lrn = make_learner(actor_alpha=alpha)
        lrn._actor_step(batch, None)
        heads.append(snapshot(rl_params(lrn)))
    assert all(torch.equal(x, y) for x, y in zip(*heads))
    # ... while φ does move with actor_alpha = 1
    lrn = make_learner(actor_alpha=1.0)
    phi0 = snapshot(lrn.phi.parameters())
    lrn._actor_step(batch, None)
    assert all_moved(phi0, lrn.phi.parameters())


# ---------------------------------------------------------------------------- TD3 / DDPG critic
@pytest.mark.parametrize("algo,twins", [("td3", 2), ("ddpg", 1)])
def test_critic_loss_decreases(algo, twins):
    mem = make_memory(256)
    learner = make_learner(rl_algo=algo, EA=False, batch_size=64)
    assert learner.critic.n == twins and learner.critic_target.n == twins
    losses = []
    for _ in range(150):
        learner.train_iterations(mem, 1, evo_times=0)
        losses.append(learner.pop_losses()["critic_loss"])
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert np.all(np.isfinite(losses))
    assert last < 0.5 * first, (algo, first, last)


# ---------------------------------------------------------------------------- use_all
def test_pevfa_step_use_all_sums_over_every_actor():
    batch = make_batch(seed=4)
    learner = make_learner(use_all=True)
    perturb_targets(learner)
    per_actor = [plain_pevfa_loss(learner, batch, j) for j in range(N + 1)]
    draws = learner._draws(len(batch.state), actor_step=True, use_ea_loss=True)
    assert draws.pevfa_actor is None  # use_all: no draw
    loss = learner._pevfa_step(batch, draws.pevfa_actor)
    assert loss.item() == pytest.approx(sum(per_actor).item(), rel=1e-5)  # measured: 1.2e-6
    assert all(loss.item() > 1.01 * x.item() for x in per_actor)


def test_pevfa_step_single_actor_draw():
    batch = make_batch(seed=5)
    learner = make_learner(use_all=False)
    perturb_targets(learner)
    g = torch.Generator()
    g.set_state(learner.generator.get_state())
    j = int(torch.randint(0, N + 1, (1,), generator=g))
    expected = plain_pevfa_loss(learner, batch, j)
    draws = learner._draws(len(batch.state), actor_step=True, use_ea_loss=True)
    assert draws.pevfa_actor.tolist() == [j]
    loss = learner._pevfa_step(batch, draws.pevfa_actor)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)  # measured: 9e-7


# ---------------------------------------------------------------------------- bootstrapping mask
@torch.no_grad()
def _inflate_targets(learner) -> None:
    """A large constant on the target value heads: any bootstrapped term would dominate."""
    learner.critic_target.b3.add_(50.0)
    learner.pevfa_target.value.b3.add_(50.0)


def test_critic_target_masks_terminal_transitions():
    nd = torch.tensor([0.0, 1.0] * 8)
    batch = make_batch(16, seed=6, not_done=nd)
    learner = make_learner(TD3_noise=0.0, gamma=0.9)
    perturb_targets(learner)
    _inflate_targets(learner)
    with torch.no_grad():
        a_next = plain_act(learner.phi_target, learner.rl_weight_target, learner.rl_bias_target, batch.next_state).clamp(-1, 1)
        x_next = torch.cat([batch.next_state, a_next], -1)
        q_next = torch.minimum(*(plain_value(learner.critic_target, k, x_next) for k in range(2)))
        y = batch.reward + 0.9 * batch.not_done * q_next
        assert torch.equal(y[0::2], batch.reward[0::2])  # terminal rows: y = r
        x = torch.cat([batch.state, batch.action], -1)
        expected = sum(((plain_value(learner.critic, k, x) - y) ** 2).mean() for k in range(2))
    loss = learner._critic_step(batch, torch.zeros(16, A))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_all_terminal_targets_equal_reward():
    batch = make_batch(16, seed=7, not_done=torch.zeros(16))
    learner = make_learner(use_all=True)
    _inflate_targets(learner)
    x = torch.cat([batch.state, batch.action], -1)
    with torch.no_grad():
        q_expected = sum(((plain_value(learner.critic, k, x) - batch.reward) ** 2).mean() for k in range(2))
        w, b = learner.actors()
        v_expected = sum(
            ((plain_pevfa(learner.pevfa, k, x, w[j], b[j], learner.cfg.pevfa_rows) - batch.reward) ** 2).mean() for j in range(N + 1) for k in range(2)
        )
    assert learner._pevfa_step(batch, None).item() == pytest.approx(v_expected.item(), rel=1e-5)
    noise = learner._draws(16, actor_step=False, use_ea_loss=False).noise
    assert learner._critic_step(batch, noise).item() == pytest.approx(q_expected.item(), rel=1e-5)
    # sanity: with the mask set to 1 the inflated targets dominate the loss
    live = batch._replace(not_done=torch.ones(16, 1))
    assert learner._critic_step(live, noise).item() > 100 * q_expected.item()


# ---------------------------------------------------------------------------- checkpointing
def _roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, map_location="cpu", weights_only=True)


def test_checkpoint_round_trip_continues_identically():
    mem = make_memory(128)
    a = make_learner(init_seed=0, seed=0, K=2)
    a.train_iterations(mem, 3, evo_times=1)
    a.pop_losses()
    state = _roundtrip(a.checkpoint_state())

    b = make_learner(init_seed=1, seed=7, K=2)
    assert not torch.equal(a.phi.l1.weight, b.phi.l1.weight)
    assert not torch.equal(a.pop_weight, b.pop_weight)
    b.load_checkpoint_state(state)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    assert a.total_it == b.total_it == 3

    a.train_iterations(mem, 3, evo_times=1)
    b.train_iterations(mem, 3, evo_times=1)
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert a.pop_losses() == b.pop_losses()
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


def test_policy_delay_counter_restarts_every_generation():
    """As the reference (``it % 2`` over one generation's iterations): two generations of 3 iterations
    step the actor at iterations 0 and 2 of each, 4 times (a run-long counter would give 3)."""
    mem = make_memory(64)
    learner = make_learner()
    for _ in range(2):
        learner.train_iterations(mem, 3, evo_times=1)
    steps = {float(st["step"]) for st in learner.rl_opt.state.values()}
    assert steps == {4.0}
    assert {float(st["step"]) for st in learner.critic_opt.state.values()} == {6.0}


def test_pevfa_rows_layouts():
    """``-pevfa_rows``: the authors' flatten-and-reshape (the default) and the paper's true rows, from one
    definition; the learner runs with either and they train the PeVFA differently."""
    w = torch.arange(2 * A * 4, dtype=torch.float32).reshape(2, A, 4)
    b = -torch.arange(1, 2 * A + 1, dtype=torch.float32).reshape(2, A)
    ref = policy_rows(w, b, layout="reference")
    for m in range(2):
        expected = torch.cat([w[m].flatten(), b[m]]).reshape(A, 5)  # the reference's per-head reshape
        assert torch.equal(ref[m], expected)
    assert torch.equal(ref[0, 0], torch.cat([w[0, 0], w[0, 1, :1]]))  # row 0 straddles W[0] and W[1]
    assert torch.equal(ref[:, -1, -A:], b)  # every bias in the last row
    assert not torch.equal(ref, policy_rows(w, b))
    assert LearnerConfig(state_dim=S, action_dim=A).pevfa_rows == "reference"
    learner = make_learner()
    mem = make_memory(64)
    learner.train_iterations(mem, 2, evo_times=1)
    other = make_learner(pevfa_rows="paper")
    other.train_iterations(mem, 2, evo_times=1)
    assert not torch.equal(learner.pevfa.encoder.w1, other.pevfa.encoder.w1)
    with pytest.raises(ValueError, match="pevfa_rows must be one of"):
        make_learner(pevfa_rows="rows")
