"""How the lesson looks (pytest-textual-snapshot): at 80×24, wide, and in 16 colours; untrained and trained."""

import pytest

from rnn_tui.lesson import Lesson
from rnn_tui.tui.screens.lesson import LessonApp

TRAINED = 300  # updates: every target of "hello" wins long before


def trained(word: str = "hello", updates: int = TRAINED, **kwargs) -> LessonApp:
    lesson = Lesson(word, **kwargs)
    lesson.train(updates)
    return LessonApp(lesson)


async def choose_third_step(pilot) -> None:
    await pilot.pause()
    await pilot.press("right", "right")
    await pilot.pause()


@pytest.mark.parametrize("updates", [0, TRAINED])
def test_hello_at_80x24(snap_compare, updates):
    assert snap_compare(trained(updates=updates), terminal_size=(80, 24), run_before=choose_third_step)


@pytest.mark.parametrize(("cell", "updates"), [("rnn", 0), ("lstm", TRAINED)])
def test_hello_wide(snap_compare, cell, updates):
    assert snap_compare(trained(cell=cell, updates=updates), terminal_size=(160, 48), run_before=choose_third_step)


@pytest.mark.parametrize(("word", "cell", "updates"), [("hello", "rnn", 0), ("こんにちは", "gru", TRAINED)])
def test_sixteen_colours(snap_compare, monkeypatch, word, cell, updates):
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLORTERM", "")
    assert snap_compare(trained(word, updates, cell=cell), terminal_size=(80, 24), run_before=choose_third_step)


def test_a_long_sentence_scrolls_and_shows_the_top_scores(snap_compare):
    app = trained("the quick brown fox", 100)

    async def to_the_end(pilot):
        await pilot.pause()
        await pilot.press("end")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=to_the_end)
