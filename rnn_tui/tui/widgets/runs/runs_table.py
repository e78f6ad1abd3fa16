"""The runs in the checkpoint folder, one row each: the same fields as `rnn-tui runs --json`; then the shipped
models (`rnn-tui models --json`). `matches` is the runs screen's filter (/)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from rnn_tui.humanize import duration

COLUMNS = (
    ("mark", ""),
    ("name", "run"),
    ("model", "model"),
    ("corpus", "corpus"),
    ("steps", "steps"),
    ("best", "best val"),
    ("trained", "trained"),
    ("updated", "last change"),
)


def cells(run: dict) -> dict[str, Text]:
    """A row of `checkpoint.list_runs` as the table shows it (as text: run names are not markup)."""
    best, seconds = run["best_val_loss"], run["train_seconds"]
    return {
        "name": Text(run["name"]),
        "model": Text(run["model_summary"]),
        "corpus": Text(run["corpus"]),
        "steps": Text(f"{run['step']:,}", justify="right"),
        "best": Text("-" if best is None else f"{best:.4f}", justify="right"),
        "trained": Text("-" if seconds is None else duration(seconds), justify="right"),
        "updated": Text(run["updated"].replace("T", " ")[:16]),
    }


def matches(run: dict, text: str) -> bool:
    """Whether a run's name, model or corpus holds `text` (ignoring case; every word of it, in any order)."""
    haystack = " ".join((run["name"], run["model_summary"], run["corpus"])).casefold()
    return all(word in haystack for word in text.casefold().split())


class RunsTable(DataTable):
    """Newest first. A marked run shows a dot in its curve's colour."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.runs: dict[str, dict] = {}  # by path

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key, width=1 if key == "mark" else None)

    def show_runs(self, runs: list[dict], shipped: Sequence[dict] = ()) -> None:
        """The runs, newest first, then the shipped models (`models.listing`), dim."""
        self.clear()
        self.runs = {}
        for run in [*reversed(runs), *shipped]:
            self.runs[run["path"]] = run
            row = cells(run)
            if run.get("shipped"):
                for text in row.values():
                    text.stylize("dim")
            self.add_row(Text(""), *(row[key] for key, _ in COLUMNS[1:]), key=run["path"])

    @property
    def current(self) -> dict | None:
        """The run under the cursor."""
        if not self.runs:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return self.runs.get(key.value)

    def mark(self, path: str, colour: str | None, symbol: str = "●") -> None:
        """A marked run's dot in its curve's colour (the baseline's ◆); nothing for a row the filter hides."""
        if path in self.runs:
            self.update_cell(path, "mark", Text(symbol, style=f"bold {colour}") if colour else Text(""))
