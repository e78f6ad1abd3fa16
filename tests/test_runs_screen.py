"""The runs screen (f10): the runs in the checkpoint folder, their curves overlaid, one opened in the playground."""

import json

import pytest

from rnn_tui import checkpoint
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.screens.runs import RunsScreen
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.playground.controls import Controls
from rnn_tui.tui.widgets.run_header import RunHeader
from rnn_tui.tui.widgets.runs.compare_chart import CompareChart
from rnn_tui.tui.widgets.runs.runs_table import RunsTable
from tests.conftest import until
from tests.fakes import FakeSession, make_run
from tests.helpers import Shown, rnn_tui, settle


@pytest.fixture
def runs(tmp_path):
    """Three saved runs: they differ in speed per step, time per step and size."""
    root = tmp_path / "checkpoints"
    make_run(root, "small-fast", steps=900, seed=0, rate=0.993, seconds_per_step=0.4)
    make_run(root, "big-slow", steps=600, seed=1, rate=0.996, seconds_per_step=1.1)
    make_run(root, "[b]not markup", steps=300, seed=2, rate=0.99, seconds_per_step=0.7)
    return root


async def open_runs(pilot) -> RunsScreen:
    """The runs screen of a settled app, once it lists the runs."""
    await pilot.press("f10")
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    await until(pilot, lambda: screen.table.row_count > 0, "the runs")
    return screen


def row(table: RunsTable, index: int) -> list[str]:
    return [str(cell) for cell in table.get_row_at(index)]


@pytest.mark.process
async def test_the_runs_are_listed_as_rnn_tui_runs_lists_them(runs, tmp_path, settled):
    app = RnnTuiApp(FakeSession(), checkpoint_dir=runs)
    async with settled(app) as pilot:
        screen = await open_runs(pilot)
        table = screen.table
        assert table.row_count == 3
        assert row(table, 0)[1:] == ["[b]not markup", "lstm 2×32", "demo", "300", "1.4462", "3m30s", "2026-01-03 12:00"]
        assert [row(table, i)[1] for i in range(3)] == ["[b]not markup", "big-slow", "small-fast"]  # newest first
        assert row(table, 1)[6] == "11m00s"
    cli = rnn_tui("runs", "--json", "--checkpoint-dir", runs, cwd=tmp_path)
    listed = [json.loads(line) for line in cli.stdout.splitlines()]
    shown = {"name", "model_summary", "corpus", "step", "best_val_loss", "train_seconds", "updated"}
    assert shown <= set(listed[0])  # every column of the screen is a field for scripts
    assert {r["name"]: (r["model_summary"], r["step"], r["train_seconds"]) for r in listed} == {
        "small-fast": ("lstm 2×32", 900, 360.0),
        "big-slow": ("lstm 2×32", 600, 660.0),
        "[b]not markup": ("lstm 2×32", 300, 210.0),
    }


async def test_marked_runs_overlay_their_curves_by_step_or_by_time(runs, settled):
    app = RnnTuiApp(FakeSession(), checkpoint_dir=runs)
    async with settled(app) as pilot:
        screen = await open_runs(pilot)
        chart = screen.query_one(CompareChart)
        assert chart.runs == []
        await pilot.press("space")  # the first row
        await pilot.press("down", "enter")  # enter (or a click) marks too
        await until(pilot, lambda: len(chart.runs) == 2, "two runs' curves")
        curves = {c.name: c for c, _ in chart.runs}
        assert set(curves) == {"[b]not markup", "big-slow"}
        assert curves["big-slow"].train[-1][:2] == (600, 660.0) and curves["big-slow"].val[-1][0] == 600
        assert len({colour for _, colour in chart.runs}) == 2
        assert str(screen.table.get_cell(str(runs / "big-slow"), "mark")) == "●"
        await pilot.press("t")
        assert chart.by_time
        await pilot.press("t")
        assert not chart.by_time
        await pilot.press("space")  # the second row again: unmarked
        await until(pilot, lambda: len(chart.runs) == 1, "one run's curves")
        assert chart.runs[0][0].name == "[b]not markup"
        assert str(screen.table.get_cell(str(runs / "big-slow"), "mark")) == ""
        await pilot.press("escape")
        assert not isinstance(app.screen, RunsScreen)


