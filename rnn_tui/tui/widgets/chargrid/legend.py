"""What the colours mean."""

from __future__ import annotations

from textual.widgets import Static

from rnn_tui.export import confidence_legend

NOTE = "colour = p(char | text so far) at T=1; the temperature only changes the draw"


class Legend(Static):
    def on_mount(self) -> None:
        self.update(confidence_legend(self.app.console.color_system, note=NOTE))
