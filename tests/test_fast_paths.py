"""The fast paths compute the same numbers as the plain ones they replace."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from core.networks import SharedStateRepresentation, StackedValueMLP, _rowwise_linear
from core.optim import clip_grad_norm


def test_clip_grad_norm_is_bit_identical_to_torch():
    torch.manual_seed(0)
    for scale in (1e-3, 1.0, 1e3):  # below, around and above the max norm of 10
        ours = [nn.Parameter(torch.randn(40, 30)) for _ in range(4)]
        theirs = [nn.Parameter(p.detach().clone()) for p in ours]
        for a, b in zip(ours, theirs):
            a.grad = torch.randn_like(a) * scale
            b.grad = a.grad.clone()
        clip_grad_norm([p.grad for p in ours], 10.0)
        nn.utils.clip_grad_norm_(theirs, 10.0)
        assert all(torch.equal(a.grad, b.grad) for a, b in zip(ours, theirs))


def _reference_layer_norm(x, gain, bias, eps=1e-6):
    return gain * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps) + bias


def test_stacked_twin_critic_equals_two_plain_critics():
    """Both Q heads in one batched call == two separate Linear→LN→leaky_relu stacks (the reference)."""
    torch.manual_seed(0)
    critic = StackedValueMLP(2, 23)
    x = torch.randn(64, 23)
    q = critic(x)[:, 0]  # [2, B, 1]
    for k in range(2):
        h = x @ critic.w1[k] + critic.b1[k]
        h = F.leaky_relu(_reference_layer_norm(h, critic.ln1.gain[k], critic.ln1.bias[k]))
        h = h @ critic.w2[k] + critic.b2[k]
        h = F.leaky_relu(_reference_layer_norm(h, critic.ln2.gain[k], critic.ln2.bias[k]))
        torch.testing.assert_close(q[k], h @ critic.w3[k] + critic.b3[k], rtol=0, atol=2e-6)  # measured: 2.0e-7
    # Q1 alone (the actor loss) is the first of the pair (to float32 rounding: another GEMM batch size).
    torch.testing.assert_close(critic(x, nets=slice(0, 1))[0, 0], q[0], rtol=0, atol=4e-7)  # measured: 3.9e-8


def test_shared_representation_fast_layer_norm_matches_reference_formula():
    torch.manual_seed(0)
    phi = SharedStateRepresentation(17)
    with torch.no_grad():  # non-trivial gains and biases
        for ln in (phi.ln1, phi.ln2):
            ln.gain.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.5, 0.5)
    s = torch.randn(32, 17) * 3
    h = torch.tanh(_reference_layer_norm(phi.l1(s), phi.ln1.gain, phi.ln1.bias))
    expected = torch.tanh(_reference_layer_norm(phi.l2(h), phi.ln2.gain, phi.ln2.bias))
    torch.testing.assert_close(phi(s), expected, rtol=1e-5, atol=1e-5)
    # acting's row-by-row products give the same features as the batched ones
    torch.testing.assert_close(phi(s, rowwise=True), phi(s), rtol=1e-5, atol=1e-5)
    # and each row's features do not depend on the other rows of the call
    assert torch.equal(phi(s, rowwise=True)[:5], phi(s[:5], rowwise=True))
    # acting()'s precomputed constants give the LayerNorm modules' arithmetic bit for bit
    with torch.no_grad():
        h = torch.tanh(phi.ln1(_rowwise_linear(s, phi.l1.weight.t(), phi.l1.bias)))
        plain = torch.tanh(phi.ln2(_rowwise_linear(h, phi.l2.weight.t(), phi.l2.bias)))
    assert torch.equal(phi.acting()(s), plain)


def test_adam_steps_a_transposed_gradient_like_the_plain_kernel():
    """PyTorch 2.13's fused CPU Adam reads a non-contiguous gradient in storage order; the project's
    Adam (core.ddpg.Adam, every optimiser of the learner) must give the for-loop kernel's step."""
    from core.ddpg import Adam

    torch.manual_seed(0)
    w = torch.randn(6, 300, dtype=torch.float64)
    for _ in range(3):
        grad = torch.randn(300, 6, dtype=torch.float64).t()  # what autograd.grad returns for x @ W.T
        assert not grad.is_contiguous()
        ours, plain = nn.Parameter(w.clone()), nn.Parameter(w.clone())
        ours.grad, plain.grad = grad, grad.clone()
        Adam([ours], lr=1e-3).step()
        torch.optim.Adam([plain], lr=1e-3, foreach=False, fused=False).step()
        torch.testing.assert_close(ours.detach(), plain.detach(), rtol=0, atol=1e-15)


def test_adam_fast_path_is_bit_identical_to_torch_fused_adam():
    """core.ddpg.Adam creates its state itself and calls the fused kernel directly on lists of it;
    every step, also after a checkpoint's ``load_state_dict``, equals ``torch.optim.Adam(fused=True)``."""
    from core.ddpg import Adam

    torch.manual_seed(0)
    ours = [nn.Parameter(torch.randn(7, 5)), nn.Parameter(torch.randn(5))]
    theirs = [nn.Parameter(p.detach().clone()) for p in ours]
    opt, ref = Adam(ours, lr=1e-2), torch.optim.Adam(theirs, lr=1e-2, fused=True)
    for step in range(6):
        if step == 3:  # a checkpoint round trip: new state tensors, the cached lists must follow them
            opt.load_state_dict(copy.deepcopy(opt.state_dict()))
        for a, b in zip(ours, theirs):
            a.grad = torch.randn_like(a)
            b.grad = a.grad.clone()
        opt.step()
        ref.step()
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs)), f"step {step}"
        for a, b in zip(ours, theirs):
            assert all(torch.equal(opt.state[a][k], ref.state[b][k]) for k in ("step", "exp_avg", "exp_avg_sq"))


def test_adam_step_needs_every_gradient():
    """core.ddpg.Adam always steps all of its parameters; a missing gradient is an error, not a skip."""
    from core.ddpg import Adam

    a, b = nn.Parameter(torch.randn(3)), nn.Parameter(torch.randn(2))
    a.grad = torch.randn(3)
    with pytest.raises(ValueError, match="every parameter needs a gradient"):
        Adam([a, b], lr=1e-3).step()
