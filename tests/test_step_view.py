"""One step of the model laid open (ctrl+l), under Pilot: opened from the playground's cursor, checked against
a stepper of the test's own, moved through the text, closed, and saved."""

import functools
import re

import numpy as np

from rnn_tui.inference import Stepper, mask_unknown, softmax
from rnn_tui.onestep import Walk
from rnn_tui.tui import app as app_module
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.screens import step as step_module
from rnn_tui.tui.screens.step import Reading, StepScreen
from rnn_tui.tui.widgets.lesson.look import char_label
from rnn_tui.tui.widgets.lesson.model_step import ModelStep
from tests.conftest import until
from tests.fakes import VOCAB, FakeSession, tiny_weights
from tests.helpers import SIZE, output, settle


def expected(text: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The logits and probabilities after reading a newline and text[: index + 1], one step at a time."""
    cfg, tensors = tiny_weights()
    stepper = Stepper(cfg, tensors)
    state = stepper.initial_state()
    for char in "\n" + text[: index + 1]:
        logits, state = stepper.step(VOCAB.id(char), state)
    mask_unknown(logits)
    return logits, softmax(logits)


async def open_at(pilot, index: int) -> StepScreen:
    """Put the output's cursor on character `index` (-1: the last), then press ctrl+l."""
    app = pilot.app
    app.query_one("#output").focus()
    await pilot.pause()
    await pilot.press(*(["end"] if index < 0 else ["home", *["right"] * index]))
    assert output(app).cursor == index % len(output(app).tokens)
    await pilot.press("ctrl+l")
    await until(pilot, lambda: isinstance(app.screen, StepScreen) and app.screen.step is not None, "the step")
    await pilot.pause()
    return app.screen


def shown(screen: StepScreen) -> str:
    return str(screen.query_one(ModelStep).render()) + str(screen.query_one("#step-context").render())


async def test_ctrl_l_lays_open_the_step_at_the_cursor(tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "EXPORTS", tmp_path / "exports")
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"the cat ")
        await settle(pilot)
        text = "".join(t.char for t in output(app).tokens)
        screen = await open_at(pilot, 5)
        step = screen.step
        assert (step.index, step.char, step.char_id, step.next_char) == (5, "a", VOCAB.id("a"), "t")
        logits, probs = expected(text, 5)
        top = [int(i) for i in np.argsort(-logits, kind="stable")[:8]]
        assert step.top(8) == top
        np.testing.assert_allclose(step.logits[top], logits[top], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(step.probs, probs, rtol=1e-4, atol=1e-7)
        rank = top.index(VOCAB.id("t")) + 1 if VOCAB.id("t") in top else None
        page = shown(screen)
        assert f"t came next: rank {step.next_rank} of {len(VOCAB) - 1}, p {probs[VOCAB.id('t')]:.1%}" in page
        assert rank is None or step.next_rank == rank
        for v in top[:3]:  # the highest scores, with their probabilities, on screen
            label, score, prob = (
                re.escape(x) for x in (char_label(VOCAB.char(v)), f"{logits[v]:+.2f}", f"{probs[v]:.1%}")
            )
            assert re.search(rf" {label} +{score} +{prob} ", page)
        assert "reads a → t" in page and "id " in page and "layer 2" in page and "f forget gate σ" in page
        layers = screen.step.layers
        assert len(layers) == 2 and set(layers[0]) == {"i", "f", "g", "o", "c", "h"}

        figure = screen.query_one(ModelStep)
        y = next(i for i, spot in enumerate(figure.spots) if spot and (spot.layer, spot.key) == (0, "f"))
        spot = figure.spots[y]
        await pilot.hover(ModelStep, offset=(spot.x + 3 * spot.cell, y))  # the mouse over unit 4 of layer 1's f
        await pilot.pause()
        unit = str(screen.query_one("#step-unit").render())
        assert "layer 1, unit 4 of 32:" in unit
        assert all(f"{k} {v[3]:+.3f}" in unit for k, v in layers[0].items())  # every part of it

        await pilot.press("right")
        await until(pilot, lambda: screen.step.index == 6, "the next character's step")
        assert f"f {screen.step.layers[0]['f'][3]:+.3f}" in str(screen.query_one("#step-unit").render())
        assert screen.step.char == "t" and screen.step.next_char == " " and "reads t → ␣" in shown(screen)
        await pilot.press("left", "left")
        await until(pilot, lambda: screen.step.index == 4, "two characters back")
        assert screen.step.char == "c"
        await pilot.press("end")
        await until(pilot, lambda: screen.step.index == len(text) - 1, "the last character")
        assert screen.step.next_char is None and "the text ends here" in shown(screen)

        await pilot.press("ctrl+e")
        await until(pilot, lambda: list((tmp_path / "exports").glob("one-step-*.txt")), "the export")
        page = next((tmp_path / "exports").glob("one-step-*.txt")).read_text()
        assert "the text ends here" in page and "layer 1" in page and "came next" in page

        await pilot.press("escape")
        assert app.screen is app.default_screen
        assert output(app).cursor == 5  # the playground's cursor stays where it was


async def test_the_palette_offers_it_and_the_prompts_cursor_chooses_the_character():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"the cat", "left", "left")  # the prompt's cursor after "the c": the inspector shows "c"
        await settle(pilot)
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "One step laid open")
        assert command.help.endswith("(ctrl+l)")
        command.callback()
        await until(pilot, lambda: isinstance(app.screen, StepScreen) and app.screen.step is not None, "the step")
        assert app.screen.step.index == 4 and app.screen.step.char == "c"
        await pilot.press("ctrl+l")  # ctrl+l closes it too
        assert app.screen is app.default_screen


async def test_a_long_text_is_read_a_stretch_at_a_time_with_its_progress_shown(monkeypatch):
    monkeypatch.setattr(step_module, "Walk", functools.partial(Walk, every=8))
    monkeypatch.setattr(step_module, "PROGRESS_EVERY", 0.0)
    reports: list[Reading] = []
    app = RnnTuiApp(FakeSession())

    def hook(message) -> None:
        if isinstance(message, Reading) and all(message is not r for r in reports):  # once, though it bubbles
            reports.append(message)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        await pilot.press(*"the cat ")
        await settle(pilot)
        text = "".join(t.char for t in output(app).tokens)
        screen = await open_at(pilot, -1)
        last = len(text) - 1
        assert [r.reached for r in reports] == list(range(8, last + 1, 8)) and {r.index for r in reports} == {last}
        logits, _ = expected(text, last)
        assert screen.step.index == last and screen.step.top(8) == [int(i) for i in np.argsort(-logits)[:8]]
        assert "the text ends here" in shown(screen)
