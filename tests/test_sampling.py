"""The sampling settings: top-p, the repetition penalty, word-start, --until and --count, each checked by a figure."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rnn_tui.config import ModelConfig, SampleConfig
from rnn_tui.generation import Generator, Sampler, bits_per_char, sampling_distribution
from rnn_tui.inference import softmax
from rnn_tui.text.vocab import Vocab
from rnn_tui.train.model import CharRNN
from tests.fakes import numpy_weights

VOCAB = Vocab("\n abcdefghij.,")
logits_st = arrays(np.float64, st.integers(2, 40), elements=st.floats(-20, 20))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CharRNN(ModelConfig(vocab_size=len(VOCAB), hidden=32, layers=2, embedding=8))


def fresh(model) -> Generator:
    return Generator(model.cfg, VOCAB, numpy_weights(model))


@settings(max_examples=300, deadline=None)
@given(logits_st, st.floats(0.05, 5.0), st.floats(0.01, 1.0))
def test_top_p_keeps_the_fewest_likeliest_characters_that_reach_p(logits, temperature, top_p):
    full = sampling_distribution(logits, temperature)
    p = sampling_distribution(logits, temperature, top_p=top_p)
    kept = p > 0
    assert p.sum() == pytest.approx(1.0)
    assert full[kept].sum() >= top_p * (1 - 1e-6)  # they reach p...
    # ...and one fewer would not (to rounding: at p = 1 a character of probability 1e-18 is kept, and 1 - 1e-18 is 1)
    assert full[kept].sum() - full[kept].min() < top_p * (1 + 1e-9)
    assert full[kept].min() >= full[~kept].max(initial=0)  # the likeliest ones
    np.testing.assert_allclose(p[kept], full[kept] / full[kept].sum())  # in proportion


def test_top_p_on_a_known_distribution():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    assert np.count_nonzero(sampling_distribution(logits, 1.0, top_p=0.5)) == 1
    np.testing.assert_allclose(sampling_distribution(logits, 1.0, top_p=0.8), [0.625, 0.375, 0, 0])
    np.testing.assert_allclose(sampling_distribution(logits, 1.0, top_p=0.81), [0.5, 0.3, 0.15, 0] / np.float64(0.95))


@settings(max_examples=200, deadline=None)
@given(logits_st, st.floats(0.1, 100.0), st.data())
def test_the_penalty_divides_the_probability_of_recent_characters(logits, penalty, data):
    penalized = np.array(sorted(data.draw(st.sets(st.integers(0, len(logits) - 1), min_size=1))))
    before = sampling_distribution(logits, 1.0)
    after = sampling_distribution(logits, 1.0, penalized=penalized, penalty=penalty)
    weight = np.where(np.isin(np.arange(len(logits)), penalized), 1 / penalty, 1.0)
    np.testing.assert_allclose(after, before * weight / (before * weight).sum(), rtol=1e-9, atol=1e-300)


def repeats(text: str, window: int) -> float:
    """The fraction of characters that occur among the `window` before them."""
    return sum(text[i] in text[max(0, i - window) : i] for i in range(1, len(text))) / (len(text) - 1)


def test_a_penalty_above_one_repeats_less_and_below_one_more(model):
    g = fresh(model)
    base = SampleConfig(length=600, temperature=1.0, seed=5, repetition_window=4)
    plain = repeats(g.sample("", base), 4)
    strong = repeats(g.sample("", dataclasses.replace(base, repetition_penalty=100.0)), 4)
    weak = repeats(g.sample("", dataclasses.replace(base, repetition_penalty=0.05)), 4)
    assert strong < 0.05 < plain < weak


def test_the_window_holds_the_prompt_and_what_was_drawn():
    sampler = Sampler(SampleConfig(temperature=1.0, repetition_window=3, repetition_penalty=2.0), VOCAB, "abcd")
    assert list(sampler.recent) == list(VOCAB.encode("bcd"))
    logits = np.zeros(len(VOCAB))
    logits[0] = -np.inf  # the unknown id
    p = sampler.distribution(logits)
    assert p[VOCAB.id("b")] == pytest.approx(p[VOCAB.id("a")] / 2)
    sampler.draw(logits)
    assert len(sampler.recent) == 3 and list(sampler.recent)[:2] == list(VOCAB.encode("cd"))


@pytest.mark.parametrize("prompt", ["", "abc", "ab ", "a.b"])
def test_word_start_is_greedy_inside_words(model, prompt):
    g = fresh(model)
    s = SampleConfig(length=400, temperature=1.5, seed=2, draw="word-start")
    tokens = list(g.stream(prompt, s))
    text = prompt + "".join(t.char for t in tokens)
    inside = [text[len(prompt) + i - 1 : len(prompt) + i].isalnum() for i in range(len(tokens))]
    assert sum(inside) > 20
    assert all(t.char == t.top[0][0] for t, i in zip(tokens, inside, strict=True) if i)
    every = [t.char == t.top[0][0] for t in g.stream(prompt, dataclasses.replace(s, draw="every"))]
    assert not all(every)  # the same settings without word-start draw inside words too


@pytest.mark.parametrize("prompt", ["", "ab ", "a."])
def test_word_start_draws_at_random_at_a_word_start(model, prompt):
    g = fresh(model)
    firsts = [next(g.stream(prompt, SampleConfig(temperature=1.5, seed=seed, draw="word-start"))) for seed in range(30)]
    assert len({t.char for t in firsts}) > 3  # the draw, not the argmax every time


SETTINGS = st.builds(
    SampleConfig,
    temperature=st.floats(0.0, 3.0),
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1, 30),
    top_k=st.integers(0, 20),
    top_p=st.floats(0.01, 1.0),
    repetition_penalty=st.floats(0.1, 100.0),
    repetition_window=st.integers(1, 40),
    draw=st.sampled_from(["every", "word-start"]),
    until=st.sampled_from(["", " ", "a", "e.", "\n"]),
)


@settings(max_examples=60, deadline=None)
@given(prompt=st.text(alphabet="\n abcdefghij.,xyz", max_size=20), s=SETTINGS)
def test_every_combination_is_deterministic_for_a_seed(model, prompt, s):
    g = fresh(model)
    first = g.sample(prompt, s)
    g.score(prompt + "zz")  # the cache elsewhere
    assert g.sample(prompt, s) == first == fresh(model).sample(prompt, s)
    assert len(first) <= s.length
    if s.until and s.until in first:
        assert first.endswith(s.until) and first.index(s.until) == len(first) - len(s.until)
    elif s.until == "":
        assert len(first) == s.length


@settings(max_examples=25, deadline=None)
@given(s=SETTINGS)
def test_a_batch_of_temperatures_matches_streams_with_every_setting(model, s):
    g = fresh(model)
    s = dataclasses.replace(s, until="")
    rows = list(g.stream_batch("ab c", s, (0.0, 1.0)))
    for b, t in enumerate((0.0, 1.0)):
        assert "".join(r[b].char for r in rows) == fresh(model).sample("ab c", dataclasses.replace(s, temperature=t))


def test_count_samples_are_ranked_by_bits_per_char_and_each_stops_at_until(model):
    g = fresh(model)
    s = SampleConfig(length=200, temperature=1.2, seed=40, until=".", count=8)
    samples = g.samples("ab", s)
    assert sorted(m.seed for m in samples) == list(range(40, 48))
    bits = [m.bits_per_char for m in samples]
    assert bits == sorted(bits) and bits[0] < bits[-1]
    stopped = 0
    for m in samples:
        assert m.text == g.sample("ab", dataclasses.replace(s, seed=m.seed))
        assert m.text.endswith(".") or len(m.text) == 200
        assert "." not in m.text[:-1]
        stopped += m.text.endswith(".")
        # the figure: the model's own surprise at the text, scored afresh
        scored = fresh(model).score("ab" + m.text)[2:]
        assert m.bits_per_char == pytest.approx(np.mean([-math.log2(t.prob) for t in scored]), rel=1e-4)
    assert stopped >= 4


def test_bits_per_char_of_known_probabilities():
    from rnn_tui.generation import Token

    assert bits_per_char([Token("a", 0.5, ()), Token("b", 0.25, ())]) == pytest.approx(1.5)
    assert bits_per_char([]) == 0.0


def test_the_distribution_still_sums_to_one_with_everything_on():
    logits = softmax(np.arange(10.0))
    p = sampling_distribution(np.log(logits), 0.7, 5, 0.6, np.array([9, 8]), 3.0)
    assert p.sum() == pytest.approx(1.0) and np.count_nonzero(p) <= 5
