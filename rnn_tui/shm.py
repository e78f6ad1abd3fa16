"""The weights in shared memory, from the trainer's process to the app's: the protocol, both sides. Torch-free.

One segment holds a header of two int64s (a sequence counter, the step) and then every
weight as float32, one after another in the order of `layout`. The writer bumps the counter
to odd, copies, writes the step, and bumps it to even; a reader copies only an even version
and keeps its copy only if the counter has not moved meanwhile (a seqlock), so it never
blocks the trainer and never shows a torn set of weights. The writer creates the segment
and unlinks it; a reader only attaches. The writer takes NumPy arrays, so the trainer keeps
PyTorch on its side (train/worker.py).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from multiprocessing import shared_memory

import numpy as np

Layout = list[tuple[str, tuple[int, ...]]]  # each weight's name and shape, in the order they are stored

HEADER = 2  # int64s before the weights: the sequence counter (odd while being written), the step
COUNTER, STEP = 0, 1


def floats(layout: Layout) -> int:
    """How many float32s the weights of `layout` take."""
    return sum(math.prod(shape) for _, shape in layout)


def nbytes(layout: Layout) -> int:
    """The segment's size for `layout`: the header, then the weights."""
    return HEADER * 8 + 4 * floats(layout)


def _views(shm: shared_memory.SharedMemory, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """The header and the flat weights, as arrays over the segment."""
    header = np.ndarray((HEADER,), dtype=np.int64, buffer=shm.buf)
    flat = np.ndarray((floats(layout),), dtype=np.float32, buffer=shm.buf, offset=HEADER * 8)
    return header, flat


class Writer:
    """The trainer's side: creates the segment, publishes the weights, and unlinks it when closed."""

    def __init__(self, layout: Layout):
        self.layout = list(layout)
        self._shm: shared_memory.SharedMemory | None = shared_memory.SharedMemory(create=True, size=nbytes(self.layout))
        self._header, self._flat = _views(self._shm, self.layout)
        self._header[:] = 0

    @property
    def name(self) -> str:
        """The segment's name, for the reader."""
        return self._shm.name

    def write(self, arrays: Iterable[np.ndarray], step: int) -> None:
        """Publish one set of weights, in the layout's order (each converted to float32 as it is copied)."""
        self._header[COUNTER] += 1  # odd: writing
        pos = 0
        for (name, shape), a in zip(self.layout, arrays, strict=True):
            n = math.prod(shape)
            if a.shape != shape:
                raise ValueError(f"{name} has shape {a.shape}, not {shape}")
            self._flat[pos : pos + n] = a.reshape(-1)
            pos += n
        self._header[STEP] = step
        self._header[COUNTER] += 1  # even: stable

    def close(self) -> None:
        """Let go of the segment and unlink it (once)."""
        if self._shm is None:
            return
        self._header = self._flat = None
        self._shm.close()
        with contextlib.suppress(FileNotFoundError):
            self._shm.unlink()
        self._shm = None


class Reader:
    """The app's side: attaches to a writer's segment by name and copies each new, whole version once.

    Raises FileNotFoundError when the segment is gone (the writer has closed it).
    """

    def __init__(self, name: str, layout: Layout):
        self.layout = list(layout)
        self._shm: shared_memory.SharedMemory | None = shared_memory.SharedMemory(name=name)
        self._header, self._flat = _views(self._shm, self.layout)
        self.seen = 0  # the version last returned

    def read(self) -> tuple[int, int, dict[str, np.ndarray]] | None:
        """(version, step, weights by name) if a whole version newer than the last one read is there, else None.

        None also when the writer is writing, or wrote while this copied: the next call takes the next version.
        """
        if self._shm is None:
            return None
        version = int(self._header[COUNTER])
        if version == self.seen or version % 2:
            return None
        step = int(self._header[STEP])
        flat = self._flat.copy()
        if int(self._header[COUNTER]) != version:
            return None  # torn: the writer moved on while we copied
        self.seen = version
        tensors, pos = {}, 0
        for name, shape in self.layout:
            n = math.prod(shape)
            tensors[name] = flat[pos : pos + n].reshape(shape)
            pos += n
        return version, step, tensors

    def close(self, unlink: bool = False) -> None:
        """Detach; with `unlink`, also remove the segment (its writer died before it could)."""
        if self._shm is None:
            return
        self._header = self._flat = None
        with contextlib.suppress(Exception):
            self._shm.close()
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                self._shm.unlink()
        self._shm = None
