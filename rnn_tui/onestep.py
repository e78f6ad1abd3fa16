"""One step of a trained model laid open, at any character of a text: the step view's numbers. Torch-free.

The lesson draws the post's figure for a toy model; this is the same figure for the real one. At
character `index` of a text, read as the playground reads it (after a newline), the model takes
that character as its input, runs every layer's cell (`Stepper.open_step`: each kernel's named
`parts`, such as an LSTM's gates and cell state) and scores every character as the next one. The
character that actually came next in the text is the step's target.

`Walk` keeps the state every `every` characters of the text, so a step anywhere costs at most that
many steps of the model once the text before it has been read (`reading`, a stretch at a time, for
a worker that reports its progress), and the next character's costs one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rnn_tui.inference import Stepper, mask_unknown, softmax
from rnn_tui.text.vocab import Vocab

EVERY = 256  # characters between kept states


@dataclass(frozen=True)
class OneStep:
    """The model's step at `text[index]`: what it read, what it computed, and what it expected next."""

    index: int
    char: str  # the character read, text[index]
    char_id: int  # its id (Vocab.UNK: not in the vocabulary, read as the unknown character)
    next_char: str | None  # text[index + 1], what came next (None: the text ends here)
    next_id: int | None  # its id (Vocab.UNK: not in the vocabulary; None: the text ends here)
    layers: list[dict[str, np.ndarray]]  # each layer's named vectors (its kernel's `parts`), bottom first
    logits: np.ndarray  # every next character's score (the unknown character's -inf: never emitted)
    probs: np.ndarray  # softmax(logits)

    def top(self, k: int) -> list[int]:
        """The ids of the k highest scores, highest first (the unknown character never among them)."""
        order = np.argsort(-self.logits, kind="stable")
        return [int(i) for i in order[: min(k, len(order) - 1)]]

    @property
    def next_known(self) -> bool:
        """The next character is in the vocabulary, so it has a score, a probability and a rank."""
        return self.next_id is not None and self.next_id != Vocab.UNK

    @property
    def next_rank(self) -> int | None:
        """The next character's rank among the scores (1: the highest; ties count against it), or None."""
        if not self.next_known:
            return None
        return int((self.logits >= self.logits[self.next_id]).sum())

    @property
    def next_prob(self) -> float | None:
        return float(self.probs[self.next_id]) if self.next_known else None


class Walk:
    """Steps of a model through one text, at any character, exactly as the playground reads it.

    Not thread-safe: use it from one thread (the step view's worker)."""

    def __init__(self, stepper: Stepper, vocab: Vocab, text: str, every: int = EVERY):
        self.stepper, self.vocab, self.text, self.every = stepper, vocab, text, every
        self.ids = vocab.encode(text)
        _, start = stepper.step(vocab.id("\n"), stepper.initial_state())
        self._states: dict[int, list[np.ndarray]] = {0: start}  # the state before text[i], every `every`
        self._recent: tuple[int, list[np.ndarray]] | None = None  # the state after the last step opened

    def __len__(self) -> int:
        return len(self.text)

    def reading(self, index: int) -> Iterator[int]:
        """Keep the states up to `index`, `every` characters at a time, yielding how far they reach after each
        stretch. Stopping early loses nothing: what is read is kept, and a later call carries on from there."""
        start = max(i for i in self._states if i <= index)
        while start + self.every <= index:
            end = start + self.every
            _, states = self.stepper.run(self.ids[start:end], self._states[start])
            self._states[end] = [s.copy() for s in states[-1]]
            start = end
            yield end

    def state_before(self, index: int) -> list[np.ndarray]:
        """The state after reading text[:index]: from the last step opened, or else the nearest kept state."""
        if self._recent is not None and self._recent[0] == index:
            return self._recent[1]
        for _ in self.reading(index):
            pass
        start = max(i for i in self._states if i <= index)
        if start == index:
            return self._states[start]
        _, states = self.stepper.run(self.ids[start:index], self._states[start])
        return list(states[-1])

    def at(self, index: int) -> OneStep:
        """The step that reads text[index]."""
        if not 0 <= index < len(self.text):
            raise IndexError(f"character {index} of a text of {len(self.text)}")
        char_id = int(self.ids[index])
        logits, state, layers = self.stepper.open_step(char_id, self.state_before(index))
        self._recent = (index + 1, state)
        logits = mask_unknown(logits.astype(np.float64))
        nxt = index + 1 < len(self.text)
        return OneStep(
            index,
            self.text[index],
            char_id,
            self.text[index + 1] if nxt else None,
            int(self.ids[index + 1]) if nxt else None,
            layers,
            logits,
            softmax(logits),
        )
