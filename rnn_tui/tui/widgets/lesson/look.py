"""How the lesson draws numbers: cells of a fixed width in cells (wide characters included), the
output scores in green (the target) and red (the others), shaded by probability, and values on
the activation scale (blue −, red +) of the neuron view, for truecolor, 16 colours and none."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.text import Text

from rnn_tui import palette
from rnn_tui.export import visible

NAMES = {" ": "␣", "\n": "↵", "\t": "⇥"}
# The target's scale and the other characters', from improbable to probable (edges 0.2, 0.4, 0.6, 0.8).
GREEN = ("#cfe9d6 on #16361f", "#e4f7e8 on #1d5532", "#ffffff on #257a44", "#08210f on #43b06a", "#08210f on #77e09a")
RED = ("#e6c3c5 on #36191b", "#f6dcdd on #5b2227", "#ffffff on #88252c", "#2a0a0c on #cf474f", "#2a0a0c on #f47c83")
GREEN16 = ("green", "bold green", "black on green", "black on bright_green", "bold black on bright_green")
RED16 = ("red", "bold red", "bright_white on red", "black on bright_red", "bold black on bright_red")
ONE = "bold reverse"  # the one-hot's 1
ZERO = "dim"
SELECTED = "bold reverse"
AMBER = "#f2c14e"  # what flows into the chosen step


def char_label(char: str) -> str:
    """A character as the figure labels it: blanks and control characters as symbols, a combining mark on ◌."""
    if char in NAMES:
        return NAMES[char]
    shown = visible(char)
    return "◌" + shown if cell_len(shown) == 0 else shown  # a combining mark, or another invisible character


def fit(text: str, width: int, align: str = "center") -> str:
    """`text` padded (or cut) to exactly `width` cells."""
    size = cell_len(text)
    if size >= width:
        return set_cell_size(text, width)
    left = {"left": 0, "right": width - size}.get(align, (width - size) // 2)
    return " " * left + text + " " * (width - size - left)


def score_style(prob: float, target: bool, color_system: str | None) -> str:
    """The target in green, the others in red, brighter the more probable."""
    level = min(int(prob * 5), 4)
    if color_system is None:
        return "bold underline" if target else ("bold" if level >= 3 else "")
    if color_system == "standard":
        return (GREEN16 if target else RED16)[level]
    return (GREEN if target else RED)[level]


def value_style(value: float, color_system: str | None, dark: bool) -> str:
    """A value on the activation scale (clipped to [−1, 1]): blue below zero, red above."""
    return palette.activation_style(palette.activation_bin(float(np.clip(value, -1, 1))), color_system, dark)


def swatches(values: np.ndarray, width: int, color_system: str | None, dark: bool) -> Text:
    """Heat-map cells of `width` cells each: the colours of `values` (clipped to [−1, 1]) without the numbers.
    One span per run of equal colour, so that a wide matrix stays cheap to draw."""
    bins = np.searchsorted(palette.ACTIVATION_EDGES, np.clip(np.asarray(values, np.float64), -1, 1), side="right")
    text = Text()
    edges = [0, *(np.flatnonzero(np.diff(bins)) + 1).tolist(), len(bins)] if len(bins) else []
    for a, b in pairwise(edges):
        style = palette.activation_style(int(bins[a]), color_system, dark)
        if not style:
            text.append("·" * width * (b - a), style="dim")
        elif " on " in style or "reverse" in style:
            text.append(" " * width * (b - a), style=style)
        else:  # a foreground-only colour (16 colours): a lighter block
            text.append("░" * width * (b - a), style=style)
    return text


def flow_style(color_system: str | None) -> str:
    """Arrows and labels of what flows into the chosen step."""
    return {"standard": "bold yellow", None: "bold"}.get(color_system, f"bold {AMBER}")


def flow_one_style(color_system: str | None) -> str:
    """The chosen step's one-hot 1."""
    return {"standard": "bold black on yellow", None: "bold reverse underline"}.get(
        color_system, f"bold #1a1400 on {AMBER}"
    )
