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
    dropout: float = 0.2

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


class Stepper:
    """Runs a CharRNN's weights at batch size 1 in NumPy (float32).

    The state is a list with one array per layer: for an LSTM the layer's [h, c]
    concatenated, otherwise h. `step` feeds one character; `run` feeds many at once,
    layer by layer, so the input projections of the upper layers and the output layer
    become one matrix product each. Both share the cell arithmetic; they differ only in
    the rounding of those products (about 1e-7).
    """

    def __init__(self, cfg: ModelConfig, weights: dict[str, torch.Tensor | np.ndarray]):
        self.cfg = cfg
        w = {
            k: v.detach().float().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, np.float32)
            for k, v in weights.items()
        }
        H = cfg.hidden
        # LSTM gates are reordered from PyTorch's (i, f, g, o) to (i, f, o, g), and the rows of the
        # three sigmoid gates are halved: sigmoid(x) = (1 + tanh(x / 2)) / 2, so one tanh does all four.
        if cfg.cell == "lstm":
            order = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]
            scale = np.r_[np.full(3 * H, 0.5, np.float32), np.ones(H, np.float32)][:, None]
        else:
            order, scale = np.arange({"gru": 3, "rnn": 1}[cfg.cell] * H), np.float32(1)
        emb = w["embed.weight"]
        self.layers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for layer in range(cfg.layers):
            w_ih = w[f"rnn.weight_ih_l{layer}"][order] * scale
            w_hh = w[f"rnn.weight_hh_l{layer}"][order] * scale
            b_ih = w[f"rnn.bias_ih_l{layer}"][order] * scale[:, 0] if cfg.cell == "lstm" else w[f"rnn.bias_ih_l{layer}"]
            b_hh = w[f"rnn.bias_hh_l{layer}"][order] * scale[:, 0] if cfg.cell == "lstm" else w[f"rnn.bias_hh_l{layer}"]
            if cfg.cell != "gru":  # GRU keeps b_hh apart: it sits inside r * (W_hn h + b_hn)
                b_ih, b_hh = b_ih + b_hh, np.zeros_like(b_hh)
            if layer == 0:  # the input projection of every character, precomputed
                w_ih = emb @ w_ih.T + b_ih
            self.layers.append(tuple(np.ascontiguousarray(a, dtype=np.float32) for a in (w_ih, w_hh, b_ih, b_hh)))
        self.head_w = np.ascontiguousarray(w["head.weight"])
        self.head_b = w["head.bias"]

    def initial_state(self) -> list[np.ndarray]:
        width = 2 if self.cfg.cell == "lstm" else 1
        return [np.zeros(width * self.cfg.hidden, np.float32) for _ in range(self.cfg.layers)]

    def _cell(self, xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
        """One layer, one character: input projection `xp` and state `s` in, new state out."""
        H = self.cfg.hidden
        if self.cfg.cell == "lstm":
            g = w_hh @ s[:H]
            g += xp
            np.tanh(g, out=g)
            gates = g[: 3 * H]
            gates += 1.0  # 2 * sigmoid: the 0.5s are folded in below
            out = np.empty(2 * H, np.float32)
            c = out[H:]
            np.multiply(gates[H : 2 * H], s[H:], out=c)
            c += gates[:H] * g[3 * H :]
            c *= 0.5
            h = out[:H]
            np.tanh(c, out=h)
            h *= gates[2 * H :]
            h *= 0.5
            return out
        if self.cfg.cell == "gru":
            hp = w_hh @ s
            hp += b_hh
            rz = xp[: 2 * H] + hp[: 2 * H]
            rz *= 0.5
            np.tanh(rz, out=rz)
            rz += 1.0
            rz *= 0.5
            n = np.tanh(xp[2 * H :] + rz[:H] * hp[2 * H :])
            return n + rz[H:] * (s - n)
        return np.tanh(xp + w_hh @ s)

    def step(self, char_id: int, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Feed one character id; return the next character's logits and the new state."""
        H = self.cfg.hidden
        new_state = []
        x = None
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            xp = w_ih[char_id] if layer == 0 else w_ih @ x + b_ih
            s = self._cell(xp, state[layer], w_hh, b_hh)
            new_state.append(s)
            x = s[:H]
        return self.head_w @ x + self.head_b, new_state

    def run(self, ids: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Feed a sequence: logits (T, V) and every position's state (T, layers, width) after it."""
        H = self.cfg.hidden
        T = len(ids)
        width = len(state[0])
        states = np.empty((T, self.cfg.layers, width), np.float32)
        xs = None
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            xp = w_ih[ids] if layer == 0 else xs @ w_ih.T + b_ih
            s = state[layer]
            for t in range(T):
                s = states[t, layer] = self._cell(xp[t], s, w_hh, b_hh)
            xs = states[:, layer, :H]
        return xs @ self.head_w.T + self.head_b, states
