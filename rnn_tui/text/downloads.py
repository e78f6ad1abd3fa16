"""The named corpora: where each comes from, its checksums, and fetching it once into the cache. Torch-free.

    shakespeare      tinyshakespeare from char-rnn, the file itself
    enwik8           the Hutter Prize's first 10^8 bytes of Wikipedia, from a zip archive
    war-and-peace    Project Gutenberg's ebook 2600, the book without Gutenberg's header and licence

A download is streamed into a hidden temporary file next to its place in the cache, checked
(size and sha256), unpacked if need be (and the text checked again), then renamed into place:
a download that is killed or interrupted never leaves a file under the corpus's name, and the
next download clears what it left. One process downloads a corpus at a time (a lock).
$RNN_TUI_MIRROR, if set, is a base URL tried instead of the corpus's own address.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rnn_tui.errors import UserError
from rnn_tui.fsutil import Lock, fsync_dir
from rnn_tui.humanize import size

BLOCK = 1 << 20
SHOW_PROGRESS_FROM = 2_000_000  # bytes: smaller downloads are quick enough to need no progress line
GUTENBERG_START = b"*** START OF THE PROJECT GUTENBERG EBOOK"
GUTENBERG_END = b"*** END OF THE PROJECT GUTENBERG EBOOK"

Progress = Callable[[int, int], None]  # (bytes so far, bytes in all)


@dataclass(frozen=True)
class Download:
    """What is fetched when it is not the text itself, and how the text comes out of it."""

    filename: str  # its name at the source (and under $RNN_TUI_MIRROR)
    size: int
    sha256: str
    unpack: str  # "zip": the archive's member named like the text; "gutenberg": the book between its markers


@dataclass(frozen=True)
class NamedCorpus:
    """A corpus that can be downloaded by name. `size` and `sha256` are the text's, as cached."""

    name: str
    url: str
    filename: str
    size: int
    sha256: str
    description: str
    download: Download | None = None  # None: the file at `url` is the text
    encoding: str = "utf-8"
    keep_bytes: bool = False  # decode every byte as it is (no CRLF to LF), so that characters are bytes
    split: tuple[int, int] | None = None  # a standard split: where training ends, then where validation ends

    @property
    def fetched(self) -> Download:
        """What is fetched: the download, or the text itself."""
        return self.download or Download(self.filename, self.size, self.sha256, "")


NAMED: dict[str, NamedCorpus] = {
    "shakespeare": NamedCorpus(
        name="shakespeare",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        filename="tinyshakespeare.txt",
        size=1_115_394,
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        description="tinyshakespeare from char-rnn: 40,000 lines of Shakespeare",
    ),
    # Read as latin-1, one character per byte, so that losses are bits per byte as in the literature;
    # the standard split: 90 MB to train, the next 5 MB to validate, the last 5 MB (the test set) unused.
    "enwik8": NamedCorpus(
        name="enwik8",
        url="http://mattmahoney.net/dc/enwik8.zip",
        filename="enwik8",
        size=100_000_000,
        sha256="2b49720ec4d78c3c9fabaee6e4179a5e997302b3a70029f30f2d582218c024a8",
        description="the Hutter Prize's first 100 MB of English Wikipedia, byte by byte; standard split 90/5/5 MB",
        download=Download(
            "enwik8.zip", 36_445_475, "547994d9980ebed1288380d652999f38a14fe291a6247c157c3d33d4932534bc", "zip"
        ),
        encoding="latin-1",
        keep_bytes=True,
        split=(90_000_000, 95_000_000),
    ),
    "war-and-peace": NamedCorpus(
        name="war-and-peace",
        url="https://www.gutenberg.org/files/2600/2600-0.txt",
        filename="war-and-peace.txt",
        size=3_339_772,
        sha256="0a9e7565b60fe802fb24e034b70473b245eac1efdc17eaa700223e76f0149c25",
        description="Tolstoy's War and Peace (Maude translation), Project Gutenberg ebook 2600, without its licence",
        download=Download(
            "2600-0.txt", 3_359_396, "aa4a454fb73861c0c84c662ed1fa3ddd71bbd7a237783932c05d5f3b2cdd6718", "gutenberg"
        ),
    ),
}


