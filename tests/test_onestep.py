"""One step laid open: each kernel's named parts against the textbook cell and its own step, and `Walk`."""

import numpy as np
import pytest
import torch

from rnn_tui.config import CELLS, ModelConfig
from rnn_tui.generation import Generator
from rnn_tui.inference import KERNELS, Stepper
from rnn_tui.onestep import Walk
from rnn_tui.text.vocab import Vocab
from rnn_tui.train.model import CharRNN
from tests.fakes import TEXT, VOCAB, numpy_weights, tiny_weights

H, INPUT = 7, 5


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def textbook(cell: str, w_ih, w_hh, b_ih, b_hh, x, s) -> dict[str, np.ndarray]:
    """The named vectors of one step, in float64 from PyTorch's weight layout (LSTM i, f, g, o; GRU r, z, n)."""
    k = w_ih @ x + b_ih
    if cell in ("lstm", "gru", "rnn"):
        k_h = w_hh @ s[:H] + b_hh
    blocks = lambda v: np.split(v, len(v) // H)  # noqa: E731
    if cell == "lstm":
        (i, f, g, o), c_prev = blocks(k + k_h), s[H:]
        i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        c = f * c_prev + i * g
        return {"i": i, "f": f, "g": g, "o": o, "c": c, "h": o * np.tanh(c)}
    if cell == "gru":
        (x_r, x_z, x_n), (h_r, h_z, h_n) = blocks(k), blocks(k_h)
        r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
        n = np.tanh(x_n + r * h_n)
        return {"r": r, "z": z, "n": n, "h": (1 - z) * n + z * s}
    if cell == "rnn":
        return {"a": k + k_h, "h": np.tanh(k + k_h)}
    if cell == "mingru":
        z, cand = blocks(k)
        z = sigmoid(z)
        return {"z": z, "h~": cand, "h": (1 - z) * s + z * cand}
    f, i, cand = blocks(k)
    f, i = sigmoid(f), sigmoid(i)
    return {"f": f, "i": i, "h~": cand, "h": (f * s + i * cand) / (f + i)}


def recombined(cell: str, parts: dict[str, np.ndarray], s: np.ndarray) -> np.ndarray:
    """The new state, from the gates and candidates alone, as the cell's equations put them together."""
    p = parts
    if cell == "lstm":
        c = p["f"] * s[H:] + p["i"] * p["g"]
        return np.concatenate([p["o"] * np.tanh(c), c])
    if cell == "gru":
        return (1 - p["z"]) * p["n"] + p["z"] * s
    if cell == "rnn":
        return np.tanh(p["a"])
    if cell == "mingru":
        return (1 - p["z"]) * s + p["z"] * p["h~"]
    return (p["f"] * s + p["i"] * p["h~"]) / (p["f"] + p["i"])


@pytest.mark.parametrize("cell", list(CELLS))
def test_the_parts_are_the_named_vectors_and_recombine_to_the_kernels_step(cell):
    rng = np.random.default_rng(3)
    spec, kernel = CELLS[cell], KERNELS[cell]
    raw = [
        rng.normal(0, 0.6, (spec.gates * H, INPUT)).astype(np.float32),
        rng.normal(0, 0.6, (spec.gates * H, H)).astype(np.float32) if spec.recurrent else None,
        rng.normal(0, 0.3, spec.gates * H).astype(np.float32),
        rng.normal(0, 0.3, spec.gates * H).astype(np.float32) if spec.recurrent else None,
    ]
    x = rng.normal(0, 1, INPUT).astype(np.float32)
    s = rng.normal(0, 0.7, spec.state_parts * H).astype(np.float32)
    w_ih, w_hh, b_ih, b_hh = kernel.layout(*raw, H)
    xp = w_ih @ x + b_ih
    parts = kernel.parts(xp, s, w_hh, b_hh, H)
    assert list(parts) == list(kernel.PARTS)  # every part has its words, in the order the cell computes them
    want = textbook(cell, *(None if a is None else a.astype(np.float64) for a in raw), x, s.astype(np.float64))
    assert list(want) == list(parts)
    for name, values in parts.items():
        assert values.shape == (H,)
        np.testing.assert_allclose(values, want[name], rtol=1e-5, atol=1e-6, err_msg=name)
    step = kernel.step(xp, s, w_hh, b_hh, H)
    np.testing.assert_allclose(recombined(cell, parts, s), step, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(parts["h"], step[:H], rtol=1e-6, atol=1e-6)
    if cell == "lstm":
        np.testing.assert_allclose(parts["c"], step[H:], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", list(CELLS))
def test_an_opened_step_is_the_steppers_own_step(cell):
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=13, cell=cell, layers=2, hidden=H, embedding=4)).eval()
    stepper = Stepper(model.cfg, numpy_weights(model))
    state = stepper.initial_state()
    for char_id in (3, 7, 1, 12):
        logits, new_state, layers = stepper.open_step(char_id, state)
        want_logits, want_state = stepper.step(char_id, state)
        np.testing.assert_array_equal(logits, want_logits)
        assert len(layers) == 2
        for layer, parts in enumerate(layers):
            np.testing.assert_array_equal(new_state[layer], want_state[layer])
            np.testing.assert_allclose(parts["h"], new_state[layer][:H], rtol=1e-6, atol=1e-6)
        state = new_state


def test_a_walk_opens_the_step_at_any_character_as_the_playground_reads_the_text():
    cfg, tensors = tiny_weights()
    text = TEXT[:40] + "é" + TEXT[:20]  # "é" is not in the vocabulary
    walk = Walk(Stepper(cfg, tensors), VOCAB, text, every=16)
    gen = Generator(cfg, VOCAB, tensors)
    tokens = gen.score(text)  # tokens[i].top: what the model expected at text[i]
    for index in (33, 5, 39, 40, 41, 17, 18, len(text) - 1, 0):  # far, back, forward one, and the ends
        step = walk.at(index)
        assert step.char == text[index] and step.char_id == VOCAB.id(text[index])
        if index + 1 == len(text):
            assert step.next_char is None and step.next_rank is None and step.next_prob is None
            continue
        assert step.next_char == text[index + 1]
        expected = tokens[index + 1]
        assert [VOCAB.char(i) for i in step.top(len(expected.top))] == [c for c, _ in expected.top]
        np.testing.assert_allclose(step.probs[step.top(5)], [p for _, p in expected.top], rtol=1e-4)
        if expected.prob is None:
            assert not step.next_known and step.next_id == Vocab.UNK
        else:
            assert step.next_prob == pytest.approx(expected.prob, rel=1e-4)
            assert step.top(len(VOCAB))[step.next_rank - 1] == step.next_id
    assert walk.at(40).char_id == Vocab.UNK and walk.at(39).next_char == "é" and not walk.at(39).next_known
    assert sorted(walk._states) == [0, 16, 32, 48]  # kept on the way, every 16 characters
    assert np.isneginf(walk.at(3).logits[Vocab.UNK]) and Vocab.UNK not in walk.at(3).top(len(VOCAB))
    with pytest.raises(IndexError):
        walk.at(len(text))


def test_reading_a_long_text_can_stop_and_carry_on():
    cfg, tensors = tiny_weights()
    text = TEXT * 3
    walk = Walk(Stepper(cfg, tensors), VOCAB, text, every=32)
    reading = walk.reading(300)
    assert [next(reading), next(reading)] == [32, 64]  # stopped here, as a cancelled worker does
    assert list(walk.reading(300)) == list(range(96, 301, 32))  # carries on from what it kept
    assert list(walk.reading(300)) == []
    whole = Walk(Stepper(cfg, tensors), VOCAB, text, every=len(text))  # keeps nothing: reads from the start
    for index in (300, 301, 299, 64):
        np.testing.assert_allclose(walk.at(index).logits, whole.at(index).logits, rtol=1e-5, atol=1e-5)
