"""The baselines, written plainly: what a careful user would write with stock PyTorch.

- `BaselineLSTM` + `baseline_train_step`: an fp32 `nn.LSTM` character model trained with Adam.
- `baseline_sample`: batch-1 sampling through `nn.LSTM`, one character at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BaselineLSTM(nn.Module):
    def __init__(self, vocab: int, hidden: int, layers: int, embedding: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, embedding)
        self.rnn = nn.LSTM(embedding, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.rnn(self.embed(x), state)
        return self.head(out), state


def baseline_trainer(model: BaselineLSTM, lr: float = 2e-3):
    """A closure that takes one fp32 training step on (x, y) and returns the loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        logits, _ = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    return step


@torch.no_grad()
def baseline_sample(
    model: BaselineLSTM, prime: torch.Tensor, n: int, temperature: float = 1.0, seed: int = 0
) -> list[int]:
    """Feed the prime in one call, then sample `n` characters one `nn.LSTM` call at a time."""
    g = torch.Generator().manual_seed(seed)
    logits, state = model(prime[None])
    out = []
    x = logits[0, -1]
    for _ in range(n):
        c = torch.multinomial(torch.softmax(x / temperature, -1), 1, generator=g)
        out.append(int(c))
        logits, state = model(c.view(1, 1), state)
        x = logits[0, -1]
    return out
