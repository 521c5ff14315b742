"""The ERL-Re² learner (ALGORITHM.md §1 and §4): shared state representation φ, linear policy
heads (population + RL), critic and PeVFA, trained by TD3 (default) or DDPG.

``ERLRe2Learner`` holds the networks, their targets and optimisers; it acts (``policy``,
``pevfa_value``), runs a generation's iterations (``train_iterations``: each draws its random numbers,
then runs ``_update``), accumulates the losses and checkpoints. The update itself, a–c (PeVFA, critic,
RL head and φ): ``core/learner_update.py``; the settings: ``core/learner_config.py``.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from core.learner_config import LearnerConfig
from core.learner_update import Draws, LearnerUpdate
from core.networks import (
    LS,
    PeVFA,
    SharedStateRepresentation,
    StackedValueMLP,
    linear_head_init,
    policy_actions,
)
from core.optim import Adam
from core.replay_memory import Batch, ReplayMemory

LOSS_NAMES = ("critic_loss", "actor_loss", "pevfa_loss", "ea_loss")


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


class ERLRe2Learner(LearnerUpdate, nn.Module):
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

    def _rows(self, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """The PeVFA encoder's input rows of heads: the authors' layout, or true rows with ``-pevfa_rows paper``."""
        return policy_rows(weight, bias, self.cfg.pevfa_rows)

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
