"""The views under Pilot: the prediction figure, the timeline, temperatures side by side, opening a
file as the prompt, and saving the view on screen."""

import dataclasses

import pytest

from rnn_tui.events import Sample
from rnn_tui.generation import Generator
from rnn_tui.tui import app as app_module
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.messages import Priming
from rnn_tui.tui.screens.open_file import OpenFileScreen
from rnn_tui.tui.screens.temperatures import TEMPERATURES, TemperaturesScreen
from rnn_tui.tui.screens.timeline import TimelineScreen
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.playground import engine as engine_module
from rnn_tui.tui.widgets.playground import playground as playground_module
from rnn_tui.tui.widgets.playground.inspector import Inspector
from rnn_tui.tui.widgets.playground.playground import Playground
from rnn_tui.tui.widgets.playground.prediction import PredictionView, cell, window
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from rnn_tui.tui.widgets.timeline.sample_timeline import SampleTimeline
from rnn_tui.tui.widgets.training import panel as panel_module
from rnn_tui.tui.widgets.training.panel import TrainingPanel
from tests.conftest import until
from tests.fakes import VOCAB, FakeFolder, FakeSession, tiny_weights
from tests.helpers import SIZE, Shown, settle

# ---------------------------------------------------------------- the prediction figure


def test_the_window_pages_through_a_long_line():
    assert window((10, 20), 12, 40) == (10, 20)  # the whole line fits
    assert window((0, 100), 5, 40) == (0, 40)
    assert window((0, 100), 45, 40) == (40, 80)  # the next page: the text stays put while the cursor moves in it
    assert window((0, 100), 99, 40) == (80, 100)


def test_a_guess_takes_one_cell():
    assert cell(" ") == "␣" and cell("\n") == "↵" and cell("a") == "a"
    assert cell("日") == "·" and cell("\x01") == "·"


async def test_the_prediction_figure_follows_the_cursor():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"the cat")
        await settle(pilot)
        prediction, inspector = app.query_one(PredictionView), app.query_one(Inspector)
        assert not prediction.display and inspector.display
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert prediction.display and not inspector.display
        out = app.query_one(ConfidenceText)
        assert prediction.index == 6 and prediction.span[0] == 0  # the prompt's last character, on the first line
        rows = prediction.figure(app.console.color_system).split("\n")
        assert len(rows) == 6  # the characters, then five rows of guesses
        a, b = prediction.span
        assert rows[0].plain.split(" ")[: b - a][:7] == [cell(c) for c in "the cat"]
        for k in range(5):
            assert rows[k + 1].plain[::2] == "".join(cell(out.tokens[i].top[k][0]) for i in range(a, b))
        marked = [s for s in rows[1].spans if "underline" in str(s.style)]
        came = [i for i in range(a, b) if out.tokens[i].top[0][0] == out.tokens[i].char]
        assert len(marked) == len(came) > 0  # the guess that came is marked
        assert "prompt char 7" in prediction.border_title and "%" in prediction.border_title
        await pilot.press("escape", "left", "left")
        await settle(pilot)
        assert prediction.index == 4 and prediction.span[0] == 0  # same line: only the highlight moved
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert not prediction.display and inspector.display and "prompt char 5" in str(inspector.render())


# ---------------------------------------------------------------- the timeline


def timeline_steps(app) -> list[int]:
    return [s.step for s, _ in app.screen.query_one(SampleTimeline).entries]


async def test_the_timeline_shows_every_sample_in_order_and_grows_live():
    session = FakeSession(resumed_at=500)  # samples from the record, then live ones
    app = RnnTuiApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, TimelineScreen), "the timeline")
        assert timeline_steps(app) == [150, 300, 450, 600]
        timeline = app.screen.query_one(SampleTimeline)
        assert app.focused is timeline and timeline.scroll_y == 0
        assert "sample 1 of 4 · step 150" in timeline.border_subtitle
        first = timeline.entries[0]
        assert first[1] == pytest.approx(4.0 * 0.993**100 + 1.2 + 0.05)  # the validation loss by then (step 100)
        await pilot.press("j", "j")
        await until(pilot, lambda: timeline.current == 2, "the third sample at the top")
        assert "step 450" in timeline.border_subtitle
        await pilot.press("k")
        await until(pilot, lambda: timeline.current == 1, "back one sample")
        session.inbox.append(Sample(750, "a newer sample", 0.8, 1337))
        await until(pilot, lambda: timeline_steps(app)[-1] == 750, "the live sample")
        assert "5 samples, steps 150 to 750" in str(app.screen.query_one("#timeline-about").render())
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, TimelineScreen), "the main screen")


