"""A text coloured by one cell's activation at each character, with a cursor (keys or mouse).

It is the playground's `ConfidenceText` (its wrap, cursor and scrolling) with another
colouring: a diverging scale from blue (−1) through neutral (0) to red (+1).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from rnn_tui import palette
from rnn_tui.generation import Token
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText, display


@lru_cache(maxsize=128)
def activation_style(bin_: int, color_system: str | None, dark: bool, cursor: bool, base: Style) -> Style:
    style = base + Style.parse(palette.activation_style(bin_, color_system, dark) or "none")
    return style + Style(reverse=True, bold=True) if cursor else style


class ActivationText(ConfidenceText):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.values = np.zeros(0, np.float32)
        self._bins = np.zeros(0, np.int64)

    @property
    def text(self) -> str:
        return "".join(t.char for t in self.tokens)

    def show(self, text: str, values: np.ndarray) -> None:
        """A new text (from its start) and each character's activation."""
        self.values = values
        self._bins = np.searchsorted(palette.ACTIVATION_EDGES, values, side="right")
        self.set_tokens([Token(c, None, ()) for c in text], [])
        self._strips.clear()
        self._scroll_to(0)
        self.refresh()
        if text:  # the cursor stays where it was, if the text is long enough, or starts at the start
            self.cursor = min(max(0, self.cursor), len(text) - 1)
            self._show_cursor()

    def set_values(self, values: np.ndarray) -> None:
        """Another cell's activations over the same text."""
        self.values = values
        self._bins = np.searchsorted(palette.ACTIVATION_EDGES, values, side="right")
        self._strips.clear()
        self.refresh()

    def value_at(self, index: int) -> float | None:
        return float(self.values[index]) if 0 <= index < len(self.values) else None

    def _render(self, line: int, width: int) -> Strip:
        start, end = self._lines[line]
        cs = self.app.console.color_system
        dark = self.app.current_theme.dark
        base = self.rich_style
        segments = [
            Segment(display(self.tokens[i].char), activation_style(int(b), cs, dark, i == self.cursor, base))
            for i, b in zip(range(start, end), self._bins[start:end].tolist(), strict=True)
        ]
        return Strip(segments).simplify().extend_cell_length(width, base)
