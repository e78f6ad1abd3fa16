"""Find cells: progress, the cells that follow each feature best, and the chosen cell's ablation."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, ProgressBar, Static

from rnn_tui.neurons import FEATURE, Effect, Ranking

SHOWN = 3  # cells listed per feature


def row_key(feature: str, layer: int, cell: int) -> str:
    return f"{feature}:{layer}:{cell}"


def parse_row_key(key: str) -> tuple[str, int, int]:
    feature, layer, cell = key.split(":")
    return feature, int(layer), int(cell)


def effect_text(effect: Effect) -> Text:
    """The loss rise from zeroing a cell, where its feature holds and elsewhere."""
    feature = FEATURE[effect.feature]
    holds = feature.label if feature.binary else f"{feature.label} > {effect.above:g}"
    text = Text(f"Zeroing layer {effect.cell[0]} cell {effect.cell[1]} changes the loss by\n")
    for where, rise in ((holds, effect.rise_holds), ("elsewhere", effect.rise_elsewhere)):
        text.append(f"{'-' if rise is None else f'{rise:+.3f}':>8} bits/char", style="bold")
        text.append(f"  {where}\n")
    text.append(f"over {effect.chars_holds:,} and {effect.chars_elsewhere:,} characters", style="dim")
    return text


class FindPanel(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Find cells"

    def compose(self) -> ComposeResult:
        yield Static(id="find-status")
        yield ProgressBar(id="find-progress", show_eta=False)
        yield DataTable(id="find-table", cursor_type="row")
        yield Static(id="find-effect")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("feature", "layer", "cell", "r")
        self.query_one(ProgressBar).display = False
        self.status(Text("Press f to rank every cell by how well it follows each feature of the text.", style="dim"))

    @property
    def table(self) -> DataTable:
        return self.query_one(DataTable)

    def status(self, text: Text) -> None:
        self.query_one("#find-status", Static).update(text)

    def working(self, what: str, fraction: float | None) -> None:
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(total=None if fraction is None else 1.0, progress=fraction or 0.0)
        self.status(Text(what))

    def done(self, text: Text) -> None:
        self.query_one(ProgressBar).display = False
        self.status(text)

    def found(self, ranking: Ranking) -> None:
        table = self.table
        table.clear()
        for row in ranking.rows(SHOWN):
            f, c = row.feature, row.cell
            if c is None:
                table.add_row(Text(f.label, style="dim"), "", "", Text("absent", style="dim"), key=f"{f.name}:-")
            else:
                label = f.label if row.first else ""
                table.add_row(label, str(c.layer), str(c.cell), f"{c.r:+.2f}", key=row_key(f.name, c.layer, c.cell))

    def effect(self, text: Text) -> None:
        self.query_one("#find-effect", Static).update(text)
