"""The character-level RNN that trains: embedding, a fused recurrent module, a linear head.

The recurrent module is PyTorch's own (cuDNN on a GPU, oneDNN on a CPU), picked from the
cell table in config.py. Generation in the app does not use this class: inference.py runs
the same weights in NumPy.
"""

from __future__ import annotations

import torch
from torch import nn

from rnn_tui.config import ModelConfig

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class CharRNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # Id 0 is the unknown character: a zero, untrained embedding, so unknown input is neutral.
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embedding, padding_idx=0)
        rnn = getattr(nn, cfg.spec.torch_name)
        dropout = cfg.dropout if cfg.layers > 1 else 0.0
        self.rnn = rnn(cfg.embedding, cfg.hidden, cfg.layers, batch_first=True, dropout=dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, cfg.vocab_size)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids (B, T) -> logits (B, T, V) and the state after the last step."""
        out, state = self.rnn(self.drop(self.embed(ids)), state)
        return self.head(self.drop(out)), state

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach_state(state: State) -> State:
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
