"""What the neuron view's colours mean."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from rnn_tui import palette


def legend_text(color_system: str | None, dark: bool, shown: str) -> Text:
    """The scale from −1 to +1, and what is shown (e.g. "tanh of the cell state")."""
    text = Text("−1 ")
    for b in range(len(palette.ACTIVATION_EDGES) + 1):
        style = palette.activation_style(b, color_system, dark)
        swatch = " 0 " if not style else "   " if " on " in f" {style}" else " ● "  # a colour with no background
        text.append(swatch, style)
    text.append(" +1  ")
    text.append(shown, style="dim")
    return text


class ActivationLegend(Static):
    shown = "the cell's value"

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self, shown: str | None = None) -> None:
        self.shown = shown or self.shown
        self.update(legend_text(self.app.console.color_system, self.app.current_theme.dark, self.shown))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self.redraw()
