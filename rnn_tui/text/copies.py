"""Is it copying? The stretches of a generated text that occur verbatim in the training text.

A character is *copied* when it lies in a stretch of at least N characters (default 20) that occurs,
character for character, in the training text; the *novel* fraction is the share of characters that
are not. The copied characters are exactly the union of the N-character windows of the text that occur
in the training text (every occurring longer stretch is made of occurring windows, and each occurring
window is itself such a stretch), so a query asks, for each window, "does it occur?".

The index is a suffix array sorted to a depth of DEPTH characters: every position of the corpus, as
a uint32, ordered by the DEPTH characters that start there. A window of N <= DEPTH characters occurs
iff a binary search finds it; a query does all its windows' searches at once, as vectorised steps
over the memory-mapped array (about 27 steps for 100 M characters), so a 300-character text takes
milliseconds. Why this and not hashed N-grams: the answer is exact (no false positives to verify),
any N up to DEPTH is asked of the same index, the training part of a corpus (its start, up to the
run's validation split) is asked by a bound on the positions found, and it costs 4 bytes a character
on disk and nothing in memory but the pages the searches touch.

Building it in bounded memory, as a recursive bucket sort through files: the positions are counted by
their first key (two ids for a corpus of one-byte ids, one id otherwise), the keys cut into groups of
at most PASS positions, and each position written to its group's file, a chunk of SCAN positions at a
time; then each group is read back and sorted by its DEPTH-character windows (built a column at a
time), or, when it is one key with more than PASS positions, bucketed again by its next key, the same
way, until the parts fit or they agree on all DEPTH characters. Memory is a chunk or PASS positions'
windows at a time, whatever the corpus. The array is built once per corpus and
vocabulary and cached beside the encoded corpora (`cache_dir()/copies`), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rnn_tui.fsutil import fsync_dir
from rnn_tui.text.corpus import Corpus
from rnn_tui.text.downloads import cache_dir
from rnn_tui.text.vocab import Vocab

DEPTH = 32  # characters each suffix is sorted by: the longest N a query may ask for
PASS = 1_000_000  # positions sorted at once (about 100 MB of windows for two-byte ids)
SCAN = 2_000_000  # positions per chunk of a scan over the corpus (or a group's file)
MIN_COPIED = 20  # the default N


@dataclass(frozen=True)
class Copies:
    """What of a text occurs verbatim in the training text: `spans`, [start, end) runs of copied characters,
    each at least `n` long (a run may join overlapping stretches copied from different places, as in "the fox
    sat on the mat" + "sat on the mat and the dog"); `length` characters in all."""

    spans: tuple[tuple[int, int], ...]
    length: int
    n: int

    @property
    def copied(self) -> int:
        return sum(b - a for a, b in self.spans)

    @property
    def novel(self) -> float:
        """The fraction of characters not in a copied stretch (1 for an empty text)."""
        return 1.0 - self.copied / self.length if self.length else 1.0

    def mask(self) -> np.ndarray:
        """One bool per character: copied or not."""
        marked = np.zeros(self.length, bool)
        for a, b in self.spans:
            marked[a:b] = True
        return marked


class CopyIndex:
    """The suffix array of one encoded corpus, asked about texts up to `limit` (where training ends)."""

    def __init__(self, data: np.ndarray, vocab: Vocab, sa: np.ndarray, limit: int | None = None) -> None:
        self.data, self.vocab, self.sa = np.asarray(data), vocab, np.asarray(sa)  # plain views: cheaper to index
        self.limit = len(data) if limit is None else min(limit, len(data))

    @classmethod
    def of(cls, corpus: Corpus, limit: int | None = None, progress: Callable[[float], None] | None = None) -> CopyIndex:
        """The corpus's index from the cache, or built (and cached) now, calling `progress(fraction done)`."""
        path = cache_path(corpus)
        sa = _load(path, len(corpus.data))
        if sa is None:
            build(np.asarray(corpus.data), path, progress)
            sa = _load(path, len(corpus.data))
            assert sa is not None
        return cls(corpus.data, corpus.vocab, sa, limit)

    def copies(self, text: str, n: int = MIN_COPIED) -> Copies:
        """The stretches of `text` of at least `n` characters that occur in the training text."""
        if not 1 <= n <= DEPTH:
            raise ValueError(f"n must be between 1 and {DEPTH}")
        ids = self.vocab.encode(text).astype(np.int64)
        m = len(ids) - n + 1
        if m <= 0 or len(self.data) == 0:
            return Copies((), len(text), n)
        windows = np.lib.stride_tricks.sliding_window_view(ids, n)
        known = ~(windows == Vocab.UNK).any(axis=1)  # a character the corpus lacks is never copied
        rows = np.flatnonzero(known)
        present = np.zeros(m, bool)
        if len(rows):
            q = windows[rows]
            lo, hi = np.split(self._bound(np.concatenate([q, q]), np.repeat([False, True], len(q))), 2)
            last = self.limit - n  # the last start of a window inside the training text
            for r, a, b in zip(rows.tolist(), lo.tolist(), hi.tolist(), strict=True):
                if b > a and (last >= len(self.data) - n or bool((self.sa[a:b] <= last).any())):
                    present[r] = True
        edges = np.zeros(len(text) + 1, np.int64)  # each present window marks its n characters
        starts = np.flatnonzero(present)
        np.add.at(edges, starts, 1)
        np.add.at(edges, starts + n, -1)
        marked = np.cumsum(edges[:-1]) > 0
        change = np.flatnonzero(np.diff(np.concatenate([[False], marked, [False]]).astype(np.int8)))
        return Copies(tuple(zip(change[::2].tolist(), change[1::2].tolist(), strict=True)), len(text), n)

    def _bound(self, q: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """For each row of `q`, the first suffix whose first characters are >= the row (> where `upper`)."""
        size = len(self.sa)
        lo = np.zeros(len(q), np.int64)
        hi = np.full(len(q), size, np.int64)
        for _ in range(size.bit_length() + 1):
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) // 2
            c = _compare(_windows(self.data, self.sa[np.minimum(mid, size - 1)].astype(np.int64), q.shape[1]), q)
            right = active & np.where(upper, c <= 0, c < 0)
            lo = np.where(right, mid + 1, lo)
            hi = np.where(active & ~right, mid, hi)
        return lo


def cache_path(corpus: Corpus) -> Path:
    """Where a corpus's index lives: keyed by its text and its vocabulary (the ids it holds)."""
    key = hashlib.sha256((corpus.sha256 + json.dumps(corpus.vocab.chars)).encode()).hexdigest()[:32]
    return cache_dir() / "copies" / f"{key}-d{DEPTH}.npy"


def _load(path: Path, n: int) -> np.ndarray | None:
    try:
        sa = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return sa if sa.shape == (n,) and sa.dtype == np.uint32 else None


def _windows(data: np.ndarray, starts: np.ndarray, width: int, dtype: type = np.int64) -> np.ndarray:
    """The `width` ids from each start, 0 past the end (before every id: a shorter suffix sorts first)."""
    n = len(data)
    if len(starts) * width <= 1 << 16:  # a query's: at once
        at = starts[:, None] + np.arange(width)
        return np.where(at < n, data[np.minimum(at, n - 1)], 0).astype(dtype)
    out = np.zeros((len(starts), width), dtype)  # a build's: a column at a time, in bounded memory
    if len(starts) and int(starts.max()) + width <= n:  # none runs past the end: no masks
        for j in range(width):
            out[:, j] = data[starts + j]
        return out
    for j in range(width):
        at = starts + j
        inside = at < n
        out[inside, j] = data[at[inside]]
    return out


def _compare(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """-1, 0 or 1 per row: how row i of `a` compares with row i of `b`, lexicographically."""
    differ = a != b
    first = differ.argmax(axis=1)
    rows = np.arange(len(a))
    less = a[rows, first] < b[rows, first]
    return np.where(differ.any(axis=1), np.where(less, -1, 1), 0)


def _key_step(data: np.ndarray) -> int:
    return 2 if data.dtype.itemsize == 1 else 1


def _keys(data: np.ndarray, starts: np.ndarray, depth: int) -> np.ndarray:
    """The sort key of each suffix at `depth`: its next two ids for one-byte ids, else its next id."""
    w = _windows(data, starts + depth, _key_step(data))
    return w[:, 0] * 256 + w[:, 1] if w.shape[1] == 2 else w[:, 0]


def _order(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The order of `starts` by their DEPTH-character windows (bytes compared big-endian, as the ids)."""
    w = _windows(data, starts, DEPTH, np.dtype(f">u{data.dtype.itemsize}"))
    return np.argsort(w.view(f"S{DEPTH * data.dtype.itemsize}")[:, 0], kind="stable")


def _groups(counts: np.ndarray) -> np.ndarray:
    """For each key, its group: consecutive keys whose counts add up to at most PASS (a bigger key alone)."""
    group = np.zeros(len(counts), np.int64)
    g, filled = 0, 0
    for k in np.flatnonzero(counts).tolist():
        if filled and filled + counts[k] > PASS:
            g, filled = g + 1, 0
        group[k] = g
        filled += int(counts[k])
    return group


Chunks = Callable[[], Iterator[np.ndarray]]  # the positions of a group, a chunk at a time (each call from the start)
Done = Callable[[int], None]  # told how many positions are in place


def _sort_group(
    data: np.ndarray, out: np.ndarray, at: int, chunks: Chunks, count: int, depth: int, folder: Path, done: Done
) -> int:
    """Write the `count` positions `chunks()` yields, suffixes that agree on their first `depth` characters,
    to out[at:] in order; return where they end, having told `done` so. Memory: a chunk, or PASS positions'
    windows, at a time."""
    if depth >= DEPTH:  # they agree on all DEPTH characters: any order
        for chunk in chunks():
            out[at : at + len(chunk)] = chunk
            at += len(chunk)
        done(at)
        return at
    if count <= PASS:
        starts = np.concatenate([c.astype(np.int64) for c in chunks()])
        out[at : at + count] = starts[_order(data, starts)]
        done(at + count)
        return at + count
    # Too many to sort at once: into files by the key at `depth` (groups of keys up to PASS), then each file.
    counts = np.zeros(_key_space(data), np.int64)
    for chunk in chunks():
        counts += np.bincount(_keys(data, chunk.astype(np.int64), depth), minlength=len(counts))
    group = _groups(counts)
    sub = Path(tempfile.mkdtemp(dir=folder))
    files: dict[int, BinaryIO] = {}
    try:
        for chunk in chunks():
            g = group[_keys(data, chunk.astype(np.int64), depth)]
            by_group = np.argsort(g, kind="stable")
            g, chunk = g[by_group], chunk[by_group]
            cuts = np.flatnonzero(np.diff(g)) + 1
            for gid, part in zip(g[np.concatenate([[0], cuts])].tolist(), np.split(chunk, cuts), strict=True):
                if gid not in files:
                    files[gid] = open(sub / f"{gid}.u32", "wb")  # noqa: SIM115 closed below
                part.astype(np.uint32).tofile(files[gid])
        for fh in files.values():
            fh.close()
        for gid in sorted(files):  # in key order; a group over PASS is one key, so one more step agrees
            path = sub / f"{gid}.u32"
            size = path.stat().st_size // 4
            deeper = depth + _key_step(data) if size > PASS else depth
            at = _sort_group(data, out, at, partial(_file_chunks, path), size, deeper, sub, done)
            path.unlink()
    finally:
        for fh in files.values():
            fh.close()
        shutil.rmtree(sub, ignore_errors=True)
    return at


def _file_chunks(path: Path) -> Iterator[np.ndarray]:
    with path.open("rb") as fh:
        while len(chunk := np.fromfile(fh, dtype=np.uint32, count=SCAN)):
            yield chunk


def _range_chunks(n: int) -> Iterator[np.ndarray]:
    for a in range(0, n, SCAN):
        yield np.arange(a, min(a + SCAN, n), dtype=np.uint32)


def _key_space(data: np.ndarray) -> int:
    return 65536 if _key_step(data) == 2 else int(data.max(initial=0)) + 1


def build(data: np.ndarray, path: Path, progress: Callable[[float], None] | None = None) -> None:
    """Build the suffix array of `data` to DEPTH characters into `path` (.npy, uint32), atomically."""
    n = len(data)
    if n >= 2**32:
        raise ValueError("the copy index holds up to 4 G characters")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint32, shape=(n,))
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".groups-") as folder:
            done: Done = (lambda at: progress(at / n)) if progress is not None else (lambda at: None)
            written = _sort_group(data, out, 0, partial(_range_chunks, n), n, 0, Path(folder), done)
            assert written == n
        out.flush()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        del out
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def for_run(run_dir: Path | str, progress: Callable[[float], None] | None = None) -> CopyIndex:
    """The index of the text a run trained on: its corpus, asked only about the training part (before the
    validation split). A UserError when the run's text is no longer where it was."""
    from rnn_tui import checkpoint
    from rnn_tui.text.corpus import run_corpus

    run_dir = Path(run_dir)
    if run_dir.name == checkpoint.BEST:
        run_dir = run_dir.parent
    corpus, train, _ = run_corpus(run_dir, "put the run's text back to check for copies")
    return CopyIndex.of(corpus, len(train), progress)
