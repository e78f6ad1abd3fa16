"""The named corpora: downloaded once from a server on 127.0.0.1 (never the internet), checked, unpacked, cached."""

import dataclasses
import hashlib
import http.server
import io
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from rnn_tui import checkpoint
from rnn_tui.config import ModelConfig, Settings, TrainConfig
from rnn_tui.errors import UserError
from rnn_tui.runs import RunSpec, plan
from rnn_tui.text import downloads as D
from rnn_tui.text.corpus import load_corpus
from rnn_tui.text.sources import SourceSpec, list_corpora, named_source
from rnn_tui.train.loop import prepare
from tests.conftest import cli_env


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A loopback HTTP server for the files in a folder, set as $RNN_TUI_MIRROR. `cut[name] = n` sends
    only n bytes of that file (announcing all of them), as a dropped connection would."""
    root = tmp_path / "www"
    root.mkdir()
    cut: dict[str, int] = {}
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def do_GET(self):
            name = self.path.lstrip("/")
            requests.append(name)
            if name not in cut:
                return super().do_GET()
            data = (root / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: cut[name]])
            self.close_connection = True

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("RNN_TUI_MIRROR", url)
    yield root, url, cut, requests
    httpd.shutdown()


def _spec(data: bytes) -> D.NamedCorpus:
    return D.NamedCorpus(
        "demo", "http://unused.invalid/demo.txt", "demo.txt", len(data), hashlib.sha256(data).hexdigest(), "a demo"
    )


def _left_in_cache() -> list[str]:
    folder = D.cache_dir() / "corpora"
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


# --------------------------------------------------------------------------- fetching


def test_download_checks_the_hash_and_caches(server):
    root, _, _, requests = server
    data = b"To be, or not to be, that is the question.\n" * 100
    (root / "demo.txt").write_bytes(data)
    path = D.download(_spec(data))
    assert path.read_bytes() == data
    assert path.parent == D.cache_dir() / "corpora"
    assert D.download(_spec(data)) == path and requests == ["demo.txt"]  # the second time comes from the cache


def test_download_refuses_the_wrong_file(server):
    root, *_ = server
    (root / "demo.txt").write_bytes(b"something else entirely")
    with pytest.raises(UserError, match="not the expected file"):
        D.download(_spec(b"the real thing, which is longer"))
    assert _left_in_cache() == []


def test_offline_download_suggests_data(server, monkeypatch):
    _, url, _, _ = server
    monkeypatch.setenv("RNN_TUI_MIRROR", url + "/missing")
    with pytest.raises(UserError, match="--data"):
        D.download(_spec(b"x"))
    monkeypatch.setenv("RNN_TUI_MIRROR", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(UserError, match="could not download.*--data"):
        D.download(_spec(b"x"), timeout=2)


def test_shakespeare_is_the_char_rnn_file(shakespeare, server):
    root, *_ = server
    (root / "tinyshakespeare.txt").write_bytes(Path(shakespeare).read_bytes())
    c = load_corpus(named_source("shakespeare"))
    assert len(c) == 1_115_394
    assert c.sha256 == D.NAMED["shakespeare"].sha256
    rows = {r["name"]: r for r in list_corpora()}
    assert rows["shakespeare"]["status"] == "cached"
    assert rows["stdlib"]["status"] == "built in"


def test_a_download_cut_short_leaves_nothing_and_says_so(server):
    root, _, cut, _ = server
    data = bytes(range(256)) * 400
    (root / "demo.txt").write_bytes(data)
    cut["demo.txt"] = len(data) // 3
    with pytest.raises(UserError, match=f"stopped after {len(data) // 3:,} of {len(data):,} bytes"):
        D.download(_spec(data))
    assert _left_in_cache() == []
    del cut["demo.txt"]
    assert D.download(_spec(data)).read_bytes() == data


def test_an_interrupted_download_leaves_nothing_and_the_next_clears_a_killed_ones_leftovers(server):
    root, *_ = server
    data = b"0123456789" * 50_000
    (root / "demo.txt").write_bytes(data)

    def interrupt(done, total):
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        D.download(_spec(data), progress=interrupt)
    assert _left_in_cache() == []
    (D.cache_dir() / "corpora" / ".demo.txt.x1y2z3.part").write_bytes(data[:1000])  # as after a kill -9
    seen = []
    assert D.download(_spec(data), progress=lambda done, total: seen.append((done, total))).read_bytes() == data
    assert _left_in_cache() == ["demo.txt"]
    assert seen[-1] == (len(data), len(data)) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_progress_on_a_terminal_only():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert D.terminal_progress("demo", io.StringIO()) is None
    out = Terminal()
    show = D.terminal_progress("enwik8 (enwik8.zip)", out)
    show(0, 36_445_475)
    show(36_445_475, 36_445_475)
    lines = out.getvalue()
    assert "\rrnn-tui: downloading enwik8 (enwik8.zip): 0 kB of 36.4 MB (0 %)" in lines
    assert lines.endswith("36.4 MB of 36.4 MB (100 %)\n")


# --------------------------------------------------------------------------- enwik8


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


# A stand-in for enwik8: 3,000 bytes with every byte value but 0 and CRLFs among them, split 2,000 / 500 / 500.
WIKI = (bytes(range(1, 256)) + b"<page>\r\n") * 11 + b"x" * 107


@pytest.fixture
def serve_enwik8(server, monkeypatch):
    """Serve `archive` as enwik8.zip, with the checksums patched to expect it and `text` in it."""
    root, *_ = server

    def serve(archive: bytes, text: bytes = WIKI) -> None:
        (root / "enwik8.zip").write_bytes(archive)
        real = D.NAMED["enwik8"]
        download = dataclasses.replace(real.download, size=len(archive), sha256=hashlib.sha256(archive).hexdigest())
        spec = dataclasses.replace(
            real, size=len(text), sha256=hashlib.sha256(text).hexdigest(), download=download, split=(2000, 2500)
        )
        monkeypatch.setitem(D.NAMED, "enwik8", spec)

    return serve


def test_enwik8_comes_out_of_its_zip_byte_for_byte_with_the_standard_split(serve_enwik8):
    assert len(WIKI) == 3000
    serve_enwik8(_zip({"enwik8": WIKI}))
    corpus = load_corpus(named_source("enwik8"))
    assert len(corpus) == 3000 and len(corpus.vocab) == 256  # one character per byte, CR kept (+ "unknown")
    assert corpus.vocab.decode(corpus.data).encode("latin-1") == WIKI
    train, val = corpus.split()
    assert (len(train), len(val)) == (2000, 500)  # the last 500 bytes (the test set) are not used
    assert len(corpus.split(0.2)[1]) == 600  # --val-frac still wins when given
    assert corpus.identity()["split"] == [2000, 2500]
    assert _left_in_cache() == ["enwik8"]  # the text, not the archive
    assert {r["name"]: r["status"] for r in list_corpora()}["enwik8"] == "cached"


@pytest.mark.parametrize(
    ("members", "error"),
    [
        ({"../enwik8": WIKI}, "does not hold the expected file enwik8"),
        ({"enwik8/": b""}, "does not hold the expected file enwik8"),
        ({"enwik8": WIKI[:-1]}, "2,999 bytes, not 3,000"),
    ],
)
def test_a_wrong_archive_is_refused_and_nothing_is_unpacked(serve_enwik8, members, error):
    serve_enwik8(_zip(members))
    with pytest.raises(UserError, match=error):
        named_source("enwik8")
    assert _left_in_cache() == []
    assert not (D.cache_dir() / "enwik8").exists()  # where "../enwik8" would have gone


def test_training_on_enwik8_uses_its_split(serve_enwik8, tmp_path):
    serve_enwik8(_zip({"enwik8": WIKI}))
    request = RunSpec(
        source=SourceSpec(corpus="enwik8"),
        model=Settings(ModelConfig, {"hidden": 16, "layers": 1, "embedding": 8}),
        train=Settings(TrainConfig, {"batch_size": 4, "seq_len": 16, "max_steps": 2, "eval_every": 2, "threads": 1}),
        checkpoint_dir=str(tmp_path),
    )
    with prepare(plan(request)) as t:
        assert len(t.batches.data) == 2000 and t.val_y.numel() == 499 - 499 % t.val_y.shape[0]
        assert t.run().best_val_loss is not None
    assert checkpoint.read_meta(t.run_dir)["corpus"]["split"] == [2000, 2500]


def test_an_archive_that_is_no_zip_is_refused(serve_enwik8):
    serve_enwik8(b"PK\x03\x04 but not really a zip archive")
    with pytest.raises(UserError, match="not a zip archive"):
        named_source("enwik8")
    assert _left_in_cache() == []


def test_the_unpacked_text_is_checked_too(serve_enwik8):
    serve_enwik8(_zip({"enwik8": WIKI[::-1]}))  # the right size, the wrong bytes
    with pytest.raises(UserError, match="not the expected one"):
        named_source("enwik8")
    assert _left_in_cache() == []


# --------------------------------------------------------------------------- War and Peace


def test_war_and_peace_is_the_book_without_gutenbergs_header_and_licence(server, monkeypatch):
    root, *_ = server
    book = "“Well, Prince, so Genoa and Lucca are now just family estates.”\r\n\r\nCHAPTER II\r\n"
    page = (
        "\ufeffThe Project Gutenberg eBook of War and Peace\r\n\r\n*** START OF THE PROJECT GUTENBERG EBOOK "
        f"WAR AND PEACE ***\r\n\r\n\r\n{book}\r\n\r\n*** END OF THE PROJECT GUTENBERG EBOOK WAR AND PEACE ***\r\n"
        "Section 1. General Terms of Use\r\n"
    ).encode()
    (root / "2600-0.txt").write_bytes(page)
    real = D.NAMED["war-and-peace"]
    body = book.rstrip("\r\n").encode()
    download = dataclasses.replace(real.download, size=len(page), sha256=hashlib.sha256(page).hexdigest())
    spec = dataclasses.replace(real, size=len(body), sha256=hashlib.sha256(body).hexdigest(), download=download)
    monkeypatch.setitem(D.NAMED, "war-and-peace", spec)
    corpus = load_corpus(named_source("war-and-peace"))
    assert corpus.vocab.decode(corpus.data) == book.replace("\r\n", "\n").rstrip("\n")
    assert corpus.split()[1].size == len(corpus) // 10  # no standard split: the last 10 %

    (root / "2600-0.txt").write_bytes(b"no markers here")
    monkeypatch.setitem(
        D.NAMED,
        "war-and-peace",
        dataclasses.replace(
            spec, download=dataclasses.replace(download, size=15, sha256=hashlib.sha256(b"no markers here").hexdigest())
        ),
    )
    (D.cache_dir() / "corpora" / spec.filename).unlink()
    with pytest.raises(UserError, match="no Project Gutenberg start and end lines"):
        named_source("war-and-peace")


# --------------------------------------------------------------------------- the CLI


@pytest.mark.process
def test_corpora_lists_sizes_sources_and_status(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_tui", "corpora"],
        cwd=tmp_path,
        env={**cli_env(), "COLUMNS": "400"},  # one line a corpus
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    assert set(rows) == {"stdlib", "shakespeare", "enwik8", "war-and-peace"}
    assert "built in" in rows["stdlib"]
    assert "100.0 MB" in rows["enwik8"] and "download (36.4 MB)" in rows["enwik8"]
    assert "http://mattmahoney.net/dc/enwik8.zip" in rows["enwik8"]
    assert (
        "download (3.4 MB)" in rows["war-and-peace"] and "https://www.gutenberg.org/files/2600" in rows["war-and-peace"]
    )
