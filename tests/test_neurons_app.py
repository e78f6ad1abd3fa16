"""The neuron view under Pilot: open it, move through cells, find cells in a worker, cancel, jump, type meanwhile."""

import threading

import numpy as np
import pytest
from textual.widgets import DataTable, ProgressBar

from rnn_tui.neurons import Analysis
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.screens.neurons import NeuronScreen
from rnn_tui.tui.widgets.chargrid.activation_text import ActivationText
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.neurons.cell_bar import CellBar
from rnn_tui.tui.widgets.neurons.find_panel import FindPanel
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from tests.conftest import until
from tests.fakes import VALIDATION, run_folder, session_for
from tests.helpers import SIZE, Shown, settle


def screen_of(app) -> NeuronScreen:
    return app.get_screen("neurons")


def bars(app) -> str:
    return str(screen_of(app).query_one(CellBar).render())


@pytest.fixture
def gate(monkeypatch):
    """Hold find cells after its first chunk until the test lets it go."""
    reached, release = threading.Event(), threading.Event()
    correlate = Analysis.correlate

    def held(self):
        for i, done in enumerate(correlate(self)):
            yield done
            if i == 0:
                reached.set()
                assert release.wait(30)

    monkeypatch.setattr(Analysis, "correlate", held)
    yield reached, release
    release.set()


async def open_view(pilot) -> NeuronScreen:
    await pilot.press("f6")
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, NeuronScreen) and app.screen.trace is not None, what="a trace")
    await pilot.pause()
    return app.screen


async def start_finding(pilot, reached: threading.Event) -> NeuronScreen:
    """Open the view and start find cells; return once its first chunk is done (and held)."""
    await settle(pilot)
    screen = await open_view(pilot)
    await pilot.press("f")
    await until(pilot, reached.is_set, what="the first chunk")
    return screen


async def test_f6_shows_the_playground_text_coloured_by_a_cell():
    app = RnnTuiApp(session_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"the cat")
        await settle(pilot)
        played = "".join(t.char for t in app.query_one(ConfidenceText).tokens)
        screen = await open_view(pilot)
        out = screen.query_one(ActivationText)
        assert out.text == played and len(played) == 7 + 300
        assert screen.trace.values.shape == (len(played), 2, 32)
        np.testing.assert_array_equal(out.values, screen.trace.values[:, 0, 0].astype(np.float32))
        backgrounds = {seg.style.bgcolor for seg in out.render_line(0) if seg.text.strip()}
        assert len(backgrounds) >= 3  # the activation shows as colour
        assert "layer 0" in bars(app) and "cell 0 " in bars(app)

        await pilot.press("right_square_bracket", "right_square_bracket", "right_curly_bracket")
        assert screen.current == (1, 2)
        np.testing.assert_array_equal(out.values, screen.trace.values[:, 1, 2].astype(np.float32))
        assert "layer 1" in bars(app) and "cell 2 " in bars(app)
        await pilot.press("left_square_bracket", "left_square_bracket", "left_square_bracket")
        assert screen.current == (1, 31)  # cells wrap around
        await pilot.press("right_curly_bracket")
        assert screen.current == (1, 31)  # there is no layer 2

        await pilot.press("right", "right", "right")
        await pilot.pause()
        value = float(screen.trace.values[3, 1, 31])
        assert out.cursor == 3 and f"char 4 of {len(played)}" in bars(app) and f"value {value:+.3f}" in bars(app)

        await pilot.press("escape")
        assert not isinstance(app.screen, NeuronScreen)
        traced = screen.trace
        await pilot.press("f6")  # the same view again, nothing to recompute
        await until(pilot, lambda: app.screen is screen and all(w.is_finished for w in screen.workers), "the view")
        await pilot.pause()  # and what any worker posted has arrived
        assert app.screen is screen and screen.trace is traced and screen.current == (1, 31)
        await pilot.press("f6")  # F6 also closes it
        assert not isinstance(app.screen, NeuronScreen)


