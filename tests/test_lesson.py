"""The lesson's NumPy model: its forward pass and gradients against PyTorch's cells and autograd, and what
training on one word must reach."""

import numpy as np
import pytest
import torch

from rnn_tui.errors import UserError
from rnn_tui.lesson import CELLS, PARTS, Lesson, check_word

TORCH_CELLS = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}


def torch_loss(lesson: Lesson) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[torch.Tensor]]:
    """The lesson's loss computed by PyTorch's own cell (torch.nn.*Cell) on the lesson's weights."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in lesson.params.items()}
    h_size, vocab = lesson.hidden, len(lesson.vocab)
    cell = TORCH_CELLS[lesson.cell](vocab, h_size, dtype=torch.float64)
    if lesson.cell == "gru":  # b_hn sits inside the reset gate: PyTorch's bias_hh for n; r and z need no second bias
        bias_hh = torch.cat([torch.zeros(2 * h_size, dtype=torch.float64), p["b_hn"]])
    else:
        bias_hh = torch.zeros_like(p["b_h"])
    weights = {"weight_ih": p["W_xh"], "weight_hh": p["W_hh"], "bias_ih": p["b_h"], "bias_hh": bias_hh}
    xs = torch.nn.functional.one_hot(torch.tensor(lesson.inputs), vocab).double()
    h = c = torch.zeros(h_size, dtype=torch.float64)
    scores, hiddens = [], []
    for x in xs:
        if lesson.cell == "lstm":
            h, c = torch.func.functional_call(cell, weights, (x, (h, c)))
        else:
            h = torch.func.functional_call(cell, weights, (x, h))
        hiddens.append(h)
        scores.append(p["W_hy"] @ h + p["b_y"])
    loss = torch.nn.functional.cross_entropy(torch.stack(scores), torch.tensor(lesson.targets))
    return loss, p, hiddens


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(("word", "hidden", "updates"), [("hello", 3, 0), ("mississippi", 5, 7), ("こんにちは", 2, 3)])
def test_gradients_match_autograd(cell, word, hidden, updates):
    lesson = Lesson(word, cell=cell, hidden=hidden, seed=11)
    lesson.train(updates)  # away from the initial weights, where the LSTM's forget bias is still exactly 1
    loss, grads = lesson.gradients()
    expected, params, hiddens = torch_loss(lesson)
    expected.backward()
    assert loss == pytest.approx(expected.item(), abs=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(g, params[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    for step, h in zip(lesson.steps, hiddens, strict=True):  # the figure's hidden values are PyTorch's too
        np.testing.assert_allclose(step.hidden, h.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("seed", range(5))
def test_every_target_wins_after_training_and_the_two_ls_differ(cell, seed):
    lesson = Lesson("hello", cell=cell, seed=seed)
    start = lesson.loss
    lesson.train(300)
    assert lesson.loss < start / 10
    assert [s.input + s.target for s in lesson.steps] == ["he", "el", "ll", "lo"]
    for s in lesson.steps:
        assert lesson.vocab[int(np.argmax(s.scores))] == s.target, (s.input, s.target, s.scores)
    first_l, second_l = lesson.steps[2], lesson.steps[3]  # both read "l"; one must say "l", the other "o"
    assert first_l.input == second_l.input == "l"
    assert np.abs(first_l.hidden - second_l.hidden).max() > 0.1


def test_losses_are_recorded_and_fall():
    lesson = Lesson("hello")
    lesson.train(50)
    assert lesson.updates == len(lesson.losses) == 50
    assert lesson.losses[0] == pytest.approx(Lesson("hello").loss)
    assert lesson.losses[-1] > lesson.loss
    assert lesson.losses[-1] < lesson.losses[0]


def test_the_same_seed_gives_the_same_figure_and_another_seed_another():
    a, b, c = Lesson("hello", seed=4), Lesson("hello", seed=4), Lesson("hello", seed=5)
    for lesson in (a, b, c):
        lesson.train(20)
    assert a.to_json() == b.to_json()
    assert a.to_json()["steps"] != c.to_json()["steps"]
    assert a.restarted(5).to_json() == Lesson("hello", seed=5).to_json()


def test_the_vocabulary_is_the_words_characters_in_order_of_appearance():
    lesson = Lesson("hello")
    assert lesson.vocab == ["h", "e", "l", "o"]
    assert (lesson.inputs, lesson.targets) == ([0, 1, 2, 2], [1, 2, 2, 3])
    assert Lesson("こんにちは").vocab == list("こんにち" + "は")


@pytest.mark.parametrize("cell", CELLS)
def test_each_step_shows_its_parts_and_json(cell):
    lesson = Lesson("hello", cell=cell, hidden=4)
    step = lesson.steps[1]
    assert tuple(step.parts) == PARTS[cell]
    assert all(v.shape == (4,) for v in step.parts.values())
    assert step.probs.sum() == pytest.approx(1.0)
    out = lesson.to_json()
    assert {"loss", "vocab", "steps"} <= out.keys()
    first = out["steps"][0]
    assert {"input", "target", "hidden", "scores"} <= first.keys()
    assert len(first["hidden"]) == 4 and len(first["scores"]) == 4
    assert ("gates" in first) == (cell != "rnn")
    assert ("cell_state" in first) == (cell == "lstm")


def test_the_rnn_step_adds_up():
    lesson = Lesson("hello", seed=2)
    lesson.train(10)
    prev = lesson.steps[1].hidden
    step = lesson.steps[2]
    p = lesson.params
    x = lesson.vocab.index(step.input)
    np.testing.assert_allclose(step.parts["x"], p["W_xh"][:, x])  # a one-hot input picks a column
    np.testing.assert_allclose(step.parts["h"], p["W_hh"] @ prev)
    np.testing.assert_allclose(step.hidden, np.tanh(step.parts["x"] + step.parts["h"] + step.parts["b"]))


def test_nfc_words_and_combining_marks():
    assert check_word("cafe\u0301") == "café"  # the decomposed é is one character


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"word": ""}, ["empty", "at least two"]),
        ({"word": "x"}, ["one character", "at least two"]),
        ({"word": "a" * 65}, ["65 characters", "at most 64"]),
        ({"word": "hello", "cell": "tree"}, ["--cell", "rnn, lstm, gru"]),
        ({"word": "hello", "hidden": 0}, ["--hidden", "1 to 64"]),
        ({"word": "hello", "lr": float("nan")}, ["--lr"]),
        ({"word": "hello", "seed": -1}, ["--seed"]),
    ],
)
def test_bad_input_is_one_line_that_says_what_to_do(kwargs, words):
    with pytest.raises(UserError) as info:
        Lesson(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    for w in words:
        assert w in message


def test_a_negative_number_of_updates_is_refused():
    with pytest.raises(UserError, match="--steps"):
        Lesson("hello").train(-1)
