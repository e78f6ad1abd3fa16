"""The vocabulary: characters and their ids, id 0 kept for characters the training text never had."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class Vocab:
    """Characters <-> ids. Id 0 is reserved for characters the training text never had."""

    UNK = 0
    UNK_CHAR = "\ufffd"

    def __init__(self, chars: Iterable[str]):
        self.chars: list[str] = sorted(set(chars))
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("a vocabulary holds single characters")
        self._index = {c: i + 1 for i, c in enumerate(self.chars)}
        self._codepoints = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        self._table = np.array([self.UNK_CHAR, *self.chars], dtype=object)

    @classmethod
    def from_codepoints(cls, codepoints: np.ndarray) -> Vocab:
        return cls(chr(int(c)) for c in np.unique(codepoints))

    def __len__(self) -> int:
        return len(self.chars) + 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.chars == other.chars

    def __contains__(self, char: str) -> bool:
        return char in self._index

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds every id."""
        n = len(self)
        return np.dtype(np.uint8 if n <= 1 << 8 else np.uint16 if n <= 1 << 16 else np.uint32)

    def id(self, char: str) -> int:
        return self._index.get(char, self.UNK)

    def char(self, id_: int) -> str:
        return self._table[id_]

    def encode(self, text: str) -> np.ndarray:
        """Ids for `text`; characters outside the vocabulary become `UNK`."""
        cps = codepoints(text)
        if not len(self.chars):
            return np.zeros(len(cps), dtype=self.dtype)
        pos = np.minimum(np.searchsorted(self._codepoints, cps), len(self.chars) - 1)
        found = self._codepoints[pos] == cps
        return np.where(found, pos + 1, self.UNK).astype(self.dtype)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        return "".join(self._table[np.asarray(ids, dtype=np.int64)])


def codepoints(text: str) -> np.ndarray:
    """The code points of `text`, as uint32."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
