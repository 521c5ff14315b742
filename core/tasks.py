"""Per-task settings and published scores of ERL-Re² (paper appendix and learning curves).

Settings are chosen by task *family* (``HalfCheetah-v4`` and ``HalfCheetah-v5`` alike), so a
version suffix never changes the algorithm's hyperparameters.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSettings:
    theta: float  # probability of Monte-Carlo (full-episode) fitness
    frac: float  # fraction of a head row's columns touched by mutation
    time_steps: int  # H of the H-step bootstrapped fitness
    K: int  # actors whose PeVFA loss shapes the shared representation
    gamma: float
    sync_period: int = 1  # generations between RL→EA syncs



# Paper appendix, TD3 version.
TD3_SETTINGS: dict[str, TaskSettings] = {
    "HalfCheetah": TaskSettings(theta=0.3, frac=1.0, time_steps=200, K=1, gamma=0.99),
    "Walker2d": TaskSettings(theta=0.8, frac=0.2, time_steps=50, K=1, gamma=0.99),
    "Swimmer": TaskSettings(theta=0.3, frac=1.0, time_steps=200, K=3, gamma=0.999, sync_period=10),
    "Hopper": TaskSettings(theta=0.8, frac=0.2, time_steps=50, K=3, gamma=0.99),
    "Ant": TaskSettings(theta=0.5, frac=0.7, time_steps=200, K=1, gamma=0.99),
    "Humanoid": TaskSettings(theta=0.5, frac=0.5, time_steps=200, K=1, gamma=0.99),
}

# Paper appendix, DDPG version: (theta, frac, H, K); gamma as in the TD3 table.
DDPG_SETTINGS: dict[str, TaskSettings] = {
    "HalfCheetah": TaskSettings(theta=0.5, frac=1.0, time_steps=200, K=1, gamma=0.99),
    "Walker2d": TaskSettings(theta=0.8, frac=0.2, time_steps=50, K=1, gamma=0.99),
    "Swimmer": TaskSettings(theta=0.3, frac=0.5, time_steps=200, K=3, gamma=0.999, sync_period=10),
    "Hopper": TaskSettings(theta=0.8, frac=0.7, time_steps=50, K=3, gamma=0.99),
    "Ant": TaskSettings(theta=0.7, frac=0.5, time_steps=200, K=1, gamma=0.99),
    "Humanoid": TaskSettings(theta=0.7, frac=0.5, time_steps=200, K=1, gamma=0.99),
}

# Score at 1M frames read off the paper's learning curves (TD3 versions, ±5%).
PAPER_SCORES: dict[str, dict[str, float]] = {
    "HalfCheetah": {"ERL-Re2": 11100, "TD3": 9300},
    "Hopper": {"ERL-Re2": 3500, "TD3": 3150},
    "Walker2d": {"ERL-Re2": 5350, "TD3": 3800},
    "Ant": {"ERL-Re2": 6100, "TD3": 4850},
    "Humanoid": {"ERL-Re2": 5550, "TD3": 5000},
    "Swimmer": {"ERL-Re2": 360, "TD3": 100},
}

# TD3 reference scores by frame budget, for normalising runs at that budget only: the paper's TD3
# curve at 1M, and at 100k and 300k Tianshou's TD3 benchmark (10 seeds, gym MuJoCo v3; mean test
# return at that step in examples/mujoco/benchmark/<task>-v3/td3/test_rew_10seeds.csv of
# github.com/thu-ml/tianshou, commit 39acf20).
TD3_REFERENCES: dict[int, tuple[str, dict[str, float]]] = {
    100_000: ("Tianshou's TD3 at 100k", {"HalfCheetah": 5336, "Hopper": 597, "Walker2d": 483, "Ant": 828,
                                          "Humanoid": 503, "Swimmer": 45}),
    300_000: ("Tianshou's TD3 at 300k", {"HalfCheetah": 7546, "Hopper": 1583, "Walker2d": 1663, "Ant": 2836,
                                          "Humanoid": 2311, "Swimmer": 59}),
    1_000_000: ("the paper's TD3 at 1M", {task: s["TD3"] for task, s in PAPER_SCORES.items()}),
}

# Published TD3 at 1M steps, (mean, std over seeds) of each seed's best mean test return within the first 1M steps:
# Tianshou's benchmark (10 seeds, gym MuJoCo v3) and the TD3 paper (Fujimoto et al. 2018, Table 1; 10 seeds, v1
# tasks; not every task), both as tabulated in examples/mujoco/README.md of github.com/thu-ml/tianshou, commit 0c0424e.
PUBLISHED_TD3_1M: dict[str, dict[str, tuple[float, float]]] = {
    "HalfCheetah": {"Tianshou": (10201.2, 772.8), "TD3 paper": (9637.0, 859.1)},
    "Hopper": {"Tianshou": (3472.2, 116.8), "TD3 paper": (3564.1, 114.7)},
    "Walker2d": {"Tianshou": (3982.4, 274.5), "TD3 paper": (4682.8, 539.6)},
    "Ant": {"Tianshou": (5116.4, 799.9), "TD3 paper": (4372.4, 1000.3)},
    "Humanoid": {"Tianshou": (5189.5, 178.5)},
    "Swimmer": {"Tianshou": (104.2, 34.2)},
}

MUJOCO_TASKS = tuple(TD3_SETTINGS)
# The reference syncs the RL head into the population every generation only on the tasks its name
# list holds (HalfCheetah, Hopper, Walker2d, Ant, Humanoid); every other task, Swimmer included,
# every 10 generations. The tables above record it; a task outside them gets 10 as well.
OTHER_SYNC_PERIOD = 10


def task_family(env_id: str) -> str:
    """``'HalfCheetah-v4' -> 'HalfCheetah'``: the id without its version suffix or namespace."""
    name = env_id.split("/")[-1]
    return re.sub(r"-v\d+$", "", name)


def task_settings(env_id: str, rl_algo: str = "td3") -> TaskSettings | None:
    """The paper's settings for ``env_id``'s family, or ``None`` for a task the paper did not run."""
    table = DDPG_SETTINGS if rl_algo == "ddpg" else TD3_SETTINGS
    return table.get(task_family(env_id))


def default_sync_period(env_id: str) -> int:
    settings = task_settings(env_id)
    return settings.sync_period if settings else OTHER_SYNC_PERIOD


def close_task_names(env_id: str, known: list[str], n: int = 3) -> list[str]:
    """Registered ids that look like ``env_id`` (for the unknown-task error)."""
    lower = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(env_id.lower(), list(lower), n=n, cutoff=0.5)
    return [lower[h] for h in hits]
