"""The runs screen (f10): the runs in the checkpoint folder, then the shipped models; mark several to overlay their
curves, open one in the playground. Reading run folders happens in thread workers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from rnn_tui import checkpoint, models, record
from rnn_tui.errors import UserError
from rnn_tui.session import Weights
from rnn_tui.tui.actions import RUNS, bindings
from rnn_tui.tui.messages import OpenRun
from rnn_tui.tui.widgets.runs.compare_chart import CompareChart, Curves
from rnn_tui.tui.widgets.runs.runs_table import RunsTable

COLOURS = (  # plotext's name, Rich's name
    ("blue", "blue"),
    ("orange", "dark_orange"),
    ("green", "green"),
    ("magenta", "magenta"),
    ("cyan", "cyan"),
    ("red", "red"),
    ("yellow", "yellow"),
    ("white", "white"),
)


@dataclass
class RunsListed(Message):
    runs: list[dict]
    shipped: list[dict]  # the shipped models (models.listing), listed under the runs


@dataclass
class CurvesRead(Message):
    path: str
    curves: Curves


class RunsScreen(Screen):
    SCOPE = RUNS
    BINDINGS = bindings(SCOPE)

    def __init__(self, checkpoint_dir: Path, id: str | None = None) -> None:
        super().__init__(id=id)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.curves: dict[str, Curves] = {}  # by path, read once
        self.marked: list[str] = []  # paths, in the order they were marked

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title")
        yield RunsTable(id="runs-table")
        yield CompareChart(id="runs-chart")
        yield Footer()

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    @property
    def chart(self) -> CompareChart:
        return self.query_one(CompareChart)

    def on_mount(self) -> None:
        self._title(f"Runs in {self.checkpoint_dir}/ (reading…)")
        self.table.focus()
        self._list_runs()

    def _title(self, text: str) -> None:
        self.query_one("#runs-title", Static).update(Text(text, style="bold"))

    @work(thread=True, exclusive=True, group="runs-list")
    def _list_runs(self) -> None:
        self.post_message(RunsListed(checkpoint.list_runs(self.checkpoint_dir), models.listing()))

    @on(RunsListed)
    def _listed(self, message: RunsListed) -> None:
        self.table.show_runs(message.runs, message.shipped)
        n, m = len(message.runs), len(message.shipped)
        shipped = f"; then {m} shipped model{'s' * (m != 1)} (o opens one)" if m else ""
        if n:
            self._title(f"Runs in {self.checkpoint_dir}/: {n} run{'s' * (n != 1)}, newest first{shipped}")
        else:
            self._title(
                f"No runs in {self.checkpoint_dir}/ yet: train one with rnn-tui train or rnn-tui launch{shipped}"
            )
        self.chart.empty_title = "space or a click marks runs to compare their curves" if n else ""
        self._draw()

    # ------------------------------------------------------------ comparing

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._toggle(event.row_key.value)

    def action_mark(self) -> None:
        run = self.table.current
        if run is not None:
            self._toggle(run["path"])

    def _toggle(self, path: str) -> None:
        if path in self.marked:
            self.marked.remove(path)
            self.table.mark(path, None)
        else:
            self.marked.append(path)
            if path not in self.curves:
                self._read_curves(path, self.table.runs[path]["name"])
        self._draw()

    @work(thread=True, group="runs-curves")
    def _read_curves(self, path: str, name: str) -> None:
        try:
            events = record.read(path).events
        except UserError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            events = []
        self.post_message(CurvesRead(path, Curves.of(name, events)))

    @on(CurvesRead)
    def _curves_read(self, message: CurvesRead) -> None:
        self.curves[message.path] = message.curves
        self._draw()

    def _draw(self) -> None:
        shown = []
        for i, path in enumerate(self.marked):
            plotext_colour, rich_colour = COLOURS[i % len(COLOURS)]
            self.table.mark(path, rich_colour)
            if path in self.curves:
                shown.append((self.curves[path], plotext_colour))
        self.chart.show(shown)

    def action_toggle_axis(self) -> None:
        self.chart.by_time = not self.chart.by_time
        self.chart.draw()

    # ------------------------------------------------------------ opening

    def action_open(self) -> None:
        run = self.table.current
        if run is not None:
            self._open(run["path"], run["name"])

    @work(thread=True, exclusive=True, group="runs-open")
    def _open(self, path: str, name: str) -> None:
        try:
            ckpt = checkpoint.load(path, optimizer=False)
        except UserError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            return
        self.app.post_message(OpenRun(name, Weights.of(ckpt)))

    def action_back(self) -> None:
        self.dismiss()
