"""What the charts share: thinning a curve to what is drawn, and axes labelled at round values."""

from __future__ import annotations

import math

from textual.app import RenderResult
from textual_plotext import PlotextPlot

MAX_POINTS = 120  # drawn


def downsample(points: list[tuple[int, float]], n: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most `n` points: the mean of equal-sized buckets, always keeping the newest point."""
    if len(points) <= n:
        return [(float(s), float(v)) for s, v in points]
    size = len(points) / n
    out = []
    for b in range(n):
        bucket = points[int(b * size) : max(int((b + 1) * size), int(b * size) + 1)]
        out.append((sum(s for s, _ in bucket) / len(bucket), sum(v for _, v in bucket) / len(bucket)))
    out[-1] = (float(points[-1][0]), float(points[-1][1]))
    return out


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round values inside [lo, hi], 1, 2 or 5 times a power of ten apart, as many as fit in `most`: an axis's
    ticks (plotext's own divide the range evenly, so a step axis read 10.0, 132.5, 255.0...)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    power = 10.0 ** math.floor(math.log10((hi - lo) / most))
    for gap in (m * power * 10**k for k in range(3) for m in (1, 2, 5)):
        first = math.ceil(lo / gap - 1e-9) * gap
        count = int((hi - first) / gap + 1e-9) + 1
        if count <= most:
            return [round(first + k * gap, 12) for k in range(count)]
    return [lo, hi]


def tick_labels(ticks: list[float]) -> list[str]:
    """The ticks written with the decimals their spacing needs; whole numbers from 10,000 on in k or M."""
    if len(ticks) < 2:
        return [f"{t:.4g}" for t in ticks]  # one point: no spacing to go by
    top = max(abs(t) for t in ticks)
    gap = ticks[1] - ticks[0]
    scale, suffix = 1.0, ""
    if top >= 10_000 and gap >= 1:
        scale, suffix = (1e6, "M") if top >= 10_000_000 else (1e3, "k")
    decimals = max(0, -math.floor(math.log10(gap / scale) + 1e-9))
    return [f"{t / scale:,.{decimals}f}{suffix}" for t in ticks]


class RoundTicksPlot(PlotextPlot):
    """A plot whose axes are labelled at round values, as many as its size leaves room for (a label about every
    9 columns and every 3 rows): worked out as it renders, since a chart on a hidden tab is drawn at size 0."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._span: tuple[tuple[float, float] | None, tuple[float, float] | None, bool] | None = None

    def round_ticks(self, xs: list[float], y_range: tuple[float, float] | None = None, log_y: bool = False) -> None:
        """Tick the x axis over `xs`, and the y axis over `y_range` (log10 of the values if `log_y`)."""
        self._span = ((min(xs), max(xs)) if xs else None, y_range, log_y)

    def render(self) -> RenderResult:
        if self._span is not None:
            x_range, y_range, log_y = self._span
            if x_range is not None:
                ticks = nice_ticks(*x_range, most=max(2, min(8, self.size.width // 9)))
                self.plt.xticks(ticks, tick_labels(ticks))
            if y_range is not None:
                lo, hi = (10**v for v in y_range) if log_y else y_range
                ticks = nice_ticks(lo, hi, most=max(2, min(8, self.size.height // 3)))
                self.plt.yticks([math.log10(t) for t in ticks] if log_y else ticks, tick_labels(ticks))
        return super().render()
