"""The app under Pilot, with a scripted session standing in for the trainer's process."""

import pytest

from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.controls import Controls
from rnn_tui.tui.widgets.inspector import Inspector
from rnn_tui.tui.widgets.playground import Playground, PromptArea
from rnn_tui.tui.widgets.run_header import RunHeader
from rnn_tui.tui.widgets.sample_feed import SampleFeed
from rnn_tui.tui.widgets.stats import TrainingStats
from tests.fakes import VOCAB, FakeSession, tiny_weights

SIZE = (140, 44)


async def settle(pilot, rounds: int = 3) -> None:
    """Let timers fire and generation workers finish."""
    for _ in range(rounds):
        await pilot.pause(0.12)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def output(app) -> ConfidenceText:
    return app.query_one(ConfidenceText)


def generated_text(app) -> str:
    out = output(app)
    return "".join(t.char for t in out.tokens[out.n_prompt :])


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
        assert out.render_line(0)  # renders
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
        assert session.commands[-1] == "save"
        await pilot.press("ctrl+s")  # works from the prompt too
        assert session.commands[-1] == "save"


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
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        session.die()
        await settle(pilot)
        assert app.query_one(RunHeader).state == "failed"
        assert any("stopped unexpectedly" in n.message for n in app._notifications)
        await pilot.press(*"still")
        await settle(pilot)
        assert len(output(app).tokens) == len("still") + 300


async def test_frozen_weights_stay_put():
    session = FakeSession()
    app = RnnTuiApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        playground = app.query_one(Playground)
        await pilot.press("f8")
        assert not playground.controls.follow
        _, other = tiny_weights(seed=1)
        session.tensors = {k: v.numpy() for k, v in other.items()}
        session.step = 400
        session.publish()
        await pilot.pause(2.5)
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
        assert app.query_one("#playground-panel").display and not app.query_one("#training").display
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert app.query_one("#training").display and not app.query_one("#playground-panel").display


async def test_playground_only_opens_a_saved_run():
    cfg, weights = tiny_weights()
    app = RnnTuiApp(
        playground_only={"config": cfg, "vocab": VOCAB, "weights": weights, "step": 1234, "info": "demo │ step 1,234"}
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.query_one(RunHeader).state == "playground"
        assert not app.query_one("#training").display
        await pilot.press(*"abc")
        await settle(pilot)
        assert len(output(app).tokens) == 3 + 300
        await pilot.press("p")  # no training to pause: a letter
        await pilot.press("ctrl+q")
    assert app.return_code == 0


async def test_command_palette_offers_the_actions():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Pause / resume training", "Save checkpoint", "New sampling seed", "Save and quit"):
            assert wanted in titles


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
        await settle(pilot, rounds=5)
    ours = [m for m in seen if "".join(t.char for t in m.prompt) == "x"]
    assert ours[0].generated and not ours[0].done  # the first character is shown before the rest exists
    assert ours[-1].done and len(ours[-1].generated) == 3000
    assert len(ours) > 2
