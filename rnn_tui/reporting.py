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

from rnn_tui.config import ModelConfig
from rnn_tui.events import CheckpointSaved, Evaluation, Event, Finished, Notice, Progress, RunStarted, Sample
from rnn_tui.humanize import duration

PLAIN_EVERY = 5.0  # seconds between progress lines when piped


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
    """Plain lines: for logs and pipes. Run facts and the summary go to stderr, events to stdout."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False, markup=False, soft_wrap=True)
        self.max_steps: int | None = None
        self.run_dir = ""
        self.val: float | None = None
        self._last = 0.0

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def on_event(self, event: Event) -> None:
        match event:
            case RunStarted():
                self.started(event)
            case Progress():
                self.on_progress(event)
            case Evaluation():
                self.val = event.val_loss
                best = " (best)" if event.is_best else f" (best {event.best_val_loss:.4f})"
                self.line(
                    f"eval  step {event.step:,}: val loss {event.val_loss:.4f}{best}, "
                    f"{event.val_loss / math.log(2):.3f} bits/char"
                )
            case Sample():
                self.line(f"sample at step {event.step:,} (temperature {event.temperature}):", style="bold")
                self.line(event.text, style="dim")
            case CheckpointSaved():
                self.line(
                    f"saved {'best ' if event.best else ''}checkpoint at step {event.step:,}: {event.path}", "dim"
                )
            case Notice():
                self.line(f"{event.level}: {event.message}", style="yellow")
            case Finished():
                self.finished(event)

    def started(self, event: RunStarted) -> None:
        self.max_steps = event.train.get("max_steps")
        self.run_dir = event.run_dir
        resumed = f", resumed at step {event.step:,}" if event.resumed else ""
        model = ModelConfig.from_dict(event.model)
        c = event.corpus
        print(
            f"rnn-tui: run {event.run_dir}{resumed}\n"
            f"rnn-tui: corpus {c.get('name')}: {c.get('chars', 0):,} chars, {model.vocab_size} symbols\n"
            f"rnn-tui: model {model.summary()}, {event.params:,} parameters, on {event.device}",
            file=sys.stderr,
        )

    def on_progress(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self._last >= PLAIN_EVERY:
            self._last = now
            self.line(progress_line(p, self.val, self.max_steps))

    def line(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style))

    def finished(self, done: Finished) -> None:
        best = f"{done.best_val_loss:.4f}" if done.best_val_loss is not None else "-"
        print(
            f"rnn-tui: done ({done.reason}) at step {done.step:,} after {duration(done.elapsed)}; "
            f"best val loss {best}\nrnn-tui: sample it with: rnn-tui sample {self.run_dir}",
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
    """One JSON object per event on stdout; the run facts and summary still go to stderr."""

    def on_event(self, event: Event) -> None:
        sys.stdout.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        if isinstance(event, RunStarted | Finished):
            super().on_event(event)


def reporter_for(json_lines: bool) -> Reporter:
    if json_lines:
        return JsonReporter()
    console = Console(highlight=False, markup=False, soft_wrap=True)
    return LiveReporter(console) if console.is_terminal else Reporter(console)