def cache_dir() -> Path:
    """The user cache folder: $RNN_TUI_CACHE, else $XDG_CACHE_HOME/rnn-tui, else ~/.cache/rnn-tui."""
    if env := os.environ.get("RNN_TUI_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rnn-tui"


def named_path(spec: NamedCorpus) -> Path:
    return cache_dir() / "corpora" / spec.filename


def is_cached(spec: NamedCorpus) -> bool:
    path = named_path(spec)
    return path.is_file() and path.stat().st_size == spec.size


def source_url(spec: NamedCorpus) -> str:
    """Where the corpus is fetched from: $RNN_TUI_MIRROR/<file>, or its own address."""
    mirror = os.environ.get("RNN_TUI_MIRROR", "").rstrip("/")
    return f"{mirror}/{spec.fetched.filename}" if mirror else spec.url


def download(
    spec: NamedCorpus, *, offline: bool = False, timeout: float = 30.0, progress: Progress | None = None
) -> Path:
    """The corpus's text in the cache; fetched, checked and unpacked first if it is not there yet.

    `progress(done, total)` hears about the bytes as they arrive; by default, downloads over 2 MB
    show a line on stderr when it is a terminal."""
    path = named_path(spec)
    if is_cached(spec):
        return path
    url = source_url(spec)
    hint = "check your connection, or train on a local file with --data FILE"
    if offline:
        raise UserError(f"corpus {spec.name!r} is not downloaded yet and we are offline; {hint}")
    import http.client  # here, not at the top: they cost every start of the app and the CLI about 25 ms
    import urllib.error
    import urllib.request

    fetched = spec.fetched
    if progress is None and fetched.size >= SHOW_PROGRESS_FROM:
        progress = terminal_progress(f"{spec.name} ({fetched.filename})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _only_downloader(path):
        if is_cached(spec):  # another process fetched it while this one waited
            return path
        for leftover in path.parent.glob(f".{path.name}.*.part"):  # what a killed download left
            leftover.unlink(missing_ok=True)
        part = _temporary(path)
        try:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    _write_checked(part, _blocks(resp, fetched.size, progress), fetched.size, fetched.sha256)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
                raise UserError(f"could not download corpus {spec.name!r} from {url} ({reason}); {hint}") from None
            except _Mismatch as exc:
                raise UserError(
                    f"the download of {spec.name!r} from {url} is not the expected file ({exc}); {hint}"
                ) from None
            if spec.download:
                part = _unpacked(part, spec, url)
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)
        fsync_dir(path.parent)
    return path


def _unpacked(fetched: Path, spec: NamedCorpus, url: str) -> Path:
    """The text taken out of a checked download, itself checked, in a new temporary file (the download goes)."""
    text = _temporary(named_path(spec))
    try:
        _write_checked(text, UNPACK[spec.fetched.unpack](fetched, spec, url), spec.size, spec.sha256)
    except _Mismatch as exc:
        text.unlink()
        raise UserError(f"the text unpacked from {url} is not the expected one ({exc}); train on --data FILE") from None
    except BaseException:
        text.unlink()
        raise
    finally:
        fetched.unlink()
    return text


class _Mismatch(Exception):
    pass


def _blocks(resp, size: int, progress: Progress | None) -> Iterator[bytes]:
    """The response's bytes, at most one more than expected (enough to tell it is too long)."""
    done = 0
    while done <= size and (block := resp.read(min(BLOCK, size + 1 - done))):
        done += len(block)
        if progress:
            progress(min(done, size), size)
        yield block


def _write_checked(path: Path, blocks: Iterator[bytes], size: int, sha256: str) -> None:
    """Write `blocks` to `path`, fsynced; _Mismatch unless they are `size` bytes with this sha256."""
    h, n = hashlib.sha256(), 0
    with open(path, "wb") as out:
        for block in blocks:
            n += len(block)
            if n > size:
                raise _Mismatch(f"more than the {size:,} bytes expected")
            h.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    if n < size:
        raise _Mismatch(f"it stopped after {n:,} of {size:,} bytes")
    if h.hexdigest() != sha256:
        raise _Mismatch("its sha256 differs")


def _zip_member(archive: Path, spec: NamedCorpus, url: str) -> Iterator[bytes]:
    """The archive's member named like the text, read by that exact name (no path from the archive is used)."""
    bad = f"{url} does not hold the expected file {spec.filename}"
    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(spec.filename)
            except KeyError:
                raise UserError(f"{bad}; train on a local file with --data FILE") from None
            if info.is_dir() or info.file_size != spec.size:
                raise UserError(f"{bad} ({info.file_size:,} bytes, not {spec.size:,}); train on --data FILE")
            with zf.open(info) as member:  # zipfile stops at the declared size and checks the CRC
                while block := member.read(BLOCK):
                    yield block
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
        raise UserError(f"{url} is not a zip archive this Python can read ({exc}); train on --data FILE") from None


def _gutenberg_body(book: Path, spec: NamedCorpus, url: str) -> Iterator[bytes]:
    """The book between Project Gutenberg's start and end lines (their header and licence left out)."""
    data = book.read_bytes()
    start, end = data.find(GUTENBERG_START), data.find(GUTENBERG_END)
    first = data.find(b"\n", start) + 1 if start >= 0 else 0
    if not 0 < first <= end:
        raise UserError(f"{url} has no Project Gutenberg start and end lines; train on a local file with --data FILE")
    yield data[first:end].strip(b"\r\n")


UNPACK = {"zip": _zip_member, "gutenberg": _gutenberg_body}


def _temporary(path: Path) -> Path:
    """A new hidden file next to `path`, readable by all (as the cache's other files are)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.fchmod(fd, 0o644)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def _only_downloader(path: Path) -> Iterator[None]:
    """Wait for (and then keep out) any other process downloading the same corpus."""
    lock = Lock(path.parent / f".{path.name}.lock")
    while not lock.acquire():
        time.sleep(0.2)  # the holder is alive (its lock dies with it) and making progress
    try:
        yield
    finally:
        lock.release()


def terminal_progress(label: str, stream: TextIO | None = None) -> Progress | None:
    """A progress line on `stream` (stderr), redrawn at most 5 times a second; None if it is no terminal."""
    out = stream or sys.stderr
    if not out.isatty():
        return None
    shown = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - shown[0] < 0.2:
            return
        shown[0] = now
        out.write(f"\rrnn-tui: downloading {label}: {size(done)} of {size(total)} ({100 * done // total} %)")
        out.write("\n" if done >= total else "")
        out.flush()

    return show
