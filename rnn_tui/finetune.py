"""Fine-tuning's one piece of arithmetic: growing a trained model to a vocabulary with new characters. Torch-free.

A run made with `--init-from` starts from another run's (or a shipped model's) weights. Its vocabulary is the
source's plus the characters of the new text that the source lacks (vocab.py keeps characters sorted, so ids
move; rows are matched by character, never by id). A new character gets:

- an embedding row that is the mean of the known characters' rows: "some character", the input that disturbs the
  recurrent state least, rather than a random vector of another scale that the trained layers never saw;
- an output row whose weights are the mean of the known rows and whose bias is the smallest known bias, so it
  starts about as unlikely as the rarest character the model knows: the known text's loss is barely changed
  at step 0, and the gradient of the first occurrences lifts it.
"""

from __future__ import annotations

import numpy as np

from rnn_tui.checkpoint import Arrays, Checkpoint
from rnn_tui.text.vocab import Vocab

SHOWN_NEW = 12  # new characters named in the line that describes a fine-tuning run's vocabulary


def grown_vocab(model: Vocab, text: Vocab) -> Vocab:
    """The model's characters and the text's."""
    return Vocab([*model.chars, *text.chars])


def grow(arrays: Arrays, old: Vocab, new: Vocab) -> Arrays:
    """`arrays` (a model's weights for `old`) for the vocabulary `new`, a superset of `old`."""
    rows = np.array([old.id(c) for c in [Vocab.UNK_CHAR, *new.chars]])
    rows[0] = Vocab.UNK
    fresh = (rows == Vocab.UNK) & (np.arange(len(rows)) != 0)
    out = dict(arrays)
    for name in ("embed.weight", "head.weight", "head.bias"):
        a = arrays[name]
        grown = a[rows].copy()
        known = a[1:]  # every character the model knows (row 0 is "unknown", never a target)
        grown[fresh] = known.min(axis=0) if name == "head.bias" else known.mean(axis=0)
        out[name] = grown.astype(a.dtype)
    return out


def describe(name: str, source: Checkpoint, text: Vocab) -> str:
    """One line: how many of the text's characters the model knew, and which are new."""
    new = [c for c in text.chars if c not in source.vocab]
    shown = " ".join(map(repr, new[:SHOWN_NEW]))
    more = f" and {len(new) - SHOWN_NEW} more" if len(new) > SHOWN_NEW else ""
    added = f", added to its vocabulary: {shown}{more}" if new else ""
    return (
        f"fine-tuning {name} (step {source.step:,}): of the text's {len(text.chars)} characters, "
        f"{len(text.chars) - len(new)} are known to it and {len(new)} new{added}"
    )
