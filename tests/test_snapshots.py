"""How the screens look (pytest-textual-snapshot). Fixed weights, scripted runs, seeded samples."""

import pytest

from rnn_tui.events import Progress
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from rnn_tui.tui.widgets.training.panel import TrainingPanel
from tests.conftest import until
from tests.fakes import FakeFolder, FakeSession
from tests.helpers import settle

pytestmark = pytest.mark.usefixtures("steady_memory")


async def type_a_prompt(pilot) -> None:
    prompt = pilot.app.query_one(PromptArea)
    prompt.cursor_blink = False
    await settle(pilot)
    await pilot.press(*"the cat ")
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_main_screen(snap_compare, size):
    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=size, run_before=type_a_prompt)


def test_training_tab_on_a_narrow_terminal(snap_compare):
    async def show_training(pilot):
        await type_a_prompt(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(80, 24), run_before=show_training)


def test_inspector_on_a_light_theme(snap_compare):
    async def inspect(pilot):
        pilot.app.theme = "textual-light"
        await type_a_prompt(pilot)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("right", "right")
        await settle(pilot)

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(160, 48), run_before=inspect)


def test_paused(snap_compare):
    async def pause(pilot):
        await type_a_prompt(pilot)
        pilot.app.query_one("#output").focus()
        await pilot.press("p")
        await settle(pilot)

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(160, 48), run_before=pause)


def test_trainer_failed(snap_compare):
    session = FakeSession()

    async def die(pilot):
        await type_a_prompt(pilot)
        session.die()
        await settle(pilot)

    assert snap_compare(RnnTuiApp(session), terminal_size=(160, 48), run_before=die)


def test_playground_only(snap_compare):
    """`launch --resume RUN --no-train`: the saved run's curves and samples, no training."""
    assert snap_compare(RnnTuiApp(FakeFolder()), terminal_size=(160, 48), run_before=type_a_prompt)


def test_resumed_run_with_its_history(snap_compare):
    assert snap_compare(RnnTuiApp(FakeSession(resumed_at=500)), terminal_size=(160, 48), run_before=type_a_prompt)


def test_sixteen_colours(snap_compare, monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLORTERM", "")
    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(160, 48), run_before=type_a_prompt)


def test_prediction_figure(snap_compare):
    """ctrl+g: the top 5 guesses under the cursor's line, shaded by probability."""

    async def show(pilot):
        await type_a_prompt(pilot)
        await pilot.press("ctrl+g", "escape", "left", "left")
        await settle(pilot)

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(160, 48), run_before=show)


def test_prediction_figure_on_a_light_theme_in_sixteen_colours(snap_compare, monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLORTERM", "")

    async def show(pilot):
        pilot.app.theme = "textual-light"
        await type_a_prompt(pilot)
        await pilot.press("ctrl+g")
        await settle(pilot)

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(120, 40), run_before=show)


def test_one_step_laid_open_at_80x24(snap_compare):
    async def show(pilot):
        await type_a_prompt(pilot)
        pilot.app.query_one("#output").focus()
        await pilot.press("home", "right", "right", "right", "right", "right", "ctrl+l")
        await until(pilot, lambda: getattr(pilot.app.screen, "step", None) is not None, "the step")
        await pilot.pause()

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(80, 24), run_before=show)


def test_timeline(snap_compare):
    """F7 on a resumed run: the samples from its record, then the live ones, each under its step."""

    async def show(pilot):
        await settle(pilot)
        await pilot.press("f7")
        await settle(pilot)
        await pilot.press("j")
        await settle(pilot)

    assert snap_compare(RnnTuiApp(FakeSession(resumed_at=500)), terminal_size=(100, 30), run_before=show)


def test_temperatures_side_by_side(snap_compare):
    async def show(pilot):
        await type_a_prompt(pilot)
        await pilot.press("f9")
        await settle(pilot)
        screen = pilot.app.screen
        await until(pilot, lambda: screen.result is not None and screen.result.done, "the four columns")
        await pilot.pause()

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(160, 40), run_before=show)


def test_help_screen(snap_compare):
    async def open_help(pilot):
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(120, 40), run_before=open_help)


def test_chart_log_y_zoomed_with_a_cursor(snap_compare):
    async def explore(pilot):
        await type_a_prompt(pilot)
        pilot.app.query_one("#chart").focus()
        await pilot.press("l", "shift+left", "plus", "greater_than_sign")
        await settle(pilot)

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(160, 48), run_before=explore)


def test_chart_ignores_a_diverged_step(snap_compare):
    async def diverge(pilot):
        await type_a_prompt(pilot)
        panel = pilot.app.query_one(TrainingPanel)
        for step, loss in ((305, 1.68), (310, 60.0), (315, 1.67), (320, 1.66)):  # one step's loss shot up
            panel.add(Progress(step, 0, loss, 2e-3, 11_000.0, step * 0.7))
        panel.show(now=True)
        await settle(pilot)

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(120, 40), run_before=diverge)
