"""The app under Pilot, with a scripted session standing in for the trainer's process."""

import time

import pytest
from textual import events
from textual.widgets import Tabs

from rnn_tui.events import Finished, Notice
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.playground import playground as playground_module
from rnn_tui.tui.widgets.playground.controls import Controls
from rnn_tui.tui.widgets.playground.inspector import Inspector
from rnn_tui.tui.widgets.playground.playground import Playground
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from rnn_tui.tui.widgets.run_header import RunHeader
from rnn_tui.tui.widgets.training.loss_chart import LossChart
from rnn_tui.tui.widgets.training.sample_feed import SampleFeed
from rnn_tui.tui.widgets.training.stats import TrainingStats
from tests.conftest import until
from tests.fakes import FakeFolder, FakeSession, tiny_weights
from tests.helpers import SIZE, Shown, generated_text, output, settle


async def polls(pilot, n: int = 2) -> None:
    """Wait until the app has drained the session `n` more times."""
    session = pilot.app.session
    target = session.polls + n
    deadline = time.monotonic() + 15
    while session.polls < target:
        assert time.monotonic() < deadline, "the app stopped draining its session"
        await pilot.pause(0.02)


async def test_training_figures_and_samples_arrive():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        header = app.query_one(RunHeader)
        assert header.state == "training" and header.step == 300
        assert "lstm 2×32" in header.info
        stats = app.query_one(TrainingStats)
        assert stats.progress.step == 300 and stats.val is not None
        assert len(app.query_one(SampleFeed).lines) >= 2


async def test_the_header_shows_the_step_a_run_finished_at():
    """A run stopped a few steps after its last progress event: the header says where it really ended."""
    session = FakeSession()
    app = RnnTuiApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        header = app.query_one(RunHeader)
        assert header.step == 300
        session.inbox.append(Finished(303, "stopped", 1.5, 200.0))
        await polls(pilot)
        assert header.state == "done" and header.step == 303


async def test_typing_produces_coloured_output():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"the cat")
        await settle(pilot)
        out = output(app)
        assert [t.char for t in out.tokens[: out.n_prompt]] == list("the cat")
        assert all(t.prob is not None for t in out.tokens[: out.n_prompt])
        assert len(out.tokens) == out.n_prompt + 300
        strip = out.render_line(0)
        colours = {seg.style.color for seg in strip if seg.text.strip()}
        assert len(colours) >= 2  # confidence shows as colour
        underlined = [bool(seg.style.underline) for seg in strip for _ in seg.text]
        assert underlined[:7] == [True] * 7 and not any(underlined[7:])  # the prompt is underlined


async def test_unknown_prompt_characters_are_shown_not_fatal():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.query_one(PromptArea).insert("日本 [x]")
        await settle(pilot)
        out = output(app)
        assert out.tokens[0].unknown and out.tokens[1].unknown
        strip = out.render_line(0)
        shown = [(c, bool(seg.style.reverse)) for seg in strip for c in seg.text]
        assert shown[:3] == [("日", True), ("本", True), (" ", False)]  # unknown ones stand out, reversed
        assert "".join(c for c, _ in shown).startswith("日本 [x]")  # brackets are text, not markup
        assert len(out.tokens) == out.n_prompt + 300


async def test_temperature_and_seed_changes_regenerate():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"a")
        await settle(pilot)
        first = generated_text(app)
        await pilot.press("f3")
        await settle(pilot)
        assert app.query_one(Controls).value("temperature") == pytest.approx(0.9)
        hotter = generated_text(app)
        assert hotter != first
        await pilot.press("f4")
        await settle(pilot)
        assert app.query_one(Controls).value("seed") != 42
        assert generated_text(app) != hotter
        await pilot.press("f2", "f2")  # back to 0.8 ... 0.7
        await settle(pilot)
        app.query_one(Controls).set_value("seed", 42)
        app.query_one(Controls).set_value("temperature", 0.8)
        await settle(pilot)
        assert generated_text(app) == first  # same settings, same text


async def test_greedy_and_direct_entry():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        temperature = app.query_one("#temperature")
        temperature.focus()
        await pilot.press("ctrl+a", "0", "enter")  # select_on_focus, type 0
        temperature.value = "0"
        await settle(pilot)
        out = output(app)
        assert all(t.char == t.top[0][0] for t in out.tokens[out.n_prompt :])


