"""The learner's settings (``LearnerConfig``; ``core.agent.learner_config`` builds it from a run's
settings) and the values its variant switches accept (``parameters.py`` offers them as choices).
"""
from __future__ import annotations

from dataclasses import dataclass

VARIANTS = ("reference", "paper")  # values of LearnerConfig.pevfa_rows and .phi_grad (-pevfa_rows, -phi_grad)
CRITIC_ACTIONS = ("reference", "batch")  # values of LearnerConfig.critic_actions (-critic_actions)


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