async def test_the_timeline_of_a_saved_run():
    app = RnnTuiApp(FakeFolder(step=1234))
    async with app.run_test(size=(100, 24)) as pilot:  # more samples than fit
        await settle(pilot)
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, TimelineScreen), "the timeline")
        assert timeline_steps(app) == list(range(150, 1234, 150))
        timeline = app.screen.query_one(SampleTimeline)
        await pilot.press("end")
        await until(pilot, lambda: timeline.current == 7, "the last sample")
        assert timeline.scroll_y == timeline.max_scroll_y > 0
        await pilot.press("home")
        await until(pilot, lambda: timeline.current == 0 and timeline.scroll_y == 0, "the first sample")


async def test_the_panel_keeps_a_bounded_number_of_samples(monkeypatch):
    monkeypatch.setattr(panel_module, "MAX_SAMPLES", 3)
    app = RnnTuiApp(FakeFolder(step=1234))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        panel = app.query_one(TrainingPanel)
        assert [s.step for s in panel.samples] == [900, 1050, 1200] and panel.samples_total == 8


# ---------------------------------------------------------------- temperatures side by side


async def test_temperatures_side_by_side_are_the_batch_1_texts():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"the ")
        await settle(pilot)
        settings = app.query_one(Playground).controls.settings
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(app.screen, TemperaturesScreen), "the temperatures")
        screen = app.screen
        await until(pilot, lambda: screen.result is not None and screen.result.done, "the four columns")
        cfg, weights = tiny_weights()
        views = list(screen.query(ConfidenceText))
        assert len(views) == 4
        for t, view in zip(TEMPERATURES, views, strict=True):
            alone = Generator(cfg, VOCAB, weights).sample("the ", dataclasses.replace(settings, temperature=t))
            assert "".join(tok.char for tok in view.tokens[view.n_prompt :]) == alone
            assert "".join(tok.char for tok in view.tokens[: view.n_prompt]) == "the "
        titles = [str(label.render()) for label in screen.query(".temperature-title")]
        assert titles[0].startswith("T = 0.2 · ") and "bits/char" in titles[0]
        before = [t.char for t in views[3].tokens]
        await pilot.press("f4")  # a new seed
        await until(pilot, lambda: screen.result.done and [t.char for t in views[3].tokens] != before, "new text")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, TemperaturesScreen), "the main screen")


# ---------------------------------------------------------------- opening a file


async def open_path(pilot, path) -> None:
    await pilot.press("ctrl+o")
    await until(pilot, lambda: isinstance(pilot.app.screen, OpenFileScreen), "the open dialog")
    await pilot.press(*str(path), "enter")
    await until(pilot, lambda: not isinstance(pilot.app.screen, OpenFileScreen), "the dialog to close")


async def test_a_file_opens_as_the_prompt(tmp_path):
    (tmp_path / "story.txt").write_text("the cat sat.\r\nthe dog sat.\r\n")
    app = RnnTuiApp(FakeSession())
    shown = Shown()
    async with app.run_test(size=SIZE, notifications=True, message_hook=shown) as pilot:
        await settle(pilot)
        await open_path(pilot, tmp_path / "story.txt")
        await settle(pilot)
        assert app.query_one(PromptArea).text == "the cat sat.\nthe dog sat.\n"
        out = app.query_one(ConfidenceText)
        assert out.n_prompt == 26 and len(out.tokens) == 26 + 300
        await until(pilot, lambda: any("Opened" in n.message and "26 characters" in n.message for n in shown), "Opened")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("missing.txt", None, "no such file"),
        ("binary.dat", b"\0\1\2\3", "not a text file"),
        ("huge.txt", b"a" * 300_000, "up to 250,000 characters"),
    ],
    ids=["missing", "binary", "huge"],
)
async def test_a_file_that_cannot_be_opened_is_a_one_line_notice(tmp_path, name, content, words):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    app = RnnTuiApp(FakeSession())
    shown = Shown()
    async with app.run_test(size=SIZE, notifications=True, message_hook=shown) as pilot:
        await settle(pilot)
        await pilot.press(*"kept")
        await settle(pilot)
        await open_path(pilot, tmp_path / name)
        await settle(pilot)
        errors = [n.message for n in shown if n.severity == "error"]
        assert len(errors) == 1 and words in errors[0] and "\n" not in errors[0]
        assert app.query_one(PromptArea).text == "kept"


