"""Hypothesis across the readers of outside input: the corpus decoder, the run folder, the run record as it is tailed,
the settings' parser, generation on any prompt. Each either gives the right answer or a UserError, never another
exception."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rnn_tui import checkpoint, config, record
from rnn_tui.config import ModelConfig, SampleConfig, TrainConfig
from rnn_tui.errors import UserError
from rnn_tui.events import Evaluation, Notice, Progress, Sample
from rnn_tui.generation import Generator
from rnn_tui.text import sources
from rnn_tui.text.corpus import load_corpus
from tests.fakes import VOCAB, tiny_weights

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="rnn-tui-fuzz-"))


# --------------------------------------------------------------------------- the corpus decoder


@FUZZ
@given(st.binary(max_size=400), st.integers(1, 9))
def test_any_bytes_decode_like_python_or_are_refused(monkeypatch, data, chunk):
    """Chunks as small as one byte split CRLFs and multi-byte characters; the text must not change."""
    monkeypatch.setattr(sources, "CHUNK_BYTES", chunk)
    folder = _folder()
    try:
        (folder / "t.txt").write_bytes(data)
        try:
            text = "".join(sources.file_source(folder / "t.txt").chunks())
        except UserError as exc:
            assert "not a text file" in str(exc) or "not valid utf-8" in str(exc)
            return
        assert text == data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(st.text(max_size=200), st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_any_text_survives_its_encoding(text, encoding):
    assume("\r" not in text)  # CR LF becomes LF: checked above
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    folder = _folder()
    try:
        (folder / "t.txt").write_bytes(data)
        if not text:
            with pytest.raises(UserError, match="empty"):
                load_corpus(sources.file_source(folder / "t.txt", encoding=encoding))
            return
        try:
            c = load_corpus(sources.file_source(folder / "t.txt", encoding=encoding))
        except UserError as exc:  # NUL bytes: in UTF-8, a binary file
            assert "\0" in text and encoding == "utf-8", exc
            return
        assert c.vocab.decode(np.asarray(c.data)) == text
    finally:
        shutil.rmtree(folder)


# --------------------------------------------------------------------------- the run folder


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    cfg, weights = tiny_weights()
    folder = tmp_path_factory.mktemp("good") / "run"
    meta = {"model": cfg.to_dict(), "vocab": VOCAB.chars, "step": 7, "epoch": 0, "batch_index": 3}
    optimizer = {f"exp_avg.{k}": np.zeros_like(v) for k, v in weights.items()}
    checkpoint.save(folder, weights, optimizer, meta)
    return folder


def _load_or_refuse(folder: Path) -> None:
    try:
        ckpt = checkpoint.load(folder)
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    assert {k: v.shape for k, v in ckpt.model.items()} == config.param_shapes(ckpt.config)
    assert all(v.dtype == np.float32 for v in ckpt.model.values())


@FUZZ
@given(
    st.sampled_from([checkpoint.MODEL, checkpoint.OPTIMIZER, checkpoint.META]),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_a_damaged_file_is_refused_or_read(good_run, name, flips, cut):
    folder = _folder() / "run"
    try:
        shutil.copytree(good_run, folder)
        data = bytearray((folder / name).read_bytes())
        for pos, value in flips:
            data[pos % len(data)] = value
        if cut is not None:
            data = data[: cut % (len(data) + 1)]
        (folder / name).write_bytes(bytes(data))
        _load_or_refuse(folder)
    finally:
        shutil.rmtree(folder.parent)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
META_KEYS = ["format", "format_version", "step", "epoch", "batch_index", "train_seconds", "lr_scale", "vocab",
             "model", "train", "corpus", "source", "best_val_loss", "checkpoint_id", "updated"]  # fmt: skip


@FUZZ
@given(st.dictionaries(st.sampled_from(META_KEYS), JSON, max_size=6))
def test_any_meta_json_is_refused_or_read(good_run, changes):
    folder = _folder() / "run"
    try:
        shutil.copytree(good_run, folder)
        meta = json.loads((folder / checkpoint.META).read_text())
        meta.update(changes)
        (folder / checkpoint.META).write_text(json.dumps(meta))
        _load_or_refuse(folder)
        try:
            checkpoint.list_runs(folder.parent)  # `rnn-tui runs` never trips on it
        except UserError as exc:
            assert "upgrade" in str(exc)
    finally:
        shutil.rmtree(folder.parent)


# --------------------------------------------------------------------------- the run record, tailed while it grows


RECORDED = st.one_of(
    st.builds(
        Progress,
        st.integers(0, 10**6),
        st.integers(0, 9),
        st.floats(0, 9),
        st.floats(0, 1),
        st.floats(0, 1e5),
        st.floats(0, 1e5),
    ),
    st.builds(
        Evaluation,
        st.integers(0, 10**6),
        st.floats(0, 9),
        st.floats(0, 9),
        st.booleans(),
        st.floats(0, 9),
        st.floats(0, 1e5),
    ),
    st.builds(Sample, st.integers(0, 10**6), st.text(max_size=40), st.floats(0, 5)),
    st.builds(Notice, st.integers(0, 10**6), st.text(max_size=40)),
)


@FUZZ
@given(st.lists(RECORDED, max_size=15), st.lists(st.integers(1, 300), max_size=30))
def test_a_tail_sees_what_a_reader_sees_however_the_bytes_arrive(events, pieces):
    folder = _folder()
    try:
        lines = [json.dumps(record.HEADER)] + [json.dumps(e.to_json(), ensure_ascii=False) for e in events]
        data = ("\n".join(lines) + "\n").encode()
        tail, seen, pos = record.Tail(folder), [], 0
        with open(folder / record.FILENAME, "wb") as fh:
            for n in [*pieces, len(data)]:
                fh.write(data[pos : pos + n])  # a writer that flushes at any byte, mid-line or mid-character
                fh.flush()
                pos += n
                got, reset = tail.poll()
                assert not reset and not got.damaged
                seen += got.events
        assert seen == record.read(folder).events == events
    finally:
        shutil.rmtree(folder)


# --------------------------------------------------------------------------- the settings and generation


SETTINGS = [
    (cls, f.name) for cls in (ModelConfig, TrainConfig, SampleConfig) for f in fields(cls) if f.name != "vocab_size"
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SETTINGS), st.one_of(st.text(max_size=12), st.from_regex(r"-?[0-9.e+_-]{1,12}", fullmatch=True)))
def test_any_text_for_any_setting_is_a_value_or_one_line(setting, text):
    cls, name = setting
    try:
        value = config.parse(cls, name, text)
    except UserError as exc:
        assert "\n" not in str(exc) and config.flag_of(cls, name) in str(exc)
        return
    assert config.check(cls, name, value) == value


@pytest.fixture(scope="module")
def generator() -> Generator:
    cfg, weights = tiny_weights()
    return Generator(cfg, VOCAB, weights)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60), st.integers(0, 2**32 - 1), st.floats(0, 5), st.integers(0, 1_000_000))
def test_any_prompt_is_scored_and_continued(generator, prompt, seed, temperature, k):
    scored = generator.score(prompt)
    assert [t.char for t in scored] == list(prompt)
    assert all(t.prob is None or 0 <= t.prob <= 1 for t in scored)
    tokens = list(generator.stream(prompt, SampleConfig(temperature=temperature, seed=seed, length=5, top_k=k)))
    assert len(tokens) == 5 and all(t.char in VOCAB for t in tokens)
