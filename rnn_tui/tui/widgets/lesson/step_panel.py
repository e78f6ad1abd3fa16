"""The chosen step laid open: for the RNN, the sum inside tanh term by term; for an LSTM or a GRU,
its gates. One row per named vector, one column per hidden unit (a strip when there are many)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from rnn_tui.lesson import Step
from rnn_tui.tui.widgets.lesson.figure import NUMBERS
from rnn_tui.tui.widgets.lesson.look import char_label, fit, swatches, value_style

NAME = 17  # the formula column
VALUE = 6  # a number's column
STRIP = 32  # units a row, as a strip


def _rows(cell: str, steps: Sequence[Step], t: int) -> list[tuple[str, np.ndarray]]:
    """(formula, values) for step `t`, top to bottom as the cell computes them."""
    s, p = steps[t], steps[t].parts
    char = char_label(s.input)
    if cell == "rnn":
        return [
            (f"  W_xh·x_t col {char}", p["x"]),
            ("+ W_hh·h_t-1" + (f" ({t})" if t else " (0)"), p["h"]),
            ("+ b_h", p["b"]),
            ("= a_t", p["a"]),
            ("h_t = tanh(a_t)", s.hidden),
        ]
    if cell == "lstm":
        return [
            ("i input gate    σ", p["i"]),
            ("f forget gate   σ", p["f"]),
            ("g candidate  tanh", p["g"]),
            ("o output gate   σ", p["o"]),
            ("c_t = f⊙c_t-1 + i⊙g", p["c"]),
            ("h_t = o⊙tanh(c_t)", s.hidden),
        ]
    prev = steps[t - 1].hidden if t else np.zeros_like(s.hidden)
    return [
        ("r reset gate    σ", p["r"]),
        ("z update gate   σ", p["z"]),
        ("n candidate  tanh", p["n"]),
        ("h_t-1" + (f" (step {t})" if t else " = 0"), prev),
        ("h_t = (1-z)⊙n + z⊙h_t-1", s.hidden),
    ]


def step_text(cell: str, steps: Sequence[Step], t: int, color_system: str | None = "truecolor", dark=True) -> Text:
    """Step `t` of the figure laid open."""
    s = steps[t]
    width = len(s.hidden)
    numbers = width <= NUMBERS
    name_width = max(NAME, *(cell_len(name) + 1 for name, _ in _rows(cell, steps, t)))
    head = Text(f"step {t + 1} of {len(steps)}", style="bold")
    head.append(f"  {char_label(s.input)} → {char_label(s.target)}")
    lines = [head]
    if numbers:
        units = "".join(fit(str(u + 1), VALUE, "right") for u in range(width))
        lines.append(Text(fit("unit", name_width, "left") + units, style="dim"))
    for name, values in _rows(cell, steps, t):
        line = Text(fit(name, name_width, "left"))
        if numbers:
            for value in values:
                line.append(fit(f"{value:+.2f}", VALUE, "right"), style=value_style(float(value), color_system, dark))
        else:
            for lo in range(0, width, STRIP):
                if lo:
                    line.append("\n" + " " * name_width)
                line.append_text(swatches(values[lo : lo + STRIP], 1, color_system, dark))
        lines.append(line)
    return Text("\n").join(lines)


class StepPanel(Static):
    def show(self, cell: str, steps: Sequence[Step], t: int) -> None:
        self.update(step_text(cell, steps, t, self.app.console.color_system, self.app.current_theme.dark))
