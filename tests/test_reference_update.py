"""The learner's whole update step equals a plain, unoptimised implementation of ALGORITHM.md §1 and §4.

The plain learner below is written from the specification, not from ``core/``: separate ``nn.Linear``
modules per twin, the LayerNorm written out, χ computed policy by policy with a loop over the head's
rows, the PeVFA's input built as an explicit ``cat(x, χ)`` per sample, ``torch.optim.Adam`` with the
plain for-loop kernel (neither ``fused`` nor ``foreach``), ``clip_grad_norm_`` and a Python loop of
soft updates. It is loaded with the learner's parameters (perturbed so that targets differ from their
sources and LayerNorm gains are not 1), fed the same batches and the same random draws, and after
every iteration each parameter, target and Adam state of the learner must equal the plain one's, in
float64. This is the test that catches an optimiser applying a correct gradient wrongly (the fused
Adam step on a transposed gradient this project once shipped), which gradient checks cannot.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from core.ddpg import ERLRe2Learner
from core.learner_config import LearnerConfig
from core.replay_memory import Batch

S, A, N, B = 5, 3, 4, 24
TOL = 1e-9


@pytest.fixture(autouse=True)
def _float64_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------- the plain learner
class WrittenOutLayerNorm(nn.Module):
    """The learner's LayerNorm formula, written out: ``gain·sqrt((n-1)/n)·(x-mean)/sqrt(var + 1e-12) + bias``
    with the biased variance, i.e. ``(x-mean)/sqrt(var_unbiased + 1e-12·n/(n-1))``. It differs from the
    reference's ``(x-mean)/(std_unbiased + 1e-6)`` by ~1e-6/std relative (README, difference on
    LayerNorm; measured in ``test_layer_norm_formula_against_reference``)."""

    def __init__(self, gain: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.gain, self.bias = nn.Parameter(gain.clone()), nn.Parameter(bias.clone())

    def forward(self, x):
        n = x.shape[-1]
        mean = x.sum(-1, keepdim=True) / n
        var = ((x - mean) ** 2).sum(-1, keepdim=True) / n
        return self.gain * math.sqrt((n - 1) / n) * (x - mean) / torch.sqrt(var + 1e-12) + self.bias


def linear(weight_out_in: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    out_dim, in_dim = weight_out_in.shape
    layer = nn.Linear(in_dim, out_dim, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(weight_out_in)
        layer.bias.copy_(bias)
    return layer


class Phi(nn.Module):
    def __init__(self, src):  # src: the learner's SharedStateRepresentation
        super().__init__()
        self.l1, self.l2 = linear(src.l1.weight, src.l1.bias), linear(src.l2.weight, src.l2.bias)
        self.ln1, self.ln2 = WrittenOutLayerNorm(src.ln1.gain, src.ln1.bias), WrittenOutLayerNorm(src.ln2.gain, src.ln2.bias)

    def forward(self, s):
        return torch.tanh(self.ln2(self.l2(torch.tanh(self.ln1(self.l1(s))))))


class ValueMLP(nn.Module):
    """Linear(in,400) → LN → leaky_relu → Linear(400,300) → LN → leaky_relu → Linear(300,1): twin ``k`` of a
    stacked value net (critic or PeVFA value head, whose first layer then reads ``cat(x, χ)``)."""

    def __init__(self, src, k: int):
        super().__init__()
        w1 = src.w1[k] if src.w1_cond is None else torch.cat([src.w1[k], src.w1_cond[k]], 0)
        self.l1 = linear(w1.t(), src.b1[k, 0])
        self.ln1 = WrittenOutLayerNorm(src.ln1.gain[k, 0], src.ln1.bias[k, 0])
        self.l2 = linear(src.w2[k].t(), src.b2[k, 0])
        self.ln2 = WrittenOutLayerNorm(src.ln2.gain[k, 0], src.ln2.bias[k, 0])
        self.l3 = linear(src.w3[k].t(), src.b3[k, 0])

    def forward(self, x):
        h = F.leaky_relu(self.ln1(self.l1(x)))
        return self.l3(F.leaky_relu(self.ln2(self.l2(h))))


class PolicyEncoder(nn.Module):
    def __init__(self, src, k: int):
        super().__init__()
        self.l1 = linear(src.w1[k].t(), src.b1[k, 0])
        self.l2 = linear(src.w2[k].t(), src.b2[k, 0])
        self.l3 = linear(src.w3[k].t(), src.b3[k, 0])

    def forward(self, weight, bias, layout: str):
        """χ(π): each row encoded on its own, the A codes averaged. ``paper``: row j is ``[W[j], b[j]]``;
        ``reference``: the authors' rows, ``[W.flatten(), b]`` cut into A pieces of ls+1 numbers."""
        if layout == "paper":
            rows = [torch.cat([weight[j], bias[j : j + 1]]) for j in range(weight.shape[0])]
        else:
            flat, width = torch.cat([weight.flatten(), bias]), weight.shape[1] + 1
            rows = [flat[j * width : (j + 1) * width] for j in range(weight.shape[0])]
        codes = [self.l3(F.leaky_relu(self.l2(F.leaky_relu(self.l1(row))))) for row in rows]
        return torch.stack(codes).mean(0)


