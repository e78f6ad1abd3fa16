"""The character-level RNN that trains: embedding, a recurrent stack, a linear head.

LSTM, GRU and RNN layers run PyTorch's own fused kernels (cuDNN on a GPU, oneDNN on a CPU), one
layer per call on a CPU, so that the dropout between layers and on the recurrent weights
(weight-drop) is ours. minGRU and minLSTM (Feng et al., 2024, "Were RNNs All We Needed?") have
gates that depend only on the input: a layer is one large matrix product over the whole
sequence and an elementwise scan. Generation in the app does not use this module: inference.py
runs the same weights in NumPy.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rnn_tui.config import CELLS, ModelConfig

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

FUSED = {"lstm": torch.lstm, "gru": torch.gru, "rnn": torch.rnn_tanh}
LAYER_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def dropout(x: torch.Tensor, p: float, training: bool = True, locked: bool = False) -> torch.Tensor:
    """Inverted dropout. On a CPU its mask comes from random 16-bit words compared to a threshold.
    `locked`: one mask per row of a (batch, time, features) tensor, the same at every time step.

    torch's CPU dropout draws one Bernoulli sample at a time: about 8 ms for the 1 M activations
    of a default batch, three times a step, against about 1.5 ms this way (BENCHMARKS.md). The
    rate is rounded to a multiple of 1/65536 and the scale is the exact inverse of what is kept.
    """
    if not training or p == 0:
        return x
    shape = (x.shape[0], 1, *x.shape[2:]) if locked else x.shape
    if x.device.type != "cpu" or p >= 1:
        return x * F.dropout(x.new_ones(shape), p, True) if locked else F.dropout(x, p, True)
    n = math.prod(shape)
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    dropped = round(p * 65536)
    keep = words.view(torch.int16)[:n].view(shape) >= dropped - 32768
    return x * keep.to(x.dtype).mul_(65536 / (65536 - dropped))


class LinearScan(torch.autograd.Function):
    """h[t] = a[t] * h[t-1] + b[t] over time-major (T, B, H) tensors, from h0 (B, H); returns every h[t].

    A loop of one fused multiply-add per step, forward and backward, on float32: cheap next to the
    products that made a and b, and the same arithmetic as the NumPy kernels' step."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = torch.empty_like(b)
        h = h0
        for t in range(len(b)):
            h = torch.addcmul(b[t], a[t], h, out=out[t])
        ctx.save_for_backward(a, h0, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[override]
        a, h0, out = ctx.saved_tensors
        g = torch.empty_like(grad)
        g[-1] = grad[-1]
        for t in range(len(grad) - 2, -1, -1):
            torch.addcmul(grad[t], a[t + 1], g[t + 1], out=g[t])
        before = torch.cat([h0[None], out[:-1]])
        return g * before, g, a[0] * g[0]


class MinRNN(nn.Module):
    """A stack of minGRU or minLSTM layers with PyTorch's weight names (weight_ih_l0, bias_ih_l0, ...).

    minGRU:  z = sigmoid(W_z x), h~ = W_h x,  h = (1 - z) h + z h~
    minLSTM: f = sigmoid(W_f x), i = sigmoid(W_i x), h~ = W_h x,  h = (f h + i h~) / (f + i)
    Rows of weight_ih: (z, h~) for minGRU, (f, i, h~) for minLSTM. State: h.
    """

    def __init__(self, cell: str, input_size: int, hidden: int, layers: int):
        super().__init__()
        self.cell, self.hidden, self.num_layers = cell, hidden, layers
        gates = CELLS[cell].gates
        bound = 1 / math.sqrt(hidden)
        for layer in range(layers):
            inp = input_size if layer == 0 else hidden
            w = nn.Parameter(torch.empty(gates * hidden, inp).uniform_(-bound, bound))
            setattr(self, f"weight_ih_l{layer}", w)
            setattr(self, f"bias_ih_l{layer}", nn.Parameter(torch.empty(gates * hidden).uniform_(-bound, bound)))

    def layer(self, x: torch.Tensor, h0: torch.Tensor, layer: int) -> torch.Tensor:
        """One layer over time-major x (T, B, input): every h (T, B, H), float32."""
        k = F.linear(x, getattr(self, f"weight_ih_l{layer}"), getattr(self, f"bias_ih_l{layer}")).float()
        h = self.hidden
        if self.cell == "mingru":
            z = torch.sigmoid(k[..., :h])
            return LinearScan.apply(1 - z, z * k[..., h:], h0)
        f, i = torch.sigmoid(k[..., :h]), torch.sigmoid(k[..., h : 2 * h])
        total = f + i
        return LinearScan.apply(f / total, i / total * k[..., 2 * h :], h0)


class CharRNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # Id 0 is the unknown character: a zero, untrained embedding, so unknown input is neutral.
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embedding, padding_idx=0)
        if cfg.spec.recurrent:
            dropout = cfg.dropout if cfg.layers > 1 else 0.0
            module = getattr(nn, cfg.spec.torch_name)
            self.rnn = module(cfg.embedding, cfg.hidden, cfg.layers, batch_first=True, dropout=dropout)
        else:
            self.rnn = MinRNN(cfg.cell, cfg.embedding, cfg.hidden, cfg.layers)
        self.head = nn.Linear(cfg.hidden, cfg.vocab_size)
        self.rate = cfg.dropout  # the dropout in use: cfg.dropout, or less while the trainer ramps it up
        self.locked = cfg.dropout_mask == "sequence"

    def set_dropout(self, rate: float) -> None:
        self.rate = rate
        if self.cfg.spec.recurrent and self.cfg.layers > 1:
            self.rnn.dropout = rate  # cuDNN's multi-layer kernel drops between layers itself

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids (B, T) -> logits (B, T, V) and the state after the last step."""
        p, locked = self.rate, self.locked
        x = dropout(self.embed(ids), p, self.training, locked)
        if not self.cfg.spec.recurrent:
            out, state = self._min_layers(x, state)
        elif ids.device.type == "cpu" or (self.training and (self.cfg.weight_drop or locked)):
            out, state = self._layers(x, state)
        else:  # cuDNN's multi-layer kernel, its own dropout between layers
            out, state = self.rnn(x, state)
        return self.head(dropout(out, p, self.training, locked)), state

    def _layers(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """The fused kernel one layer at a time: our dropout between layers, weight-drop on W_hh."""
        cfg, lstm = self.cfg, self.cfg.cell == "lstm"
        if state is None:
            zeros = x.new_zeros(cfg.layers, x.shape[0], cfg.hidden)
            state = (zeros, zeros) if lstm else zeros
        parts: list[list[torch.Tensor]] = [[] for _ in range(cfg.spec.state_parts)]
        for layer in range(cfg.layers):
            if layer:
                x = dropout(x, self.rate, self.training, self.locked)
            w_ih, w_hh, b_ih, b_hh = (getattr(self.rnn, f"{name}_l{layer}") for name in LAYER_WEIGHTS)
            w_hh = dropout(w_hh, cfg.weight_drop, self.training)
            hx = tuple(s[layer : layer + 1] for s in state) if lstm else state[layer : layer + 1]
            x, *new = FUSED[cfg.cell](x, hx, [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, self.training, False, True)
            for part, s in zip(parts, new, strict=True):
                part.append(s)
        joined = [torch.cat(part) for part in parts]
        return x, (joined[0], joined[1]) if lstm else joined[0]

    def _min_layers(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, torch.Tensor]:
        """minGRU / minLSTM layers, time-major inside."""
        cfg = self.cfg
        if state is None:
            state = x.new_zeros(cfg.layers, x.shape[0], cfg.hidden, dtype=torch.float32)
        x = x.transpose(0, 1)
        last = []
        for layer in range(cfg.layers):
            if layer:  # time-major here: the mask's rows are the batch's
                x = dropout(x.transpose(0, 1), self.rate, self.training, self.locked).transpose(0, 1)
            x = self.rnn.layer(x, state[layer].float(), layer)
            last.append(x[-1])
        return x.transpose(0, 1), torch.stack(last)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach_state(state: State) -> State:
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
