"""AdamW: the update torch.optim.AdamW makes, without torch.optim.

Why not torch.optim.AdamW: its constructor imports torch._dynamo, which took about 1.8 s on a
2-core CPU, half the time from `rnn-tui launch` to the first training step. The update is the
same (decoupled weight decay, bias-corrected moments, eps outside the square root), and
tests/test_optim.py holds it to torch's.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
from torch import nn


class AdamW:
    """AdamW over one group of parameters; set `lr` before each step to schedule the rate.

    It runs PyTorch's fused AdamW kernel where there is one (CUDA; the CPU from PyTorch 2.4), the
    kernel torch.optim.AdamW(fused=True) runs, else the same update as multi-tensor operations.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        fused: bool = True,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.fused = fused and hasattr(torch, "_fused_adamw_")
        self.state: dict[torch.Tensor, dict] = {}  # per parameter: step, exp_avg, exp_avg_sq (tensors)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self._adamw([p for p in self.params if p.grad is not None])

    def _adamw(self, ps: list[torch.Tensor]) -> None:
        if not ps:
            return
        for p in ps:
            if "exp_avg_sq" not in self.state.get(p, ()):  # new, or Muon's until a resume changed the optimizer
                zero = torch.zeros((), dtype=torch.float32, device=p.device)
                self.state[p] = {"step": zero, "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
        grads = [p.grad for p in ps]
        steps, m, v = ([self.state[p][k] for p in ps] for k in ("step", "exp_avg", "exp_avg_sq"))
        torch._foreach_add_(steps, 1)
        if self.fused:
            try:
                beta1, beta2 = self.betas
                torch._fused_adamw_(
                    ps,
                    grads,
                    m,
                    v,
                    [],
                    steps,
                    lr=self.lr,
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=self.weight_decay,
                    eps=self.eps,
                    amsgrad=False,
                    maximize=False,
                )
                return
            except (RuntimeError, NotImplementedError):  # no fused kernel for this device in this PyTorch
                self.fused = False
        self._foreach(ps, grads, m, v, [float(s) for s in steps])

    def _foreach(self, ps: list, grads: list, m: list, v: list, steps: list[float]) -> None:
        beta1, beta2 = self.betas
        if self.weight_decay:
            torch._foreach_mul_(ps, 1 - self.lr * self.weight_decay)
        torch._foreach_lerp_(m, grads, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, 1 - beta2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, [math.sqrt(1 - beta2**s) for s in steps])
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(ps, m, denom, [-self.lr / (1 - beta1**s) for s in steps])

    def state_dict(self) -> dict[int, dict]:
        """The moments and step counts by parameter index (a copy, for snapshots and checkpoints)."""
        index = {p: i for i, p in enumerate(self.params)}
        return {index[p]: {k: t.clone() for k, t in s.items()} for p, s in self.state.items()}

    def load_state_dict(self, state: dict[int, dict]) -> None:
        self.state = {}
        for i, s in state.items():
            p = self.params[i]
            step = torch.as_tensor(s["step"], dtype=torch.float32).to(p.device).clone()
            moments = {k: s[k].to(p.device, p.dtype).clone() for k in ("exp_avg", "exp_avg_sq") if k in s}
            self.state[p] = {"step": step, **moments}


# Newton-Schulz coefficients of Muon's quintic iteration (Jordan et al., 2024).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalize(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """About U V^T for each matrix of a stack g (k, m, n) = U S V^T: Newton-Schulz iteration, in g's dtype."""
    a, b, c = NS_COEFFICIENTS
    tall = g.shape[-2] > g.shape[-1]
    x = g.mT if tall else g
    x = x / (torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        gram = x @ x.mT
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.mT if tall else x


class Muon(AdamW):
    """Muon for the given weight matrices (momentum, orthogonalised by Newton-Schulz), AdamW for the rest.

    Each matrix is cut into `blocks` row blocks (one per gate of a recurrent layer), orthogonalised
    apart. The update is scaled by 0.2 * sqrt(max(rows, columns)), which gives it about the size
    of an AdamW update (Liu et al., 2025, "Muon is scalable"), so the two share one learning rate.
    The momentum lives in `exp_avg`, so checkpoints keep their format. `dtype`: bf16 where the
    hardware multiplies it, else float32.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        matrices: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        blocks: int = 1,
        momentum: float = 0.95,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(params, lr, betas, weight_decay=weight_decay)
        self.matrices = {id(m) for m in matrices}
        self.blocks, self.momentum, self.dtype = blocks, momentum, dtype

    @torch.no_grad()
    def step(self) -> None:
        ps = [p for p in self.params if p.grad is not None]
        self._adamw([p for p in ps if id(p) not in self.matrices])
        for p in ps:
            if id(p) in self.matrices:
                self._muon(p)

    def _muon(self, p: torch.Tensor) -> None:
        if p not in self.state:
            zero = torch.zeros((), dtype=torch.float32, device=p.device)
            self.state[p] = {"step": zero, "exp_avg": torch.zeros_like(p)}
        state = self.state[p]
        state["step"] += 1
        buf = state["exp_avg"].lerp_(p.grad, 1 - self.momentum)
        update = p.grad.lerp(buf, self.momentum)  # Nesterov
        rows = p.shape[0] // self.blocks
        o = orthogonalize(update.to(self.dtype).view(self.blocks, rows, p.shape[1]))
        if self.weight_decay:
            p.mul_(1 - self.lr * self.weight_decay)
        p.add_(o.reshape(p.shape).to(p.dtype), alpha=-self.lr * 0.2 * math.sqrt(max(rows, p.shape[1])))


class Average:
    """An exponential moving average of a model's weights, kept in a copy of the model that never trains.

    Its decay is capped at (1 + step) / (10 + step), so that early on the average follows the
    weights instead of keeping the random start."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(list(self.model.parameters()), list(model.parameters()), 1 - decay)
