"""Text sources, the vocabulary, the encoded array, the train/val split and the batches.

A corpus is read as a stream of normalised text chunks (UTF-8 by default, CRLF turned into
LF), so a big one never has to sit in memory as one Python string. Corpora over
`CACHE_THRESHOLD` bytes are encoded once into a memory-mapped file keyed by their content
hash; the second load only hashes the source and maps the cache. The named corpora and
their downloads are in downloads.py.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import stat
import sysconfig
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn_tui.downloads import NAMED, cache_dir, download, is_cached, source_url
from rnn_tui.errors import UserError
from rnn_tui.fsutil import atomic_write_bytes

BUILTIN = "stdlib"
CACHE_THRESHOLD = 1_000_000  # bytes of source text above which the encoded array is cached on disk
STDLIB_MAX_BYTES = 5_000_000
CHUNK_BYTES = 1 << 24
TRACE_OF_BAD_BYTES = 1e-4  # tolerated fraction of undecodable bytes before we refuse a file
DEFAULT_VAL_FRAC = 0.1  # the end of the text kept for validation, unless --val-frac or a standard split says otherwise


# --------------------------------------------------------------------------- vocabulary


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
        cps = _codepoints(text)
        if not len(self.chars):
            return np.zeros(len(cps), dtype=self.dtype)
        pos = np.minimum(np.searchsorted(self._codepoints, cps), len(self.chars) - 1)
        found = self._codepoints[pos] == cps
        return np.where(found, pos + 1, self.UNK).astype(self.dtype)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        return "".join(self._table[np.asarray(ids, dtype=np.int64)])


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


# --------------------------------------------------------------------------- text sources


@dataclass
class Source:
    """Where a corpus's text comes from: an ordered list of files and how to decode them."""

    name: str
    files: list[Path]
    encoding: str = "utf-8"
    strict_files: bool = True  # a single named file must be text; in a folder, non-text files are skipped
    description: str = ""
    skipped: list[Path] = field(default_factory=list)
    keep_bytes: bool = False  # no CRLF to LF: with a one-byte encoding, characters are then the file's bytes
    split: tuple[int, int] | None = None  # a standard split (see Corpus.split)

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def content_hash(self) -> str:
        """sha256 of the raw bytes (with file names for folders): the corpus's identity."""
        h = hashlib.sha256()
        for f in self.files:
            if len(self.files) > 1:
                h.update(f.name.encode() + b"\0")
            with f.open("rb") as fh:
                while block := fh.read(CHUNK_BYTES):
                    h.update(block)
        return h.hexdigest()

    def chunks(self) -> Iterator[str]:
        """The normalised text, in chunks. Refuses a named file that is not text; skips such files in folders."""
        self.skipped = []
        first = True
        for path in self.files:
            if self.strict_files:
                pieces: Iterable[str] = _decode_file(path, self.encoding, self.keep_bytes)
            else:
                try:  # decode the whole file first, so a bad one is skipped before any of it is used
                    pieces = list(_decode_file(path, self.encoding, self.keep_bytes))
                except _NotText:
                    self.skipped.append(path)
                    continue
            if not first:
                yield "\n\n"
            first = False
            try:
                yield from pieces
            except _NotText as exc:
                raise UserError(str(exc)) from None


class _NotText(Exception):
    pass


