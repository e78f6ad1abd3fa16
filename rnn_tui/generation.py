"""Scoring and streaming text one character at a time, with the prompt's states cached.

The text is read as if it followed a newline (or, for a corpus without newlines, the
neutral unknown id), so even the first character of a prompt has a probability.

Confidence (`Token.prob`, `Token.top`) is always the model's belief at temperature 1;
temperature and top-k only change which character is drawn.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from rnn_tui.config import ModelConfig
from rnn_tui.corpus import Vocab
from rnn_tui.inference import Stepper

TOP = 5
KEEP_RECENT = 1024  # prompt positions whose state is always kept
KEEP_EVERY = 256  # and every this many positions further back
PRIME_CHUNK = 1024  # characters fed to the model at once when priming


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


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max())
    return z / z.sum()


def sampling_distribution(logits: np.ndarray, temperature: float, top_k: int = 0) -> np.ndarray:
    """The distribution a character is drawn from: logits / temperature, cut to the top k.

    Temperature 0 puts all the mass on the most likely character (greedy).
    """
    if temperature <= 0:
        p = np.zeros_like(logits, dtype=np.float64)
        p[int(np.argmax(logits))] = 1.0
        return p
    z = logits.astype(np.float64) / temperature
    if 0 < top_k < len(z):
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
        if np.isfinite(z).sum() > top_k:  # ties at the k-th value: keep exactly k
            keep = np.argsort(-z, kind="stable")[:top_k]
            z = np.where(np.isin(np.arange(len(z)), keep), z, -np.inf)
    return softmax(z)


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
        logits[Vocab.UNK] = -np.inf  # the model never emits the unknown character
        self._text = ""
        self._states: dict[int, list[np.ndarray]] = {0: state}  # state after text[:i]
        self._logits: list[np.ndarray] = [logits]  # _logits[i]: the prediction for text[i]
        self._tokens: list[Token] = []  # _tokens[i]: text[i] as the model saw it

    # ---------------------------------------------------------------- the prompt cache

    def _prime(self, text: str) -> None:
        """Bring the cache to `text`, reusing the longest cached prefix: appending a character costs one step."""
        n = _common_prefix(self._text, text)
        for i in [i for i in self._states if i > n]:
            del self._states[i]
        start = max(self._states)
        del self._logits[start + 1 :]
        del self._tokens[n:]
        state = self._states[start]
        ids = self.vocab.encode(text[start:])
        for a in range(0, len(ids), PRIME_CHUNK):
            chunk = ids[a : a + PRIME_CHUNK]
            logits, states = self.stepper.run(chunk, state)
            logits[:, Vocab.UNK] = -np.inf
            self._logits.extend(logits)
            for j in range(len(chunk)):
                if self._keep(start + a + j + 1, len(text)):
                    self._states[start + a + j + 1] = list(states[j])
            state = list(states[-1])
        for i in [i for i in self._states if not self._keep(i, len(text))]:
            del self._states[i]
        self._tokens.extend(self._token(text[i], self._logits[i]) for i in range(len(self._tokens), len(text)))
        self._text = text

    @staticmethod
    def _keep(i: int, n: int) -> bool:
        return i == n or i % KEEP_EVERY == 0 or i >= n - KEEP_RECENT

    def _token(self, char: str, logits: np.ndarray, generated: bool = False) -> Token:
        p = softmax(logits)
        top_ids = np.argpartition(-p, min(TOP, len(p) - 1))[:TOP]
        top_ids = top_ids[np.argsort(-p[top_ids], kind="stable")]
        top = tuple((self.vocab.char(int(i)), float(p[i])) for i in top_ids if p[i] > 0)
        cid = self.vocab.id(char)
        prob = None if cid == Vocab.UNK else float(p[cid])
        return Token(char, prob, top, generated)

    # ---------------------------------------------------------------- public API

    def cached_prefix(self, text: str) -> int:
        """How many leading characters of `text` are already scored: the rest costs a model step each."""
        return _common_prefix(self._text, text)

    def score(self, text: str) -> list[Token]:
        """Each character of `text` with p(char | text before it)."""
        self._prime(text)
        return list(self._tokens)

    def stream(
        self, prompt: str = "", n: int = 200, temperature: float = 1.0, top_k: int = 0, seed: int | None = None
    ) -> Iterator[Token]:
        """Yield `n` generated characters after `prompt`, one at a time."""
        rng = np.random.default_rng(seed)
        self._prime(prompt)
        logits, state = self._logits[len(prompt)], self._states[len(prompt)]
        for _ in range(n):
            p = sampling_distribution(logits, temperature, top_k)
            cid = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
            cid = min(cid, len(p) - 1)
            char = self.vocab.char(cid)
            yield self._token(char, logits, generated=True)
            logits, state = self.stepper.step(cid, state)
            logits[Vocab.UNK] = -np.inf

    def sample(
        self, prompt: str = "", n: int = 200, temperature: float = 1.0, top_k: int = 0, seed: int | None = None
    ) -> str:
        return "".join(t.char for t in self.stream(prompt, n, temperature, top_k, seed))


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