async def test_the_command_palette_opens_it():
    app = RnnTuiApp(session_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Neuron view")
        command.callback()
        await until(pilot, lambda: isinstance(app.screen, NeuronScreen), what="the neuron view")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Find cells" in titles and "Switch text" in titles


async def test_validation_text_is_a_key_away(tmp_path):
    app = RnnTuiApp(session_for(run_folder(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_view(pilot)
        traced = screen.trace
        await pilot.press("t")
        await until(pilot, lambda: screen.trace is not traced, what="the validation text")
        shown = screen.query_one(ActivationText).text
        assert screen.source == "validation" and shown == (VALIDATION * 2)[len(VALIDATION) :][:3000]


async def test_without_validation_text_t_says_why_and_can_try_again(tmp_path):
    folder = run_folder(tmp_path)
    meta = folder / "meta.json"
    saved = meta.read_text()
    meta.unlink()
    app = RnnTuiApp(session_for(folder))
    shown = Shown()
    async with app.run_test(size=SIZE, notifications=True, message_hook=shown) as pilot:
        await settle(pilot)
        screen = await open_view(pilot)
        await pilot.press("t")
        await until(pilot, lambda: any("saved no checkpoint" in n.message for n in shown), what="why")
        assert screen.source == "playground" and len(screen.trace.text) == 300
        meta.write_text(saved)
        await pilot.press("t")
        await until(pilot, lambda: screen.source == "validation" and len(screen.trace.text) == 3000, what="the text")


async def test_find_cells_reports_progress_keeps_typing_responsive_and_jumps_to_a_cell(tmp_path, gate):
    reached, release = gate
    app = RnnTuiApp(session_for(run_folder(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_finding(pilot, reached)
        panel = screen.query_one(FindPanel)
        bar = panel.query_one(ProgressBar)
        await until(pilot, lambda: bar.display and 0 < bar.percentage < 0.5, what="progress")
        assert "validation text" in str(panel.query_one("#find-status").render())

        # While the search waits in its worker, go back to the playground and type.
        await pilot.press("escape")
        await pilot.press(*"the dog")
        out = app.query_one(ConfidenceText)
        await until(pilot, lambda: out.n_prompt == 7 and len(out.tokens) > 7, what="a continuation")
        assert app.query_one(PromptArea).text == "the dog"
        assert screen.finding and not release.is_set()  # the search was still running all along

        release.set()
        await pilot.press("f6")
        await until(pilot, lambda: screen.ranking is not None, what="the ranking")
        table = panel.query_one(DataTable)
        assert table.row_count >= 8 and not bar.display
        first = screen.ranking.top["brackets"][0]
        table.focus()
        table.move_cursor(row=table.get_row_index(f"brackets:{first.layer}:{first.cell}"))
        await pilot.press("enter")
        assert screen.current == (first.layer, first.cell)
        feature, r = screen.ranking.best_feature(screen.current)  # brackets, or a feature it follows better
        assert abs(r) >= abs(first.r) and f"follows {feature.label} best: r = {r:+.2f}" in bars(app)
        effect = panel.query_one("#find-effect")
        await until(pilot, lambda: "bits/char" in str(effect.render()), what="the ablation")
        assert f"Zeroing layer {first.layer} cell {first.cell}" in str(effect.render())
        assert "bracket depth" in str(effect.render())


async def test_find_cells_can_be_cancelled(tmp_path, gate):
    reached, release = gate
    app = RnnTuiApp(session_for(run_folder(tmp_path)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_finding(pilot, reached)
        await pilot.press("f")  # the same key cancels
        assert not screen.finding
        release.set()
        await until(pilot, lambda: not any(w.is_running for w in screen.workers), what="the worker to stop")
        assert screen.ranking is None and screen.query_one(DataTable).row_count == 0
        assert "Cancelled" in str(screen.query_one("#find-status").render())


async def test_without_validation_text_it_ranks_the_playground_text():
    app = RnnTuiApp(session_for())  # the run's folder does not exist
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_view(pilot)
        await pilot.press("f")
        await until(pilot, lambda: screen.ranking is not None, what="the ranking")
        assert screen.ranking.chars == 300
        assert "There is no validation text" in str(screen.query_one("#find-status").render())


async def test_a_new_run_reads_its_validation_text_once_it_has_saved(tmp_path):
    folder = run_folder(tmp_path)
    meta = folder / "meta.json"
    saved = meta.read_text()
    meta.unlink()  # a run that has not saved its first checkpoint yet
    app = RnnTuiApp(session_for(folder))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_view(pilot)
        await pilot.press("f")
        await until(pilot, lambda: screen.ranking is not None, what="the ranking")
        assert screen.ranking.chars == 300  # the playground's text, meanwhile
        assert "saved no checkpoint yet" in str(screen.query_one("#find-status").render())
        meta.write_text(saved)  # the trainer saves
        await pilot.press("f")
        await until(pilot, lambda: screen.ranking.chars != 300, what="a ranking of the validation text")
        assert screen.ranking.chars == len(VALIDATION)


async def test_the_view_exports_as_html_svg_and_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = RnnTuiApp(session_for())
    shown = Shown()
    async with app.run_test(size=SIZE, message_hook=shown) as pilot:
        await settle(pilot)
        screen = await open_view(pilot)
        body, legend, title = screen.export_view()
        assert body.plain == screen.trace.text and "layer 0, cell 0" in legend.plain and "cell 0" in title
        await pilot.press("ctrl+e")  # the app's key: it saves whatever view is on screen
        folder = tmp_path / "rnn-tui-exports"
        await until(pilot, lambda: folder.is_dir() and len(list(folder.iterdir())) == 3, what="the saved view")
        assert sorted(p.suffix for p in folder.iterdir()) == [".html", ".svg", ".txt"]
        await until(pilot, lambda: any("rnn-tui-exports/neurons-" in n.message for n in shown))
