"""The lesson's model: the post's "hello" figure, a tiny character model trained on one word. Torch-free.

Like Karpathy's min-char-rnn, it is small enough to write out in NumPy: the vocabulary is the
word's characters (in order of first appearance), each step reads one character as a one-hot
vector and scores every character of the vocabulary as the next one. The cell is a vanilla RNN,

    h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h),    y_t = W_hy h_t + b_y,

or an LSTM or a GRU, whose W_xh and W_hh stack one block per gate (PyTorch's order: LSTM
i, f, g, o; GRU r, z, n). The loss is the mean over the steps of the cross-entropy of each
step's target, the next character. The backward pass runs through time over the whole word
(BPTT), and the update is Adagrad, as in min-char-rnn: every weight's step is the learning rate
divided by the root of its own summed squared gradients, so the first updates move every
weight by about the learning rate whatever the size of its gradient. A column of W_xh is only
touched when its character is read, so with plain SGD the rare characters' columns would
learn slowest; Adagrad evens that out and needs no tuning per word.

Everything is float64 and seeded: the same word, cell, size, seed and rate give the same figure.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import numpy as np

from rnn_tui.errors import UserError

CELLS = ("rnn", "lstm", "gru")
# The named vectors a cell computes inside one step, in the order the equations use them.
PARTS = {
    "rnn": ("x", "h", "b", "a"),  # W_xh x_t, W_hh h_{t-1}, b_h, and their sum (tanh of it is h_t)
    "lstm": ("i", "f", "g", "o", "c"),  # input, forget, candidate, output gate; the cell state
    "gru": ("r", "z", "n"),  # reset gate, update gate, candidate
}
GATE_ROWS = {"rnn": 1, "lstm": 4, "gru": 3}  # blocks of rows in W_xh and W_hh
MAX_LENGTH = 64  # characters; beyond that the figure is no longer a figure
MAX_HIDDEN = 64
MAX_UPDATES = 1_000_000  # at a few thousand updates a second
CLIP = 5.0  # gradients are clipped to ±CLIP elementwise, as in min-char-rnn


def check_word(word: str) -> str:
    """The word the lesson trains on (NFC-normalised), or a UserError that says what to change."""
    word = unicodedata.normalize("NFC", word)
    if not word:
        raise UserError("the word is empty; give one of at least two characters, e.g. rnn-tui lesson hello")
    if len(word) == 1:
        raise UserError(
            f"{word!r} has one character, and each step predicts the next one; give at least two, e.g. {word * 2!r}"
        )
    if len(word) > MAX_LENGTH:
        raise UserError(f"the word has {len(word)} characters; give at most {MAX_LENGTH}, the figure has a column each")
    return word


def _check(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise UserError(f"--{name} {value} is out of range; use {low} to {high}")


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


@dataclass(frozen=True)
class Step:
    """One column of the figure: what a step read, what it should predict, and what it computed."""

    input: str
    target: str
    hidden: np.ndarray  # h_t
    scores: np.ndarray  # y_t, one per character of the vocabulary
    probs: np.ndarray  # softmax(y_t)
    parts: dict[str, np.ndarray]  # what the cell computed inside the step (see PARTS)
    target_index: int

    @property
    def wins(self) -> bool:
        """Whether the target has the highest score."""
        return int(np.argmax(self.scores)) == self.target_index

    def to_json(self, cell: str) -> dict:
        out = {
            "input": self.input,
            "target": self.target,
            "hidden": self.hidden.tolist(),
            "scores": self.scores.tolist(),
            "probs": self.probs.tolist(),
        }
        if cell != "rnn":
            out["gates"] = {k: self.parts[k].tolist() for k in PARTS[cell] if k != "c"}
        if cell == "lstm":
            out["cell_state"] = self.parts["c"].tolist()
        return out


@dataclass
class Pass:
    """A forward pass over the word: the steps, the mean loss, and what the backward pass needs."""

    steps: list[Step]
    loss: float
    states: list[tuple[np.ndarray, ...]]  # the state before each step, then after the last
    caches: list[dict[str, np.ndarray]] = field(repr=False)


def init_params(cell: str, vocab: int, hidden: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Weights drawn from N(0, 1/fan-in) (a one-hot input has a fan-in of 1), biases zero.

    An LSTM's forget gate starts with a bias of 1, so its cell state starts out remembering.
    """
    rows = GATE_ROWS[cell] * hidden
    p = {
        "W_xh": rng.normal(0.0, 1.0, (rows, vocab)),
        "W_hh": rng.normal(0.0, hidden**-0.5, (rows, hidden)),
        "b_h": np.zeros(rows),
        "W_hy": rng.normal(0.0, hidden**-0.5, (vocab, hidden)),
        "b_y": np.zeros(vocab),
    }
    if cell == "lstm":
        p["b_h"][hidden : 2 * hidden] = 1.0
    if cell == "gru":
        p["b_hn"] = np.zeros(hidden)  # inside the reset gate: n = tanh(W_xn x + b_n + r ⊙ (W_hn h + b_hn))
    return p


