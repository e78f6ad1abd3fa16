"""Scoring and streaming text one character at a time, with the prompt's states cached.

The text is read as if it followed a newline (or, for a corpus without newlines, the
neutral unknown id), so even the first character of a prompt has a probability.

Confidence (`Token.prob`, `Token.top`) is always the model's belief at temperature 1; the
sampling settings (SampleConfig: temperature, top-k, top-p, repetition penalty, word-start) only
change which character is drawn (`Sampler`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from rnn_tui.config import ModelConfig, SampleConfig
from rnn_tui.inference import Stepper, log_softmax, mask_unknown, softmax
from rnn_tui.text.vocab import Vocab

TOP = 5
KEEP_RECENT = 1024  # prompt positions whose state is always kept
KEEP_EVERY = 256  # and every this many positions further back
PRIME_CHUNK = 1024  # characters fed to the model at once when priming
FEW = 4  # up to this many new characters, tokens are made one at a time (cheaper than the batched way)


@dataclass(frozen=True)
class Token:
    """One character with the model's view of it.

    prob: p(char | text before) at temperature 1 (None for a character outside the vocabulary).
    top: the TOP most likely characters at this position, with their probabilities.
    """

    char: str
    prob: float | None
    top: tuple[tuple[str, float], ...]
    generated: bool = False

    @property
    def unknown(self) -> bool:
        return self.prob is None


def sampling_distribution(
    logits: np.ndarray,
    temperature: float,
    top_k: int = 0,
    top_p: float = 1.0,
    penalized: np.ndarray | None = None,
    penalty: float = 1.0,
) -> np.ndarray:
    """The distribution a character is drawn from.

    The probability of each id in `penalized` is divided by `penalty`; then logits / temperature,
    cut to the top k, then to the nucleus: the fewest likeliest characters whose probabilities add
    up to `top_p`. Temperature 0 puts all the mass on the most likely character (greedy).
    """
    z = logits.astype(np.float64)
    if penalized is not None and len(penalized) and penalty != 1:
        z[penalized] -= math.log(penalty)
    if temperature <= 0:
        p = np.zeros_like(z)
        p[int(np.argmax(z))] = 1.0
        return p
    with np.errstate(over="ignore"):  # shifted first: a tiny temperature gives -inf (p 0), never inf - inf (NaN)
        z = (z - z.max()) / temperature
    if 0 < top_k < len(z):
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
        if np.isfinite(z).sum() > top_k:  # ties at the k-th value: keep exactly k
            keep = np.argsort(-z, kind="stable")[:top_k]
            z = np.where(np.isin(np.arange(len(z)), keep), z, -np.inf)
    p = softmax(z)
    if top_p < 1:
        order = np.argsort(-p, kind="stable")
        mass = np.cumsum(p[order])
        reach = top_p * mass[-1] * (1 - 1e-9)  # a sum that reaches p up to rounding (ten 0.05s make 0.5)
        keep = min(int(np.searchsorted(mass, reach, side="left")) + 1, len(p))
        cut = np.zeros_like(p)
        cut[order[:keep]] = p[order[:keep]]
        p = cut / cut.sum()
    return p


class Sampler:
    """Draws one character after another by a SampleConfig, from its seed.

    `before`: the text so far (the prompt), for the repetition penalty's window and the word-start mode.
    """

    def __init__(self, settings: SampleConfig, vocab: Vocab, before: str = "") -> None:
        self.settings, self.vocab = settings, vocab
        self.rng = np.random.default_rng(settings.seed)
        self.penalize = settings.repetition_penalty != 1  # else no window is kept: a keystroke's answer
        self.word_start = settings.draw == "word-start"  # starts a Sampler, so it costs only what is used
        window = settings.repetition_window
        self.recent: deque[int] = deque(vocab.encode(before[-window:]).tolist() if self.penalize else (), maxlen=window)
        self.inside_word = before[-1:].isalnum()

    def distribution(self, logits: np.ndarray) -> np.ndarray:
        """The distribution the next character is drawn from, given the prediction `logits`."""
        s = self.settings
        greedy = self.word_start and self.inside_word
        penalized = np.unique(np.fromiter(self.recent, np.int64)) if self.penalize else None
        return sampling_distribution(
            logits, 0.0 if greedy else s.temperature, s.top_k, s.top_p, penalized, s.repetition_penalty
        )

    def draw(self, logits: np.ndarray) -> int:
        """The id of the next character, drawn from `distribution(logits)`."""
        p = self.distribution(logits)
        cid = min(int(np.searchsorted(np.cumsum(p), self.rng.random() * p.sum(), side="right")), len(p) - 1)
        if self.penalize:
            self.recent.append(cid)
        if self.word_start:
            self.inside_word = self.vocab.char(cid).isalnum()
        return cid


@dataclass(frozen=True)
class Sample:
    """One generated text with its seed and its bits per character (at temperature 1)."""

    tokens: tuple[Token, ...]
    seed: int

    @property
    def text(self) -> str:
        return "".join(t.char for t in self.tokens)

    @property
    def bits_per_char(self) -> float:
        return bits_per_char(self.tokens)


def bits_per_char(tokens: Sequence[Token]) -> float:
    """The mean surprise of `tokens` in bits, -log2 p(char | text before) at temperature 1 (0 for none)."""
    if not tokens:
        return 0.0
    probs = np.array([t.prob if t.prob is not None else 0.0 for t in tokens], dtype=np.float64)
    return float(-np.log2(np.maximum(probs, np.finfo(np.float64).tiny)).mean())


class Generator:
    """Generates from a model's weights with NumPy at batch size 1.

    Not thread-safe: use one Generator from one thread at a time.
    """

    def __init__(self, cfg: ModelConfig, vocab: Vocab, weights: Mapping[str, np.ndarray]):
        self.cfg, self.vocab = cfg, vocab
        self.start_id = vocab.id("\n")
        self.set_weights(weights)

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Swap in new weights (e.g. from a training run); clears the prompt cache."""
        self.stepper = Stepper(self.cfg, weights)
        logits, state = self.stepper.step(self.start_id, self.stepper.initial_state())
        mask_unknown(logits)
        self._text = ""
        self._states: dict[int, list[np.ndarray]] = {0: state}  # state after text[:i]
        self._logits: list[np.ndarray] = [logits]  # _logits[i]: the prediction for text[i]
        self._tokens: list[Token] = []  # _tokens[i]: text[i] as the model saw it

    # ---------------------------------------------------------------- the prompt cache

    def priming(self, text: str, chunk: int | None = None, cached: int | None = None) -> Iterator[int]:
        """Bring the cache to `text`, `chunk` characters at a time (default PRIME_CHUNK), yielding how many
        characters of `text` are scored after each.

        The longest cached prefix is reused: appending a character costs one step. Stopping early
        leaves the cache whole, at a prefix of `text`, so a later call carries on from there.
        `cached`: `cached_prefix(text)`, where the caller has it already (a long text's is not free).
        """
        n = _common_prefix(self._text, text) if cached is None else cached
        for i in [i for i in self._states if i > n]:
            del self._states[i]
        start = max(self._states)
        del self._logits[start + 1 :]
        del self._tokens[n:]
        self._text = text[:n]
        state = self._states[start]
        ids = self.vocab.encode(text[start:])
        chunk = chunk or PRIME_CHUNK
        for a in range(0, len(ids), chunk):
            part = ids[a : a + chunk]
            logits, states = self.stepper.run(part, state)
            self._logits.extend(mask_unknown(logits))
            end = start + a + len(part)
            for j in range(len(part)):
                if self._keep(start + a + j + 1, len(text)):  # copied: a view would keep the whole chunk alive
                    self._states[start + a + j + 1] = [s.copy() for s in states[j]]
            state = self._states[end] = [s.copy() for s in states[-1]]
            first = len(self._tokens)
            if end - first > FEW:
                new = text[first:end]
                self._tokens += self._tokens_for(new, self.vocab.encode(new), np.stack(self._logits[first:end]))
            else:
                self._tokens += [self._token(text[i], self._logits[i]) for i in range(first, end)]
            self._text = text[: max(n, end)]
            yield end
        for i in [i for i in self._states if not self._keep(i, len(text))]:
            del self._states[i]
        self._text = text

    def _prime(self, text: str) -> None:
        for _ in self.priming(text):
            pass

    @staticmethod
    def _keep(i: int, n: int) -> bool:
        return i == n or i % KEEP_EVERY == 0 or i >= n - KEEP_RECENT

    def _token(self, char: str, logits: np.ndarray, generated: bool = False) -> Token:
        """One character's token from its prediction `logits`."""
        p = softmax(logits)
        top_ids = np.argpartition(-p, min(TOP, len(p) - 1))[:TOP]
        top_ids = top_ids[np.argsort(-p[top_ids], kind="stable")]
        top = tuple((self.vocab.char(int(i)), float(p[i])) for i in top_ids if p[i] > 0)
        cid = self.vocab.id(char)
        prob = None if cid == Vocab.UNK else float(p[cid])
        return Token(char, prob, top, generated)

    def _tokens_for(self, chars: str, ids: np.ndarray, logits: np.ndarray, generated: bool = False) -> list[Token]:
        """`_token` for many characters at once (`ids` their ids), row i of `logits` predicting chars[i].

        Cheaper per character from a handful of rows up: a keystroke's one character goes through `_token`.
        """
        p = softmax(logits)
        rows = np.arange(len(p))[:, None]
        top_ids = np.argpartition(-p, min(TOP, p.shape[1] - 1), axis=1)[:, :TOP]
        top_p = p[rows, top_ids]
        order = np.argsort(-top_p, axis=1, kind="stable")
        top_ids, top_p = top_ids[rows, order], top_p[rows, order]
        probs = p[rows[:, 0], ids].tolist()
        char = self.vocab.char
        tops = [
            tuple((char(t), q) for t, q in zip(ti, tp, strict=True) if q > 0)
            for ti, tp in zip(top_ids.tolist(), top_p.tolist(), strict=True)
        ]
        return [
            Token(c, None if i == Vocab.UNK else pr, top, generated)
            for c, i, pr, top in zip(chars, ids.tolist(), probs, tops, strict=True)
        ]

    # ---------------------------------------------------------------- public API

    def cached_prefix(self, text: str) -> int:
        """How many leading characters of `text` are already scored: the rest costs a model step each."""
        return _common_prefix(self._text, text)

    def score(self, text: str) -> list[Token]:
        """Each character of `text` with p(char | text before it)."""
        self._prime(text)
        return self.scored()

    def scored(self, start: int = 0) -> list[Token]:
        """The tokens of the text the cache holds now (while `priming`, what is scored so far), from `start` on."""
        return self._tokens[start:]

    def surprise(self, text: str, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Bits of surprise of each character of `text`: -log2 p(char | text before it), at temperature 1.

        For long texts: it keeps only the running state (not the prompt cache), works a chunk at a
        time, and calls `progress(characters done)` after each chunk. A character outside the
        vocabulary is charged as the least likely known character at its position.
        """
        ids = self.vocab.encode(text)
        bits = np.empty(len(ids), np.float64)
        state, before = self._states[0], self._logits[0]
        for a in range(0, len(ids), PRIME_CHUNK):
            part = ids[a : a + PRIME_CHUNK]
            logits, states = self.stepper.run(part, state)
            mask_unknown(logits)
            logp = log_softmax(np.concatenate([before[None], logits[:-1]]))  # row i predicts part[i]
            picked = logp[np.arange(len(part)), part]
            unknown = part == Vocab.UNK
            if unknown.any():
                logp[:, Vocab.UNK] = np.inf
                picked[unknown] = logp[unknown].min(axis=1)
            bits[a : a + len(part)] = -picked / np.log(2)
            state, before = list(states[-1]), logits[-1]
            if progress is not None:
                progress(a + len(part))
        return bits

    def stream(self, prompt: str = "", settings: SampleConfig | None = None) -> Iterator[Token]:
        """Yield `settings.length` generated characters after `prompt`, one at a time."""
        self._prime(prompt)
        return self.continuation(settings)

    def continuation(self, settings: SampleConfig | None = None) -> Iterator[Token]:
        """`stream` after the text the cache holds (what `priming` brought it to), without looking at a prompt.

        It stops early when the text generated ends with `settings.until`.
        """
        s = settings or SampleConfig()
        sampler = Sampler(s, self.vocab, self._text[-s.repetition_window :])
        logits, state = self._logits[len(self._text)], self._states[len(self._text)]
        written = ""
        for _ in range(s.length):
            cid = sampler.draw(logits)
            token = self._token(self.vocab.char(cid), logits, generated=True)
            yield token
            if s.until:
                written = (written + token.char)[-len(s.until) :]
                if written == s.until:
                    return
            logits, state = self.stepper.step(cid, state)
            mask_unknown(logits)

    def stream_batch(self, prompt: str, settings: SampleConfig, temperatures: Sequence[float]) -> Iterator[list[Token]]:
        """`stream` at several temperatures at once, as one batch: yields a list of tokens (one per
        temperature) per step, `settings.length` times (`until` is not looked at). Row b draws with its
        own Sampler, so it is the text `stream(prompt, settings at temperatures[b])` gives (up to the
        rounding of the products)."""
        self._prime(prompt)
        samplers = [Sampler(replace(settings, temperature=t), self.vocab, prompt) for t in temperatures]
        logits = np.repeat(self._logits[len(prompt)][None], len(temperatures), axis=0)
        state = [np.repeat(s[None], len(temperatures), axis=0) for s in self._states[len(prompt)]]
        for _ in range(settings.length):
            ids = np.array([sampler.draw(row) for sampler, row in zip(samplers, logits, strict=True)])
            yield self._tokens_for(self.vocab.decode(ids), ids, logits, generated=True)
            logits, state = self.stepper.step(ids, state)
            mask_unknown(logits)

    def sample(self, prompt: str = "", settings: SampleConfig | None = None) -> str:
        return "".join(t.char for t in self.stream(prompt, settings))

    def samples(self, prompt: str = "", settings: SampleConfig | None = None) -> list[Sample]:
        """`settings.count` samples after `prompt`, the i-th from seed `settings.seed + i` (mod 2**32), each
        stopped at `settings.until`; the likeliest first (the fewest bits per character; ties by seed)."""
        s = settings or SampleConfig()
        made = []
        for i in range(s.count):
            seed = (s.seed + i) % 2**32
            made.append(Sample(tuple(self.stream(prompt, replace(s, seed=seed))), seed))
        return sorted(made, key=lambda m: (m.bits_per_char, m.seed))


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix, by comparing slices (a 100,000-character prompt in well under a ms)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo
