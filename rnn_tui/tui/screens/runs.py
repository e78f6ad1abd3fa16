"""The runs screen (f10): the runs in the checkpoint folder, then the shipped models; mark several to overlay their
curves and see the settings that differ between the first two, pin a baseline whose curves stay drawn, filter the
list (/), open one in the playground. Reading run folders happens in thread workers."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from rnn_tui import checkpoint, models, record
from rnn_tui.errors import UserError
from rnn_tui.session import Weights
from rnn_tui.tui.actions import RUNS, bindings
from rnn_tui.tui.messages import OpenRun
from rnn_tui.tui.widgets.runs.compare_chart import CompareChart, Curves, settings_diff
from rnn_tui.tui.widgets.runs.runs_table import RunsTable, matches

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
BASELINE = ("gray", "grey70")  # the pinned run's curves and mark


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
        self.baseline: str | None = None  # the pinned run's path
        self.all_runs: list[dict] = []  # every run listed, the filter's hidden ones included
        self.shipped: list[dict] = []  # the shipped models, listed after the runs
        self.filter = ""

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title")
        yield Input(
            placeholder="filter: words of a run's name, model or corpus (enter keeps it, esc clears it)",
            id="runs-filter",
        )
        yield RunsTable(id="runs-table")
        yield Static(id="runs-diff")
        yield CompareChart(id="runs-chart")
        yield Footer()

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    @property
    def chart(self) -> CompareChart:
        return self.query_one(CompareChart)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#runs-filter", Input)

    def on_mount(self) -> None:
        self.filter_input.display = False
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
        self.all_runs, self.shipped = message.runs, message.shipped
        self._show_runs()

    def _show_runs(self) -> None:
        """The runs the filter lets through (then the shipped models), with the title that counts them."""
        self.table.show_runs([run for run in self.all_runs if matches(run, self.filter)], self.shipped)
        self._retitle()
        self._draw()

    def _retitle(self) -> None:
        n, m = len(self.all_runs), len(self.shipped)
        shipped = f"; then {m} shipped model{'s' * (m != 1)} (o opens one)" if m else ""
        if n:
            title = f"Runs in {self.checkpoint_dir}/: {n} run{'s' * (n != 1)}, newest first"
            if self.filter:
                title += f"; {sum(matches(run, self.filter) for run in self.all_runs)} match {self.filter!r}"
            if self.baseline:
                title += f" · baseline {Path(self.baseline).name} (b unpins it)"
            self._title(title + shipped)
        else:
            self._title(
                f"No runs in {self.checkpoint_dir}/ yet: train one with rnn-tui train or rnn-tui launch{shipped}"
            )
        self.chart.empty_title = "space or a click marks runs to compare their curves" if n else ""

    # ------------------------------------------------------------ the filter

    def action_filter(self) -> None:
        self.filter_input.display = True
        self.filter_input.focus()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter = event.value.strip()
        self._show_runs()

    @on(Input.Submitted, "#runs-filter")
    def _filter_kept(self, event: Input.Submitted) -> None:
        self.table.focus()

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
            self._need_curves(path)
        self._draw()

    def action_baseline(self) -> None:
        """Pin the run under the cursor as the baseline (its curves stay drawn, in grey), or unpin it."""
        run = self.table.current
        if run is None:
            return
        old, self.baseline = self.baseline, None if self.baseline == run["path"] else run["path"]
        if old is not None:
            self.table.mark(old, None)
        if self.baseline is not None:
            self._need_curves(self.baseline)
        self._retitle()
        self._draw()

    def _need_curves(self, path: str) -> None:
        if path not in self.curves:
            self._read_curves(path, self.table.runs[path]["name"])

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
        if self.baseline is not None:
            self.table.mark(self.baseline, BASELINE[1], "◆")
            if self.baseline in self.curves and self.baseline not in self.marked:
                curves = self.curves[self.baseline]
                shown.append((replace(curves, name=f"{curves.name} (baseline)"), BASELINE[0]))
        for i, path in enumerate(self.marked):
            plotext_colour, rich_colour = COLOURS[i % len(COLOURS)]
            self.table.mark(path, rich_colour, "◆" if path == self.baseline else "●")
            if path in self.curves:
                shown.append((self.curves[path], plotext_colour))
        self.chart.show(shown)
        self.query_one("#runs-diff", Static).update(self.diff())

    def compared(self) -> list[str]:
        """The two runs whose settings are compared: the baseline and the first marked run, or the first two."""
        paths = [self.baseline] if self.baseline else []
        return [*paths, *(p for p in self.marked if p not in paths)][:2]

    def diff(self) -> Text:
        """The settings that differ between the two compared runs, once both have been read."""
        pair = self.compared()
        if len(pair) < 2:
            return Text("mark two runs (space) to see the settings that differ; b pins a baseline", style="dim")
        if not all(p in self.curves for p in pair):
            return Text("reading the runs…", style="dim")
        a, b = (self.curves[p] for p in pair)
        differ = settings_diff(a.settings, b.settings)
        text = Text(f"{a.name} → {b.name}: ", style="bold")
        if not differ:
            return text.append("the same settings", style="")
        return text.append(" · ".join(f"{k} {_value(x)} → {_value(y)}" for k, x, y in differ), style="")

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
        """Close the filter if it has the keyboard (clearing it), else the screen."""
        if self.filter_input.has_focus:
            self.filter_input.value = ""
            self.filter_input.display = False
            self.table.focus()
            return
        self.dismiss()


def _value(x: object) -> str:
    return "-" if x is None else repr(x) if isinstance(x, str) else f"{x:g}" if isinstance(x, float) else str(x)
