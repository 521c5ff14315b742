"""Networks of ERL-Re² (ALGORITHM.md §1): shared state representation, linear policy heads,
critics and the policy-extended value function (PeVFA).

Twin networks (Q1/Q2, V1/V2 and their policy encoders) are stored as *stacked* parameters with
a leading axis of size ``n`` and evaluated with one batched matmul per layer instead of two
module calls. Each stacked net is initialised exactly as an independent ``nn.Linear`` stack.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

LS = 300  # width of the shared state representation (the linear heads' input)
HIDDEN = (400, 300)
ALL = slice(None)  # every stacked net


class LayerNorm(nn.Module):
    """The reference's LayerNorm: ``gain * (x - mean) / (std + 1e-6) + bias`` with the unbiased std.

    Computed with the fused kernel: ``(x - mean) / std_unbiased`` is
    ``sqrt((n-1)/n) * (x - mean) / std_biased``, and an eps of 1e-12 inside the square root
    gives the same 1e-6 floor on the denominator (equal to float32 rounding, ~5x faster).
    ``shape`` may carry leading stacked axes, e.g. ``(2, 1, 400)`` for twin networks.
    """

    def __init__(self, shape: tuple[int, ...] | int, eps: float = 1e-6):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.eps = eps

    def forward(self, x: torch.Tensor, nets: slice = ALL) -> torch.Tensor:
        return self.normalize(x, *self.affine(nets))

    def affine(self, nets: slice = ALL) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gain·sqrt((n-1)/n), bias)`` of nets ``nets``: what ``normalize`` scales and shifts by
        (made once per rollout for acting, see ``SharedStateRepresentation.acting``)."""
        n = self.gain.shape[-1]
        return _pick(self.gain, nets) * math.sqrt((n - 1) / n), _pick(self.bias, nets)

    def normalize(self, x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(bias, gain, F.layer_norm(x, (x.shape[-1],), eps=self.eps * self.eps))


def _pick(param: torch.Tensor, nets: slice) -> torch.Tensor:
    """The stacked nets ``nets`` of a parameter; the parameter itself when all are used (indexing
    would add a slice and its backward, a zero-fill and copy, to every training step)."""
    return param if nets == ALL else param[nets]


def _uniform(shape: tuple[int, ...], fan_in: int) -> nn.Parameter:
    """``nn.Linear``'s default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class SharedStateRepresentation(nn.Module):
    """φ: S → 400 → LayerNorm → tanh → ls → LayerNorm → tanh. One network shared by every policy."""

    def __init__(self, state_dim: int, ls: int = LS):
        super().__init__()
        self.l1 = nn.Linear(state_dim, HIDDEN[0])
        self.ln1 = LayerNorm(HIDDEN[0])
        self.l2 = nn.Linear(HIDDEN[0], ls)
        self.ln2 = LayerNorm(ls)

    def forward(self, state: torch.Tensor, rowwise: bool = False) -> torch.Tensor:
        """φ(s). ``rowwise=True`` is ``acting()(state)``."""
        if rowwise:
            return self.acting()(state)
        x = torch.tanh(self.ln1(F.linear(state, self.l1.weight, self.l1.bias)))
        return torch.tanh(self.ln2(F.linear(x, self.l2.weight, self.l2.bias)))

    def acting(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """φ for acting: each state's row computed with its own 1-row product, so that an action never
        depends on how many episodes share the call (lockstep rollouts then match one-by-one episodes
        bit for bit; a GEMM's rounding depends on the batch size, and chaotic tasks amplify 1e-7 into
        a different trajectory). The layers' per-call constants (transposed weights,
        ``LayerNorm.affine``) are made once here, so the function is valid until the parameters next
        change, i.e. for one rollout (the policy call for 5 states inside a rollout: 226 -> 152 µs)."""
        layers = [(lin.weight.t(), lin.bias, ln, *ln.affine()) for lin, ln in ((self.l1, self.ln1), (self.l2, self.ln2))]

        def phi(x: torch.Tensor) -> torch.Tensor:
            for w_t, b, ln, gain, bias in layers:
                x = torch.tanh(ln.normalize(_rowwise_linear(x, w_t, b), gain, bias))
            return x

        return phi


def _rowwise_linear(x: torch.Tensor, w_t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ w_t + bias`` with one 1-row product per row of ``x`` (``w_t``: the transposed weight)."""
    # A batch of one is computed as a batch of two (the row twice): MKL sends a one-matrix batched
    # product down another kernel, whose rounding differs (seen on Intel Xeon: 4e-6 on φ's second
    # layer), while every batch of two or more rounds each row identically.
    m = x.shape[0]
    if m == 1:
        return _rowwise_linear(x.expand(2, -1), w_t, bias)[:1]
    return torch.baddbmm(bias.expand(m, 1, -1), x.unsqueeze(1), w_t.expand(m, *w_t.shape))[:, 0]


