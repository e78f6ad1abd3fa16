"""Samples taken during training, each labelled with its step: watch the text evolve.

Once the run's copy index is ready (tui/copies.py), each new sample's heading gives its novel share,
and the stretches copied from the training text are shaded.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from rnn_tui.events import Sample
from rnn_tui.tui.copies import indexes
from rnn_tui.tui.widgets.chargrid.confidence_text import COPIED


class SampleFeed(RichLog):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=2000, wrap=True, markup=False, auto_scroll=True, min_width=20, id=id)

    def add(self, sample: Sample) -> None:
        index = indexes(self.app).get()
        found = index.copies(sample.text) if index is not None else None
        novel = f" · {found.novel:.0%} novel" if found is not None else ""
        self.write(Text(f"── step {sample.step:,} · temperature {sample.temperature}{novel} ──", style="bold dim"))
        text = Text(sample.prompt + sample.text)
        for a, b in found.spans if found is not None else ():
            text.stylize(COPIED, len(sample.prompt) + a, len(sample.prompt) + b)
        self.write(text)