async def test_a_run_opens_in_the_playground_and_f8_goes_back(runs, settled):
    session = FakeSession()
    app = RnnTuiApp(session, checkpoint_dir=runs)
    async with settled(app) as pilot:
        screen = await open_runs(pilot)
        await pilot.press("down", "down", "o")  # small-fast, at step 900
        await until(pilot, lambda: not isinstance(app.screen, RunsScreen), "the playground")
        header, controls = app.query_one(RunHeader), app.query_one(Controls)
        await settle(pilot)
        assert header.playground == "small-fast at step 900"
        assert controls.weights_step == 900 and not controls.follow
        assert header.state == "training"  # the session's run goes on beside it
        assert "playground: small-fast at step 900" in str(header.render())
        await pilot.press(*"the")
        await settle(pilot)
        out = app.query_one(ConfidenceText)
        assert out.n_prompt == 3 and len(out.tokens) == 3 + 300
        await pilot.press("f8")  # back to the session's weights
        await settle(pilot)
        assert header.playground == "" and controls.follow and controls.weights_step == 300
        assert screen is not app.screen


async def test_the_shipped_models_are_listed_under_the_runs_and_open_in_the_playground(runs, shipped, settled):
    app = RnnTuiApp(FakeSession(), checkpoint_dir=runs)
    async with settled(app) as pilot:
        screen = await open_runs(pilot)
        table = screen.table
        assert [row(table, i)[1] for i in range(table.row_count)] == [
            "[b]not markup",
            "big-slow",
            "small-fast",
            "pretrained:python",
            "pretrained:shakespeare",
        ]
        assert row(table, 4)[2:] == ["lstm 2×32", "demo", "600", "1.3091", "7m00s", "shipped"]
        assert "then 2 shipped models (o opens one)" in str(screen.query_one("#runs-title").render())
        await pilot.press("down", "down", "down", "down", "o")
        await until(pilot, lambda: not isinstance(app.screen, RunsScreen), "the playground")
        await settle(pilot)
        header = app.query_one(RunHeader)
        assert header.playground == "pretrained:shakespeare at step 600"
        assert header.state == "training"  # the session's own run goes on beside it


async def test_the_palette_offers_the_runs_and_an_empty_folder_says_so(tmp_path, settled):
    app = RnnTuiApp(FakeSession(), checkpoint_dir=tmp_path / "none")
    async with settled(app) as pilot:
        assert "Runs" in [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("f10")
        screen = app.screen
        await until(pilot, lambda: "No runs" in str(screen.query_one("#runs-title").render()), "the title")
        await pilot.press("space", "o")  # nothing to mark or open: nothing happens
        await pilot.press("f10")
        assert not isinstance(app.screen, RunsScreen)


async def test_a_damaged_run_is_reported_not_fatal(runs, settled):
    (runs / "big-slow" / checkpoint.MODEL).write_bytes(b"not safetensors")
    app = RnnTuiApp(FakeSession(), checkpoint_dir=runs)
    shown = Shown()
    async with settled(app, notifications=True, message_hook=shown) as pilot:
        await open_runs(pilot)
        await pilot.press("down", "o")
        await until(pilot, lambda: any("damaged" in n.message for n in shown), "the error")
        assert isinstance(app.screen, RunsScreen)
        assert app.query_one(RunHeader).playground == ""


def test_runs_screen_with_overlaid_curves(snap_compare, runs, monkeypatch):
    monkeypatch.chdir(runs.parent)  # the title names the folder as given: relative, the same on every machine

    async def compare(pilot):
        screen = await open_runs(pilot)
        await pilot.press("space", "down", "down", "space")
        chart = screen.query_one(CompareChart)
        await until(pilot, lambda: len(chart.runs) == 2, "two runs' curves")
        await pilot.pause()

    app = RnnTuiApp(FakeSession(), checkpoint_dir="checkpoints")
    assert snap_compare(app, terminal_size=(140, 44), run_before=compare)