# --------------------------------------------------------------------------- one step of each cell, and its way back


def _rnn(p: dict, x: int, state: tuple) -> tuple[tuple, dict, dict]:
    (h_prev,) = state
    parts = {"x": p["W_xh"][:, x].copy(), "h": p["W_hh"] @ h_prev, "b": p["b_h"].copy()}
    parts["a"] = parts["x"] + parts["h"] + parts["b"]
    h = np.tanh(parts["a"])
    return (h,), parts, {"h": h}


def _rnn_back(p: dict, g: dict, x: int, state: tuple, cache: dict, dh: np.ndarray, carry: tuple) -> tuple:
    (h_prev,) = state
    da = (dh + carry[0]) * (1.0 - cache["h"] ** 2)
    g["W_xh"][:, x] += da
    g["W_hh"] += np.outer(da, h_prev)
    g["b_h"] += da
    return (p["W_hh"].T @ da,)


def _lstm(p: dict, x: int, state: tuple) -> tuple[tuple, dict, dict]:
    h_prev, c_prev = state
    n = len(h_prev)
    a = p["W_xh"][:, x] + p["W_hh"] @ h_prev + p["b_h"]
    i, f, g, o = _sigmoid(a[:n]), _sigmoid(a[n : 2 * n]), np.tanh(a[2 * n : 3 * n]), _sigmoid(a[3 * n :])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    parts = {"i": i, "f": f, "g": g, "o": o, "c": c}
    return (h, c), parts, {**parts, "tc": tc}


def _lstm_back(p: dict, grads: dict, x: int, state: tuple, cache: dict, dh: np.ndarray, carry: tuple) -> tuple:
    h_prev, c_prev = state
    i, f, g, o, tc = (cache[k] for k in ("i", "f", "g", "o", "tc"))
    dh = dh + carry[0]
    dc = carry[1] + dh * o * (1.0 - tc**2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g**2), dh * tc * o * (1 - o)])
    grads["W_xh"][:, x] += da
    grads["W_hh"] += np.outer(da, h_prev)
    grads["b_h"] += da
    return p["W_hh"].T @ da, dc * f


def _gru(p: dict, x: int, state: tuple) -> tuple[tuple, dict, dict]:
    (h_prev,) = state
    n_ = len(h_prev)
    ax = p["W_xh"][:, x] + p["b_h"]
    ah = p["W_hh"] @ h_prev
    r = _sigmoid(ax[:n_] + ah[:n_])
    z = _sigmoid(ax[n_ : 2 * n_] + ah[n_ : 2 * n_])
    hn = ah[2 * n_ :] + p["b_hn"]
    n = np.tanh(ax[2 * n_ :] + r * hn)
    h = (1.0 - z) * n + z * h_prev
    parts = {"r": r, "z": z, "n": n}
    return (h,), parts, {**parts, "hn": hn}


def _gru_back(p: dict, grads: dict, x: int, state: tuple, cache: dict, dh: np.ndarray, carry: tuple) -> tuple:
    (h_prev,) = state
    r, z, n, hn = (cache[k] for k in ("r", "z", "n", "hn"))
    dh = dh + carry[0]
    dan = dh * (1.0 - z) * (1.0 - n**2)
    dar = dan * hn * r * (1.0 - r)
    daz = dh * (h_prev - n) * z * (1.0 - z)
    dax = np.concatenate([dar, daz, dan])
    dah = np.concatenate([dar, daz, dan * r])
    grads["W_xh"][:, x] += dax
    grads["b_h"] += dax
    grads["W_hh"] += np.outer(dah, h_prev)
    grads["b_hn"] += dan * r
    return (dh * z + p["W_hh"].T @ dah,)


STEPS = {"rnn": (_rnn, _rnn_back), "lstm": (_lstm, _lstm_back), "gru": (_gru, _gru_back)}


# --------------------------------------------------------------------------- the lesson


