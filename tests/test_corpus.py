import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnn_tui.errors import UserError
from rnn_tui.text import batches, sources
from rnn_tui.text.batches import Batches
from rnn_tui.text.corpus import load_corpus
from rnn_tui.text.sources import file_source
from rnn_tui.text.vocab import Vocab


@given(st.text())
def test_encode_decode_round_trip_for_any_unicode(text):
    vocab = Vocab(text)
    ids = vocab.encode(text)
    assert len(ids) == len(text)
    assert vocab.decode(ids) == text
    assert (ids != Vocab.UNK).all()


@given(st.text(min_size=1), st.text())
def test_unknown_characters_become_the_unknown_id(known, other):
    vocab = Vocab(known)
    ids = vocab.encode(other)
    for char, i in zip(other, ids, strict=True):
        assert (i == Vocab.UNK) == (char not in vocab)


def test_ids_use_the_smallest_integer_type():
    assert Vocab("abc").dtype == np.uint8
    assert Vocab(chr(i) for i in range(300, 600)).dtype == np.uint16
    assert Vocab(chr(i) for i in range(0x20000, 0x20000 + 70_000)).dtype == np.uint32


def test_cjk_and_emoji_survive(tmp_path):
    path = tmp_path / "mixed.txt"
    text = "日本語のテキスト 🙂🚀 naïve café\n" * 20
    path.write_text(text, encoding="utf-8")
    c = load_corpus(file_source(path))
    assert c.vocab.decode(c.data) == text
    assert "🙂" in c.vocab


def test_crlf_is_normalised_even_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CHUNK_BYTES", 7)
    path = tmp_path / "dos.txt"
    path.write_bytes(b"line one\r\nline two\r\nthree\r\n" * 5)
    c = load_corpus(file_source(path))
    assert c.vocab.decode(c.data) == "line one\nline two\nthree\n" * 5


def test_a_binary_file_is_refused_by_name(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(UserError, match="blob.bin is not a text file"):
        load_corpus(file_source(path))


def test_bad_utf8_suggests_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café crème brûlée à la française\n".encode("latin-1") * 50)
    with pytest.raises(UserError, match="--encoding"):
        load_corpus(file_source(path))
    c = load_corpus(file_source(path, encoding="latin-1"))
    assert "é" in c.vocab


def test_a_trace_of_bad_utf8_is_tolerated(tmp_path):
    path = tmp_path / "almost.txt"
    path.write_bytes(b"good text " * 10_000 + b"\xff")
    c = load_corpus(file_source(path))
    assert len(c) == 100_001


def test_folder_with_globs_reads_matching_files_in_order(tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.c").write_text("int a;\n")
    (tmp_path / "src" / "sub" / "b.h").write_text("int b;\n")
    (tmp_path / "src" / "notes.md").write_text("# no\n")
    (tmp_path / "src" / "img.c").write_bytes(b"\0\1\2")  # not text: skipped in a folder
    c = load_corpus(file_source(tmp_path / "src", globs=["*.c", "*.h"]))
    assert c.vocab.decode(c.data) == "int a;\n\n\nint b;\n"
    assert c.notes == ["skipped 1 files that are not text"]


def test_missing_and_empty_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        file_source(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError, match="empty"):
        load_corpus(file_source(tmp_path / "empty.txt"))
    (tmp_path / "dir").mkdir()
    with pytest.raises(UserError, match="has no files"):
        file_source(tmp_path / "dir")


def test_stdlib_corpus_is_deterministic_and_sized():
    a, b = sources.stdlib_source(), sources.stdlib_source()
    assert a.files == b.files
    assert 1_000_000 < a.size_bytes <= sources.STDLIB_MAX_BYTES
    assert not any("test" in f.parts for f in a.files)


def test_stdlib_corpus_works_without_the_test_folder(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    for i in range(40):
        (lib / f"pkg{i % 3}").mkdir(parents=True, exist_ok=True)
        (lib / f"pkg{i % 3}" / f"mod{i}.py").write_text(f"def f{i}():\n    return {i}\n")
    monkeypatch.setattr(sources.sysconfig, "get_paths", lambda: {"stdlib": str(lib)})
    src = sources.stdlib_source()
    assert src.files and all(lib in f.parents for f in src.files)
    monkeypatch.setattr(sources.sysconfig, "get_paths", lambda: {"stdlib": str(tmp_path / "missing")})
    with pytest.raises(UserError, match="--data"):
        sources.stdlib_source()


def test_big_corpora_are_encoded_once_into_a_memory_mapped_cache(text_file, monkeypatch):
    first = load_corpus(file_source(text_file), cache=True)
    assert isinstance(first.data, np.memmap)

    def no_decoding(self):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(sources.Source, "chunks", no_decoding)
    second = load_corpus(file_source(text_file), cache=True)
    assert isinstance(second.data, np.memmap)
    assert second.vocab == first.vocab
    assert np.array_equal(second.data, first.data)


def test_split_is_contiguous(text_file):
    c = load_corpus(file_source(text_file))
    train, val = c.split(0.1)
    assert len(val) == int(len(c) * 0.1)
    assert np.array_equal(np.concatenate([train, val]), c.data)


def test_a_corpus_too_small_for_one_batch_says_how_small():
    with pytest.raises(UserError, match=r"500 training characters.*--batch-size"):
        batches.check_trainable(500, 50, batch_size=64, seq_len=128)


def test_tbptt_batches_continue_each_stream():
    data = np.arange(10_000) % 251
    b = Batches(data, batch_size=4, seq_len=8, seed=0)
    x0, y0 = b.get(0, 0)
    x1, _ = b.get(0, 1)
    assert x0.shape == (4, 8)
    assert np.array_equal(y0[:, :-1], x0[:, 1:])
    assert np.array_equal(y0[:, -1], x1[:, 0])  # the next batch starts where this one ended
    assert not np.array_equal(b.get(1, 0)[0], x0)  # each epoch shifts the cut


def test_random_batches_are_seeded():
    data = np.arange(10_000) % 251
    a, b = Batches(data, 4, 8, seed=1, mode="random"), Batches(data, 4, 8, seed=1, mode="random")
    assert np.array_equal(a.get(0, 5)[0], b.get(0, 5)[0])
    assert not a.carries_state