async def test_inspector_shows_the_top_five():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"the")
        await settle(pilot)
        await pilot.press("escape")  # hand the keyboard to the coloured text
        await pilot.pause()
        await pilot.press("right")
        await settle(pilot)
        out = output(app)
        assert app.focused is out and out.cursor == 3
        token = out.tokens[3]
        assert len(token.top) == 5
        shown = str(app.query_one(Inspector).render())
        assert "generated char 1" in shown
        assert shown.count("%") >= 6  # p and the five candidates


async def test_mouse_hover_inspects():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"hello")
        await settle(pilot)
        await pilot.hover(ConfidenceText, offset=(1, 0))
        await settle(pilot)
        assert output(app).cursor == 1
        assert "prompt char 2" in str(app.query_one(Inspector).render())


async def test_pause_resume_and_save():
    session = FakeSession()
    app = RnnTuiApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        output(app).focus()
        await pilot.press("p")
        await settle(pilot)
        assert session.commands == ["pause"] and app.query_one(RunHeader).state == "paused"
        await pilot.press("p")
        await settle(pilot)
        assert session.commands == ["pause", "resume"] and app.query_one(RunHeader).state == "training"
        await pilot.press("s")
        await settle(pilot)
        assert session.commands == ["pause", "resume", "save"]
        app.query_one(PromptArea).focus()
        await pilot.press("ctrl+s")  # works from the prompt too
        await settle(pilot)
        assert session.commands == ["pause", "resume", "save", "save"]
        assert app.query_one(PromptArea).text == ""


async def test_p_in_the_prompt_is_just_a_letter():
    session = FakeSession()
    app = RnnTuiApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert not {"pause", "resume"} & set(session.commands) and app.query_one(PromptArea).text == "p"


async def test_quit_saves_first():
    session = FakeSession()
    app = RnnTuiApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+q")
        assert session.commands == ["stop"]  # the trainer saves when it stops; the app waits for its Done
        await settle(pilot)
    assert app.return_code == 0  # it exited once the trainer had saved and finished


async def test_the_trainers_death_is_shown_and_the_playground_goes_on():
    session = FakeSession()
    app = RnnTuiApp(session)
    shown = Shown()
    async with app.run_test(size=SIZE, message_hook=shown) as pilot:
        await settle(pilot)
        session.die()
        await settle(pilot)
        assert app.query_one(RunHeader).state == "failed"

        def told() -> bool:
            return any("stopped unexpectedly" in n.message and "Press ctrl+r" in n.message for n in shown)

        await until(pilot, told, "the notice that the trainer died")
        await pilot.press(*"still")
        await settle(pilot)
        assert len(output(app).tokens) == len("still") + 300
        output(app).focus()
        await pilot.press("r")  # restart from the last checkpoint
        await settle(pilot)
        assert session.commands == ["restart"] and app.query_one(RunHeader).state == "training"


async def test_frozen_weights_stay_put(monkeypatch):
    monkeypatch.setattr(playground_module, "FOLLOW_INTERVAL", 0.0)
    session = FakeSession()
    app = RnnTuiApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        playground = app.query_one(Playground)
        await pilot.press("f8")
        assert not playground.controls.follow
        _, session.tensors = tiny_weights(seed=1)
        session.step = 400
        session.publish()
        await polls(pilot, 3)  # with follow on, the new weights would have arrived by now
        await settle(pilot)
        assert playground.controls.weights_step == 300
        await pilot.press("f8")  # follow again: the newer weights arrive
        await settle(pilot)
        assert playground.controls.weights_step == 400


async def test_narrow_terminals_get_tabs():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.has_class("-narrow")
        assert app.query_one("#playground").display and not app.query_one("#training").display
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert app.query_one("#training").display and not app.query_one("#playground").display
        app.query_one(Tabs).focus()  # the keyboard leaves the playground (a click on a tab)
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert app.query_one("#playground").display and app.focused is app.query_one(PromptArea)  # it comes back
        await pilot.press("f3")  # and with it the playground's keys
        assert app.query_one(Controls).value("temperature") == pytest.approx(0.9)