class Lesson:
    """A word, a tiny model, and its training: forward, loss, backward through time, Adagrad."""

    def __init__(self, word: str, *, cell: str = "rnn", hidden: int = 3, seed: int = 0, lr: float = 0.1) -> None:
        self.word = check_word(word)
        if cell not in CELLS:
            raise UserError(f"--cell {cell!r} is not a cell; use one of {', '.join(CELLS)}")
        _check("hidden", hidden, 1, MAX_HIDDEN)
        _check("lr", lr, 1e-4, 10.0)
        _check("seed", seed, 0, 2**63 - 1)
        self.cell, self.hidden, self.seed, self.lr = cell, hidden, seed, lr
        self.vocab = list(dict.fromkeys(self.word))
        ids = [self.vocab.index(c) for c in self.word]
        self.inputs, self.targets = ids[:-1], ids[1:]
        self.params = init_params(cell, len(self.vocab), hidden, np.random.default_rng(seed))
        self.memory = {k: np.zeros_like(v) for k, v in self.params.items()}  # Adagrad's summed squared gradients
        self.updates = 0
        self.losses: list[float] = []  # the loss before each update
        self._pass: Pass | None = None

    def restarted(self, seed: int) -> Lesson:
        """The same lesson from new random weights."""
        return Lesson(self.word, cell=self.cell, hidden=self.hidden, seed=seed, lr=self.lr)

    def with_cell(self, cell: str) -> Lesson:
        """The same word, size, seed and rate with another cell, from its start."""
        return Lesson(self.word, cell=cell, hidden=self.hidden, seed=self.seed, lr=self.lr)

    def forward(self) -> Pass:
        """Run the word through the model from a zero state."""
        step, _ = STEPS[self.cell]
        p = self.params
        zero = np.zeros(self.hidden)
        state: tuple[np.ndarray, ...] = (zero, zero) if self.cell == "lstm" else (zero,)
        states, caches, steps, loss = [state], [], [], 0.0
        for x, t in zip(self.inputs, self.targets, strict=True):
            state, parts, cache = step(p, x, state)
            scores = p["W_hy"] @ state[0] + p["b_y"]
            e = np.exp(scores - scores.max())
            probs = e / e.sum()
            loss -= np.log(probs[t])
            cache["probs"] = probs
            states.append(state)
            caches.append(cache)
            steps.append(Step(self.vocab[x], self.vocab[t], state[0], scores, probs, parts, t))
        return Pass(steps, loss / len(steps), states, caches)

    def gradients(self) -> tuple[float, dict[str, np.ndarray]]:
        """The loss and its gradient with respect to every parameter (backpropagation through time)."""
        fwd = self.forward()
        _, back = STEPS[self.cell]
        p = self.params
        grads = {k: np.zeros_like(v) for k, v in p.items()}
        carry = tuple(np.zeros(self.hidden) for _ in fwd.states[0])  # what flows back from step t+1
        n = len(self.inputs)
        for t in reversed(range(n)):
            dy = fwd.caches[t]["probs"].copy()
            dy[self.targets[t]] -= 1.0
            dy /= n
            h = fwd.states[t + 1][0]
            grads["W_hy"] += np.outer(dy, h)
            grads["b_y"] += dy
            carry = back(p, grads, self.inputs[t], fwd.states[t], fwd.caches[t], p["W_hy"].T @ dy, carry)
        return fwd.loss, grads

    def update(self) -> float:
        """One Adagrad update; returns the loss before it."""
        loss, grads = self.gradients()
        for k, g in grads.items():
            np.clip(g, -CLIP, CLIP, out=g)
            self.memory[k] += g * g
            self.params[k] -= self.lr * g / np.sqrt(self.memory[k] + 1e-8)
        self.updates += 1
        self.losses.append(loss)
        self._pass = None
        return loss

    def train(self, n: int) -> None:
        """Take `n` updates."""
        _check("steps", n, 0, MAX_UPDATES)
        for _ in range(n):
            self.update()

    @property
    def current(self) -> Pass:
        """The forward pass of the current weights (cached until the next update)."""
        if self._pass is None:
            self._pass = self.forward()
        return self._pass

    @property
    def steps(self) -> list[Step]:
        return self.current.steps

    @property
    def loss(self) -> float:
        return self.current.loss

    def wins(self) -> int:
        """How many steps' targets have the highest score."""
        return sum(s.wins for s in self.steps)

    def to_json(self) -> dict:
        """The figure's numbers."""
        return {
            "word": self.word,
            "cell": self.cell,
            "hidden_size": self.hidden,
            "seed": self.seed,
            "lr": self.lr,
            "updates": self.updates,
            "loss": self.loss,
            "vocab": self.vocab,
            "steps": [s.to_json(self.cell) for s in self.steps],
        }
