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

from collections.abc import Sequence
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
    swatch,
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


def figure_rows(
    steps: Sequence[Step], vocab: Sequence[str], selected: int, color_system: str | None, dark: bool
) -> list[tuple[Text, Text]]:
    """Each row of the figure as its gutter (the labels) and its body (the columns)."""
    if not steps:
        return []
    lay = Layout.of(vocab, len(steps[0].hidden))
    cs = color_system
    flow = flow_style(cs)
    rows: list[tuple[Text, Text]] = []

    def row(gutter: Text, cell, gap=lambda t: Text(" " * GAP)) -> None:
        body = Text()
        for t in range(len(steps)):
            body.append_text(gap(t))
            body.append_text(cell(t))
        rows.append((gutter, body))

    def targets(t: int) -> Text:
        s = steps[t]
        return Text(fit(char_label(s.target), lay.col), style=score_style(1.0, True, cs) if t == selected else TARGET)

    row(_gutter("target"), targets)
    if lay.full:
        for v, char in enumerate(vocab):

            def score(t: int, v: int = v) -> Text:
                s = steps[t]
                style = score_style(float(s.probs[v]), v == s.target_index, cs)
                return Text(fit(f"{s.scores[v]:+5.1f} {s.probs[v]:4.0%}", lay.col), style=style)

            row(_gutter("scores" if v == 0 else "", char_label(char)), score)
    else:
        order = [np.argsort(-s.scores, kind="stable")[:TOP] for s in steps]
        for rank in range(TOP):

            def top(t: int, rank: int = rank) -> Text:
                s = steps[t]
                if rank >= len(order[t]):
                    return Text(" " * lay.col)
                v = int(order[t][rank])
                text = fit(char_label(vocab[v]), 2, "left") + f"{s.scores[v]:+5.1f} {s.probs[v]:4.0%}"
                return Text(fit(text, lay.col), style=score_style(float(s.probs[v]), v == s.target_index, cs))

            row(_gutter("top" if rank == 0 else "", f"{rank + 1}"), top)

    def arrow(name: str):
        return lambda t: Text(fit(f"↑ {name}", lay.col), style=flow if t == selected else "dim")

    row(_gutter(""), arrow("W_hy"))
    middle = (lay.hidden_rows - 1) // 2
    for r in range(lay.hidden_rows):

        def recurrent(t: int, r: int = r) -> Text:
            if r != middle:
                return Text(" " * GAP)
            text = "0→" if t == 0 else " →"  # the first step starts from h = 0
            return Text(text, style=flow if t == selected else "dim")

        if lay.numbers:

            def unit(t: int, r: int = r) -> Text:
                value = float(steps[t].hidden[r])
                style = value_style(value, cs, dark) + (" underline" if t == selected - 1 else "")
                return Text(fit(f"{value:+.2f}", lay.col), style=style)

            row(_gutter("hidden" if r == 0 else "", str(r + 1)), unit, recurrent)
        else:
            lo = r * lay.col

            def strip(t: int, lo: int = lo) -> Text:
                values = steps[t].hidden[lo : lo + lay.col]
                text = Text()
                for value in values:
                    text.append_text(swatch(float(value), 1, cs, dark))
                text.append(" " * (lay.col - len(values)))
                return text

            row(_gutter("hidden" if r == 0 else "", str(lo + 1)), strip, recurrent)
    row(_gutter(""), arrow("W_xh"))
    if lay.full:
        for v, char in enumerate(vocab):

            def one_hot(t: int, v: int = v) -> Text:
                if vocab[v] != steps[t].input:
                    return Text(fit("0", lay.col), style=ZERO)
                return Text(fit(" 1 ", lay.col), style=flow_one_style(cs) if t == selected else ONE)

            row(_gutter("one-hot" if v == 0 else "", char_label(char)), one_hot)
    else:

        def index(t: int) -> Text:
            at = vocab.index(steps[t].input) + 1
            return Text(fit(f"1 at {at} of {len(vocab)}", lay.col), style=flow if t == selected else "dim")

        row(_gutter("one-hot"), index)

    def inputs(t: int) -> Text:
        return Text(fit(char_label(steps[t].input), lay.col), style=SELECTED if t == selected else "bold")

    row(_gutter("input"), inputs)
    return rows


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
