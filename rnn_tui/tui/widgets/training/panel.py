"""The training side: live figures, the loss chart and the samples, fed with the run's events.

It also keeps the run's samples (the newest few thousand) for the timeline, which reads them.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Vertical

from rnn_tui.events import Evaluation, Event, Progress, Sample
from rnn_tui.tui.widgets.training.loss_chart import LossChart
from rnn_tui.tui.widgets.training.sample_feed import SampleFeed
from rnn_tui.tui.widgets.training.stats import TrainingStats

CHART_INTERVAL = 2.0  # seconds between redraws of the chart while events arrive
MAX_SAMPLES = 2000  # samples kept for the timeline


class TrainingPanel(Vertical):
    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "Training"
        self._chart_dirty = False
        self._last_chart = -CHART_INTERVAL
        self.samples: deque[Sample] = deque(maxlen=MAX_SAMPLES)
        self.samples_total = 0  # every sample taken so far: a reader that has seen n has this minus n new ones
        self.loads = 0  # histories loaded: each replaces the samples (a reader starts again)

    def compose(self) -> ComposeResult:
        yield TrainingStats(id="stats")
        yield LossChart(id="chart")
        yield SampleFeed(id="samples")

    def add(self, event: Event) -> None:
        """Take one event; call `show` once after a batch of them."""
        match event:
            case Progress():
                self.query_one(TrainingStats).record(event)
                self.query_one(LossChart).add("train", event.step, event.loss, event.elapsed, event.chars)
                self._chart_dirty = True
            case Evaluation():
                self.query_one(TrainingStats).record(event)
                self.query_one(LossChart).add("val", event.step, event.val_loss, event.elapsed)
                self._chart_dirty = True
            case Sample():
                self.query_one(SampleFeed).add(event)
                self.samples.append(event)
                self.samples_total += 1

    def val_loss_at(self, step: int) -> float | None:
        """The validation loss of the last evaluation at or before `step`, if any."""
        val = self.query_one(LossChart).val
        i = bisect.bisect_right(val, (step, float("inf")))
        return val[i - 1][1] if i else None

    def load(self, events: Iterable[Event]) -> None:
        """A run's history, in place of what was shown (a resumed run's record is cut back): shown at once."""
        self.query_one(TrainingStats).clear()
        self.query_one(LossChart).clear()
        self.query_one(SampleFeed).clear()
        self.samples.clear()
        self.loads += 1
        for event in events:
            self.add(event)
        self.show(now=True)

    def show(self, now: bool = False) -> None:
        """Redraw the figures, and the chart if it changed and a while has passed."""
        self.query_one(TrainingStats).render_figures()
        t = time.monotonic()
        if self._chart_dirty and (now or t - self._last_chart >= CHART_INTERVAL):
            self.query_one(LossChart).draw()
            self._chart_dirty = False
            self._last_chart = t