async def test_playground_only_opens_a_saved_run_with_its_history():
    session = FakeFolder(step=1234)
    app = RnnTuiApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.query_one(RunHeader).state == "playground" and app.query_one(RunHeader).step == 1230
        assert app.query_one(Playground).controls.weights_step == 1234
        chart = app.query_one(LossChart)
        assert chart.train[-1][0] == 1230 and chart.val[-1][0] == 1200  # the run's curves, from its record
        await pilot.press(*"abc")
        await settle(pilot)
        assert len(output(app).tokens) == 3 + 300
        await pilot.press("p")  # no training to pause: a letter
        assert app.query_one(PromptArea).text == "abcp"
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Pause / resume training" not in titles
        await pilot.press("ctrl+q")
    assert app.return_code == 0 and session.commands == []


async def test_a_resumed_run_draws_its_old_curve_then_carries_on():
    app = RnnTuiApp(FakeSession(resumed_at=500))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        chart = app.query_one(LossChart)
        steps = [s for s, _ in chart.train]
        assert steps[0] == 10 and steps[-1] == 600 and steps == sorted(steps)  # old history, then the new steps
        assert [s for s, _ in chart.val] == [100, 200, 300, 400, 500, 600]
        text = "\n".join(line.text for line in app.query_one(SampleFeed).lines)
        assert "step 150" in text and "step 450" in text
        assert app.query_one(TrainingStats).best is not None


async def test_outside_text_is_shown_as_text_not_markup():
    session = FakeSession()
    app = RnnTuiApp(session)
    messages = ("a [/x] closing tag", "a [bold]bold[/bold] request", "[link=http://x]y")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        session.inbox += [Notice(300, m) for m in messages]
        await settle(pilot)
        # A query keeps the nodes it first found: ask again each time, as toasts are mounted after the messages.
        await until(pilot, lambda: len(app.screen.query("Toast")) == len(messages), "the toasts")
        drawn = [toast.render().plain for toast in app.screen.query("Toast")]  # each toast: its title, then the message
        assert sorted(drawn) == sorted(f"Training\n{m}" for m in messages)  # the brackets drawn, not read as markup


class FirstFrameWatcher(FakeSession):
    """Notes, when the app starts it, whether the app had drawn its first frame (Textual's Ready comes after it)."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn = False
        self.drawn_when_started: bool | None = None

    def hook(self, message) -> None:
        self.drawn = self.drawn or isinstance(message, events.Ready)

    def start(self) -> None:
        if self.drawn_when_started is None:
            self.drawn_when_started = self.drawn
        super().start()


async def test_the_session_starts_after_the_first_frame():
    session = FirstFrameWatcher()
    app = RnnTuiApp(session)
    async with app.run_test(size=SIZE, message_hook=session.hook) as pilot:
        await settle(pilot)
        assert session.drawn_when_started is True


@pytest.mark.parametrize(
    ("term", "colorterm", "system"),
    [("xterm-256color", "truecolor", "truecolor"), ("xterm-256color", "", "256"), ("xterm", "", "standard")],
)
async def test_colours_follow_the_terminal(monkeypatch, term, colorterm, system):
    monkeypatch.setenv("TERM", term)
    monkeypatch.setenv("COLORTERM", colorterm)
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        assert app.console.color_system == system
        await settle(pilot)
        await pilot.press(*"the cat")
        await settle(pilot)
        styles = {str(seg.style.color) for seg in output(app).render_line(0) if seg.text.strip()}
        assert len(styles) >= 2
        if system == "standard":  # named ANSI colours, which the terminal's theme renders
            assert all("#" not in s for s in styles)


async def test_generation_streams_partial_results():
    from rnn_tui.tui.messages import Generated

    seen: list[Generated] = []
    app = RnnTuiApp(FakeSession())

    def hook(message):
        if isinstance(message, Generated):
            seen.append(message)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        app.query_one(Controls).set_value("length", 3000)
        await settle(pilot)
        seen.clear()
        await pilot.press("x")
        await settle(pilot)
    first, *rest = seen
    assert (first.keep, first.n_prompt, [t.char for t in first.tokens[:1]]) == (0, 1, ["x"])
    assert len(first.tokens) == 2 and not first.done  # the first character is shown before the rest exists
    assert len(rest) > 2 and rest[-1].done
    assert all(m.n_prompt == 1 for m in rest) and sum(len(m.tokens) for m in rest) == 3000 - 1  # only what is new
