"""The learner's optimiser: PyTorch's fused Adam called directly, and gradient-norm clipping on
gradient lists (both bit-identical to the library's versions; tests/test_fast_paths.py)."""
from __future__ import annotations

import torch
from torch.optim.optimizer import _get_scalar_dtype


def clip_grad_norm(grads: list[torch.Tensor] | tuple[torch.Tensor, ...], max_norm: float) -> None:
    """``nn.utils.clip_grad_norm_`` on the gradients themselves, in place (same formula: scale by
    min(1, max_norm / (‖g‖ + 1e-6))), in four multi-tensor ops and no host sync; the library
    version adds several ops per tensor."""
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp(max=1.0))


class Adam(torch.optim.Adam):
    """The only optimiser of this project: PyTorch's Adam with the fused kernel (CPU and CUDA,
    ~3x faster than the multi-tensor one at these sizes), safe for any gradient layout.

    Why the subclass: PyTorch 2.13's fused CPU Adam reads a non-contiguous gradient in storage
    order, so element W[i, j] is updated with another element's gradient (the for-loop and
    multi-tensor kernels are correct). ``torch.autograd.grad`` returns the gradient of a weight
    used as ``x @ W.T`` as a transposed view, and this project once trained its RL head with such
    a scrambled step. ``update`` (and ``step``, which calls it) makes every gradient contiguous
    first, whatever produced it.

    Fast path: ``update`` creates the state on its first call, exactly as the library
    does on the first step, then does what ``torch.optim.Adam(fused=True).step`` ends in (add 1 to
    every step count, then ``_fused_adam_``) on lists of the parameters and their state, skipping
    the library's per-call grouping, checks and profiling hooks: bit-identical to it.
    """

    def __init__(self, params, lr: float):
        super().__init__(params, lr=lr, fused=True)
        self.params = list(self.param_groups[0]["params"])
        self._lists: tuple[list[torch.Tensor], ...] | None = None
        self._counts: torch.Tensor | None = None  # every parameter's step count is a view into it (create_state)

    def create_state(self) -> None:
        """Adam's state of every parameter that has none yet (zero moments, step 0, as the library
        creates it), and the lists ``update`` works on. Idempotent."""
        if self._lists is not None:
            return
        for p in self.params:
            if not self.state[p]:
                self.state[p] = {
                    "step": torch.zeros((), dtype=_get_scalar_dtype(is_fused=True), device=p.device),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
        # The step counts, one 0-dim tensor per parameter as the library keeps them, are views into one
        # vector, so that a step increments them all with one add (the library's ``_foreach_add_`` is one
        # add and a scalar conversion per parameter on the CPU: 2–3 % of an iteration, docs/speed.md).
        # Same values, same state_dict.
        self._counts = torch.stack([self.state[p]["step"] for p in self.params])
        for i, p in enumerate(self.params):
            self.state[p]["step"] = self._counts[i]
        self._lists = tuple([self.state[p][k] for p in self.params] for k in ("exp_avg", "exp_avg_sq", "step"))

    @torch.no_grad()
    def step(self, closure=None):
        """The library's interface: one Adam step from every parameter's ``.grad``."""
        loss = closure() if closure is not None else None
        if any(p.grad is None for p in self.params):
            raise ValueError("Adam.step: every parameter needs a gradient (this optimiser always steps all of them)")
        self.update([p.grad for p in self.params])
        return loss

    @torch.compiler.disable  # -compile: the fused kernel, eager (3x faster than inductor's Adam at these sizes)
    @torch.no_grad()
    def update(self, grads: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> None:
        """One Adam step with ``grads`` (one per parameter, in the order given at construction)."""
        self.create_state()
        (group,) = self.param_groups
        grads = [g if g.is_contiguous() else g.contiguous() for g in grads]
        exp_avgs, exp_avg_sqs, steps = self._lists
        beta1, beta2 = group["betas"]
        self._counts.add_(1)
        torch._fused_adam_(self.params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=group["lr"],
                           beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                           maximize=False, grad_scale=None, found_inf=None)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._lists = None  # a checkpoint brings new state tensors: gathered again by the next update
