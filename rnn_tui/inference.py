"""The NumPy stepper: a trained CharRNN's weights run one character at a time. Torch-free.

At batch size 1 a step is a few small matrix-vector products, and PyTorch's per-operator
overhead costs more than the arithmetic; NumPy's BLAS does the same step faster
(BENCHMARKS.md). The app process runs only this, so it never imports PyTorch. The
embedding is folded into the first layer's input weights, so a character's input
projection is a table lookup.

Each cell in config.CELLS has a kernel here: how to lay out its weights, one step, and
which part of its state the neuron view shows (`shown`, and `shows`: that part in words), and one
step laid open (`parts`: the named vectors it computes, in the true units of each gate, for the
step view; `PARTS` says what each is).
The min cells (minGRU, minLSTM) have no recurrent weights: once the input is projected,
a step is elementwise. A step works on one state of shape (width,) or on a batch of them,
(B, width): then its products are matrix-matrix products, which read the weights once for
the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnn_tui.config import ModelConfig
from rnn_tui.text.vocab import Vocab

Layer = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # w_ih, w_hh, b_ih, b_hh


class LSTMKernel:
    """State [h, c]. Gates are reordered from PyTorch's (i, f, g, o) to (i, f, o, g), and the rows of
    the three sigmoid gates are halved: sigmoid(x) = (1 + tanh(x / 2)) / 2, so one tanh does all four."""

    shows = "tanh of the cell state"  # what `shown` gives, in the neuron view's words
    PARTS = {  # what `parts` gives, in the step view's words
        "i": "i input gate σ",
        "f": "f forget gate σ",
        "g": "g candidate tanh",
        "o": "o output gate σ",
        "c": "c = f⊙c + i⊙g",
        "h": "h = o⊙tanh(c)",
    }

    @staticmethod
    def layout(w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray, h: int) -> Layer:
        order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]
        scale = np.r_[np.full(3 * h, 0.5, np.float32), np.ones(h, np.float32)]
        b = (b_ih + b_hh)[order] * scale
        return w_ih[order] * scale[:, None], w_hh[order] * scale[:, None], b, np.zeros_like(b)

    @staticmethod
    def step(xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: int) -> np.ndarray:
        g = s[..., :h] @ w_hh.T
        g += xp
        np.tanh(g, out=g)
        gates = g[..., : 3 * h]
        gates += 1.0  # 2 * sigmoid: the 0.5s are folded in below
        out = np.empty(s.shape, np.float32)
        c = out[..., h:]
        np.multiply(gates[..., h : 2 * h], s[..., h:], out=c)
        c += gates[..., :h] * g[..., 3 * h :]
        c *= 0.5
        hid = out[..., :h]
        np.tanh(c, out=hid)
        hid *= gates[..., 2 * h :]
        hid *= 0.5
        return out

    @staticmethod
    def shown(states: np.ndarray, h: int) -> np.ndarray:
        """What the neuron view colours: tanh of the cell state."""
        return np.tanh(states[..., h:])

    @staticmethod
    def parts(xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: int) -> dict[str, np.ndarray]:
        """One step (one state) by the textbook: the gates i, f, o in 0..1, the candidate g, then c and h."""
        pre = xp + s[:h] @ w_hh.T  # the sigmoid gates' rows are halved by `layout`
        i, f, o = ((1.0 + np.tanh(pre[k * h : (k + 1) * h])) / 2 for k in range(3))
        g = np.tanh(pre[3 * h :])
        c = f * s[h:] + i * g
        return {"i": i, "f": f, "g": g, "o": o, "c": c, "h": o * np.tanh(c)}


class GRUKernel:
    """State h. b_hh stays apart: it sits inside r * (W_hn h + b_hn)."""

    shows = "the hidden state"
    PARTS = {"r": "r reset gate σ", "z": "z update gate σ", "n": "n candidate tanh", "h": "h = (1-z)⊙n + z⊙h"}

    @staticmethod
    def layout(w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray, h: int) -> Layer:
        return w_ih, w_hh, b_ih, b_hh

    @staticmethod
    def step(xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: int) -> np.ndarray:
        hp = s @ w_hh.T
        hp += b_hh
        rz = xp[..., : 2 * h] + hp[..., : 2 * h]
        rz *= 0.5
        np.tanh(rz, out=rz)
        rz += 1.0
        rz *= 0.5
        n = np.tanh(xp[..., 2 * h :] + rz[..., :h] * hp[..., 2 * h :])
        return n + rz[..., h:] * (s - n)

    @staticmethod
    def shown(states: np.ndarray, h: int) -> np.ndarray:
        return states[..., :h]

    @staticmethod
    def parts(xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: int) -> dict[str, np.ndarray]:
        """One step (one state) by the textbook: the gates r and z in 0..1, the candidate n, then h."""
        hp = s @ w_hh.T + b_hh
        r, z = (1.0 / (1.0 + np.exp(-(xp[k * h : (k + 1) * h] + hp[k * h : (k + 1) * h]))) for k in range(2))
        n = np.tanh(xp[2 * h :] + r * hp[2 * h :])
        return {"r": r, "z": z, "n": n, "h": (1.0 - z) * n + z * s}


class RNNKernel(GRUKernel):
    """State h: tanh(W_ih x + W_hh h + b)."""

    PARTS = {"a": "a = Wx + Wh + b", "h": "h = tanh(a)"}

    @staticmethod
    def layout(w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray, h: int) -> Layer:
        return w_ih, w_hh, b_ih + b_hh, np.zeros_like(b_hh)

    @staticmethod
    def step(xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: int) -> np.ndarray:
        return np.tanh(xp + s @ w_hh.T)

    @staticmethod
    def parts(xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: int) -> dict[str, np.ndarray]:
        """One step (one state): the sum inside tanh, then h."""
        a = xp + s @ w_hh.T
        return {"a": a, "h": np.tanh(a)}


class MinGRUKernel:
    """State h; no recurrent weights (an empty w_hh). The z rows are halved, as the LSTM's gates are:
    z = (1 + tanh(k_z / 2)) / 2, then h = h + z (h~ - h)."""

    shows = "tanh of the hidden state"
    PARTS = {"z": "z update gate σ", "h~": "h~ candidate", "h": "h = (1-z)⊙h + z⊙h~"}

    @staticmethod
    def layout(w_ih: np.ndarray, w_hh: np.ndarray | None, b_ih: np.ndarray, b_hh: np.ndarray | None, h: int) -> Layer:
        scale = np.r_[np.full(h, 0.5, np.float32), np.ones(h, np.float32)]
        return w_ih * scale[:, None], np.zeros((0, h), np.float32), b_ih * scale, np.zeros(0, np.float32)

    @staticmethod
    def step(xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: int) -> np.ndarray:
        z = np.tanh(xp[..., :h])
        z += 1.0
        z *= 0.5
        return s + z * (xp[..., h:] - s)

    @staticmethod
    def shown(states: np.ndarray, h: int) -> np.ndarray:
        """What the neuron view colours: tanh of h (h itself is not bounded: its candidate is linear)."""
        return np.tanh(states[..., :h])

    @staticmethod
    def parts(xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: int) -> dict[str, np.ndarray]:
        """One step (one state) by the textbook: the gate z in 0..1 (its rows halved), the candidate h~, then h."""
        z = (1.0 + np.tanh(xp[:h])) / 2
        return {"z": z, "h~": xp[h:], "h": (1.0 - z) * s + z * xp[h:]}


class MinLSTMKernel(MinGRUKernel):
    """State h: f and i from the input only, h = (f h + i h~) / (f + i). The f and i rows are halved:
    with a = tanh(k_f / 2) and b = tanh(k_i / 2), f / (f + i) = (1 + a) / (2 + a + b)."""

    PARTS = {"f": "f forget gate σ", "i": "i input gate σ", "h~": "h~ candidate", "h": "h = (f⊙h + i⊙h~)/(f+i)"}

    @staticmethod
    def layout(w_ih: np.ndarray, w_hh: np.ndarray | None, b_ih: np.ndarray, b_hh: np.ndarray | None, h: int) -> Layer:
        scale = np.r_[np.full(2 * h, 0.5, np.float32), np.ones(h, np.float32)]
        return w_ih * scale[:, None], np.zeros((0, h), np.float32), b_ih * scale, np.zeros(0, np.float32)

    @staticmethod
    def step(xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: int) -> np.ndarray:
        fi = np.tanh(xp[..., : 2 * h])
        fi += 1.0
        f = fi[..., :h]
        total = f + fi[..., h:]
        return s + fi[..., h:] / total * (xp[..., 2 * h :] - s)

    @staticmethod
    def parts(xp: np.ndarray, s: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray, h: int) -> dict[str, np.ndarray]:
        """One step (one state) by the textbook: the gates f and i in 0..1 (their rows halved), h~, then h."""
        f, i = ((1.0 + np.tanh(xp[k * h : (k + 1) * h])) / 2 for k in range(2))
        cand = xp[2 * h :]
        return {"f": f, "i": i, "h~": cand, "h": (f * s + i * cand) / (f + i)}


KERNELS = {
    "lstm": LSTMKernel,
    "gru": GRUKernel,
    "rnn": RNNKernel,
    "mingru": MinGRUKernel,
    "minlstm": MinLSTMKernel,
}


# --------------------------------------------------------------------------- from logits to probabilities


def mask_unknown(logits: np.ndarray) -> np.ndarray:
    """`logits` (one row or many) with the unknown character's set to -inf, in place: the model never emits it."""
    logits[..., Vocab.UNK] = -np.inf
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, along the last axis (-inf: probability 0)."""
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return p


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities from logits, along the last axis (-inf: log-probability -inf)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


class Stepper:
    """Runs a CharRNN's weights in NumPy (float32), at batch size 1 or a small batch.

    The state is a list with one array per layer: for an LSTM the layer's [h, c]
    concatenated, otherwise h. `step` feeds one character (or one per row of a batch, each
    state then (B, width)); `run` feeds many at once,
    layer by layer, so the input projections of the upper layers and the output layer
    become one matrix product each. Both share the cell arithmetic; they differ only in
    the rounding of those products (about 1e-7).
    """

    def __init__(self, cfg: ModelConfig, weights: Mapping[str, np.ndarray]):
        self.cfg = cfg
        self.kernel = KERNELS[cfg.cell]
        w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        h = cfg.hidden
        self.layers: list[Layer] = []
        for layer in range(cfg.layers):
            w_ih, w_hh, b_ih, b_hh = self.kernel.layout(
                *(w.get(f"rnn.{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")), h
            )
            if layer == 0:  # the input projection of every character, precomputed
                w_ih = w["embed.weight"] @ w_ih.T + b_ih
            self.layers.append(tuple(np.ascontiguousarray(a, dtype=np.float32) for a in (w_ih, w_hh, b_ih, b_hh)))
        self.head_w = np.ascontiguousarray(w["head.weight"])
        self.head_b = w["head.bias"]

    @property
    def width(self) -> int:
        """Floats of state per layer."""
        return self.cfg.spec.state_parts * self.cfg.hidden

    def initial_state(self) -> list[np.ndarray]:
        return [np.zeros(self.width, np.float32) for _ in range(self.cfg.layers)]

    def step(self, char_id: int | np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Feed one character id; return the next character's logits and the new state.

        Batched: `char_id` is an array of B ids and each layer's state has shape (B, width);
        the logits are then (B, V).
        """
        h = self.cfg.hidden
        new_state = []
        x = None
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            xp = w_ih[char_id] if layer == 0 else x @ w_ih.T + b_ih
            s = self.kernel.step(xp, state[layer], w_hh, b_hh, h)
            new_state.append(s)
            x = s[..., :h]
        return x @ self.head_w.T + self.head_b, new_state

    def open_step(
        self, char_id: int, state: list[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray], list[dict[str, np.ndarray]]]:
        """`step` for one character and one state, laid open: also each layer's named vectors (its kernel's
        `parts`), bottom layer first. The logits and the new state are `step`'s own."""
        h = self.cfg.hidden
        new_state, parts = [], []
        x = None
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            xp = w_ih[char_id] if layer == 0 else x @ w_ih.T + b_ih
            parts.append(self.kernel.parts(xp, state[layer], w_hh, b_hh, h))
            s = self.kernel.step(xp, state[layer], w_hh, b_hh, h)
            new_state.append(s)
            x = s[:h]
        return x @ self.head_w.T + self.head_b, new_state, parts

    def run(
        self, ids: np.ndarray, state: list[np.ndarray], zero: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feed a sequence: logits (T, V) and every position's state (T, layers, width) after it.

        `zero`: (layer, unit) to ablate: that unit's state is set to zero after every step.
        """
        h = self.cfg.hidden
        states = np.empty((len(ids), self.cfg.layers, self.width), np.float32)
        xs = None
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            xp = w_ih[ids] if layer == 0 else xs @ w_ih.T + b_ih
            s = state[layer]
            rows = self.unit_rows(zero[1]) if zero is not None and zero[0] == layer else None
            for t in range(len(ids)):
                s = self.kernel.step(xp[t], s, w_hh, b_hh, h)
                if rows is not None:
                    s[rows] = 0.0
                states[t, layer] = s
            xs = states[:, layer, :h]
        return xs @ self.head_w.T + self.head_b, states

    def unit_rows(self, unit: int) -> np.ndarray:
        """Where one hidden unit lives in a layer's state: h[unit] (and c[unit] for an LSTM)."""
        return unit + self.cfg.hidden * np.arange(self.cfg.spec.state_parts)

    def initial_columns(self, streams: int) -> list[np.ndarray]:
        """A zero state for `streams` sequences side by side: (width, streams) per layer."""
        return [np.zeros((self.width, streams), np.float32) for _ in range(self.cfg.layers)]

    def run_columns(
        self, ids: np.ndarray, state: list[np.ndarray], zero: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feed B sequences side by side, ids (T, B), from `state` ((width, B) per layer, updated in place).

        Returns logits (T, B, V) and states (T, B, layers, width). Each step is one batched step
        over the B sequences instead of B single ones, which is what makes long texts cheap.
        `zero`: layer -> (rows, columns), paired index arrays of state entries (row: the entry
        in the state, column: the sequence) set to zero after every step (ablation).
        """
        h = self.cfg.hidden
        steps, streams = ids.shape
        states = np.empty((steps, self.cfg.layers, streams, self.width), np.float32)
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            xp = w_ih[ids] if layer == 0 else states[:, layer - 1, :, :h] @ w_ih.T + b_ih  # (T, B, gates * h)
            where = (zero or {}).get(layer)
            s = np.ascontiguousarray(state[layer].T)
            for t in range(steps):
                s = self.kernel.step(xp[t], s, w_hh, b_hh, h)
                if where is not None:
                    s[where[1], where[0]] = 0.0
                states[t, layer] = s
            state[layer] = s.T
        xs = states[:, -1, :, :h]  # (T, B, h)
        return xs @ self.head_w.T + self.head_b, states.transpose(0, 2, 1, 3)
