"""What the colours mean."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from rnn_tui import palette


class Legend(Static):
    def on_mount(self) -> None:
        cs = self.app.console.color_system
        text = Text("sure ")
        for i, label in enumerate(palette.LABELS):
            text.append(label, style=palette.style_of(palette.EDGES[i] + 1e-9, cs))
            text.append(" ")
        text.append("surprised  ")
        text.append("?", style=palette.UNKNOWN)
        text.append(" unknown  ")
        text.append("prompt", style="underline")
        text.append("\ncolour = p(char | text so far) at T=1; the temperature only changes the draw", style="dim")
        self.update(text)