def _decode_file(path: Path, encoding: str, keep_bytes: bool = False) -> Iterator[str]:
    """Decode one file in chunks, CRLF becoming LF unless `keep_bytes`; raise _NotText with a one-line reason."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    except LookupError:
        raise UserError(
            f"unknown encoding {encoding!r}; pass a Python codec name to --encoding, e.g. utf-8 or latin-1"
        ) from None
    utf8 = codecs.lookup(encoding).name == "utf-8"
    bad = total = 0
    held_cr = ""
    with path.open("rb") as fh:
        first = True
        while True:
            raw = fh.read(CHUNK_BYTES)
            if first and utf8 and b"\0" in raw[:8192]:
                raise _NotText(
                    f"{path} is not a text file (it contains NUL bytes); "
                    "give --data a text file or a folder with --glob"
                )
            first = False
            text = held_cr + decoder.decode(raw, final=not raw)
            total += len(raw)
            if "\ufffd" in text:
                bad += text.count("\ufffd") - raw.count("\ufffd".encode(encoding)) if utf8 else text.count("\ufffd")
            held_cr = "\r" if text.endswith("\r") and raw else ""
            text = text[:-1] if held_cr else text
            if text:
                yield text if keep_bytes else text.replace("\r\n", "\n")
            if not raw:
                break
    if bad > max(8, TRACE_OF_BAD_BYTES * total):
        raise _NotText(
            f"{path} is not valid {encoding} ({bad:,} undecodable bytes); "
            "if it uses another encoding, pass --encoding (for example --encoding latin-1)"
        )


def read_text(path: str | Path, encoding: str = "utf-8", *, fix: str = "choose a text file") -> str:
    """One text file, decoded as a corpus is (CRLF becomes LF); a one-line UserError, ending in `fix`,
    when it is missing, a folder, a pipe or a device, or not text in `encoding`."""
    p = Path(path).expanduser()
    mode = _mode(p, f"no such file: {p}; check the path", fix)
    if stat.S_ISDIR(mode):
        raise UserError(f"{p} is a folder; give a file")
    if not stat.S_ISREG(mode):
        raise UserError(f"{p} is {_kind(mode)}, not a text file; {fix}")
    try:
        return "".join(_decode_file(p, encoding))
    except _NotText as exc:
        raise UserError(f"{str(exc).split(';')[0]}; {fix}") from None


def _mode(p: Path, missing: str, fix: str) -> int:
    """`p`'s st_mode; a one-line UserError, `missing` when it is not there, ending in `fix` when it cannot be read."""
    try:
        return p.stat().st_mode
    except FileNotFoundError:
        raise UserError(missing) from None
    except OSError as exc:
        raise UserError(f"cannot read {p} ({exc.strerror}); {fix}") from None


def _kind(mode: int) -> str:
    """What a path that is neither a regular file nor a folder is, in words."""
    kinds = {stat.S_ISFIFO: "a pipe", stat.S_ISCHR: "a device", stat.S_ISBLK: "a device", stat.S_ISSOCK: "a socket"}
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def _check_data_path(p: Path) -> None:
    """--data must name a regular file or a folder: a pipe or a device would hang or never end."""
    mode = _mode(p, f"no such file or folder: {p}; check the path given to --data", "check the path given to --data")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UserError(
            f"{p} is {_kind(mode)}, not a text file or a folder; save the text to a file and give --data that file"
        )


def file_source(path: str | Path, globs: Sequence[str] = (), encoding: str = "utf-8") -> Source:
    """A file, or a folder read recursively (only files matching `globs`, if any)."""
    p = Path(path).expanduser()
    _check_data_path(p)
    if p.is_file():
        if globs:
            raise UserError("--glob only applies when --data is a folder; drop --glob or pass a folder")
        return Source(name=p.stem or p.name, files=[p], encoding=encoding, description=str(p))
    files = sorted(
        f
        for f in p.rglob("*")
        if f.is_file()
        and not any(part.startswith(".") for part in f.relative_to(p).parts)
        and (not globs or any(f.match(g) for g in globs))
    )
    if not files:
        what = f" matching {' '.join(globs)}" if globs else ""
        raise UserError(f"the folder {p} has no files{what}; check --data and --glob")
    return Source(name=p.resolve().name, files=files, encoding=encoding, strict_files=False, description=str(p))


