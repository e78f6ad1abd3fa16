"""Is it copying? The copy index against brute force, planted copies, the training bound and the cache."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_tui.config import SampleConfig, spec_of
from rnn_tui.text import copies
from rnn_tui.text.copies import DEPTH, CopyIndex, build, cache_path
from rnn_tui.text.corpus import Corpus
from rnn_tui.text.vocab import Vocab


def corpus_of(text: str, vocab: Vocab | None = None) -> Corpus:
    vocab = vocab or Vocab(text)
    return Corpus("t", "test", vocab, vocab.encode(text), f"sha-{hash(text)}")


def brute_mask(corpus: str, text: str, n: int) -> np.ndarray:
    """A character is copied when some n-window of `text` holding it occurs in `corpus`."""
    marked = np.zeros(len(text), bool)
    for i in range(len(text) - n + 1):
        if text[i : i + n] in corpus:
            marked[i : i + n] = True
    return marked


def random_words(rng: np.random.Generator, n: int) -> str:
    words = ["the", "king", "and", "queen", "of", "a", "lord", "my", "sweet", "love", "is", "not", "dead"]
    return " ".join(rng.choice(words, n)) + "\n"


@pytest.mark.parametrize(("dtype_ids", "runs"), [(20, False), (20, True), (300, True)])
def test_the_array_is_every_position_sorted_by_its_first_depth_characters(tmp_path, monkeypatch, dtype_ids, runs):
    monkeypatch.setattr(copies, "PASS", 64)  # many groups, and groups of one key split further
    monkeypatch.setattr(copies, "SCAN", 500)
    rng = np.random.default_rng(dtype_ids)
    data = rng.integers(1, dtype_ids, 2500).astype(np.uint8 if dtype_ids < 256 else np.uint16)
    if runs:
        data[100:900] = 3  # one key over PASS, agreeing beyond DEPTH
        data[1000:1300] = np.tile(data[1300:1310], 30)  # repeats that agree far
    build(data, tmp_path / "sa.npy")
    sa = np.load(tmp_path / "sa.npy")
    assert sa.dtype == np.uint32 and sorted(sa.tolist()) == list(range(len(data)))
    keys = [tuple(data[i : i + DEPTH].tolist()) for i in sa.tolist()]
    assert keys == sorted(keys)


def test_planted_copies_are_found_with_their_spans_and_the_novel_fraction():
    rng = np.random.default_rng(1)
    train = random_words(rng, 3000)
    index = CopyIndex.of(corpus_of(train + "xyz"))
    a, b = train[5000:5030], train[9000:9020]  # 30 and 20 characters
    short = train[12000:12019]  # 19: too short to count
    text = "qqq" + a + "zzzz" + b + "zz" + short + "q"
    found = index.copies(text)
    assert found.spans == ((3, 33), (37, 57))
    assert found.copied == 50 and found.novel == pytest.approx(1 - 50 / len(text))
    assert index.copies(text, n=19).spans == ((3, 33), (37, 57), (59, 78))
    assert index.copies("").novel == 1.0 and index.copies("zzz").spans == ()


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet="abc d", min_size=1, max_size=300),
    st.text(alphabet="abc dX", max_size=60),
    st.integers(4, 8),
)
def test_the_copied_characters_are_those_of_occurring_windows(corpus, text, n):
    index = CopyIndex.of(corpus_of(corpus, Vocab("abc d")))
    found = index.copies(text, n)
    np.testing.assert_array_equal(found.mask(), brute_mask(corpus, text, n))
    assert all(b - a >= n for a, b in found.spans)


def test_only_the_training_part_counts():
    rng = np.random.default_rng(2)
    train, val = random_words(rng, 500), random_words(np.random.default_rng(99), 500)
    from_val = next(val[i : i + 25] for i in range(len(val)) if val[i : i + 25] not in train)
    corpus = corpus_of(train + val)
    assert CopyIndex.of(corpus).copies(from_val).novel == 0.0
    assert CopyIndex.of(corpus, limit=len(train)).copies(from_val).novel == 1.0
    ending = train[-22:]  # a window that ends exactly where training ends still counts
    assert CopyIndex.of(corpus, limit=len(train)).copies(ending).spans == ((0, 22),)


def test_the_index_is_built_once_and_a_damaged_cache_is_rebuilt():
    corpus = corpus_of(random_words(np.random.default_rng(3), 400))
    calls: list[float] = []
    CopyIndex.of(corpus, progress=calls.append)
    assert calls and calls[-1] == 1.0 and cache_path(corpus).exists()
    calls.clear()
    CopyIndex.of(corpus, progress=calls.append)
    assert calls == []  # from the cache
    np.save(cache_path(corpus), np.arange(5, dtype=np.uint32))
    index = CopyIndex.of(corpus, progress=calls.append)
    assert calls and len(index.sa) == len(corpus.data)


def test_the_longest_stretch_a_user_may_ask_for_is_the_depth():
    assert spec_of(SampleConfig, "copied_min").high == DEPTH
    assert SampleConfig().copied_min == copies.MIN_COPIED