async def test_a_long_prompt_is_scored_with_progress_and_new_weights_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_module, "LONG_PROMPT", 1000)
    monkeypatch.setattr(engine_module, "PROGRESS_EVERY", 0.0)
    monkeypatch.setattr(engine_module, "PRIME_CHUNK", 64)
    monkeypatch.setattr(playground_module, "FOLLOW_INTERVAL", 0.0)
    text = "the cat sat on the mat. the dog sat on the log.\n" * 400
    (tmp_path / "long.txt").write_text(text)
    session = FakeSession()
    app = RnnTuiApp(session)
    seen: list[tuple[int, int]] = []

    def hook(message) -> None:
        if isinstance(message, Priming):
            seen.append((message.done, app.query_one(Playground).controls.weights_step))

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        playground = app.query_one(Playground)
        await open_path(pilot, tmp_path / "long.txt")
        _, session.tensors = tiny_weights(seed=1)  # training moves on while the file is scored
        session.step = 400
        session.publish()
        await until(pilot, lambda: any(d == len(text) for d, _ in seen), "the file scored")
        first = seen[: [d for d, _ in seen].index(len(text)) + 1]  # the first scoring (new weights start another)
        done = [d for d, _ in first]
        assert len(done) > 3 and done == sorted(done)  # progress only went forward: nothing started it again
        assert {step for _, step in first} == {300}  # the newer weights waited
        await settle(pilot)
        assert "scoring the prompt" not in str(playground.border_subtitle)
        assert playground.controls.weights_step == 400  # and were taken once it was done
        out = app.query_one(ConfidenceText)
        assert out.n_prompt == len(text) and len(out.tokens) == len(text) + 300


# ---------------------------------------------------------------- saving the view on screen


async def test_ctrl_e_saves_the_view_on_screen(tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "EXPORTS", tmp_path / "exports")
    app = RnnTuiApp(FakeSession())
    shown = Shown()
    async with app.run_test(size=SIZE, notifications=True, message_hook=shown) as pilot:
        await settle(pilot)
        await pilot.press(*"the cat")
        await settle(pilot)

        async def export(prefix: str) -> str:
            before = set((tmp_path / "exports").glob("*"))
            await pilot.press("ctrl+e")
            await until(pilot, lambda: set((tmp_path / "exports").glob(f"{prefix}-*.txt")) - before, "the export")
            await app.workers.wait_for_complete()
            await pilot.pause()
            saved = sorted(set((tmp_path / "exports").glob(f"{prefix}-*")) - before)
            assert [p.suffix for p in saved] == [".html", ".svg", ".txt"]
            await until(pilot, lambda: any(saved[0].stem in n.message for n in shown), "the saved notice")
            return saved[0].read_text() + saved[2].read_text()

        page = await export("playground")  # from the prompt: ctrl+e saves rather than moving to the line's end
        assert "the cat" in page and "surprised" in page and "temperature 0.8 · seed 42" in page
        assert app.query_one(PromptArea).cursor_location == (0, 7)
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert "the top 5 guesses" in await export("playground")
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, TimelineScreen), "the timeline")
        assert "step 300" in await export("timeline")
        await pilot.press("escape", "f9")
        await until(pilot, lambda: isinstance(app.screen, TemperaturesScreen), "the temperatures")
        await until(pilot, lambda: app.screen.result is not None and app.screen.result.done, "the columns")
        page = await export("temperatures")
        assert all(f"T = {t:.1f}" in page for t in TEMPERATURES)


async def test_the_palette_offers_the_views():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in (
            "Timeline of samples",
            "Temperatures side by side",
            "Prediction figure",
            "Open a file as the prompt",
            "Export this view",
        ):
            assert wanted in titles
