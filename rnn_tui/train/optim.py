"""AdamW: the update torch.optim.AdamW makes, without torch.optim.

Why not torch.optim.AdamW: its constructor imports torch._dynamo, which took about 1.8 s on a
2-core CPU, half the time from `rnn-tui launch` to the first training step. The update is the
same (decoupled weight decay, bias-corrected moments, eps outside the square root), and
tests/test_optim.py holds it to torch's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


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
        ps = [p for p in self.params if p.grad is not None]
        if not ps:
            return
        for p in ps:
            if p not in self.state:
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
            moments = {k: s[k].to(p.device, p.dtype).clone() for k in ("exp_avg", "exp_avg_sq")}
            self.state[p] = {"step": step, **moments}
