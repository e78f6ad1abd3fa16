"""The step's equations, and the current W_xh, W_hh and W_hy as small heat maps (blue −, red +).

An LSTM's or a GRU's W_xh and W_hh stack one block of rows per gate; the blocks are drawn side
by side, one cell a weight. The chosen step's input picks one column of W_xh (x_t is one-hot),
so that column's label is lit; the row of W_hy that scores the target is marked in green.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.text import Text
from textual.widgets import Static

from rnn_tui.lesson import Lesson
from rnn_tui.tui.widgets.lesson.look import char_label, fit, flow_style, score_style, swatches

EQUATIONS = {  # the last line gets the colour scale
    "rnn": ("h_t = tanh(W_xh·x_t + W_hh·h_t-1 + b_h)", "y_t = W_hy·h_t + b_y"),
    "lstm": (
        "(·) = W_xh·x_t + W_hh·h_t-1 + b_h, a block per gate",
        "i, f, o = σ(·)   g = tanh(·)   c_t = f⊙c_t-1 + i⊙g",
        "h_t = o⊙tanh(c_t)   y_t = W_hy·h_t + b_y",
    ),
    "gru": (
        "(·) = W_xh·x_t + W_hh·h_t-1 + b_h, a block per gate",
        "r, z = σ(·)   n = tanh(W_xh·x_t + b_h + r⊙(W_hh·h_t-1 + b_hn))",
        "h_t = (1-z)⊙n + z⊙h_t-1   y_t = W_hy·h_t + b_y",
    ),
}
GATES = {"rnn": ("",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


def heat_map(
    name: str,
    matrix: np.ndarray,
    rows: Sequence[str] | None,
    cols: Sequence[str],
    scale: float,
    cell: int,
    color_system: str | None,
    dark: bool,
    col_style: dict[int, str] | None = None,
    row_style: dict[int, str] | None = None,
) -> list[Text]:
    """A matrix as lines of coloured cells: a line with its name and the column labels, then its rows."""
    label = max((len(r) for r in rows), default=0) + 1 if rows is not None else 0
    left = max(label, len(name) + 1)
    head = Text(fit(name, left, "left"), style="bold")
    for j, c in enumerate(cols):
        head.append(fit(c, cell), style=(col_style or {}).get(j, "dim"))
    lines = [head]
    for i, values in enumerate(matrix):
        line = Text(
            fit(rows[i] if rows is not None else "", left - 1, "right") + " ", style=(row_style or {}).get(i, "dim")
        )
        line.append_text(swatches(values / scale, cell, color_system, dark))
        lines.append(line)
    return lines


def side_by_side(blocks: Sequence[list[Text]], gap: int = 2) -> list[Text]:
    """Blocks of lines next to each other, each padded to its widest line."""
    height = max(len(b) for b in blocks)
    widths = [max(line.cell_len for line in b) for b in blocks]
    out = []
    for y in range(height):
        line = Text()
        for k, (block, width) in enumerate(zip(blocks, widths, strict=True)):
            part = block[y].copy() if y < len(block) else Text()
            part.pad_right(width - part.cell_len)
            if k:
                line.append(" " * gap)
            line.append_text(part)
        out.append(line)
    return out


def weights_text(lesson: Lesson, t: int, color_system: str | None = "truecolor", dark: bool = True) -> Text:
    """The equations, then the weight matrices as heat maps, for the chosen step `t`."""
    p, cell, h = lesson.params, lesson.cell, lesson.hidden
    scale = max(float(np.abs(p[k]).max()) for k in ("W_xh", "W_hh", "W_hy")) or 1.0
    step = lesson.steps[t]
    x = lesson.vocab.index(step.input)
    vocab = [char_label(c) for c in lesson.vocab]
    units = [str(u + 1) for u in range(h)]
    digits = [str((u + 1) % 10) for u in range(h)]  # one cell a column
    gated = cell != "rnn"
    width = 1 if gated else 2  # cells of a weight
    flow = flow_style(color_system)
    blocks = []
    for name, key, cols, pick in (
        ("W_xh", "W_xh", vocab, {x: flow}),
        ("W_hh", "W_hh", units if width > 1 and h < 10 else digits, None),
    ):
        for k, gate in enumerate(GATES[cell]):
            title = f"{name} {gate}".strip() if k == 0 else gate
            block = p[key][k * h : (k + 1) * h]
            rows = units if k == 0 else None
            blocks.append(heat_map(title, block, rows, cols, scale, width, color_system, dark, col_style=pick))
    target = score_style(1.0, True, color_system)
    blocks.append(
        heat_map("W_hy", p["W_hy"], vocab, units, scale, 2, color_system, dark, row_style={step.target_index: target})
    )
    lines = [Text(line, style="bold") for line in EQUATIONS[cell]]
    lines[-1].append(f"    colours: ±{scale:.2f}", style="dim")
    return Text("\n").join(lines + side_by_side(blocks))


class Weights(Static):
    def show(self, lesson: Lesson, t: int) -> None:
        self.update(weights_text(lesson, t, self.app.console.color_system, self.app.current_theme.dark))
