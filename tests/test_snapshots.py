"""How the main screen looks (pytest-textual-snapshot). Fixed weights, a scripted run, a seeded sample."""

import pytest

from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.playground import PromptArea
from tests.fakes import FakeSession
from tests.test_app import settle


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
