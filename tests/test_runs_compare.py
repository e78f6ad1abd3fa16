"""The runs screen's comparisons: a pinned baseline, the filter (/), the settings that differ between two runs."""

import json

import pytest

from rnn_tui import record
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.screens.runs import RunsScreen
from rnn_tui.tui.widgets.runs.compare_chart import CompareChart, settings_diff
from rnn_tui.tui.widgets.runs.runs_table import matches
from tests.conftest import until
from tests.fakes import FakeSession, make_run


def with_settings(folder, **train) -> None:
    """Give a made run's start event these training settings (as a trainer that was given them writes it)."""
    path = folder / record.FILENAME
    lines = path.read_text().splitlines()
    start = json.loads(lines[1])
    start["train"] = {"lr": 0.003, "batch_size": 32, "max_steps": 1000, **train}
    lines[1] = json.dumps(start)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "checkpoints"
    with_settings(make_run(root, "shakespeare-base", steps=600, seed=0))
    with_settings(make_run(root, "shakespeare-lr", steps=500, seed=1, rate=0.996), lr=0.001, dropout_ramp=2.0)
    with_settings(make_run(root, "linux-small", steps=300, seed=2), batch_size=64)
    return root


def test_the_settings_that_differ():
    a = {"corpus": "demo", "hidden": 32, "lr": 0.003, "batch_size": 32}
    b = {"corpus": "demo", "hidden": 64, "lr": 0.003, "batch_size": 32, "ema": 0.999}
    assert settings_diff(a, b) == [("hidden", 32, 64), ("ema", None, 0.999)]
    assert settings_diff(a, dict(a)) == []


def test_the_filter_matches_every_word_anywhere():
    run = {"name": "shakespeare-lr", "model_summary": "lstm 2×32", "corpus": "demo"}
    assert matches(run, "") and matches(run, "SHAKE") and matches(run, "lstm shake")
    assert not matches(run, "linux") and not matches(run, "shake gru")


async def open_runs(pilot) -> RunsScreen:
    await pilot.press("f10")
    screen = pilot.app.screen
    await until(pilot, lambda: screen.table.row_count == 3, "the runs")
    return screen


def names(screen: RunsScreen) -> list[str]:
    return [str(screen.table.get_row_at(i)[1]) for i in range(screen.table.row_count)]


async def test_filter_pin_a_baseline_and_compare_settings(runs, settled):
    app = RnnTuiApp(FakeSession(), checkpoint_dir=runs)
    async with settled(app) as pilot:
        screen = await open_runs(pilot)
        assert names(screen) == ["linux-small", "shakespeare-lr", "shakespeare-base"]
        await pilot.press("slash", *"shake")
        await until(pilot, lambda: screen.table.row_count == 2, "the filtered runs")
        assert names(screen) == ["shakespeare-lr", "shakespeare-base"]
        assert "2 match 'shake'" in str(screen.query_one("#runs-title").render())
        await pilot.press("enter")  # keeps the filter, back to the table
        assert screen.table.has_focus and screen.filter == "shake"
        await pilot.press("down", "b")  # shakespeare-base is the baseline
        chart = screen.query_one(CompareChart)
        await until(pilot, lambda: len(chart.runs) == 1, "the baseline's curves")
        assert chart.runs[0] == (chart.runs[0][0], "gray") and chart.runs[0][0].name == "shakespeare-base (baseline)"
        assert str(screen.table.get_cell(str(runs / "shakespeare-base"), "mark")) == "◆"
        assert screen.table.cursor_row == 1  # pinning leaves the cursor where it was
        await pilot.press("up", "space")  # mark shakespeare-lr: compared with the baseline
        await until(pilot, lambda: len(chart.runs) == 2, "both runs' curves")
        diff = str(screen.query_one("#runs-diff").render())
        assert diff == "shakespeare-base → shakespeare-lr: lr 0.003 → 0.001 · dropout_ramp - → 2"
        await pilot.press("slash")
        await pilot.press("escape")  # clears the filter and closes it; the screen stays
        await until(pilot, lambda: screen.table.row_count == 3, "every run again")
        assert isinstance(app.screen, RunsScreen) and not screen.filter_input.display
        await pilot.press("b")  # the rebuilt table's cursor is on its first row: linux-small
        assert screen.baseline == str(runs / "linux-small")
        await until(pilot, lambda: "batch_size 64 → 32" in str(screen.query_one("#runs-diff").render()), "the diff")
        assert str(screen.query_one("#runs-diff").render()).startswith("linux-small → shakespeare-lr: ")
        await pilot.press("b")  # unpinned
        assert screen.baseline is None and str(screen.table.get_cell(str(runs / "linux-small"), "mark")) == ""
        assert "mark two runs" in str(screen.query_one("#runs-diff").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, RunsScreen)


def test_runs_screen_with_a_baseline_a_filter_and_the_settings_diff(snap_compare, runs, monkeypatch):
    monkeypatch.chdir(runs.parent)

    async def compare(pilot):
        screen = await open_runs(pilot)
        await pilot.press("slash", *"shake", "enter", "down", "b", "up", "space")
        chart = screen.query_one(CompareChart)
        await until(pilot, lambda: len(chart.runs) == 2, "two runs' curves")
        await pilot.pause()

    app = RnnTuiApp(FakeSession(), checkpoint_dir="checkpoints")
    assert snap_compare(app, terminal_size=(140, 44), run_before=compare)
