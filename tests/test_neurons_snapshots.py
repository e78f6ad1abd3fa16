"""How the neuron view looks (pytest-textual-snapshot): fixed weights, a fixed validation text."""

from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.screens.neurons import NeuronScreen
from rnn_tui.tui.widgets.chargrid.activation_text import ActivationText
from rnn_tui.tui.widgets.neurons.cell_bar import CellBar
from tests.conftest import until
from tests.fakes import run_folder, session_for
from tests.helpers import settle


async def find_and_choose(pilot) -> None:
    """Open the view on the validation text, find cells, and choose the top cell for quotes."""
    app = pilot.app
    await settle(pilot)
    await pilot.press("f6")
    await until(pilot, lambda: isinstance(app.screen, NeuronScreen) and app.screen.trace is not None)
    screen = app.screen
    traced = screen.trace
    await pilot.press("t")
    await until(pilot, lambda: screen.trace is not traced)
    await pilot.press("f")
    await until(pilot, lambda: screen.ranking is not None)
    table = screen.query_one("#find-table")
    top = screen.ranking.top["quotes"][0]
    table.focus()
    table.move_cursor(row=table.get_row_index(f"quotes:{top.layer}:{top.cell}"))
    await pilot.press("enter")
    await until(pilot, lambda: "bits/char" in str(screen.query_one("#find-effect").render()))
    activations = screen.query_one(ActivationText)
    activations.focus()
    await pilot.press("down", "right", "right")
    bar = screen.query_one(CellBar)  # it shows the cursor's character, and what the cell holds there
    await until(pilot, lambda: activations.cursor > 0 and f"char {activations.cursor + 1} of" in str(bar.render()))


def test_neuron_view(snap_compare, tmp_path):
    app = RnnTuiApp(session_for(run_folder(tmp_path)))
    assert snap_compare(app, terminal_size=(140, 40), run_before=find_and_choose)


def test_neuron_view_light_and_narrow(snap_compare, tmp_path):
    async def light(pilot):
        pilot.app.theme = "textual-light"
        await find_and_choose(pilot)

    app = RnnTuiApp(session_for(run_folder(tmp_path)))
    assert snap_compare(app, terminal_size=(80, 30), run_before=light)


def test_neuron_view_in_sixteen_colours(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLORTERM", "")
    app = RnnTuiApp(session_for(run_folder(tmp_path)))
    assert snap_compare(app, terminal_size=(140, 40), run_before=find_and_choose)
