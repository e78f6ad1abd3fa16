"""The lesson's loss (mean cross-entropy per step, in nats) against the update."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from rnn_tui.tui.widgets.plot import downsample


class LossCurve(PlotextPlot):
    def show(self, losses: list[float], current: float) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"loss {current:.3f}")
        xs, ys = zip(*downsample([*enumerate(losses), (len(losses), current)]), strict=True)
        plt.plot(xs, ys, color="blue", marker="braille")
        plt.xticks([0, len(losses)], ["0", f"{len(losses):,}"])
        plt.xlim(0, max(len(losses), 1))
        plt.ylim(0, None)
        self.refresh()
