"""Train and validation loss against step, downsampled so drawing stays cheap as history grows."""

from __future__ import annotations

from textual_plotext import PlotextPlot

MAX_POINTS = 120  # drawn
MAX_KEPT = 4000  # kept per curve: older points are thinned out evenly, so a long run stays cheap


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


class LossChart(PlotextPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []

    def add(self, kind: str, step: int, value: float) -> None:
        points = self.train if kind == "train" else self.val
        points.append((step, value))
        if len(points) > MAX_KEPT:
            del points[1:-1:2]  # keeping the first and the newest

    def clear(self) -> None:
        self.train.clear()
        self.val.clear()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("loss (nats/char)")
        for points, label, color in ((self.train, "train", "blue"), (self.val, "val", "orange")):
            if points:
                xs, ys = zip(*downsample(points), strict=True)
                plt.plot(xs, ys, label=label, color=color, marker="braille")
        self.refresh()
