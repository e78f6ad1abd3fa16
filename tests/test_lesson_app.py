"""The lesson's screen under Pilot: training keys, choosing a step, switching the cell, exporting."""

import pytest

from rnn_tui.lesson import Lesson
from rnn_tui.tui.screens.lesson import LessonApp, LessonScreen
from rnn_tui.tui.widgets.lesson.figure import GAP, LABEL, ROW_LABEL, Figure, Layout, figure_rows
from rnn_tui.tui.widgets.lesson.step_panel import StepPanel
from tests.conftest import until

SIZE = (100, 30)


def screen(app) -> LessonScreen:
    assert isinstance(app.screen, LessonScreen)
    return app.screen


def shown(widget) -> str:
    return str(widget.render())


async def test_space_takes_one_update_and_the_figure_follows():
    app = LessonApp(Lesson("hello"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        s = screen(app)
        before = [step.scores.copy() for step in s.query_one(Figure).steps]
        await pilot.press("space")
        assert s.lesson.updates == 1
        assert "update 1 " in shown(s.query_one("#lesson-status")) + " "
        after = s.query_one(Figure).steps
        assert any((a.scores != b).any() for a, b in zip(after, before, strict=True))


async def test_enter_runs_until_every_target_wins_then_pauses():
    app = LessonApp(Lesson("hello", seed=3))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        s = screen(app)
        assert s.lesson.wins() < 4
        await pilot.press("enter")
        assert s.running
        status = s.query_one("#lesson-status")
        await until(pilot, lambda: "4 of 4 targets win" in shown(status), "every target to win, on screen")
        assert s.lesson.wins() == 4
        await pilot.press("enter")
        assert not s.running
        paused_at = s.lesson.updates
        await pilot.pause(0.3)
        assert s.lesson.updates == paused_at


async def test_speed_keys_change_the_rate_within_bounds():
    app = LessonApp(Lesson("hello"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        s = screen(app)
        start = s.speed
        await pilot.press("plus")
        assert s.speed == start + 1
        await pilot.press(*["minus"] * 20)
        assert s.speed == 0


async def test_r_restarts_with_a_new_seed():
    app = LessonApp(Lesson("hello", seed=7))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        s = screen(app)
        await pilot.press("space", "space", "r")
        assert (s.lesson.seed, s.lesson.updates, s.lesson.losses) == (8, 0, [])
        assert s.lesson.to_json() == Lesson("hello", seed=8).to_json()
        assert "seed 8" in shown(s.query_one("#lesson-status"))


async def test_c_switches_the_cell_and_the_step_panel_shows_its_gates():
    app = LessonApp(Lesson("hello"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        s = screen(app)
        assert "tanh(a_t)" in shown(s.query_one(StepPanel))
        await pilot.press("c")
        assert s.lesson.cell == "lstm"
        assert "forget gate" in shown(s.query_one(StepPanel))
        await pilot.press("c")
        assert s.lesson.cell == "gru"
        assert "reset gate" in shown(s.query_one(StepPanel))
        await pilot.press("c")
        assert s.lesson.cell == "rnn"


async def test_arrows_and_clicks_choose_the_step():
    app = LessonApp(Lesson("hello"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        s = screen(app)
        assert s.selected == 0
        await pilot.press("right", "right")
        assert s.selected == 2
        assert "step 3 of 4" in shown(s.query_one(StepPanel))
        await pilot.press("right", "right", "right")
        assert s.selected == 3  # stays at the last
        await pilot.press("home")
        assert s.selected == 0
        await pilot.press("left")
        assert s.selected == 0
        await pilot.press("end")
        assert s.selected == 3
        figure = s.query_one(Figure)
        pitch = Layout.of(figure.vocab, 3).pitch
        await pilot.click(Figure, offset=(LABEL + ROW_LABEL + 1 + pitch + GAP + 2, 3))  # inside the second column
        assert s.selected == 1
        await pilot.click(Figure, offset=(2, 3))  # the row labels
        assert s.selected == 1


async def test_a_long_word_scrolls_to_the_chosen_step():
    word = "abcdefghijklmnopqrstuvwxyz"
    app = LessonApp(Lesson(word))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        s = screen(app)
        figure = s.query_one(Figure)
        assert figure.virtual_size.width > figure.size.width
        assert figure.scroll_x == 0
        await pilot.press("end")
        await pilot.pause()
        assert s.selected == len(word) - 2
        pitch = Layout.of(figure.vocab, 3).pitch
        room = figure.scrollable_content_region.width - (LABEL + ROW_LABEL + 1)
        assert figure.scroll_x <= s.selected * pitch and (s.selected + 1) * pitch <= figure.scroll_x + room


async def test_ctrl_e_exports_the_figure_as_svg_html_and_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = LessonApp(Lesson("hello"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("right", "ctrl+e")
        await pilot.pause()
    files = sorted(p.name for p in (tmp_path / "rnn-tui-exports").iterdir())
    assert [f.rsplit(".", 1)[1] for f in files] == ["html", "svg", "txt"]
    assert all(f.startswith("lesson-hello-rnn-") for f in files)
    text = (tmp_path / "rnn-tui-exports" / files[2]).read_text()
    for words in ("scores", "hidden", "one-hot", "W_xh", "W_hh", "W_hy", "step 2 of 4"):
        assert words in text


@pytest.mark.parametrize("word", ["こんにちは", "the quick brown fox"])
async def test_wide_characters_and_a_large_vocabulary_keep_the_columns_aligned(word):
    app = LessonApp(Lesson(word))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        figure = screen(app).query_one(Figure)
        widths = {strip.cell_length for _, strip in figure.rows}
        assert len(widths) == 1  # every row of the figure as wide as the others


def test_a_wide_hidden_vector_becomes_a_strip_of_cells():
    lesson = Lesson("hello", hidden=25)
    rows = figure_rows(lesson.steps, lesson.vocab, 0, "truecolor", True)
    labels = [gutter.plain.split() for gutter, _ in rows]
    hidden = next(i for i, words in enumerate(labels) if words[:1] == ["hidden"])
    assert [labels[hidden + k][-1] for k in range(3)] == ["1", "11", "21"]  # ten units a row, in three rows
    assert len(rows) == 1 + 4 + 1 + 3 + 1 + 4 + 1
    strip = rows[hidden + 2][1].plain
    assert "." not in strip.replace("·", "")  # colours, not numbers
    narrow = figure_rows(Lesson("hello").steps, ["h", "e", "l", "o"], 0, "truecolor", True)
    assert "+" in narrow[6][1].plain or "-" in narrow[6][1].plain  # three units: numbers
