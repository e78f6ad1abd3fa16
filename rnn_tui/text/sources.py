"""Where a corpus's text comes from: a file, a folder, the built-in stdlib, or a named download.

`SourceSpec` is the source as the user gave it (--data, --corpus, --glob, --encoding). It is
checked in one place (`SourceSpec.checked`, one message per mistake), travels whole from the
flags to meta.json and back, and is resolved one way (`SourceSpec.resolve`) by the planner,
the trainer and the neuron view. A `Source` is the resolved list of files, read as a stream
of normalised text chunks (CRLF turned into LF), so a big corpus never sits in memory as one
Python string.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
import sysconfig
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnn_tui.errors import UserError
from rnn_tui.text.downloads import NAMED, download, is_cached, source_url

BUILTIN = "stdlib"
STDLIB_MAX_BYTES = 5_000_000
CHUNK_BYTES = 1 << 24
TRACE_OF_BAD_BYTES = 1e-4  # tolerated fraction of undecodable bytes before we refuse a file


# --------------------------------------------------------------------------- the source as given


@dataclass(frozen=True)
class SourceSpec:
    """Where the text comes from, as the user gave it. `data` is absolute once checked, so a run resumes from
    any folder."""

    data: str | None = None
    corpus: str | None = None
    globs: tuple[str, ...] = ()
    encoding: str = "utf-8"

    def checked(self) -> SourceSpec:
        """This source with `data` made absolute, or a UserError for the first mistake (nothing is read)."""
        if self.data and self.corpus:
            raise UserError("give either --data or --corpus, not both")
        _codec(self.encoding)
        if self.data:
            p = Path(self.data).expanduser()
            _check_data_path(p)
            if self.globs and not p.is_dir():
                raise UserError("--glob only applies when --data is a folder; drop --glob or pass a folder")
            return SourceSpec(str(p.resolve()), None, tuple(self.globs), self.encoding)
        if self.globs:
            raise UserError("--glob needs --data FOLDER")
        _named(self.corpus)
        return self

    def resolve(self) -> Source:
        """The files to read: --data, --corpus, or the built-in corpus (a named one is downloaded once)."""
        spec = self.checked()
        if spec.data:
            return file_source(spec.data, spec.globs, spec.encoding)
        if spec.corpus in (None, BUILTIN):
            return stdlib_source()
        return named_source(spec.corpus)

    def still_there(self, fix: str) -> SourceSpec:
        """This saved source, or a UserError ending in `fix` when the --data it was trained on is gone."""
        if self.data and not Path(self.data).exists():
            raise UserError(f"this run was trained on {self.data}, which is not there any more; {fix}")
        return self

    @property
    def name(self) -> str:
        """The corpus's short name: the file's stem, the folder's name, or the corpus name."""
        if self.data:
            p = Path(self.data)
            return p.stem if p.is_file() else p.name
        return self.corpus if self.corpus in NAMED else BUILTIN

    def to_dict(self) -> dict:
        return {"data": self.data, "corpus": self.corpus, "globs": list(self.globs), "encoding": self.encoding}

    @property
    def named(self) -> bool:
        """Whether the user named a text (--data or --corpus), rather than taking the built-in one."""
        return bool(self.data or self.corpus)

    @classmethod
    def from_dict(cls, d: dict) -> SourceSpec:
        """From meta.json (checkpoint.read_meta has checked it with `fits`), a plan's JSON or the parsed flags."""
        return cls(d.get("data"), d.get("corpus"), tuple(d.get("globs") or ()), d.get("encoding") or "utf-8")

    @staticmethod
    def fits(d: object) -> bool:
        """Whether `d` has the types of a source's JSON form (to_dict), so from_dict can read it."""
        return (
            isinstance(d, dict)
            and all(isinstance(d.get(k), str | None) for k in ("data", "corpus", "encoding"))
            and isinstance(d.get("globs", []), list)
            and all(isinstance(g, str) for g in d.get("globs", []))
        )


def _codec(encoding: str) -> str:
    """The codec's canonical name, or the one message for an unknown encoding."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(
            f"unknown encoding {encoding!r}; pass a Python codec name to --encoding, e.g. utf-8 or latin-1"
        ) from None


def _named(corpus: str | None) -> None:
    if corpus not in (None, BUILTIN, *NAMED):
        raise _unknown_corpus(corpus)


def _unknown_corpus(name: str) -> UserError:
    """The one message for a corpus name we do not know."""
    return UserError(f"unknown corpus {name!r}; choose one of: {', '.join([BUILTIN, *NAMED])} (see rnn-tui corpora)")


# --------------------------------------------------------------------------- the files


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

    def text(self) -> str:
        """The whole normalised text, as one string (for small sources)."""
        return "".join(self.chunks())


class _NotText(Exception):
    pass


def _decode_file(path: Path, encoding: str, keep_bytes: bool = False) -> Iterator[str]:
    """Decode one file in chunks, CRLF becoming LF unless `keep_bytes`; raise _NotText with a one-line reason."""
    utf8 = _codec(encoding) == "utf-8"
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
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
    p = Path(SourceSpec(str(path), None, tuple(globs), encoding).checked().data)
    shown = str(Path(path).expanduser())
    if p.is_file():
        return Source(name=p.stem or p.name, files=[p], encoding=encoding, description=shown)
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
    return Source(name=p.name, files=files, encoding=encoding, strict_files=False, description=shown)


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
        raise _unknown_corpus(name)
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
