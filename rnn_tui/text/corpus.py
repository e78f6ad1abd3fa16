"""The encoded corpus: its vocabulary, the ids (in memory, or memory-mapped from a cache) and the train/val split.

Corpora over `CACHE_THRESHOLD` bytes are encoded once into a memory-mapped file keyed by their
content hash; the second load only hashes the source and maps the cache.
"""

from __future__ import annotations

import codecs
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn_tui.errors import UserError
from rnn_tui.fsutil import atomic_write_bytes
from rnn_tui.text.downloads import cache_dir
from rnn_tui.text.sources import Source
from rnn_tui.text.vocab import Vocab, codepoints

CACHE_THRESHOLD = 1_000_000  # bytes of source text above which the encoded array is cached on disk
DEFAULT_VAL_FRAC = 0.1  # the end of the text kept for validation, unless --val-frac or a standard split says otherwise


@dataclass
class Corpus:
    """An encoded corpus: its vocabulary, the ids (in memory, or memory-mapped) and its identity."""

    name: str
    description: str
    vocab: Vocab
    data: np.ndarray
    sha256: str
    notes: list[str] = field(default_factory=list)
    standard_split: tuple[int, int] | None = None  # where training ends, then where validation ends (enwik8)

    def __len__(self) -> int:
        return len(self.data)

    def identity(self) -> dict:
        split = {"split": list(self.standard_split)} if self.standard_split else {}
        return {
            "name": self.name,
            "description": self.description,
            "chars": len(self.data),
            "sha256": self.sha256,
            **split,
        }

    def reencoded(self, vocab: Vocab) -> Corpus:
        """The same text in another vocabulary's ids (characters it lacks become unknown)."""
        if vocab == self.vocab:
            return self
        table = np.array([vocab.id(self.vocab.char(i)) for i in range(len(self.vocab))], dtype=vocab.dtype)
        data = table[np.asarray(self.data)]
        return Corpus(self.name, self.description, vocab, data, self.sha256, self.notes, self.standard_split)

    def split(self, val_frac: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous split: the last `val_frac` of the text is validation (default 0.1). Without
        `val_frac`, a corpus with a standard split uses it, so that figures compare with the literature."""
        if val_frac is None and self.standard_split:
            train_end, val_end = self.standard_split
            return self.data[:train_end], self.data[train_end:val_end]
        n_val = int(len(self.data) * (DEFAULT_VAL_FRAC if val_frac is None else val_frac))
        cut = len(self.data) - n_val
        return self.data[:cut], self.data[cut:]


def load_corpus(source: Source, *, cache: bool | None = None) -> Corpus:
    """Encode `source`. Big sources (or `cache=True`) go through the memory-mapped cache."""
    sha = source.content_hash()
    if cache is None:
        cache = source.size_bytes > CACHE_THRESHOLD
    folder = cache_dir() / "encoded"
    key = f"{sha[:32]}-{codecs.lookup(source.encoding).name}{'-bytes' if source.keep_bytes else ''}"
    if cache and (hit := _load_cached(folder, key)) is not None:
        vocab, data = hit
        return Corpus(source.name, source.description, vocab, data, sha, standard_split=source.split)
    # Pass 1: vocabulary and length. Pass 2: the ids (into a memmap when caching).
    uniques: list[np.ndarray] = []
    n = 0
    for chunk in source.chunks():
        cps = codepoints(chunk)
        uniques.append(np.unique(cps))
        n += len(cps)
    if n == 0 and source.skipped:
        raise UserError(
            f"none of the {len(source.skipped)} files in {source.description or source.name} is text; "
            "pick the text files with --glob (e.g. --glob '*.txt') or pass --encoding"
        )
    if n == 0:
        raise UserError(f"the corpus {source.description or source.name} is empty; give --data a file with text in it")
    vocab = Vocab.from_codepoints(np.concatenate(uniques))
    notes = [f"skipped {len(source.skipped)} files that are not text"] if source.skipped else []
    if cache:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")
        os.close(fd)
        data = np.memmap(tmp, dtype=vocab.dtype, mode="w+", shape=(n,))
    else:
        data = np.empty(n, dtype=vocab.dtype)
    pos = 0
    for chunk in source.chunks():
        ids = vocab.encode(chunk)
        data[pos : pos + len(ids)] = ids
        pos += len(ids)
    if cache:
        data.flush()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, folder / f"{key}.ids")
        atomic_write_bytes(
            folder / f"{key}.json", json.dumps({"chars": vocab.chars, "length": n, "dtype": vocab.dtype.name}).encode()
        )
        data = np.memmap(folder / f"{key}.ids", dtype=vocab.dtype, mode="r", shape=(n,))
    return Corpus(source.name, source.description, vocab, data, sha, notes, source.split)


def run_corpus(run_dir: Path, fix: str) -> tuple[Corpus, np.ndarray, np.ndarray]:
    """The text a run trained on, as it split it: the corpus, its training part and its validation part.
    A UserError when the run has no checkpoint yet or its text is gone (`fix`: what the user can do then)."""
    from rnn_tui import checkpoint  # the run folder; checkpoint itself needs text.sources and text.vocab
    from rnn_tui.config import TrainConfig
    from rnn_tui.text.sources import SourceSpec

    try:
        meta = checkpoint.read_meta(run_dir)
    except UserError:
        if run_dir.is_dir():  # a new run, before its first checkpoint
            raise UserError(f"{run_dir.name} has saved no checkpoint yet, so its text is not known; save one") from None
        raise
    source = SourceSpec.from_dict(meta.get("source") or {}).still_there(fix)
    corpus = load_corpus(source.resolve())
    train, val = corpus.split((meta.get("train") or {}).get("val_frac", TrainConfig.val_frac))
    return corpus, train, val


def _load_cached(folder: Path, key: str) -> tuple[Vocab, np.ndarray] | None:
    try:
        meta = json.loads((folder / f"{key}.json").read_text())
        vocab = Vocab(meta["chars"])
        data = np.memmap(folder / f"{key}.ids", dtype=np.dtype(meta["dtype"]), mode="r", shape=(meta["length"],))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return vocab, data
