"""The character-level RNN, and a NumPy stepper that runs it one character at a time.

`CharRNN` is embedding -> LSTM/GRU/RNN -> linear, built on PyTorch's fused recurrent
modules (cuDNN on GPU, oneDNN on CPU) for training and for whole-sequence scoring.

`Stepper` runs the same weights at batch size 1 in NumPy. At batch 1 a step is a few small
matrix-vector products, and PyTorch's per-operator overhead costs more than the arithmetic;
NumPy's BLAS gemv does the same step two to three times faster (BENCHMARKS.md). It also
folds the embedding into the first layer's input weights, so a character's input
projection is a table lookup.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

CELLS = ("lstm", "gru", "rnn")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 512
    embedding: int = 64
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, not {self.cell!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class CharRNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # Id 0 is the unknown character: a zero, untrained embedding, so unknown input is neutral.
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embedding, padding_idx=0)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cfg.cell]
        self.rnn = rnn(
            cfg.embedding, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0
        )
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


def state_tensors(state: State) -> dict[str, torch.Tensor]:
    """A state as named tensors (for safetensors)."""
    parts = state if isinstance(state, tuple) else (state,)
    return {f"state.{i}": p.detach().float().cpu().contiguous() for i, p in enumerate(parts)}


def state_from_tensors(tensors: dict[str, torch.Tensor], device: torch.device) -> State | None:
    parts = [tensors[k].to(device) for k in sorted(k for k in tensors if k.startswith("state."))]
    if not parts:
        return None
    return tuple(parts) if len(parts) == 2 else parts[0]


# --------------------------------------------------------------------------- batch-1 stepper


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5


class Stepper:
    """Runs a CharRNN's weights one character at a time in NumPy (float32).

    The state is a list with one array per layer: for an LSTM the layer's [h, c]
    concatenated, otherwise h. `step` returns the logits for the next character.
    """

    def __init__(self, cfg: ModelConfig, weights: dict[str, torch.Tensor | np.ndarray]):
        self.cfg = cfg
        w = {
            k: v.detach().float().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, np.float32)
            for k, v in weights.items()
        }
        H = cfg.hidden
        gates = {"lstm": 4, "gru": 3, "rnn": 1}[cfg.cell]
        # LSTM gates are reordered from PyTorch's (i, f, g, o) to (i, f, o, g): one sigmoid covers three.
        order = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H] if cfg.cell == "lstm" else np.arange(gates * H)
        emb = w["embed.weight"]
        self.layers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for layer in range(cfg.layers):
            w_ih, w_hh = w[f"rnn.weight_ih_l{layer}"][order], w[f"rnn.weight_hh_l{layer}"][order]
            b_ih, b_hh = w[f"rnn.bias_ih_l{layer}"][order], w[f"rnn.bias_hh_l{layer}"][order]
            if cfg.cell != "gru":  # GRU keeps b_hh apart: it sits inside r * (W_hn h + b_hn)
                b_ih, b_hh = b_ih + b_hh, np.zeros_like(b_hh)
            if layer == 0:  # input projection of every character, precomputed
                w_ih = (emb @ w_ih.T + b_ih).astype(np.float32)
            self.layers.append((np.ascontiguousarray(w_ih), np.ascontiguousarray(w_hh), b_ih, b_hh))
        self.head_w = np.ascontiguousarray(w["head.weight"])
        self.head_b = w["head.bias"]

    def initial_state(self) -> list[np.ndarray]:
        width = 2 if self.cfg.cell == "lstm" else 1
        return [np.zeros(width * self.cfg.hidden, np.float32) for _ in range(self.cfg.layers)]

    def step(self, char_id: int, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Feed one character id; return the next character's logits and the new state."""
        H = self.cfg.hidden
        x: np.ndarray | None = None
        new_state = []
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            s = state[layer]
            xp = w_ih[char_id] if layer == 0 else w_ih @ x + b_ih
            if self.cfg.cell == "lstm":
                h, c = s[:H], s[H:]
                g = xp + w_hh @ h
                sig = _sigmoid(g[: 3 * H])
                c = sig[H : 2 * H] * c + sig[:H] * np.tanh(g[3 * H :])
                x = sig[2 * H :] * np.tanh(c)
                new_state.append(np.concatenate([x, c]))
            elif self.cfg.cell == "gru":
                hp = w_hh @ s + b_hh
                rz = _sigmoid(xp[: 2 * H] + hp[: 2 * H])
                n = np.tanh(xp[2 * H :] + rz[:H] * hp[2 * H :])
                x = n + rz[H:] * (s - n)
                new_state.append(x)
            else:
                x = np.tanh(xp + w_hh @ s)
                new_state.append(x)
        return self.head_w @ x + self.head_b, new_state