def linear_head_init(n: int, action_dim: int, ls: int = LS, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` linear policy heads (weight ``[n, A, ls]``, bias ``[n, A]``) with ``nn.Linear``'s
    default init, multiplied by ``scale`` (0.1 for the RL head)."""
    bound = 1.0 / math.sqrt(ls)
    weight = torch.empty(n, action_dim, ls).uniform_(-bound, bound) * scale
    bias = torch.empty(n, action_dim).uniform_(-bound, bound) * scale
    return weight, bias


def policy_actions(weight: torch.Tensor, bias: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Actions ``tanh(W_p φ(s) + b_p)`` of P linear heads in one batched call.

    weight ``[P, A, ls]``, bias ``[P, A]``, features ``[P, B, ls]`` (or ``[B, ls]``, shared by all
    heads) → actions ``[P, B, A]`` in [-1, 1].
    """
    if features.dim() == 2:
        features = features.expand(weight.shape[0], *features.shape)
    return torch.tanh(torch.baddbmm(bias.unsqueeze(1), features, weight.transpose(1, 2)))


class StackedValueMLP(nn.Module):
    """``n`` independent heads Linear(in,400) → LN → leaky_relu → Linear(400,300) → LN →
    leaky_relu → Linear(300,1), output layer ×0.1 at init (critic and PeVFA value heads).

    An optional conditioning input (the policy representation χ) is concatenated to ``x``; its
    share of the first layer is applied once per policy rather than once per sample, which is
    the same linear map as ``Linear(cat(x, χ))``.
    """

    def __init__(self, n: int, in_dim: int, cond_dim: int = 0):
        super().__init__()
        fan_in = in_dim + cond_dim
        h1, h2 = HIDDEN
        self.n = n
        self.w1 = _uniform((n, in_dim, h1), fan_in)
        self.w1_cond = _uniform((n, cond_dim, h1), fan_in) if cond_dim else None
        self.b1 = _uniform((n, 1, h1), fan_in)
        self.ln1 = LayerNorm((n, 1, h1))
        self.w2 = _uniform((n, h1, h2), h1)
        self.b2 = _uniform((n, 1, h2), h1)
        self.ln2 = LayerNorm((n, 1, h2))
        self.w3 = nn.Parameter(_uniform((n, h2, 1), h2).data * 0.1)
        self.b3 = nn.Parameter(_uniform((n, 1, 1), h2).data * 0.1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, nets: slice = ALL) -> torch.Tensor:
        """Values of nets ``nets`` (all by default; ``slice(0, 1)`` for Q1/V1 alone).

        x: ``[B, in]`` (shared by every net and policy) or ``[P, B, in]`` (one slice per policy);
        cond: ``[n', P, cond]`` (the policy representation each selected net sees). Returns
        ``[n', P, B, 1]``
        (``P = 1`` without policies).
        """
        w1, b1 = _pick(self.w1, nets), _pick(self.b1, nets)
        n = w1.shape[0]
        if x.dim() == 2:
            x = x.unsqueeze(0)
        p, b = (cond.shape[1] if cond is not None else x.shape[0]), x.shape[1]
        h = torch.matmul(x.reshape(1, -1, x.shape[-1]), w1)  # [n, P'·B, h1]
        if cond is not None:
            h = h.view(n, -1, b, h.shape[-1])  # [n, P' (1 or P), B, h1]
            h = h + (torch.matmul(cond, _pick(self.w1_cond, nets)) + b1).unsqueeze(2)
            h = h.expand(n, p, b, h.shape[-1]).reshape(n, p * b, -1)
        else:
            h = h + b1
        h = F.leaky_relu(self.ln1(h, nets))
        h = F.leaky_relu(self.ln2(torch.baddbmm(_pick(self.b2, nets), h, _pick(self.w2, nets)), nets))
        return torch.baddbmm(_pick(self.b3, nets), h, _pick(self.w3, nets)).view(n, p, b, 1)


class StackedPolicyEncoder(nn.Module):
    """χ(π): each head row ``[W[j], b[j]]`` → Linear(ls+1, pr) → leaky_relu → Linear(pr, pr) →
    leaky_relu → Linear(pr, pr), averaged over the A rows (paper §3.2). ``n`` independent encoders."""

    def __init__(self, n: int, ls: int, pr: int):
        super().__init__()
        self.w1, self.b1 = _uniform((n, ls + 1, pr), ls + 1), _uniform((n, 1, pr), ls + 1)
        self.w2, self.b2 = _uniform((n, pr, pr), pr), _uniform((n, 1, pr), pr)
        self.w3, self.b3 = _uniform((n, pr, pr), pr), _uniform((n, 1, pr), pr)

    def forward(self, rows: torch.Tensor, nets: slice = ALL) -> torch.Tensor:
        """rows ``[P, A, ls+1]`` (from ``core.ddpg.policy_rows``) → χ ``[n', P, pr]``."""
        p, a, _ = rows.shape
        x = rows.reshape(1, p * a, -1)
        h = F.leaky_relu(torch.matmul(x, _pick(self.w1, nets)) + _pick(self.b1, nets))
        h = F.leaky_relu(torch.baddbmm(_pick(self.b2, nets), h, _pick(self.w2, nets)))
        h = torch.baddbmm(_pick(self.b3, nets), h, _pick(self.w3, nets))
        return h.view(h.shape[0], p, a, -1).mean(2)


class PeVFA(nn.Module):
    """Policy-extended value function V_k(x, χ_k(π)), k ∈ {1, 2} (paper §3.2).

    ``x = cat(s, a)`` with OFF_TYPE 1, ``x = φ(s)`` with OFF_TYPE 2. Each twin has its own policy
    encoder and value head.
    """

    def __init__(self, input_dim: int, ls: int, pr: int, n: int = 2):
        super().__init__()
        self.encoder = StackedPolicyEncoder(n, ls, pr)
        self.value = StackedValueMLP(n, input_dim, cond_dim=pr)

    def policy_representation(self, rows: torch.Tensor, nets: slice = ALL) -> torch.Tensor:
        return self.encoder(rows, nets)

    def forward(self, x: torch.Tensor, chi: torch.Tensor, nets: slice = ALL) -> torch.Tensor:
        """x ``[B, in]`` or ``[P, B, in]``, χ ``[n', P, pr]`` from the same ``nets`` → ``[n', P, B, 1]``."""
        return self.value(x, chi, nets)
