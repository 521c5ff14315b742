"""One learner iteration's update (ALGORITHM.md §1 and §4), given its random draws (``Draws``), as
``ERLRe2Learner`` (``core/ddpg.py``) runs it: ``LearnerUpdate`` holds the learner's update paths.

One iteration (``ERLRe2Learner._iteration``):
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

from typing import TYPE_CHECKING, NamedTuple

import torch

from core.networks import policy_actions
from core.optim import Adam, clip_grad_norm
from core.replay_memory import Batch

if TYPE_CHECKING:
    from core.learner_config import LearnerConfig
    from core.networks import PeVFA, SharedStateRepresentation, StackedValueMLP


class Draws(NamedTuple):
    """One iteration's random draws (``ERLRe2Learner._draws``); None where not drawn."""
    pevfa_actor: torch.Tensor | None  # [1]: the actor of the PeVFA fit (None: use_all, or no EA)
    noise: torch.Tensor | None  # [B, A]: TD3's target-policy smoothing noise, before its clip
    ea_actors: torch.Tensor | None  # [K]: the actors of L_ea (None: no L_ea this iteration)


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


class LearnerUpdate:
    """The update paths of ``ERLRe2Learner``, a–c: a mixin that reads the learner's networks, targets,
    optimisers and ``cfg`` (declared below, built by ``ERLRe2Learner.__init__``), and its ``actors`` and
    ``_rows``; ``ERLRe2Learner._iteration`` draws and calls ``_update``."""

    cfg: LearnerConfig
    phi: SharedStateRepresentation
    phi_target: SharedStateRepresentation
    critic: StackedValueMLP
    critic_target: StackedValueMLP
    pevfa: PeVFA
    pevfa_target: PeVFA
    rl_weight: torch.nn.Parameter
    rl_bias: torch.nn.Parameter
    rl_weight_target: torch.nn.Parameter
    rl_bias_target: torch.nn.Parameter
    phi_opt: Adam
    rl_opt: Adam
    critic_opt: Adam
    pevfa_opt: Adam
    _phi_params: list[torch.nn.Parameter]  # φ's parameters (one clip group)
    _rl_params: list[torch.nn.Parameter]  # the RL head's (another)
    _sources: list[torch.nn.Parameter]  # the parameters that have targets ...
    _targets: list[torch.Tensor]  # ... and their targets, in the same order (soft updates)

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
