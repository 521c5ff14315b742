"""The ERL-Re² learner (ALGORITHM.md §1 and §4): shared state representation φ, linear policy
heads (population + RL), critic and PeVFA, trained by TD3 (default) or DDPG.

One iteration (`_iteration`):
  a. PeVFA fit on one actor drawn from the N+1 (all with ``use_all``), if EA is on;
  b. critic fit (TD3: twin min and target-policy smoothing; DDPG: one critic, no smoothing);
  c. every ``policy_delay`` iterations: RL-head step on L_rl, φ step on
     ``actor_alpha·L_rl + EA_actor_alpha·L_ea`` (L_ea once evolution has produced a fitness);
     then soft updates of every target. By default (``phi_grad="reference"``) as the authors' code
     ran on torch 1.1: the head is stepped first, φ's share of L_rl flows back through the
     *post-step* head weight with the pre-step activations, and L_ea is built after the head's
     step (``_actor_step_reference``); ``phi_grad="paper"`` takes both gradients at the pre-step
     parameters (``_actor_step_paper``).
Nothing in an iteration reads a value back to the host: losses are accumulated as tensors and
read once per generation for logging.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from core.networks import (
    LS,
    PeVFA,
    SharedStateRepresentation,
    StackedValueMLP,
    linear_head_init,
    policy_actions,
)
from core.optim import Adam, clip_grad_norm
from core.replay_memory import Batch, ReplayMemory

LOSS_NAMES = ("critic_loss", "actor_loss", "pevfa_loss", "ea_loss")
VARIANTS = ("reference", "paper")  # values of LearnerConfig.pevfa_rows and .phi_grad (-pevfa_rows, -phi_grad)
CRITIC_ACTIONS = ("reference", "batch")  # values of LearnerConfig.critic_actions (-critic_actions)


def policy_rows(weight: torch.Tensor, bias: torch.Tensor, layout: str = "paper") -> torch.Tensor:
    """Rows of linear policy heads: row j is ``[W[j, :], b[j]]`` (paper §3.2, PeVFA).

    ``weight`` is ``[..., A, ls]`` and ``bias`` ``[..., A]`` (any leading batch axes, e.g. the
    population axis); the result is ``[..., A, ls + 1]``. This is the one definition of the
    row layout, used by the PeVFA policy encoder and by behaviour-level crossover (which, in the
    authors' code too, always swaps true rows).

    ``layout="reference"`` gives the authors' code's PeVFA input instead (the learner's default,
    ``-pevfa_rows reference``): the head flattened as ``[W.flatten(), b]`` and reshaped to
    ``(A, ls + 1)``, whose "rows" straddle action dimensions (row 0 is W[0] and W[1][0]; the biases
    all land in the last row).
    """
    if layout == "reference":
        a, ls = weight.shape[-2:]
        flat = torch.cat([weight.flatten(-2), bias], dim=-1)
        return flat.reshape(*weight.shape[:-2], a, ls + 1)
    return torch.cat([weight, bias.unsqueeze(-1)], dim=-1)


class Draws(NamedTuple):
    """One iteration's random draws (``ERLRe2Learner._draws``); None where not drawn."""
    pevfa_actor: torch.Tensor | None  # [1]: the actor of the PeVFA fit (None: use_all, or no EA)
    noise: torch.Tensor | None  # [B, A]: TD3's target-policy smoothing noise, before its clip
    ea_actors: torch.Tensor | None  # [K]: the actors of L_ea (None: no L_ea this iteration)


@dataclass(frozen=True)
class LearnerConfig:
    state_dim: int
    action_dim: int
    pop_size: int = 5
    pr: int = 64
    gamma: float = 0.99
    tau: float = 0.005
    TD3_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2
    K: int = 1
    actor_alpha: float = 1.0
    EA_actor_alpha: float = 1.0
    OFF_TYPE: int = 1
    use_all: bool = False
    rl_algo: str = "td3"
    EA: bool = True
    pevfa_rows: str = "reference"  # the PeVFA's input rows: "reference" (the authors' reshape) or "paper" (policy_rows)
    phi_grad: str = "reference"  # φ's gradient: "reference" (torch 1.1's, post-step head) or "paper" (pre-step)
    # The TD3 critic's input action: "reference" (the authors' code on the CPU: for a batch without any RL
    # exploration action, the smoothing noise; see _critic_loss) or "batch" (always the batch's actions).
    critic_actions: str = "reference"
    lr: float = 1e-3
    grad_clip: float = 10.0
    batch_size: int = 128
    compile: bool = False  # -compile: each iteration past its random draws compiled whole (see ERLRe2Learner.__init__)

    def __post_init__(self) -> None:
        for name in ("pevfa_rows", "phi_grad"):
            if getattr(self, name) not in VARIANTS:
                raise ValueError(f"LearnerConfig.{name} must be one of {VARIANTS} (got {getattr(self, name)!r})")
        if self.critic_actions not in CRITIC_ACTIONS:
            raise ValueError(f"LearnerConfig.critic_actions must be one of {CRITIC_ACTIONS} (got {self.critic_actions!r})")


class _ScaleGrad(torch.autograd.Function):
    """Identity whose gradient is multiplied by ``alpha``: puts ``actor_alpha`` on φ's share of
    L_rl while the RL head still receives the unscaled ∂L_rl, in a single backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.alpha, None


class ERLRe2Learner(nn.Module):
    def __init__(self, cfg: LearnerConfig, device: torch.device | str = "cpu", seed: int = 0):
        super().__init__()
        self.cfg = cfg
        s, a, n = cfg.state_dim, cfg.action_dim, cfg.pop_size
        twins = 2 if cfg.rl_algo == "td3" else 1
        # Shared state representation φ and its target.
        self.phi = SharedStateRepresentation(s)
        # Population heads (never trained by gradients) and the RL head (×0.1 init).
        pop_w, pop_b = linear_head_init(n, a)
        self.register_buffer("pop_weight", pop_w)
        self.register_buffer("pop_bias", pop_b)
        rl_w, rl_b = linear_head_init(1, a, scale=0.1)
        self.rl_weight, self.rl_bias = nn.Parameter(rl_w[0]), nn.Parameter(rl_b[0])
        # Critic on raw (s, a): twin for TD3, single for DDPG.
        self.critic = StackedValueMLP(twins, s + a)
        # PeVFA: always twin; OFF_TYPE 1 reads cat(s, a), OFF_TYPE 2 reads φ(s).
        self.pevfa = PeVFA(s + a if cfg.OFF_TYPE == 1 else LS, LS, cfg.pr)
        self.phi_target = copy.deepcopy(self.phi)
        self.critic_target = copy.deepcopy(self.critic)
        self.pevfa_target = copy.deepcopy(self.pevfa)
        self.rl_weight_target = nn.Parameter(self.rl_weight.detach().clone(), requires_grad=False)
        self.rl_bias_target = nn.Parameter(self.rl_bias.detach().clone(), requires_grad=False)
        for net in (self.phi_target, self.critic_target, self.pevfa_target):
            net.requires_grad_(False)
        self.to(device)
        self.device = torch.device(device)

        self.phi_opt = Adam(self.phi.parameters(), cfg.lr)
        self.rl_opt = Adam([self.rl_weight, self.rl_bias], cfg.lr)
        self.critic_opt = Adam(self.critic.parameters(), cfg.lr)
        self.pevfa_opt = Adam(self.pevfa.parameters(), cfg.lr)
        self._phi_params = list(self.phi.parameters())
        self._rl_params = [self.rl_weight, self.rl_bias]
        self._sources = self._phi_params + self._rl_params + list(self.critic.parameters()) + list(self.pevfa.parameters())
        self._targets = (
            list(self.phi_target.parameters())
            + [self.rl_weight_target, self.rl_bias_target]
            + list(self.critic_target.parameters())
            + list(self.pevfa_target.parameters())
        )
        if cfg.compile:
            # -compile (off by default): torch.compile (inductor) of the whole iteration past its random
            # draws (``_update``: the three fits' forward and backward, clipping and soft updates), with
            # Adam's fused kernel called eagerly between the graphs (``Adam.update``; inductor's own
            # Adam was 3x slower). Dynamo traces ``torch.autograd.grad`` only with ``trace_autograd_ops``
            # (a global setting; it changes nothing for eager code). Not bit-identical (fused kernels
            # reorder float sums); equal to the plain learner within 1e-9 in float64
            # (tests/test_reference_update.py). The plain code it replaces: ``_update``, eager.
            torch._dynamo.config.trace_autograd_ops = True
            self._update = torch.compile(self._update, dynamic=False)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.total_it = 0
        self._loss_sums: dict[str, torch.Tensor] = {}
        self._loss_counts: dict[str, int] = {}

    # ------------------------------------------------------------------ actors
    def actors(self, idx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All N+1 heads, population first and the RL head last: ``[N+1, A, ls]``, ``[N+1, A]``;
        or the heads ``idx`` (indices into that order) alone."""
        w = torch.cat([self.pop_weight, self.rl_weight.detach().unsqueeze(0)])
        b = torch.cat([self.pop_bias, self.rl_bias.detach().unsqueeze(0)])
        return (w, b) if idx is None else (w.index_select(0, idx), b.index_select(0, idx))

    @property
    def rl_index(self) -> int:
        return self.cfg.pop_size

    def policy(self, heads: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """Noise-free acting for a rollout: ``policy(states, idx)`` gives the actions of actors
        ``heads[idx]`` (indices into ``actors()``) in ``states``. The heads are gathered once, so
        the policy is valid until the parameters next change (i.e. for one rollout)."""
        with torch.no_grad():
            w, b = self.actors(torch.as_tensor(heads, device=self.device))
            phi = self.phi.acting()

        @torch.inference_mode()
        def act(states: np.ndarray, idx: np.ndarray) -> np.ndarray:
            feat = phi(torch.from_numpy(np.asarray(states, dtype=np.float32)).to(self.device))
            w_i, b_i = w, b
            if len(idx) < len(heads):  # some episodes have ended: the heads of the running ones
                sel = torch.as_tensor(idx, device=self.device)
                w_i, b_i = w.index_select(0, sel), b.index_select(0, sel)
            return policy_actions(w_i, b_i, feat.unsqueeze(1))[:, 0].cpu().numpy()

        return act

    def act(self, states: np.ndarray, heads: np.ndarray) -> np.ndarray:
        """Noise-free actions of actor ``heads[m]`` (index into ``actors()``) in state ``states[m]``."""
        return self.policy(heads)(states, np.arange(len(heads)))

    @torch.no_grad()
    def pevfa_value(self, states: np.ndarray, heads: np.ndarray) -> np.ndarray:
        """``min(V1, V2)(s, π(s), χ(π))`` with the current PeVFA, for the H-step fitness bootstrap."""
        w, b = self.actors(torch.as_tensor(heads, device=self.device))  # one policy per state: P = M, B = 1
        s = torch.as_tensor(states, dtype=torch.float32, device=self.device)
        feat = self.phi(s).unsqueeze(1)
        x = torch.cat([s.unsqueeze(1), policy_actions(w, b, feat)], -1) if self.cfg.OFF_TYPE == 1 else feat
        chi = self.pevfa.policy_representation(self._rows(w, b))
        return self.pevfa(x, chi).min(0).values[:, 0, 0].cpu().numpy()

    # ------------------------------------------------------------------ training
    def train_iterations(self, memory: ReplayMemory, iterations: int, evo_times: int, start: int = 0,
                         pause: Callable[[], bool] | None = None) -> int:
        """Run iterations ``start .. iterations-1`` of one generation's TD3/DDPG iterations; losses
        accumulate until ``pop_losses``. Returns the index reached: ``iterations``, or earlier when
        ``pause()`` (checked before each iteration) asks to stop, so that a run can checkpoint within a
        generation and later continue it exactly from there.

        The policy-delay counter restarts with every generation, as in the reference (``it % 2`` over
        the generation's iterations), so each generation's first iteration steps the actor."""
        for it in range(start, iterations):
            if pause is not None and pause():
                return it
            batch = memory.sample(self.cfg.batch_size, self.generator)
            self._iteration(batch, policy_step=it % self.cfg.policy_delay == 0, use_ea_loss=evo_times > 0)
        return iterations

    def _iteration(self, batch: Batch, policy_step: bool, use_ea_loss: bool) -> None:
        actor_step = self.cfg.rl_algo == "ddpg" or policy_step
        draws = self._draws(batch.state.shape[0], actor_step, use_ea_loss and self.cfg.EA)
        for name, value in self._update(batch, draws, actor_step).items():
            self._accumulate(name, value)
        self.total_it += 1

    def _draws(self, batch_size: int, actor_step: bool, use_ea_loss: bool) -> Draws:
        """The iteration's random draws, from the learner's generator in this order (each only
        when used): the PeVFA fit's actor, TD3's smoothing noise, the K actors of L_ea."""
        cfg, g, dev = self.cfg, self.generator, self.device
        j = noise = idx = None
        if cfg.EA and not cfg.use_all:
            j = torch.randint(0, cfg.pop_size + 1, (1,), device=dev, generator=g)
        if cfg.rl_algo == "td3":
            noise = torch.randn((batch_size, cfg.action_dim), device=dev, generator=g) * cfg.TD3_noise
        if actor_step and use_ea_loss:
            idx = torch.randperm(cfg.pop_size + 1, device=dev, generator=g)[: cfg.K]
        return Draws(j, noise, idx)

    def _update(self, batch: Batch, draws: Draws, actor_step: bool) -> dict[str, torch.Tensor]:
        """a–c with the iteration's draws given: every fit, Adam step and soft update; returns the
        losses. Compiled with -compile (forward, backward, clipping, soft updates; Adam's fused
        kernel stays eager between the graphs, see ``Adam.update``)."""
        losses = {}
        if self.cfg.EA:
            losses["pevfa_loss"] = self._pevfa_step(batch, draws.pevfa_actor)
        losses["critic_loss"] = self._critic_step(batch, draws.noise)
        if actor_step:
            losses["actor_loss"], l_ea = self._actor_step(batch, draws.ea_actors)
            if l_ea is not None:
                losses["ea_loss"] = l_ea
            self.soft_update()
        return losses

    def _rows(self, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """The PeVFA encoder's input rows of heads: the authors' layout, or true rows with ``-pevfa_rows paper``."""
        return policy_rows(weight, bias, self.cfg.pevfa_rows)

    # Each step: its loss (``_*_loss``), then the gradient step.
    def _pevfa_step(self, batch: Batch, j: torch.Tensor | None) -> torch.Tensor:
        """a. Fit V1, V2 to ``r + γ·not_done·min(V1', V2')(s', π_j(φ(s')), χ'(π_j))`` for actor ``j``
        (every actor, summed, when ``j`` is None: ``use_all``)."""
        loss = self._pevfa_loss(batch, *self.actors(j))
        self._step(self.pevfa_opt, loss)
        return loss.detach()

    def _pevfa_loss(self, batch: Batch, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        rows = self._rows(w, b)
        with torch.no_grad():
            feat_next = self.phi(batch.next_state)
            if cfg.OFF_TYPE == 1:
                x_next = self._state_action(batch.next_state, policy_actions(w, b, feat_next))
                x = torch.cat([batch.state, batch.action], -1)
            else:
                x_next, x = feat_next, self.phi(batch.state)
            v_next = self.pevfa_target(x_next, self.pevfa_target.policy_representation(rows)).min(0).values
            y = batch.reward + cfg.gamma * batch.not_done * v_next  # [P, B, 1]
        v = self.pevfa(x, self.pevfa.policy_representation(rows))  # [2, P, B, 1]
        return (v - y).pow(2).mean(2).sum()  # Σ over twins and actors of the MSE

    def _critic_step(self, batch: Batch, noise: torch.Tensor | None) -> torch.Tensor:
        """b. TD3 critic: ``y = r + γ·not_done·min(Q1', Q2')(s', a')`` with a smoothed target action
        (``noise``: TD3's draw, None for DDPG)."""
        loss = self._critic_loss(batch, noise)
        self._step(self.critic_opt, loss)
        return loss.detach()

    def _critic_loss(self, batch: Batch, noise: torch.Tensor | None) -> torch.Tensor:
        """The TD3 critic's loss. With ``critic_actions="reference"`` (the default) the current Q is read at the
        smoothing noise instead of the batch's actions when no action of the batch is an RL exploration action,
        as the authors' code computed on the CPU: there ``action = torch.FloatTensor(u)`` shares memory with
        the sampled actions ``u`` whenever ``u`` is a float32 array (every action a warm-up draw or a population
        member's; an exploration action, policy + float64 Gaussian noise, makes it float64 and the constructor
        copies), and the smoothing noise is drawn in place into ``torch.FloatTensor(u)`` (the same memory) before
        the critic reads ``action``: the raw N(0, σ) draw, before its clip. In practice that is every batch of the
        first learner iterations (the generation that ends the warm-up, whose buffer holds warm-up draws only) and
        almost never later (1.4e-5 per batch once one RL episode of 1,000 exploration steps is in 12,000 rows)."""
        cfg = self.cfg
        action = batch.action
        if cfg.critic_actions == "reference" and noise is not None and batch.no_exploration is not None:
            action = torch.where(batch.no_exploration, noise, batch.action)
        with torch.no_grad():
            feat_next = self.phi_target(batch.next_state)
            a_next = policy_actions(self.rl_weight_target[None], self.rl_bias_target[None], feat_next)[0]
            if noise is not None:  # TD3's target-policy smoothing
                a_next = (a_next + noise.clamp(-cfg.noise_clip, cfg.noise_clip)).clamp(-1.0, 1.0)
            q_next = self.critic_target(torch.cat([batch.next_state, a_next], -1)).min(0).values[0]
            y = batch.reward + cfg.gamma * batch.not_done * q_next
        q = self.critic(torch.cat([batch.state, action], -1))[:, 0]  # [n, B, 1]
        return (q - y).pow(2).mean((1, 2)).sum()

    def _actor_step(self, batch: Batch, ea_actors: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """c. RL head on L_rl; φ on ``actor_alpha·L_rl + EA_actor_alpha·L_ea`` over actors
        ``ea_actors`` (no L_ea when None). Returns ``(L_rl, L_ea)``."""
        if self.cfg.phi_grad == "paper":
            return self._actor_step_paper(batch, ea_actors)
        return self._actor_step_reference(batch, ea_actors)

    def _actor_step_paper(self, batch: Batch, ea_actors: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``-phi_grad paper``: both gradients at the pre-step parameters, in one backward pass (``_ScaleGrad``
        puts ``actor_alpha`` on φ's share of L_rl), then both steps."""
        cfg = self.cfg
        feat = self.phi(batch.state)
        a_rl = policy_actions(self.rl_weight[None], self.rl_bias[None], _ScaleGrad.apply(feat, cfg.actor_alpha))[0]
        l_rl = -self._q1(batch.state, a_rl)
        l_ea = self._ea_loss(batch, feat, ea_actors)
        total = l_rl if l_ea is None else l_rl + cfg.EA_actor_alpha * l_ea
        grads = torch.autograd.grad(total, self._phi_params + self._rl_params)
        n = len(self._phi_params)
        self._clip_and_step(self.phi_opt, grads[:n])
        self._clip_and_step(self.rl_opt, grads[n:])
        return l_rl.detach(), (l_ea.detach() if l_ea is not None else None)

    def _actor_step_reference(self, batch: Batch, ea_actors: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The default: step c as the authors' ``TD3.train`` ran on torch 1.1 (ALGORITHM.md §4c).

        Their code steps the RL head on L_rl first, then back-propagates ``actor_alpha·L_rl +
        EA_actor_alpha·L_ea`` into φ through L_rl's graph built before that step. Torch 1.1's Adam wrote
        the head through ``.data``, so the weight saved by that graph's ``addmm`` (a view of the head's
        storage) already held the *new* weight, while ``tanh`` had saved the *old* action: φ's share of
        L_rl is ``actor_alpha·[dL_rl/da(a_old) ⊙ (1 − a_old²)] · W_new``. L_ea is built after the head's
        step, so the RL head, when drawn among the K, enters it at its new parameters.

        Here: one backward through the critic gives ``dL_rl/du`` at the pre-activation ``u`` (a leaf, so
        that the same code runs compiled), hence the head's gradient ``(dL_rl/du)ᵀ z`` and ``Σ dL_rl/du``;
        the head steps; ``dL_rl/du · W_new`` (one [B, A]×[A, ls] product) is φ's share at its output, and
        one backward through φ (and L_ea) gives φ's gradient."""
        cfg = self.cfg
        feat = self.phi(batch.state)
        z = feat.detach()
        with torch.no_grad():  # u = W z + b, the RL head's pre-activation, as a leaf of the critic's backward
            pre = torch.addmm(self.rl_bias, z, self.rl_weight.t())
        pre.requires_grad_(True)
        l_rl = -self._q1(batch.state, torch.tanh(pre))
        (g_pre,) = torch.autograd.grad(l_rl, [pre])  # dL_rl/du = dL_rl/da(a_old) ⊙ (1 − a_old²)
        self._clip_and_step(self.rl_opt, (g_pre.t() @ z, g_pre.sum(0)))  # the head's gradient of L_rl
        g_feat = (g_pre * cfg.actor_alpha) @ self.rl_weight.detach()  # the post-step head weight
        l_ea = self._ea_loss(batch, feat, ea_actors)  # actors() reads the post-step RL head
        if l_ea is None:
            grads = torch.autograd.grad(feat, self._phi_params, grad_outputs=g_feat)
        else:
            grads = torch.autograd.grad((feat, l_ea), self._phi_params, grad_outputs=(g_feat, l_ea.new_tensor(cfg.EA_actor_alpha)))
        self._clip_and_step(self.phi_opt, grads)
        return l_rl.detach(), (l_ea.detach() if l_ea is not None else None)

    def _q1(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``mean Q1(s, a)`` over the batch (L_rl is its negative)."""
        return self.critic(torch.cat([state, action], -1), nets=slice(0, 1)).mean()

    def _ea_loss(self, batch: Batch, feat: torch.Tensor, ea_actors: torch.Tensor | None) -> torch.Tensor | None:
        """``L_ea = Σ_k −mean V1(s, π_k(φ(s)), χ(π_k))`` over actors ``ea_actors`` at their current parameters
        (None when no actor is drawn); χ from detached head parameters, the PeVFA not stepped here."""
        if ea_actors is None:
            return None
        w, b = self.actors(ea_actors)
        with torch.no_grad():
            chi = self.pevfa.policy_representation(self._rows(w, b), nets=slice(0, 1))
        x = self._state_action(batch.state, policy_actions(w, b, feat)) if self.cfg.OFF_TYPE == 1 else feat
        return -self.pevfa(x, chi, nets=slice(0, 1)).mean(2).sum()

    def _step(self, opt: Adam, loss: torch.Tensor) -> None:
        # autograd.grad rather than zero_grad + backward: the same gradients, handed straight to
        # the clip and to Adam without going through ``.grad``.
        self._clip_and_step(opt, torch.autograd.grad(loss, opt.params))

    def _clip_and_step(self, opt: Adam, grads: tuple[torch.Tensor, ...]) -> None:
        """Clip the gradients of one optimiser's parameters to norm ``grad_clip``, then step it."""
        clip_grad_norm(grads, self.cfg.grad_clip)
        opt.update(grads)

    @staticmethod
    def _state_action(state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``cat(s, a_p)`` for P policies' actions ``[P, B, A]`` → ``[P, B, S + A]``."""
        return torch.cat([state.expand(actions.shape[0], *state.shape), actions], -1)

    @torch.no_grad()
    def soft_update(self) -> None:
        """θ' ← θ' + τ(θ − θ') for every target, as one fused in-place operation."""
        torch._foreach_lerp_(self._targets, self._sources, self.cfg.tau)

    # ------------------------------------------------------------------ logging
    def _accumulate(self, name: str, value: torch.Tensor) -> None:
        self._loss_sums[name] = self._loss_sums[name] + value if name in self._loss_sums else value
        self._loss_counts[name] = self._loss_counts.get(name, 0) + 1

    def pop_losses(self) -> dict[str, float | None]:
        """Mean of each loss since the last call (one host read), ``None`` for losses not computed."""
        names = list(self._loss_sums)
        values = torch.stack([self._loss_sums[n] for n in names]).cpu().tolist() if names else []
        out: dict[str, float | None] = dict.fromkeys(LOSS_NAMES)
        out.update({n: v / self._loss_counts[n] for n, v in zip(names, values)})
        self._loss_sums, self._loss_counts = {}, {}
        return out

    # ------------------------------------------------------------------ checkpointing
    def checkpoint_state(self) -> dict:
        return {
            "networks": self.state_dict(),
            "optimizers": {k: getattr(self, k).state_dict() for k in ("phi_opt", "rl_opt", "critic_opt", "pevfa_opt")},
            "generator": self.generator.get_state(),
            "total_it": self.total_it,
            # Loss sums of a generation in progress (empty between generations), so that its logged means
            # are the same whether or not it was interrupted.
            "loss_sums": dict(self._loss_sums),
            "loss_counts": dict(self._loss_counts),
        }

    def load_checkpoint_state(self, state: dict) -> None:
        self.load_state_dict(state["networks"])
        for k, v in state["optimizers"].items():
            getattr(self, k).load_state_dict(v)
        self.generator.set_state(state["generator"])
        self.total_it = int(state["total_it"])
        self._loss_sums = {k: v.to(self.device) for k, v in state["loss_sums"].items()}
        self._loss_counts = dict(state["loss_counts"])
