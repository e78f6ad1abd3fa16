import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rnn_tui.config import ModelConfig
from rnn_tui.config import SampleConfig as S
from rnn_tui.generation import Generator, sampling_distribution
from rnn_tui.inference import log_softmax, mask_unknown, softmax
from rnn_tui.text.vocab import Vocab
from rnn_tui.train.model import CharRNN
from tests.fakes import numpy_weights

VOCAB = Vocab("\n abcdefghij.,")


@pytest.fixture(scope="module")
def gen():
    torch.manual_seed(0)
    m = CharRNN(ModelConfig(vocab_size=len(VOCAB), hidden=32, layers=2, embedding=8))
    return Generator(m.cfg, VOCAB, numpy_weights(m)), m


def test_score_matches_the_model(gen):
    g, m = gen
    text = "abc def"
    ids = torch.from_numpy(VOCAB.encode("\n" + text).astype(np.int64))[None]
    with torch.no_grad():
        probs = torch.softmax(m.eval()(ids)[0][0], -1).numpy()
    tokens = g.score(text)
    for i, tok in enumerate(tokens):
        expected = probs[i, VOCAB.id(text[i])]
        probs_no_unk = probs[i].copy()
        probs_no_unk[0] = 0
        expected /= probs_no_unk.sum()  # the unknown id is never predicted
        assert tok.prob == pytest.approx(expected, rel=1e-4)
        assert len(tok.top) == 5
        assert [p for _, p in tok.top] == sorted((p for _, p in tok.top), reverse=True)


def test_typing_costs_one_step_per_key(gen):
    g, _ = gen
    fed = []
    run = g.stepper.run

    def counting(ids, state):
        fed.append(len(ids))
        return run(ids, state)

    g.stepper.run = counting
    try:
        g.score("abc")
        fed.clear()
        g.score("abcd")
        g.score("abcde")
        assert fed == [1, 1]  # one character through the model per key
        g.score("abc")  # backspacing costs nothing
        assert fed == [1, 1]
    finally:
        g.stepper.run = run


def _close(a, b):
    assert [t.char for t in a] == [t.char for t in b]
    for x, y in zip(a, b, strict=True):
        assert (x.prob is None) == (y.prob is None)
        assert x.prob is None or x.prob == pytest.approx(y.prob, rel=1e-4, abs=1e-6)


def test_cached_and_fresh_scores_agree(gen):
    g, m = gen
    for prompt in ["a", "ab", "abc", "ab", "abx", "hello"]:
        g.score(prompt)
    fresh = Generator(m.cfg, VOCAB, numpy_weights(m))
    _close(g.score("hello"), fresh.score("hello"))
    assert g.score("hello") == g.score("hello")  # the cache answers the same twice
    _close(list(g.stream("hello", S(length=30, seed=4))), list(fresh.stream("hello", S(length=30, seed=4))))


def test_long_prompts_are_primed_in_chunks_and_edited_cheaply(gen, monkeypatch):
    _, m = gen
    import rnn_tui.generation as G

    monkeypatch.setattr(G, "PRIME_CHUNK", 7)
    monkeypatch.setattr(G, "KEEP_EVERY", 16)
    monkeypatch.setattr(G, "KEEP_RECENT", 8)
    text = "abc def ghi. " * 10
    fresh = Generator(m.cfg, VOCAB, numpy_weights(m))
    a = fresh.score(text)
    edited = text[:20] + "x" + text[21:]
    b = fresh.score(edited)  # re-primed from the kept state at 16
    _close(b, Generator(m.cfg, VOCAB, numpy_weights(m)).score(edited))
    _close(a[:20], b[:20])


def test_unknown_characters_never_crash(gen):
    g, _ = gen
    tokens = g.score("a🙂Z b")
    assert [t.unknown for t in tokens] == [False, True, True, False, False]
    out = g.sample("a🙂Zb", S(length=20, seed=1))
    assert len(out) == 20 and Vocab.UNK_CHAR not in out


def test_same_seed_same_text(gen):
    g, _ = gen
    seven, eight = S(length=50, temperature=1.0, seed=7), S(length=50, temperature=1.0, seed=8)
    assert g.sample("ab", seven) == g.sample("ab", seven)
    assert g.sample("ab", seven) != g.sample("ab", eight)


def test_greedy_stream_follows_the_argmax(gen):
    g, _ = gen
    for tok in g.stream("a", S(length=20, temperature=0)):
        assert tok.char == tok.top[0][0]


def test_confidence_is_measured_at_temperature_one(gen):
    g, _ = gen
    hot = list(g.stream("a", S(length=40, temperature=2.0, seed=3)))
    text = "".join(t.char for t in hot)
    believed = g.score("a" + text)[1:]  # p(char | text before it), at temperature 1
    assert [t.prob for t in hot] == pytest.approx([t.prob for t in believed], rel=1e-4)


logits_st = arrays(np.float32, st.integers(2, 40), elements=st.floats(-20, 20, width=32))


@settings(max_examples=200, deadline=None)
@given(logits_st, st.floats(0, 5.0, exclude_min=True), st.integers(0, 50))  # down to 5e-324
def test_sampling_distribution_is_a_distribution(logits, temperature, k):
    p = sampling_distribution(logits, temperature, k)
    assert p.sum() == pytest.approx(1.0)
    assert (p >= 0).all()
    if k:
        assert np.count_nonzero(p) <= k


@given(logits_st)
def test_temperature_zero_is_greedy(logits):
    p = sampling_distribution(logits, 0.0)
    assert p[np.argmax(logits)] == 1.0 and p.sum() == 1.0


@given(logits_st)
def test_softmax_sums_to_one(logits):
    assert softmax(logits).sum() == pytest.approx(1.0, rel=1e-5)


