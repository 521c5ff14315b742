"""The ERL-Re² learner (placeholder while the learner is being written)."""
from __future__ import annotations

import torch


def policy_rows(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Rows of linear policy heads: row j is ``[W[j, :], b[j]]`` (paper §3.2, PeVFA).

    ``weight`` is ``[..., A, ls]`` and ``bias`` ``[..., A]`` (any leading batch axes, e.g. the
    population axis); the result is ``[..., A, ls + 1]``. This is the one definition of the
    row layout, used by the PeVFA policy encoder and by behaviour-level crossover.
    """
    return torch.cat([weight, bias.unsqueeze(-1)], dim=-1)
