"""Samples taken during training, each labelled with its step: watch the text evolve."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from rnn_tui.events import Sample


class SampleFeed(RichLog):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=2000, wrap=True, markup=False, auto_scroll=True, min_width=20, id=id)

    def add(self, sample: Sample) -> None:
        self.write(Text(f"── step {sample.step:,} · temperature {sample.temperature} ──", style="bold dim"))
        self.write(Text(sample.prompt + sample.text))
