"""Several runs' training and validation curves on one chart, by step or by training time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rnn_tui.events import Evaluation, Event, Progress, RunStarted
from rnn_tui.tui.widgets.plot import RoundTicksPlot, downsample

Point = tuple[int, float, float]  # step, seconds of training, loss


@dataclass
class Curves:
    """One run's losses, from its record."""

    name: str
    train: list[Point] = field(default_factory=list)
    val: list[Point] = field(default_factory=list)
    settings: dict = field(default_factory=dict)  # the run's corpus, model and training settings, from its start

    @classmethod
    def of(cls, name: str, events: Iterable[Event]) -> Curves:
        curves = cls(name)
        for e in events:
            if isinstance(e, RunStarted):  # the last start: a resume may change settings
                curves.settings = {"corpus": e.corpus.get("name"), **e.model, **e.train}
            elif isinstance(e, Progress):
                curves.train.append((e.step, e.elapsed, e.loss))
            elif isinstance(e, Evaluation):
                curves.val.append((e.step, e.elapsed, e.val_loss))
        return curves


def settings_diff(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """The settings whose values differ between two runs: (name, a's, b's), in a's order, then b's new ones.
    A setting one run lacks shows as None."""
    names = [*a, *(k for k in b if k not in a)]
    return [(k, a.get(k), b.get(k)) for k in names if a.get(k) != b.get(k)]


class CompareChart(RoundTicksPlot):
    """Each run in its own colour: training loss as a thin line, validation loss as a bold one."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runs: list[tuple[Curves, str]] = []  # the curves and their plotext colour
        self.by_time = False
        self.empty_title = "mark runs to compare their curves"

    def show(self, runs: list[tuple[Curves, str]]) -> None:
        self.runs = runs
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not self.runs:
            plt.title(self.empty_title)
            self.round_ticks([])
            self.refresh()
            return
        plt.title(f"loss (nats/char) by {'training time' if self.by_time else 'step'}: train thin, val bold")
        plt.xlabel("minutes of training" if self.by_time else "step")
        xs_drawn: list[float] = []
        ys_drawn: list[float] = []
        for curves, colour in self.runs:
            for points, kind, marker in ((curves.train, "train", "braille"), (curves.val, "val", "hd")):
                xy = [(seconds / 60 if self.by_time else step, loss) for step, seconds, loss in points]
                if xy:
                    xs, ys = zip(*downsample(xy), strict=True)
                    plt.plot(xs, ys, label=f"{curves.name} {kind}", color=colour, marker=marker)
                    xs_drawn += xs
                    ys_drawn += ys
        self.round_ticks(xs_drawn, (min(ys_drawn), max(ys_drawn)) if ys_drawn else None)
        self.refresh()
