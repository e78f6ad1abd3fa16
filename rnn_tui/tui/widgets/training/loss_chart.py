"""Train and validation loss, as the run dashboards draw it.

The training loss is drawn smoothed (an exponential moving average with TensorBoard's debiasing)
over its raw curve, faint; the y range ignores outliers, so one diverged step does not flatten
the curve; the y axis can be logarithmic; the x axis is steps, minutes of training or characters
trained on. Keys (the action table's CHART rows) and the mouse wheel zoom; a cursor reads out
(step, loss) and the validation loss there. Everything is downsampled, so drawing stays cheap.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

from textual import events

from rnn_tui.tui.actions import CHART, bindings
from rnn_tui.tui.widgets.plot import RoundTicksPlot, downsample

MAX_KEPT = 4000  # kept per curve: older points are thinned out evenly, so a long run stays cheap
SMOOTHINGS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)  # the EMA's weights the keys step through
SMOOTHING = 0.6  # the first (TensorBoard's)
AXES = ("step", "time", "chars")
OUTLIER_FENCE = 3.0  # interquartile ranges beyond the quartiles: what lies further is an outlier
MIN_SPAN = 4  # the fewest points a zoomed view shows
RAW, SMOOTH, VAL, CURSOR = (75, 85, 115), (90, 160, 255), "orange", (130, 130, 130)


class Ema:
    """TensorBoard's smoothing: an exponential moving average, debiased (divided by 1 - weight**n after n
    points), so that the start is not pulled towards zero. Non-finite values are passed through, unsmoothed.
    `values` holds the smoothed curve so far; `extend` adds to it."""

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.values: list[float] = []
        self._last, self._n = 0.0, 0

    def extend(self, values: list[float]) -> list[float]:
        w = self.weight
        for v in values:
            if not math.isfinite(v):
                self.values.append(v)
                continue
            self._n += 1
            self._last = self._last * w + (1 - w) * v
            self.values.append(self._last / (1 - w**self._n) if w else v)
        return self.values


def ema(values: list[float], weight: float) -> list[float]:
    """The smoothed curve of `values` (see Ema)."""
    return Ema(weight).extend(values)


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    i = (len(sorted_values) - 1) * q
    lo = math.floor(i)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (i - lo)


def robust_range(curves: list[list[float]], pad: float = 0.05) -> tuple[float, float] | None:
    """The y range to draw the curves in, padded by `pad` of it on each side; None without finite values.

    A point that stands out from its neighbours (the two on each side, in its own curve) by more than
    OUTLIER_FENCE interquartile ranges of all the values is a spike, and left out: one diverged step does
    not flatten the curve, while a steep start (each point near its neighbours) stays in. A curve's first
    point always counts: the start of training is high, not wrong."""
    curves = [[v for v in c if math.isfinite(v)] for c in curves]
    everything = sorted(v for c in curves for v in c)
    if not everything:
        return None
    q1, median, q3 = (quantile(everything, q) for q in (0.25, 0.5, 0.75))
    fence = OUTLIER_FENCE * max(q3 - q1, 0.01 * abs(median))
    kept = []
    for c in curves:
        for i, v in enumerate(c):
            around = sorted(c[max(0, i - 2) : i] + c[i + 1 : i + 3])
            if i == 0 or not around or abs(v - quantile(around, 0.5)) <= fence:
                kept.append(v)
    lo, hi = min(kept), max(kept)
    margin = (hi - lo) * pad or max(abs(hi) * pad, 1e-3)
    return lo - margin, hi + margin


class LossChart(RoundTicksPlot):
    """`train` and `val` are (step, loss) in step order; `when` gives each step's (seconds, characters)."""

    SCOPE = CHART
    BINDINGS = bindings(SCOPE)
    can_focus = True

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self.when: dict[int, tuple[float, float | None]] = {}
        self.smoothing = SMOOTHING
        self.log_y = False
        self.axis = "step"
        self.view: tuple[int, int] | None = None  # the steps shown, or None for all of them
        self.cursor: int | None = None  # the step under the cursor, or None: the newest point
        self._ema = Ema(self.smoothing)  # the training curve smoothed so far, extended as points come

    def add(self, kind: str, step: int, value: float, seconds: float | None = None, chars: int | None = None) -> None:
        points = self.train if kind == "train" else self.val
        points.append((step, value))
        if seconds is not None and (chars is not None or step not in self.when):  # a progress point's, first
            self.when[step] = (seconds, float(chars) if chars is not None else None)
        if len(points) > MAX_KEPT:
            del points[1:-1:2]  # keeping the first and the newest
            self._ema = Ema(self.smoothing)  # smoothed again from the start
            keep = {s for s, _ in self.train} | {s for s, _ in self.val}
            self.when = {s: w for s, w in self.when.items() if s in keep}

    def clear(self) -> None:
        self.train.clear()
        self.val.clear()
        self.when.clear()
        self.view = self.cursor = None
        self._ema = Ema(self.smoothing)

    # ------------------------------------------------------------ what is shown

    def x_axis(self) -> Callable[[int], float | None]:
        """Where a step is on the x axis: the step, minutes of training, or millions of characters (None: unknown)."""
        if self.axis == "step":
            return float
        time = self.axis == "time"
        steps = sorted(s for s, (_, chars) in self.when.items() if time or chars is not None)

        def x(step: int) -> float | None:
            if not steps:
                return None
            near = steps[min(bisect.bisect_left(steps, step), len(steps) - 1)]  # this step's, or the next one's
            seconds, chars = self.when[near]
            if time:
                return seconds / 60
            return chars * step / near / 1e6 if near else chars / 1e6  # at the rate of the nearest count

        return x

    def x_of(self, step: int) -> float | None:
        return self.x_axis()(step)

    def axes(self) -> tuple[str, ...]:
        """The x axes this run's record allows: time and characters need progress points that carry them."""
        known = self.when.values()
        return tuple(a for a in AXES if a == "step" or (known and (a == "time" or any(c for _, c in known))))

    def x_label(self) -> str:
        return {"step": "step", "time": "minutes", "chars": "M chars"}[self.axis]

    def visible(self, points: list[tuple[int, float]]) -> list[tuple[int, float]]:
        if self.view is None:
            return points
        lo, hi = self.view
        return points[bisect.bisect_left(points, (lo, -math.inf)) : bisect.bisect_right(points, (hi, math.inf))]

    def readout(self, smoothed: list[float] | None = None) -> str:
        """(step, loss) at the cursor: the raw and the smoothed training loss (`smoothed`: the whole curve's, if
        already computed), and the last validation loss."""
        if not self.train:
            return "loss (nats/char): none yet"
        steps = [s for s, _ in self.train]
        at = steps[-1] if self.cursor is None else self.cursor
        i = max(0, min(bisect.bisect_left(steps, at), len(steps) - 1))
        if i and abs(steps[i - 1] - at) <= abs(steps[i] - at):
            i -= 1
        step, loss = self.train[i]
        text = f"step {step:,}: {loss:.4f}"
        if self.smoothing:
            value = smoothed[i] if smoothed else ema([v for _, v in self.train[: i + 1]], self.smoothing)[-1]
            text += f" (smoothed {value:.4f})"
        j = bisect.bisect_right(self.val, (step, math.inf))
        if j:
            text += f" · val {self.val[j - 1][1]:.4f} @ {self.val[j - 1][0]:,}"
        return text

    def settings(self) -> str:
        """The x axis's name and how the chart is drawn, e.g. "step · smoothing 0.8 · log y · zoomed" (short: plotext
        drops a label wider than the chart)."""
        zoom = "" if self.view is None else " · zoomed"
        scale = " · log y" if self.log_y else ""
        return f"{self.x_label()} · smoothing {self.smoothing:g}{scale}{zoom}"

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if self._ema.weight != self.smoothing:
            self._ema = Ema(self.smoothing)
        values = self._ema.extend([v for _, v in self.train[len(self._ema.values) :]])
        self.border_title = self.readout(values)
        plt.xlabel(self.settings())
        y = (lambda v: math.log10(v) if v > 0 else math.nan) if self.log_y else (lambda v: v)
        smoothed = list(zip((s for s, _ in self.train), values, strict=True))
        drawn: list[list[float]] = []
        xs_drawn: list[float] = []
        curves = [(self.train, RAW if self.smoothing else SMOOTH, "train" if not self.smoothing else "")]
        if self.smoothing:
            curves.append((smoothed, SMOOTH, "train"))
        curves.append((self.val, VAL, "val"))
        x_of = self.x_axis()
        for points, colour, label in curves:
            xy = [(x_of(s), y(v)) for s, v in self.visible(points)]
            xy = [(x, v) for x, v in xy if x is not None and math.isfinite(v)]
            if xy:
                xs, ys = zip(*downsample(xy), strict=True)
                plt.plot(xs, ys, label=label or None, color=colour, marker="braille")
                drawn.append(list(ys))  # the y range is that of what is drawn
                xs_drawn += xs
        limits = robust_range(drawn)
        if limits:
            plt.ylim(*limits)
        self.round_ticks(xs_drawn, limits, self.log_y)
        if self.cursor is not None and (x := x_of(self.cursor)) is not None:
            plt.vline(x, CURSOR)
        self.refresh()

    # ------------------------------------------------------------ keys and the mouse

    def _steps(self) -> list[int]:
        return [s for s, _ in self.train]

    def action_smoothing(self, delta: int) -> None:
        i = min(range(len(SMOOTHINGS)), key=lambda k: abs(SMOOTHINGS[k] - self.smoothing))
        self.smoothing = SMOOTHINGS[max(0, min(len(SMOOTHINGS) - 1, i + delta))]
        self.draw()

    def action_toggle_log(self) -> None:
        self.log_y = not self.log_y
        self.draw()

    def action_next_axis(self) -> None:
        """Steps, then minutes, then characters (where the record has them), then steps again."""
        axes = self.axes()
        self.axis = axes[(axes.index(self.axis) + 1) % len(axes)] if self.axis in axes else "step"
        self.draw()

    def action_zoom(self, factor: float, around: int | None = None) -> None:
        """Show `factor` times the steps shown now (below 1: zoom in), around a step (the cursor's, or the newest)."""
        steps = self._steps()
        if len(steps) < 2:
            return
        lo, hi = self.view or (steps[0], steps[-1])
        centre = around if around is not None else self.cursor if self.cursor is not None else hi
        first, last = steps[0], steps[-1]
        width = min(last - first, max((hi - lo) * factor, (last - first) * MIN_SPAN / len(steps)))
        lo = round(max(first, min(centre - width / 2, last - width)))  # the window moves to stay inside the run
        hi = round(min(last, lo + width))
        self.view = None if (lo, hi) == (first, last) else (lo, hi)
        self.draw()

    def action_reset_zoom(self) -> None:
        self.view = self.cursor = None
        self.draw()

    def action_move(self, points: int) -> None:
        """Move the cursor by points of the training curve (and the zoomed view with it, if it leaves it)."""
        steps = self._steps()
        if not steps:
            return
        at = steps[-1] if self.cursor is None else self.cursor
        i = max(0, min(len(steps) - 1, bisect.bisect_left(steps, at) + points))
        self.cursor = steps[i]
        if self.view and not self.view[0] <= self.cursor <= self.view[1]:
            width = self.view[1] - self.view[0]
            lo = max(steps[0], min(self.cursor - width // 2, steps[-1] - width))
            self.view = (lo, lo + width)
        self.draw()

    def action_follow(self) -> None:
        """The cursor back to the newest point."""
        self.cursor = None
        self.draw()

    def step_at(self, x: int) -> int | None:
        """The step under column `x` of the widget (roughly: the plot's margins are not counted)."""
        steps = self._steps()
        if not steps:
            return None
        lo, hi = self.view or (steps[0], steps[-1])
        return round(lo + (hi - lo) * max(0.0, min(1.0, x / max(1, self.size.width - 1))))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.action_zoom(0.5, self.step_at(event.x))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.action_zoom(2.0, self.step_at(event.x))

    def on_click(self, event: events.Click) -> None:
        step = self.step_at(event.x)
        if step is not None:
            self.cursor = step
            self.action_move(0)
