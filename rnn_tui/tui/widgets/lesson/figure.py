"""The post's figure: one column per time step, read bottom to top as the post draws it.

    target    e          l          l          o         the character each step should predict
    scores   +1.0  12%  ...                               y_t and softmax(y_t): target green, others red
              ↑ W_hy
    hidden  0→ +0.32  →  ...                              h_t (→: h_t-1 flows into the next step)
              ↑ W_xh
    one-hot   1          0          0          0          x_t
    input     h          e          l          l

The chosen step's column shows what flows into it: its one-hot's 1 and the arrows from the
input and from the step before are lit. The row labels stay put while the columns scroll.

The figure takes any steps (`lesson.Step`), so it can draw a real model's step too: a hidden
vector wider than `NUMBERS` values becomes a coloured strip (one cell a unit, wrapped at the
column's width), and a vocabulary larger than `FULL_VOCAB` shows the input as its character
and the `TOP` highest scores (with the target marked) instead of every score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from rnn_tui.lesson import Step
from rnn_tui.tui.widgets.lesson.look import (
    ONE,
    SELECTED,
    ZERO,
    char_label,
    fit,
    flow_one_style,
    flow_style,
    score_style,
    swatches,
    value_style,
)

NUMBERS = 8  # hidden vectors up to this wide are shown as numbers, one unit a row
FULL_VOCAB = 12  # vocabularies up to this size show every score and the whole one-hot vector
TOP = 8  # otherwise: the highest scores
TARGET = "bold green"
GAP = 2  # between columns: the recurrent arrow
LABEL = 7  # the gutter: a section's name, then a row's label
ROW_LABEL = 3


@dataclass
class Layout:
    """The sizes of a figure of these steps."""

    full: bool  # every score and the whole one-hot; else the top scores and the input character
    numbers: bool  # hidden values as numbers (else as a strip)
    col: int  # a column's width in cells
    hidden_rows: int

    @classmethod
    def of(cls, vocab: Sequence[str], hidden: int) -> Layout:
        full = len(vocab) <= FULL_VOCAB
        col = 10 if full else 13
        numbers = hidden <= NUMBERS
        rows = hidden if numbers else -(-hidden // col)
        return cls(full, numbers, col, rows)

    @property
    def pitch(self) -> int:
        return GAP + self.col


def _gutter(section: str, label: str = "") -> Text:
    """A row's labels: its section's name (on the section's first row), then the row's own label."""
    text = Text(section, style="bold")
    text.append(" " * (LABEL + ROW_LABEL - cell_len(section) - cell_len(label)))
    text.append(label, style="bold")
    text.append(" ")
    return text


Row = tuple[Text, Text]  # the labels, the columns


@dataclass
class Columns:
    """The steps to draw side by side, and what every section of the figure needs to draw them."""

    steps: Sequence[Step]
    vocab: Sequence[str]
    selected: int
    color_system: str | None
    dark: bool

    def __post_init__(self) -> None:
        self.sizes = Layout.of(self.vocab, len(self.steps[0].hidden))
        self.flow = flow_style(self.color_system)

    def row(self, gutter: Text, cell: Callable[[int], Text], gap: Callable[[int], Text] | None = None) -> Row:
        """A row: for each step, the gap before its column (blank unless `gap` says), then its cell."""
        body = Text()
        for t in range(len(self.steps)):
            body.append_text(gap(t) if gap else Text(" " * GAP))
            body.append_text(cell(t))
        return gutter, body

    def cell(self, text: str, style: str) -> Text:
        return Text(fit(text, self.sizes.col), style=style)

    def lit(self, t: int) -> str:
        """The style of an arrow or label into step `t`: lit for the chosen step."""
        return self.flow if t == self.selected else "dim"


def target_row(c: Columns) -> list[Row]:
    def target(t: int) -> Text:
        chosen = score_style(1.0, True, c.color_system) if t == c.selected else TARGET
        return c.cell(char_label(c.steps[t].target), chosen)

    return [c.row(_gutter("target"), target)]


def score_rows(c: Columns) -> list[Row]:
    """Every score and its probability, a row per character; or, for a large vocabulary, the TOP highest."""

    def score(s: Step, v: int, label: str = "") -> Text:
        style = score_style(float(s.probs[v]), v == s.target_index, c.color_system)
        return c.cell(label + f"{s.scores[v]:+5.1f} {s.probs[v]:4.0%}", style)

    if c.sizes.full:
        return [
            c.row(_gutter("scores" if v == 0 else "", char_label(char)), lambda t, v=v: score(c.steps[t], v))
            for v, char in enumerate(c.vocab)
        ]
    order = [np.argsort(-s.scores, kind="stable")[:TOP] for s in c.steps]

    def top(t: int, rank: int) -> Text:
        if rank >= len(order[t]):
            return c.cell("", "")
        v = int(order[t][rank])
        return score(c.steps[t], v, fit(char_label(c.vocab[v]), 2, "left"))

    return [
        c.row(_gutter("top" if rank == 0 else "", str(rank + 1)), lambda t, r=rank: top(t, r)) for rank in range(TOP)
    ]


def arrow_row(c: Columns, weights: str) -> list[Row]:
    """The arrows up through `weights`, lit for the chosen step."""
    return [c.row(_gutter(""), lambda t: c.cell(f"↑ {weights}", c.lit(t)))]


def vector_rows(
    c: Columns, section: str, values_of: Callable[[Step], np.ndarray], recurrent: bool = False
) -> list[Row]:
    """A vector per step: as numbers, a unit a row, or, when it is wide, as a strip of coloured cells.
    `recurrent`: arrows between the columns (the state flows on), and the chosen step's predecessor underlined."""
    sizes, middle = c.sizes, (c.sizes.hidden_rows - 1) // 2

    def arrow(t: int, r: int) -> Text:
        if not recurrent or r != middle:
            return Text(" " * GAP)
        return Text("0→" if t == 0 else " →", style=c.lit(t))  # the first step starts from zeros

    def number(t: int, r: int) -> Text:
        value = float(values_of(c.steps[t])[r])
        underline = " underline" if recurrent and t == c.selected - 1 else ""
        return c.cell(f"{value:+.2f}", value_style(value, c.color_system, c.dark) + underline)

    def strip(t: int, lo: int) -> Text:
        values = values_of(c.steps[t])[lo : lo + sizes.col]
        text = swatches(values, 1, c.color_system, c.dark)
        text.append(" " * (sizes.col - len(values)))
        return text

    cell = number if sizes.numbers else strip
    rows = []
    for r in range(sizes.hidden_rows):
        first = r if sizes.numbers else r * sizes.col  # the row's first unit
        gutter = _gutter(section if r == 0 else "", str(first + 1))
        rows.append(c.row(gutter, lambda t, f=first: cell(t, f), lambda t, r=r: arrow(t, r)))
    return rows


def input_rows(c: Columns) -> list[Row]:
    """The one-hot vectors (for a large vocabulary: where the 1 is), then the characters read."""

    def one_hot(t: int, v: int) -> Text:
        if c.vocab[v] != c.steps[t].input:
            return c.cell("0", ZERO)
        return c.cell(" 1 ", flow_one_style(c.color_system) if t == c.selected else ONE)

    def index(t: int) -> Text:
        return c.cell(f"1 at {c.vocab.index(c.steps[t].input) + 1} of {len(c.vocab)}", c.lit(t))

    if c.sizes.full:
        rows = [
            c.row(_gutter("one-hot" if v == 0 else "", char_label(char)), lambda t, v=v: one_hot(t, v))
            for v, char in enumerate(c.vocab)
        ]
    else:
        rows = [c.row(_gutter("one-hot"), index)]
    chars = c.row(
        _gutter("input"), lambda t: c.cell(char_label(c.steps[t].input), SELECTED if t == c.selected else "bold")
    )
    return [*rows, chars]


def figure_rows(
    steps: Sequence[Step], vocab: Sequence[str], selected: int, color_system: str | None, dark: bool
) -> list[Row]:
    """The post's figure, top to bottom: targets, scores, ↑ W_hy, hidden states, ↑ W_xh, inputs."""
    if not steps:
        return []
    c = Columns(steps, vocab, selected, color_system, dark)
    return [
        *target_row(c),
        *score_rows(c),
        *arrow_row(c, "W_hy"),
        *vector_rows(c, "hidden", lambda s: s.hidden, recurrent=True),
        *arrow_row(c, "W_xh"),
        *input_rows(c),
    ]


def figure_text(
    steps: Sequence[Step], vocab: Sequence[str], selected: int, color_system: str | None = "truecolor", dark=True
) -> Text:
    """The whole figure as one Text (for export)."""
    return Text("\n").join(g + b for g, b in figure_rows(steps, vocab, selected, color_system, dark))


class Figure(ScrollView, can_focus=False):
    """The figure, scrolling under fixed row labels; a click on a column chooses its step."""

    @dataclass
    class StepClicked(Message):
        step: int

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.steps: list[Step] = []
        self.vocab: list[str] = []
        self.selected = 0
        self.rows: list[tuple[Strip, Strip]] = []  # each row's labels and columns, rendered
        self._gutter_width = LABEL + ROW_LABEL + 1

    def show(self, steps: list[Step], vocab: list[str], selected: int) -> None:
        self.steps, self.vocab, self.selected = steps, vocab, selected
        rows = figure_rows(steps, vocab, selected, self.app.console.color_system, self.app.current_theme.dark)
        console = self.app.console
        self.rows = [(Strip(g.render(console)), Strip(b.render(console))) for g, b in rows]
        width = max((b.cell_length for _, b in self.rows), default=0)
        self.virtual_size = Size(self._gutter_width + width, len(self.rows))
        self._keep_visible()
        self.refresh()

    def on_resize(self) -> None:
        self._keep_visible()

    @property
    def sizes(self) -> Layout:
        return Layout.of(self.vocab, len(self.steps[0].hidden) if self.steps else 0)

    def width_for(self, room: int) -> int:
        """The figure's width in `room` cells: all of it, or else whole columns (so that it scrolls by columns)."""
        if self.virtual_size.width <= room or not self.steps:
            return self.virtual_size.width
        pitch = self.sizes.pitch
        return self._gutter_width + max(1, (room - self._gutter_width) // pitch) * pitch

    def _keep_visible(self) -> None:
        """Scroll so that the chosen column is in view."""
        if not self.steps:
            return
        room = self.scrollable_content_region.width - self._gutter_width
        if room <= 0:  # not laid out yet
            return
        pitch = self.sizes.pitch
        start, end = self.selected * pitch, (self.selected + 1) * pitch
        x = self.scroll_x
        if start < x:
            x = start
        elif end > x + room:
            x = min(-(-(end - room) // pitch) * pitch, start)  # a whole column at the left edge, if there is room
        if x != self.scroll_x:
            self.scroll_to(x=x, animate=False)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = y + int(self.scroll_y)
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        gutter, body = self.rows[index]
        x = int(self.scroll_x)
        room = max(0, width - self._gutter_width)
        line = Strip.join([gutter, body.crop(x, x + room)])
        return line.apply_style(self.rich_style).extend_cell_length(width, self.rich_style).crop(0, width)

    def on_click(self, event) -> None:
        x = event.x - self._gutter_width
        if x < 0 or not self.steps:
            return
        step = (x + int(self.scroll_x)) // self.sizes.pitch
        if 0 <= step < len(self.steps):
            self.post_message(self.StepClicked(step))