def stdlib_source() -> Source:
    """The built-in corpus: a deterministic selection of the running Python's standard library source.

    Files are picked by a hash of their path (so the pick does not depend on alphabetical
    order), tests and generated tables are left out, and the total stops at about 5 MB.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {
        "test",
        "tests",
        "idle_test",
        "site-packages",
        "dist-packages",
        "__pycache__",
        "encodings",
        "pydoc_data",
        "lib2to3",
        "turtledemo",
        "idlelib",
        "ensurepip",
    }
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):  # pruned as it goes: site-packages can be huge
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith("config-")]
        found += [Path(folder, f) for f in files if f.endswith(".py")]
    chosen: list[Path] = []
    total = 0
    for f in sorted(found):
        rel = f.relative_to(root)
        if rel.name.startswith("test_") or hashlib.sha1(rel.as_posix().encode()).digest()[0] % 2:
            continue
        size = f.stat().st_size
        if total + size > STDLIB_MAX_BYTES:
            continue
        chosen.append(f)
        total += size
    if not chosen:
        raise UserError(
            f"the built-in corpus needs Python's standard library source, which is not at {root}; "
            "pass --data FILE or --corpus shakespeare"
        )
    return Source(
        name=BUILTIN,
        files=chosen,
        strict_files=False,
        description=f"Python {sysconfig.get_python_version()} standard library ({len(chosen)} files)",
    )


def named_source(name: str, *, offline: bool = False) -> Source:
    """A named corpus, downloaded once into the cache."""
    if name not in NAMED:
        raise UserError(f"unknown corpus {name!r}; choose one of: {', '.join([BUILTIN, *NAMED])} (see rnn-tui corpora)")
    spec = NAMED[name]
    path = download(spec, offline=offline)
    return Source(
        name=name,
        files=[path],
        encoding=spec.encoding,
        description=spec.description,
        keep_bytes=spec.keep_bytes,
        split=spec.split,
    )


# --------------------------------------------------------------------------- the corpus


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
        cps = _codepoints(chunk)
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


def _load_cached(folder: Path, key: str) -> tuple[Vocab, np.ndarray] | None:
    try:
        meta = json.loads((folder / f"{key}.json").read_text())
        vocab = Vocab(meta["chars"])
        data = np.memmap(folder / f"{key}.ids", dtype=np.dtype(meta["dtype"]), mode="r", shape=(meta["length"],))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return vocab, data


def check_source(
    data: str | None = None, corpus: str | None = None, globs: Sequence[str] = (), encoding: str = "utf-8"
) -> None:
    """The checks of the flags that need no reading of the text: a UserError for the first mistake."""
    if data and corpus:
        raise UserError("give either --data or --corpus, not both")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise UserError(
            f"unknown encoding {encoding!r}; pass a Python codec name to --encoding, e.g. utf-8 or latin-1"
        ) from None
    if data:
        p = Path(data).expanduser()
        _check_data_path(p)
        if globs and not p.is_dir():
            raise UserError("--glob only applies when --data is a folder; drop --glob or pass a folder")
    elif globs:
        raise UserError("--glob needs --data FOLDER")
    elif corpus not in (None, BUILTIN, *NAMED):
        raise UserError(
            f"unknown corpus {corpus!r}; choose one of: {', '.join([BUILTIN, *NAMED])} (see rnn-tui corpora)"
        )


def resolve_source(
    data: str | None = None, corpus: str | None = None, globs: Sequence[str] = (), encoding: str = "utf-8"
) -> Source:
    """The source named by the CLI flags: --data, --corpus, or the built-in corpus."""
    check_source(data, corpus, globs, encoding)
    if data:
        return file_source(data, globs, encoding)
    if corpus in (None, BUILTIN):
        return stdlib_source()
    return named_source(corpus)


def list_corpora() -> list[dict]:
    """The corpora by name: size, where they come from, whether they are built in, cached or still to download."""
    src = stdlib_source()
    rows = [
        {
            "name": BUILTIN,
            "size": src.size_bytes,
            "status": "built in",
            "download_size": 0,
            "source": sysconfig.get_paths()["stdlib"],
            "description": src.description,
        }
    ]
    for spec in NAMED.values():
        cached = is_cached(spec)
        rows.append(
            {
                "name": spec.name,
                "size": spec.size,
                "status": "cached" if cached else "download",
                "download_size": 0 if cached else spec.fetched.size,
                "source": source_url(spec),
                "description": spec.description,
            }
        )
    return rows


# --------------------------------------------------------------------------- batches


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