class PlainLearner:
    """ALGORITHM.md §4, one iteration at a time, from a loaded ``ERLRe2Learner``'s parameters."""

    def __init__(self, learner: ERLRe2Learner):
        cfg = self.cfg = learner.cfg
        twins = 2 if cfg.rl_algo == "td3" else 1
        self.phi, self.phi_t = Phi(learner.phi), Phi(learner.phi_target)
        self.head = linear(learner.rl_weight, learner.rl_bias)
        self.head_t = linear(learner.rl_weight_target, learner.rl_bias_target)
        self.q = [ValueMLP(learner.critic, k) for k in range(twins)]
        self.q_t = [ValueMLP(learner.critic_target, k) for k in range(twins)]
        self.enc = [PolicyEncoder(learner.pevfa.encoder, k) for k in range(2)]
        self.enc_t = [PolicyEncoder(learner.pevfa_target.encoder, k) for k in range(2)]
        self.v = [ValueMLP(learner.pevfa.value, k) for k in range(2)]
        self.v_t = [ValueMLP(learner.pevfa_target.value, k) for k in range(2)]
        self.pop_weight, self.pop_bias = learner.pop_weight.clone(), learner.pop_bias.clone()
        self.generator = torch.Generator().manual_seed(0)
        self.generator.set_state(learner.generator.get_state())
        self.nets = {
            "phi": [self.phi], "head": [self.head], "critic": self.q, "pevfa": self.enc + self.v,
        }
        self.targets = {
            "phi": [self.phi_t], "head": [self.head_t], "critic": self.q_t, "pevfa": self.enc_t + self.v_t,
        }
        self.opt = {k: torch.optim.Adam(self.params(k), lr=cfg.lr, foreach=False, fused=False) for k in self.nets}
        self.clipped = []  # pre-clip gradient norms, to prove the clip was active
        self.rl_head_in_l_ea = False  # whether L_ea ever read the RL head (after its step, in the reference variant)

    def params(self, key: str) -> list[nn.Parameter]:
        return [p for m in self.nets[key] for p in m.parameters()]

    def actor(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Actor i of the N+1: population members first, the RL head last (detached)."""
        if i < self.cfg.pop_size:
            return self.pop_weight[i], self.pop_bias[i]
        return self.head.weight.detach(), self.head.bias.detach()

    def step(self, key: str, loss: torch.Tensor | None = None, grads: list[torch.Tensor] | None = None) -> None:
        params, opt = self.params(key), self.opt[key]
        opt.zero_grad()
        if grads is None:
            loss.backward()
        else:
            for p, g in zip(params, grads):
                p.grad = g
        self.clipped.append(float(nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)))
        opt.step()

    def iteration(self, batch: Batch, policy_step: bool, use_ea_loss: bool) -> None:
        cfg, g = self.cfg, self.generator
        self.use_ea_loss = use_ea_loss
        s, a, r, s2, nd = batch[:5]
        # a. PeVFA fit on one actor drawn from the N+1 (all of them with use_all).
        if cfg.EA:
            if cfg.use_all:
                chosen = list(range(cfg.pop_size + 1))
            else:
                chosen = [int(torch.randint(0, cfg.pop_size + 1, (1,), generator=g))]
            loss = 0.0
            for i in chosen:
                w, b = self.actor(i)
                with torch.no_grad():
                    f2 = self.phi(s2)
                    x2 = torch.cat([s2, torch.tanh(f2 @ w.t() + b)], 1) if cfg.OFF_TYPE == 1 else f2
                    v2 = [self.v_t[k](torch.cat([x2, self.enc_t[k](w, b, cfg.pevfa_rows).expand(B, -1)], 1)) for k in range(2)]
                    y = r + cfg.gamma * nd * torch.min(v2[0], v2[1])
                x = torch.cat([s, a], 1) if cfg.OFF_TYPE == 1 else self.phi(s).detach()
                for k in range(2):
                    loss = loss + F.mse_loss(self.v[k](torch.cat([x, self.enc[k](w, b, cfg.pevfa_rows).expand(B, -1)], 1)), y)
            self.step("pevfa", loss)
        # b. Critic: TD3 (twin min, smoothed target action) or DDPG (one critic).
        with torch.no_grad():
            a2 = self.head_t(self.phi_t(s2)).tanh()
            if cfg.rl_algo == "td3":
                noise = torch.randn(a2.shape, generator=g) * cfg.TD3_noise
                a2 = (a2 + noise.clamp(-cfg.noise_clip, cfg.noise_clip)).clamp(-1.0, 1.0)
            q2 = [q(torch.cat([s2, a2], 1)) for q in self.q_t]
            y = r + cfg.gamma * nd * (torch.min(q2[0], q2[1]) if len(q2) == 2 else q2[0])
        # The authors' code on the CPU: a float32 batch of actions (none an RL exploration action) shares memory
        # with the tensor the smoothing noise is drawn into, so the critic reads the raw noise as the action.
        if cfg.critic_actions == "reference" and cfg.rl_algo == "td3" and batch.no_exploration is not None and bool(batch.no_exploration):
            a = noise
        self.step("critic", sum(F.mse_loss(q(torch.cat([s, a], 1)), y) for q in self.q))
        if not policy_step:
            return
        # c. Actor: the RL head on L_rl, φ on actor_alpha·L_rl + EA_actor_alpha·L_ea; then every target
        #    soft-updated.
        if cfg.phi_grad == "paper":
            self.actor_step_paper(s)
        else:
            self.actor_step_reference(s)
        with torch.no_grad():
            for key in self.nets:
                for net, target in zip(self.nets[key], self.targets[key]):
                    for p, p_t in zip(net.parameters(), target.parameters()):
                        p_t.copy_(cfg.tau * p + (1 - cfg.tau) * p_t)

    def l_ea(self, s: torch.Tensor, feat: torch.Tensor) -> torch.Tensor | None:
        """``Σ_k −mean V1(s, π_k(φ(s)), χ(π_k))`` over K actors drawn now (None: no L_ea this iteration)."""
        cfg = self.cfg
        if not (cfg.EA and self.use_ea_loss):
            return None
        picked = torch.randperm(cfg.pop_size + 1, generator=self.generator)[: cfg.K].tolist()
        self.rl_head_in_l_ea |= cfg.pop_size in picked
        loss = 0.0
        for i in picked:
            w, b = self.actor(i)
            with torch.no_grad():
                chi = self.enc[0](w, b, cfg.pevfa_rows)
            x = torch.cat([s, torch.tanh(feat @ w.t() + b)], 1) if cfg.OFF_TYPE == 1 else feat
            loss = loss - self.v[0](torch.cat([x, chi.expand(B, -1)], 1)).mean()
        return loss

    def actor_step_paper(self, s: torch.Tensor) -> None:
        """The paper's equations: both gradients at the pre-step parameters, then both steps."""
        cfg = self.cfg
        feat = self.phi(s)
        l_rl = -self.q[0](torch.cat([s, self.head(feat).tanh()], 1)).mean()
        phi_loss = cfg.actor_alpha * l_rl
        l_ea = self.l_ea(s, feat)
        if l_ea is not None:
            phi_loss = phi_loss + cfg.EA_actor_alpha * l_ea
        head_grads = torch.autograd.grad(l_rl, self.params("head"), retain_graph=True)
        phi_grads = torch.autograd.grad(phi_loss, self.params("phi"))
        self.step("head", grads=list(head_grads))
        self.step("phi", grads=list(phi_grads))

    def actor_step_reference(self, s: torch.Tensor) -> None:
        """The authors' code on torch 1.1: the head is stepped first on L_rl; φ's share of L_rl is then
        ``[dL_rl/da(a_old) ⊙ (1 − a_old²)] · W_new`` (pre-step action, post-step head weight), and L_ea is
        built after the head's step (the RL head, when drawn, enters it at its new parameters)."""
        cfg = self.cfg
        feat = self.phi(s)
        a_old = self.head(feat.detach()).tanh()
        l_rl = -self.q[0](torch.cat([s, a_old], 1)).mean()
        (dl_da,) = torch.autograd.grad(l_rl, a_old, retain_graph=True)
        self.step("head", l_rl)  # the library's Adam on the head's gradient of L_rl
        w_new = self.head.weight.detach()
        dl_dfeat = cfg.actor_alpha * (dl_da * (1 - a_old.detach() ** 2)) @ w_new
        phi_grads = torch.autograd.grad(feat, self.params("phi"), grad_outputs=dl_dfeat, retain_graph=True)
        l_ea = self.l_ea(s, feat)
        if l_ea is not None:
            ea_grads = torch.autograd.grad(cfg.EA_actor_alpha * l_ea, self.params("phi"))
            phi_grads = [g + h for g, h in zip(phi_grads, ea_grads)]
        self.step("phi", grads=list(phi_grads))


# ---------------------------------------------------------------------- learner ↔ plain correspondence
def correspondence(learner: ERLRe2Learner, plain: PlainLearner):
    """(name, view of a learner tensor dict in the plain layout, plain parameter) for every trained
    parameter and every target. ``get(name)`` returns a learner tensor (a parameter or one of its Adam
    states) by parameter name; the view maps it to the plain module's layout."""
    rows = []

    def phi(prefix, net):
        for layer in ("l1", "l2"):
            rows.append((f"{prefix}.{layer}.weight", lambda get, n=f"{prefix}.{layer}.weight": get(n), getattr(net, layer).weight))
            rows.append((f"{prefix}.{layer}.bias", lambda get, n=f"{prefix}.{layer}.bias": get(n), getattr(net, layer).bias))
        for ln in ("ln1", "ln2"):
            for attr in ("gain", "bias"):
                n = f"{prefix}.{ln}.{attr}"
                rows.append((n, lambda get, n=n: get(n), getattr(getattr(net, ln), attr)))

    def stacked_layers(prefix, k, layers, first: int = 1):
        """Rows of stacked layers ``w{i}[k]`` / ``b{i}[k]`` against plain ``nn.Linear`` layers."""
        for i, layer in enumerate(layers, start=first):
            rows.append((f"{prefix}.w{i}[{k}]", lambda get, k=k, i=i: get(f"{prefix}.w{i}")[k].t(), layer.weight))
            rows.append((f"{prefix}.b{i}[{k}]", lambda get, k=k, i=i: get(f"{prefix}.b{i}")[k, 0], layer.bias))

    def value(prefix, nets, cond: bool):
        for k, net in enumerate(nets):
            if cond:
                rows.append((f"{prefix}.w1+w1_cond[{k}]",
                             lambda get, k=k: torch.cat([get(f"{prefix}.w1")[k], get(f"{prefix}.w1_cond")[k]], 0).t(), net.l1.weight))
            else:
                rows.append((f"{prefix}.w1[{k}]", lambda get, k=k: get(f"{prefix}.w1")[k].t(), net.l1.weight))
            rows.append((f"{prefix}.b1[{k}]", lambda get, k=k: get(f"{prefix}.b1")[k, 0], net.l1.bias))
            stacked_layers(prefix, k, (net.l2, net.l3), first=2)
            for j, ln in ((1, net.ln1), (2, net.ln2)):
                for attr in ("gain", "bias"):
                    rows.append((f"{prefix}.ln{j}.{attr}[{k}]", lambda get, k=k, j=j, a=attr: get(f"{prefix}.ln{j}.{a}")[k, 0], getattr(ln, attr)))

    def encoder(prefix, nets):
        for k, net in enumerate(nets):
            stacked_layers(prefix, k, (net.l1, net.l2, net.l3))

    phi("phi", plain.phi)
    rows.append(("rl_weight", lambda get: get("rl_weight"), plain.head.weight))
    rows.append(("rl_bias", lambda get: get("rl_bias"), plain.head.bias))
    value("critic", plain.q, cond=False)
    encoder("pevfa.encoder", plain.enc)
    value("pevfa.value", plain.v, cond=True)
    trained = len(rows)
    phi("phi_target", plain.phi_t)
    rows.append(("rl_weight_target", lambda get: get("rl_weight_target"), plain.head_t.weight))
    rows.append(("rl_bias_target", lambda get: get("rl_bias_target"), plain.head_t.bias))
    value("critic_target", plain.q_t, cond=False)
    encoder("pevfa_target.encoder", plain.enc_t)
    value("pevfa_target.value", plain.v_t, cond=True)
    return rows, trained


OPTIMISERS = {"phi_opt": "phi", "rl_opt": "head", "critic_opt": "critic", "pevfa_opt": "pevfa"}


def compare(learner: ERLRe2Learner, plain: PlainLearner) -> float:
    """Largest absolute difference over every parameter, target and Adam state (step, exp_avg,
    exp_avg_sq) of the learner and the plain learner."""
    named = dict(learner.named_parameters())
    rows, trained = correspondence(learner, plain)
    covered = {n.split("[")[0].split("+")[0] for n, _, _ in rows}
    assert covered >= {n for n in named if "w1_cond" not in n}, f"unmapped: {set(named) - covered}"
    worst = 0.0
    for _, view, theirs in rows:
        worst = max(worst, float((view(named.__getitem__).detach() - theirs.detach()).abs().max()))
    ours = {n: getattr(learner, o).state.get(p, {}) for o in OPTIMISERS for n, p in named.items()
            if any(p is q for g in getattr(learner, o).param_groups for q in g["params"])}
    theirs_state = {id(p): st for opt in plain.opt.values() for p, st in opt.state.items()}
    for name, view, theirs in rows[:trained]:
        st = theirs_state.get(id(theirs), {})
        for key in ("exp_avg", "exp_avg_sq"):
            try:
                mine = view(lambda n, key=key: ours[n][key])
            except KeyError:
                assert key not in st, f"{name}: the plain Adam has stepped, the learner's has not"
                continue
            assert key in st, f"{name}: the learner's Adam has stepped, the plain one has not"
            worst = max(worst, float((mine - st[key]).abs().max()))
    for opt_name, key in OPTIMISERS.items():  # Adam's step counts agree optimiser by optimiser
        mine = {float(st["step"]) for g in getattr(learner, opt_name).param_groups for p in g["params"]
                if "step" in (st := getattr(learner, opt_name).state.get(p, {}))}
        other = {float(st["step"]) for st in plain.opt[key].state.values() if "step" in st}
        assert mine == other, f"{opt_name}: steps {mine} vs {other}"
    return worst


def perturbed_learner(cfg: LearnerConfig) -> ERLRe2Learner:
    torch.manual_seed(1)
    learner = ERLRe2Learner(cfg, device="cpu", seed=7).double()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in learner.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            if name.endswith("gain"):
                p.add_(0.2 * noise)  # LayerNorm gains away from 1
            elif "target" in name:
                p.add_(0.02 * noise)  # targets differ from their sources
            else:
                p.add_(0.01 * noise)
        learner.pop_weight.add_(0.3 * torch.randn(learner.pop_weight.shape, generator=g, dtype=torch.float64))
    return learner


def make_batch(seed: int, no_exploration: bool | None = None) -> Batch:
    g = torch.Generator().manual_seed(100 + seed)
    state = torch.randn(B, S, generator=g, dtype=torch.float64)
    action = torch.rand(B, A, generator=g, dtype=torch.float64) * 2 - 1
    reward = 50.0 * torch.randn(B, 1, generator=g, dtype=torch.float64)  # large: the clip at 10 is active
    next_state = torch.randn(B, S, generator=g, dtype=torch.float64)
    not_done = (torch.rand(B, 1, generator=g) > 0.3).double()  # terminal and non-terminal transitions
    flag = None if no_exploration is None else torch.tensor(no_exploration)
    return Batch(state, action, reward, next_state, not_done, flag)


CASES = {
    "td3-off1-alphas": {"actor_alpha": 0.7, "EA_actor_alpha": 1.3},
    "td3-off2-use_all-K3": {"OFF_TYPE": 2, "use_all": True, "K": 3, "EA_actor_alpha": 0.5},
    "td3-off1-K3-use_all": {"K": 3, "use_all": True, "actor_alpha": 1.5},
    "td3-ea_loss_off": {"use_ea_loss": False},
    "td3-rl_only": {"EA": False},
    # batches without exploration actions (the generation that ends the warm-up), then with: the critic reads the
    # smoothing noise, then the batch's actions (-critic_actions reference); always the batch's with "batch"
    "td3-warmup_batches": {"no_exploration": [True, True, False, True, False]},
    "ddpg-warmup_batches": {"rl_algo": "ddpg", "no_exploration": [True, True, False, True, False]},
    "ddpg-off1-K2": {"rl_algo": "ddpg", "K": 2, "EA_actor_alpha": 2.0},
    "ddpg-off2-use_all": {"rl_algo": "ddpg", "OFF_TYPE": 2, "use_all": True, "actor_alpha": 0.5},
}


# -compile (torch.compile of each iteration past its draws): TD3 reaches the graphs of an iteration with
# and without the actor step, with and without L_ea, and with and without exploration actions in the batch;
# DDPG with OFF_TYPE 2 and use_all the others (no smoothing noise, φ(s) as the PeVFA's input, every actor in
# its fit). ~25 s of compile each.
COMPILED = {"compiled-td3-off1-alphas": {"actor_alpha": 0.7, "EA_actor_alpha": 1.3, "compile": True, "ea_loss_from": 2,
                                         "no_exploration": [True, True, False, True, False]},
            "compiled-ddpg-off2-use_all": {"rl_algo": "ddpg", "OFF_TYPE": 2, "use_all": True, "actor_alpha": 0.5,
                                           "compile": True, "ea_loss_from": 2}}


# The learner's variants of step c and of the PeVFA's input: the defaults (the authors' code: its row
# layout and torch 1.1's φ gradient), the paper's version of each alone, and both.
VARIANTS = {"reference": {}, "paper_rows": {"pevfa_rows": "paper"}, "paper_grad": {"phi_grad": "paper"},
            "paper": {"pevfa_rows": "paper", "phi_grad": "paper"}, "critic_batch": {"critic_actions": "batch"}}
COMPILED_VARIANTS = ("reference", "paper")


@pytest.mark.parametrize("case,variant", [(c, v) for c in CASES for v in VARIANTS]
                         + [(c, v) for c in COMPILED for v in COMPILED_VARIANTS])
def test_whole_update_equals_plain_implementation(case, variant):
    kw = dict(CASES.get(case) or COMPILED[case]) | VARIANTS[variant]
    ea_loss_from = kw.pop("ea_loss_from", 0)  # iterations before it run without L_ea (evo_times = 0)
    use_ea_loss = kw.pop("use_ea_loss", True)
    no_exploration = kw.pop("no_exploration", [None] * 5)
    cfg = LearnerConfig(state_dim=S, action_dim=A, pop_size=N, pr=16, batch_size=B, **kw)
    if cfg.compile:  # each compiled case starts from empty caches: earlier learners' graphs would count
        torch._dynamo.reset()  # against dynamo's recompile limit, and past it frames silently run eagerly
    learner = perturbed_learner(cfg)
    plain = PlainLearner(learner)
    assert compare(learner, plain) == 0.0  # loaded exactly
    for it in range(5):  # TD3: iterations 0, 2, 4 step the actor, 1 and 3 do not
        batch = make_batch(it, no_exploration[it])
        policy_step = cfg.rl_algo == "ddpg" or learner.total_it % cfg.policy_delay == 0
        ea = use_ea_loss and it >= ea_loss_from
        learner._iteration(batch, policy_step=policy_step, use_ea_loss=ea)
        plain.iteration(batch, policy_step, ea)
        worst = compare(learner, plain)
        print(f"{case} [{variant}] iteration {it}: largest difference {worst:.3e}")
        assert worst <= TOL, f"{case} [{variant}]: iteration {it} differs from the plain implementation by {worst:.3e}"
    assert max(plain.clipped) > 10 * cfg.grad_clip, "the gradient clip was never active"
    if cfg.EA and use_ea_loss and cfg.K >= 2:  # the draws are the generator's, the same on every machine
        assert plain.rl_head_in_l_ea, "L_ea never read the RL head: its post-step parameters are not checked"
    assert learner.generator.get_state().equal(plain.generator.get_state()), "different random draws"


def test_layer_norm_formula_against_reference():
    """Our LayerNorm vs the reference's ``(x-mean)/(std_unbiased + 1e-6)`` on φ's first-layer
    pre-activations of a fresh network: the relative difference is ~1e-6/std (README figure)."""
    from core.networks import SharedStateRepresentation

    torch.manual_seed(0)
    phi = SharedStateRepresentation(17).double()
    x = phi.l1(torch.randn(4096, 17, dtype=torch.float64))
    ours = phi.ln1(x)
    mean, std = x.mean(-1, keepdim=True), x.std(-1, keepdim=True)
    ref = (x - mean) / (std + 1e-6)
    rel = ((ours - ref).abs() / ref.abs().clamp_min(1e-3)).max().item()
    bound = (1e-6 / std).max().item()
    print(f"LayerNorm: max relative difference {rel:.2e}, 1e-6/min(std) {bound:.2e}, std in [{std.min():.3f}, {std.max():.3f}]")
    assert rel <= 1.01 * bound and rel < 1e-4
