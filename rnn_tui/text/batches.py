"""Training batches over the train split, and the validation text as streams."""

from __future__ import annotations

import numpy as np

from rnn_tui.errors import UserError


def check_trainable(n_train: int, n_val: int, batch_size: int, seq_len: int) -> None:
    """Refuse a corpus too small for one batch, saying how small it is and what to change."""
    need = batch_size * (seq_len + 1)
    if n_train < need:
        raise UserError(
            f"the corpus is too small: {n_train:,} training characters, but one batch needs {need:,} "
            f"(--batch-size {batch_size} x (--seq-len {seq_len} + 1)); use more text or lower --batch-size / --seq-len"
        )
    if n_val < 2:
        raise UserError(f"the validation split has {n_val} characters; raise --val-frac or use more text")


class Batches:
    """Training batches over the train split.

    `tbptt`: the text is cut into `batch_size` contiguous streams and batch j of an epoch is
    the j-th window of every stream, so a hidden state can be carried from one batch to the
    next (char-rnn, torch-rnn). Each epoch shifts the cut by a seeded offset.
    `random`: every row is a window at a random place (nanoGPT); nothing is carried.
    `rows` picks some rows of every batch (a distributed rank's share); the batches are the same.
    """

    def __init__(
        self,
        data: np.ndarray,
        batch_size: int,
        seq_len: int,
        seed: int,
        mode: str = "tbptt",
        rows: slice = slice(None),
    ):
        self.data, self.B, self.T, self.seed, self.mode, self.rows = data, batch_size, seq_len, seed, mode, rows
        self.stream_len = (len(data) - seq_len - 1) // batch_size
        self.per_epoch = (
            max(1, self.stream_len // seq_len) if mode == "tbptt" else max(1, len(data) // (batch_size * seq_len))
        )

    @property
    def carries_state(self) -> bool:
        return self.mode == "tbptt"

    def get(self, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets (int64, shape B x T, or rows x T) of batch `index` of `epoch`."""
        if self.mode == "tbptt":
            offset = int(np.random.default_rng([self.seed, epoch]).integers(0, self.T)) if epoch else 0
            starts = offset + np.arange(self.B) * self.stream_len + index * self.T
        else:
            rng = np.random.default_rng([self.seed, epoch, index])
            starts = rng.integers(0, len(self.data) - self.T - 1, self.B)
        starts = starts[self.rows]
        window = np.asarray(self.data[starts[:, None] + np.arange(self.T + 1)], dtype=np.int64)
        return window[:, :-1], window[:, 1:]


def eval_streams(data: np.ndarray, max_chars: int, streams: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The (capped) validation text cut into contiguous streams: inputs and targets, int64."""
    n = min(len(data) - 1, max_chars)
    b = max(1, min(streams, n // 64))
    length = n // b
    ids = np.asarray(data[: b * length + 1], dtype=np.int64)
    return ids[:-1].reshape(b, length), ids[1:].reshape(b, length)
