"""Live training figures: step, epoch, losses, bits per character, speed, time, progress, and the system line
(the trainer's CPU, threads and memory, this app's memory, the GPU's use)."""

from __future__ import annotations

import math
import time

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from rnn_tui import sysinfo
from rnn_tui.events import Evaluation, Progress
from rnn_tui.humanize import duration

SMOOTHING = 0.9  # exponential moving average of the training loss
APP_RSS_EVERY = 1.0  # seconds between readings of this app's memory


def megabytes(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 10_240 else f"{mb:,.0f} MB"


def system_line(p: Progress | None, app_rss_mb: float | None) -> str:
    """E.g. "trainer cpu 185% · 3 threads · 412 MB   app 180 MB   gpu 87% · 2,310 MB" ("—" where unknown)."""

    def fig(x: float | None, spec: str) -> str:
        return "—" if x is None else format(x, spec)

    trainer = "trainer —"
    if p is not None and (p.cpu_percent, p.threads, p.rss_mb) != (None, None, None):
        cpu, threads = fig(p.cpu_percent, ".0f"), fig(p.threads, "d")
        rss = "—" if p.rss_mb is None else megabytes(p.rss_mb)
        trainer = f"trainer cpu {cpu}% · {threads} thread{'s' * (p.threads != 1)} · {rss}"
    parts = [trainer, f"app {'—' if app_rss_mb is None else megabytes(app_rss_mb)}"]
    if p is not None and (p.gpu_percent is not None or p.gpu_mem_mb is not None):
        memory = "—" if p.gpu_mem_mb is None else megabytes(p.gpu_mem_mb)
        parts.append(f"gpu {fig(p.gpu_percent, '.0f')}% · {memory}")
    return "   ".join(parts)


class TrainingStats(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.progress: Progress | None = None
        self.smoothed: float | None = None
        self.val: float | None = None
        self.best: float | None = None
        self._app_rss: float | None = None
        self._app_rss_at = -math.inf

    def clear(self) -> None:
        self.progress = self.smoothed = self.val = self.best = None

    def compose(self) -> ComposeResult:
        yield Static(id="figures")
        yield Static(id="system")
        yield ProgressBar(total=1.0, show_eta=False, id="budget")

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False
        self.render_figures()

    def record(self, event: Progress | Evaluation) -> None:
        if isinstance(event, Progress):
            self.progress = event
            s = self.smoothed
            self.smoothed = event.loss if s is None else SMOOTHING * s + (1 - SMOOTHING) * event.loss
        else:
            self.val = event.val_loss
            self.best = event.best_val_loss if self.best is None else min(self.best, event.best_val_loss)

    def render_figures(self) -> None:
        p = self.progress
        t = Table.grid(padding=(0, 1), expand=True)
        for _ in range(4):
            t.add_column()

        def fmt(x: float | None, spec: str = ".4f") -> str:
            return "—" if x is None else format(x, spec)

        bits = None if self.smoothed is None else self.smoothed / math.log(2)
        t.add_row("step", f"{p.step:,}" if p else "—", "epoch", str(p.epoch) if p else "—")
        t.add_row("loss", fmt(self.smoothed), "val", fmt(self.val) + (f" (best {self.best:.4f})" if self.best else ""))
        t.add_row("bits/char", fmt(bits, ".3f"), "chars/s", f"{p.chars_per_s:,.0f}" if p else "—")
        eta = f"{duration(p.eta)} left" if p and p.eta is not None else "no budget"
        t.add_row("elapsed", duration(p.elapsed) if p else "—", "ETA", eta if p else "—")
        self.query_one("#figures", Static).update(t, layout=False)
        now = time.monotonic()
        if now - self._app_rss_at >= APP_RSS_EVERY:
            self._app_rss, self._app_rss_at = sysinfo.rss_mb(), now
        self.query_one("#system", Static).update(system_line(p, self._app_rss))
        bar = self.query_one(ProgressBar)
        if p and p.fraction is not None:
            bar.display = True
            bar.update(progress=p.fraction)