@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 30)), elements=st.floats(-30, 30)))
def test_log_softmax_is_the_log_of_softmax_row_by_row_and_the_unknown_is_never_drawn(logits):
    masked = mask_unknown(logits.copy())
    assert np.isneginf(masked[:, Vocab.UNK]).all()
    p, logp = softmax(masked), log_softmax(masked)
    assert (p[:, Vocab.UNK] == 0).all() and np.isneginf(logp[:, Vocab.UNK]).all()
    np.testing.assert_allclose(np.exp(logp), p, atol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], softmax(masked[0]))  # one row alone, as a keystroke's


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=30), st.integers(0, 2**32 - 1), st.floats(0.0, 3.0), st.integers(0, 5))
def test_streams_any_prompt(gen, prompt, seed, temperature, k):
    g, _ = gen
    tokens = list(g.stream(prompt, S(length=8, temperature=temperature, top_k=k, seed=seed)))
    assert len(tokens) == 8
    assert all(t.char in VOCAB and 0 < t.prob <= 1 for t in tokens)


@pytest.mark.parametrize("top_k", [0, 3])
def test_a_batch_of_temperatures_matches_four_streams(gen, top_k):
    """One batch of four gives each column the text batch 1 gives at that temperature, with the same seed."""
    g, _ = gen
    temperatures = (0.0, 0.5, 1.0, 1.5)
    rows = list(g.stream_batch("abc d", S(length=120, top_k=top_k, seed=11), temperatures))
    assert len(rows) == 120 and all(len(r) == 4 for r in rows)
    for b, temperature in enumerate(temperatures):
        column = [r[b] for r in rows]
        alone = list(g.stream("abc d", S(length=120, temperature=temperature, top_k=top_k, seed=11)))
        _close(column, alone)
        for x, y in zip(column, alone, strict=True):
            assert [c for c, _ in x.top] == [c for c, _ in y.top]
            assert [p for _, p in x.top] == pytest.approx([p for _, p in y.top], rel=1e-4, abs=1e-6)
        assert all(t.generated for t in column)
    texts = {"".join(r[b].char for r in rows) for b in range(4)}
    assert len(texts) == 4  # the temperatures differ


def test_surprise_agrees_with_score(gen):
    g, m = gen
    text = "abc def. ghij, " * 150  # spans chunks
    fresh = Generator(m.cfg, VOCAB, numpy_weights(m))
    bits = fresh.surprise(text)
    probs = np.array([t.prob for t in g.score(text)])
    np.testing.assert_allclose(bits, -np.log2(probs), rtol=1e-4, atol=1e-5)
    assert fresh.cached_prefix(text) == 0  # the long text was not put in the prompt cache


def test_surprise_charges_an_unknown_character_as_the_least_likely_one(gen):
    g, _ = gen
    tokens = g.score("ab🙂c")
    bits = g.surprise("ab🙂c")
    assert tokens[2].unknown
    worst = -np.log2(min(p for _, p in tokens[2].top))  # at least as surprising as the 5th guess
    assert bits[2] >= worst and np.isfinite(bits).all()
    np.testing.assert_allclose(bits[[0, 1, 3]], -np.log2([tokens[i].prob for i in (0, 1, 3)]), rtol=1e-4)


def test_surprise_reports_progress(gen, monkeypatch):
    g, _ = gen
    import rnn_tui.generation as G

    monkeypatch.setattr(G, "PRIME_CHUNK", 10)
    seen: list[int] = []
    g.surprise("abcdefghij" * 3 + "abc", seen.append)
    assert seen == [10, 20, 30, 33]


def test_priming_can_stop_between_chunks_and_carry_on(gen):
    _, m = gen
    text = "abc def ghi. " * 40
    g = Generator(m.cfg, VOCAB, numpy_weights(m))
    steps = g.priming(text, chunk=100)
    assert next(steps) == 100 and next(steps) == 200
    steps.close()  # stopped, e.g. by a newer keystroke
    assert g.cached_prefix(text) == 200
    assert list(g.priming(text, chunk=100)) == [300, 400, 500, len(text)]  # carries on from where it stopped
    _close(g.score(text), Generator(m.cfg, VOCAB, numpy_weights(m)).score(text))


def test_the_continuation_follows_the_primed_text_and_scored_gives_the_tail(gen):
    """What the playground's engine uses: prime once, then the continuation and the new tokens only."""
    _, m = gen
    g = Generator(m.cfg, VOCAB, numpy_weights(m))
    g.score("abc de")
    n = g.cached_prefix("abc def")
    assert n == 6
    assert list(g.priming("abc def", cached=n)) == [7]  # only the new character is fed
    assert [t.char for t in g.scored(5)] == ["e", "f"] and g.scored(5)[0] is g.scored()[5]  # the same tokens
    want = Generator(m.cfg, VOCAB, numpy_weights(m)).sample("abc def", S(length=30, seed=3))
    assert "".join(t.char for t in g.continuation(S(length=30, seed=3))) == want


def test_kept_states_do_not_pin_whole_chunks(gen):
    """A long prompt keeps some states: each must be its own small array, not a view of a chunk's states."""
    _, m = gen
    g = Generator(m.cfg, VOCAB, numpy_weights(m))
    g.score("abc def ghi. " * 300)
    assert all(s.base is None for state in g._states.values() for s in state)


@given(st.text("ab", max_size=40), st.text("ab", max_size=40))
def test_common_prefix(a, b):
    from rnn_tui.generation import _common_prefix

    n = _common_prefix(a, b)
    assert a[:n] == b[:n] and (n == min(len(a), len(b)) or a[n] != b[n])
