"""How `rnn-tui train` shows its events: a live rich display in a terminal, plain lines when piped, or JSON lines."""

from __future__ import annotations

import json
import math
import sys
import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from rnn_tui.training import Checkpoint, Done, Eval, Event, Progress, Sample, Trainer, Warning

PLAIN_EVERY = 5.0  # seconds between progress lines when piped


def duration(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def progress_line(p: Progress, val: float | None, max_steps: int | None) -> str:
    step = f"step {p.step:,}" + (f"/{max_steps:,}" if max_steps else "")
    parts = [step, f"epoch {p.epoch}", f"loss {p.loss:.4f}"]
    if val is not None:
        parts.append(f"val {val:.4f}")
    parts += [f"lr {p.lr:.1e}", f"{p.chars_per_s:,.0f} chars/s", f"{duration(p.elapsed)}"]
    if p.eta is not None:
        parts.append(f"ETA {duration(p.eta)}")
    return " | ".join(parts)


class Reporter:
    """Plain lines: for logs and pipes."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False, markup=False, soft_wrap=True)
        self.max_steps: int | None = None
        self.val: float | None = None
        self._last = 0.0

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self, trainer: Trainer) -> None:
        self.max_steps = trainer.cfg.max_steps
        corpus = trainer.corpus
        resumed = f", resumed at step {trainer.step:,}" if trainer.step else ""
        mc = trainer.model_cfg
        print(
            f"rnn-tui: run {trainer.run_dir}{resumed}\n"
            f"rnn-tui: corpus {corpus.name}: {len(corpus):,} chars, {len(trainer.vocab)} symbols\n"
            f"rnn-tui: model {mc.cell} {mc.layers}x{mc.hidden}, {trainer.params:,} parameters, "
            f"on {trainer.describe_device()}",
            file=sys.stderr,
        )
        for note in corpus.notes:
            print(f"rnn-tui: note: {note}", file=sys.stderr)

    def on_event(self, event: Event) -> None:
        if isinstance(event, Progress):
            self.on_progress(event)
        elif isinstance(event, Eval):
            self.val = event.val_loss
            best = " (best)" if event.is_best else f" (best {event.best_val_loss:.4f})"
            self.line(
                f"eval  step {event.step:,}: val loss {event.val_loss:.4f}{best}, "
                f"{event.val_loss / math.log(2):.3f} bits/char"
            )
        elif isinstance(event, Sample):
            self.line(f"sample at step {event.step:,} (temperature {event.temperature}):", style="bold")
            self.line(event.text, style="dim")
        elif isinstance(event, Checkpoint):
            self.line(
                f"saved {'best ' if event.best else ''}checkpoint at step {event.step:,}: {event.path}", style="dim"
            )
        elif isinstance(event, Warning):
            self.line(f"warning: {event.message}", style="yellow")

    def on_progress(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self._last >= PLAIN_EVERY:
            self._last = now
            self.line(progress_line(p, self.val, self.max_steps))

    def line(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style))

    def finish(self, trainer: Trainer, done: Done) -> None:
        best = f"{done.best_val_loss:.4f}" if done.best_val_loss is not None else "-"
        print(
            f"rnn-tui: done ({done.reason}) at step {done.step:,} after {duration(done.elapsed)}; "
            f"best val loss {best}\nrnn-tui: sample it with: rnn-tui sample {trainer.run_dir}",
            file=sys.stderr,
        )


class LiveReporter(Reporter):
    """A live status line and bar in a terminal, with events printed above it."""

    def __enter__(self) -> LiveReporter:
        self._progress: Progress | None = None
        self._live = Live(Text("starting…"), console=self.console, refresh_per_second=4, transient=True)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)

    def on_progress(self, p: Progress) -> None:
        self._progress = p
        self._live.update(self._render())

    def _render(self) -> Group | Text:
        p = self._progress
        line = Text(progress_line(p, self.val, self.max_steps), style="bold")
        if p.fraction is None:
            return line
        return Group(ProgressBar(total=1.0, completed=p.fraction, width=60), line)


class JsonReporter(Reporter):
    """One JSON object per event on stdout."""

    def on_event(self, event: Event) -> None:
        sys.stdout.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()


def reporter_for(json_lines: bool) -> Reporter:
    if json_lines:
        return JsonReporter()
    console = Console(highlight=False, markup=False, soft_wrap=True)
    return LiveReporter(console) if console.is_terminal else Reporter(console)
