"""How surprising a text is to a model: bits per character, per line, and the oddest lines.

The figures come from `Generator.surprise` (NumPy, a chunk at a time), so a file of any
length is scored in bounded memory. A line's figures include its newline: where a line
ends is part of what the model predicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LineScore:
    line: int  # 1-based
    start: int  # the line's characters in the text, its newline included
    end: int
    bits: float  # total surprise, in bits
    unknown: int  # characters outside the model's vocabulary

    @property
    def chars(self) -> int:
        return self.end - self.start

    @property
    def bits_per_char(self) -> float:
        return self.bits / self.chars

    def to_json(self, text: str) -> dict:
        return {
            "line": self.line,
            "chars": self.chars,
            "bits_per_char": round(self.bits_per_char, 4),
            "bits": round(self.bits, 2),
            "unknown": self.unknown,
            "text": text[self.start : self.end].rstrip("\n"),
        }


def probabilities(bits: np.ndarray) -> np.ndarray:
    """p(char | text before it) back from its surprise in bits."""
    return np.exp2(-bits)


def line_scores(text: str, bits: np.ndarray, unknown: np.ndarray) -> list[LineScore]:
    """Every line's figures (an empty last line, after a final newline, is not a line)."""
    if not text:
        return []
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    ends = (np.flatnonzero(codes == ord("\n")) + 1).tolist()
    if not ends or ends[-1] != len(text):
        ends.append(len(text))
    starts = [0, *ends[:-1]]
    sums = np.add.reduceat(bits, starts)
    unknowns = np.add.reduceat(unknown.astype(np.int64), starts)
    return [
        LineScore(n + 1, a, b, float(s), int(u))
        for n, (a, b, s, u) in enumerate(zip(starts, ends, sums.tolist(), unknowns.tolist(), strict=True))
    ]


def most_surprising(lines: list[LineScore], n: int) -> list[LineScore]:
    """The `n` lines with the most bits per character, the most surprising first."""
    return sorted(lines, key=lambda s: (-s.bits_per_char, s.line))[:n]


def summary(bits: np.ndarray, unknown: np.ndarray) -> dict:
    """The whole text's figures: characters, bits per character, characters outside the vocabulary."""
    return {
        "chars": len(bits),
        "bits_per_char": round(float(bits.mean()), 4) if len(bits) else math.nan,
        "unknown": int(unknown.sum()),
    }
