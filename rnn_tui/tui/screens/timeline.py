"""The timeline screen (F7): the run's samples from the first to the newest, growing while it trains.

Every training sample starts from the same prompt and seed, so only the weights change
between them. The samples come from the training panel, which keeps them (the run's record
on a resumed or saved run, then the live ones); new ones are picked up twice a second.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from rnn_tui.text.copies import Copies, CopyIndex
from rnn_tui.tui.actions import TIMELINE, bindings
from rnn_tui.tui.copies import indexes
from rnn_tui.tui.widgets.timeline.sample_timeline import SampleTimeline
from rnn_tui.tui.widgets.training.panel import TrainingPanel

CATCH_UP = 0.5  # seconds between looks for new samples


class TimelineScreen(Screen):
    SCOPE = TIMELINE
    BINDINGS = bindings(SCOPE)  # F7 (the app's) closes it too

    def __init__(self, panel: TrainingPanel, id: str | None = None) -> None:
        super().__init__(id=id)
        self.panel = panel
        self.seen = 0  # samples of the panel's taken in
        self.loads = panel.loads  # the panel's history this view shows

    def compose(self) -> ComposeResult:
        yield Static(id="timeline-about")
        yield SampleTimeline(id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        timeline = self.query_one(SampleTimeline)
        timeline.border_title = "Samples during training"
        self.catch_up()
        self.query_one("#timeline-about", Static).update(self.about(), layout=False)
        timeline.scroll_home(animate=False, immediate=True)
        timeline.focus()
        self.set_interval(CATCH_UP, self.catch_up)

    def catch_up(self) -> None:
        """Take in the samples the panel has received since the last look (all of them after a new history)."""
        if self.panel.loads != self.loads:
            self.loads, self.seen = self.panel.loads, self.panel.samples_total - len(self.panel.samples)
            self.query_one(SampleTimeline).clear()
        new = self.panel.samples_total - self.seen
        if new <= 0:
            return
        timeline = self.query_one(SampleTimeline)
        fresh = list(self.panel.samples)[-new:] if new < len(self.panel.samples) else list(self.panel.samples)
        timeline.add([(s, self.panel.val_loss_at(s.step)) for s in fresh])
        self.seen = self.panel.samples_total
        self.query_one("#timeline-about", Static).update(self.about(), layout=False)
        self.copies_ready()

    def copies_ready(self) -> None:
        """Check the samples not checked yet against the training text, in a thread (once the index is ready)."""
        index = indexes(self.app).get()
        timeline = self.query_one(SampleTimeline)
        todo = [(i, s.text) for i, (s, _) in enumerate(timeline.entries) if i not in timeline.copies]
        if index is not None and todo:
            self._check(index, todo, self.loads)

    @work(thread=True, exclusive=True, group="timeline-copies")
    def _check(self, index: CopyIndex, todo: list[tuple[int, str]], loads: int) -> None:
        found = {i: index.copies(text) for i, text in todo}
        self.app.call_from_thread(self._checked, found, loads)

    def _checked(self, found: dict[int, Copies], loads: int) -> None:
        if loads == self.loads and self.is_mounted:  # the samples are still the ones checked
            self.query_one(SampleTimeline).set_copies(found)

    def about(self) -> Text:
        timeline = self.query_one(SampleTimeline)
        if not timeline.entries:
            return Text("No samples yet: training writes one every few hundred steps, and they appear here.")
        first, last = timeline.entries[0][0], timeline.entries[-1][0]
        text = Text(f"{len(timeline.entries):,} samples, steps {first.step:,} to {last.step:,}; each from the prompt ")
        text.append(repr(last.prompt) if last.prompt else "(empty)", style="bold")
        text.append(f" with seed {last.seed} at temperature {last.temperature:g}: only the weights change.")
        return text

    def export_view(self) -> tuple[Text, Text, str]:
        return self.query_one(SampleTimeline).export_text(), self.about(), "rnn-tui timeline"
