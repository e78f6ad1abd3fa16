"""`rnn-tui lesson [WORD]`: the post's "hello" figure, live. A small app of its own; it needs no run.

The lesson's model (`rnn_tui.lesson`) is a few small NumPy arrays, so an update takes well under
a millisecond and runs on the UI thread: `space` takes one, `enter` runs them on a timer at the
chosen speed, and every widget is redrawn from the lesson after each tick.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from rnn_tui.errors import UserError
from rnn_tui.export import save_all
from rnn_tui.lesson import CELLS, Lesson
from rnn_tui.tui.actions import LESSON, LESSON_APP, bindings
from rnn_tui.tui.widgets.lesson.figure import Figure, figure_text
from rnn_tui.tui.widgets.lesson.look import char_label, score_style
from rnn_tui.tui.widgets.lesson.loss_curve import LossCurve
from rnn_tui.tui.widgets.lesson.step_panel import StepPanel, step_text
from rnn_tui.tui.widgets.lesson.weights import Weights, weights_text

SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200)  # updates a second while running
DEFAULT_SPEED = SPEEDS.index(5)  # slow enough to see the targets win one by one
TICK = 0.05  # seconds: at most 20 redraws a second, several updates a tick when faster
LOSS_WIDTH = 18  # the loss curve's least width, in cells
EXPORTS = Path("rnn-tui-exports")  # where ctrl+e saves the figure (as the main app does)


def legend(color_system: str | None = "truecolor") -> Text:
    """What the colours mean."""
    text = Text("scores: ")
    text.append(" target ", style=score_style(0.7, True, color_system))
    text.append(" ")
    text.append(" others ", style=score_style(0.7, False, color_system))
    text.append(" brighter = more probable · values: blue −, red + · lit: what flows into the chosen step")
    return text


class LessonScreen(Screen):
    CSS_PATH = "../lesson.tcss"
    SCOPE = LESSON
    BINDINGS = bindings(SCOPE)

    def __init__(self, lesson: Lesson) -> None:
        super().__init__()
        self.lesson = lesson
        self.selected = 0
        self.speed = DEFAULT_SPEED
        self.running = False
        self._timer: Timer | None = None
        self._all_won_at: int | None = None
        self._drawn_at = self._draw_cost = 0.0  # when the widgets were last drawn, and how long that took

    def compose(self) -> ComposeResult:
        yield Static(id="lesson-status")
        with VerticalScroll(id="lesson-body", can_focus=False):
            with Horizontal(id="lesson-top"):
                yield Figure(id="figure")
                yield LossCurve(id="loss")
            with Horizontal(id="lesson-bottom"):
                yield StepPanel(id="step-panel")
                yield Weights(id="weights")
            yield Static(id="legend")
        yield Footer(show_command_palette=False)  # room for the lesson's keys at 80 columns

    def on_mount(self) -> None:
        self.query_one("#legend", Static).update(legend(self.app.console.color_system))
        self.redraw()

    # ------------------------------------------------------------ drawing

    def redraw(self) -> None:
        start = time.monotonic()
        lesson = self.lesson
        steps = lesson.steps
        self.selected = min(self.selected, len(steps) - 1)
        if self._all_won_at is None and lesson.wins() == len(steps):
            self._all_won_at = lesson.updates
        self.query_one(Figure).show(steps, lesson.vocab, self.selected)
        self.query_one(LossCurve).show(lesson.losses, lesson.loss)
        self.query_one(StepPanel).show(lesson.cell, steps, self.selected)
        self.query_one(Weights).show(lesson, self.selected)
        self.query_one("#lesson-status", Static).update(self.status(self.size.width - 2))
        self._fit(self.size.width)
        self._drawn_at = time.monotonic()
        self._draw_cost = self._drawn_at - start

    def on_resize(self) -> None:
        self.redraw()

    def _fit(self, width: int) -> None:
        """The figure as wide as it needs (scrolling when the loss curve would get too little room), the loss
        curve as tall; the chosen step and the weights side by side when they fit, else one under the other."""
        figure, loss = self.query_one(Figure), self.query_one(LossCurve)
        room = max(width - LOSS_WIDTH - 1, 0)  # the body's scroll bar
        figure.styles.width = figure.width_for(room)
        figure.styles.height = loss.styles.height = figure.virtual_size.height + (figure.virtual_size.width > room)
        step, weights = self.query_one(StepPanel), self.query_one(Weights)
        side = sum(w.get_content_width(self.size, self.size) + w.styles.padding.width for w in (step, weights))
        self.query_one("#lesson-bottom").set_class(side > width - 1, "-stacked")

    def status(self, width: int) -> Text:
        """The word, the model, the update and how many targets win; what does not fit in `width` is left out."""
        lesson = self.lesson
        wins, total = lesson.wins(), len(lesson.steps)
        won = Text(f"{wins} of {total} targets win", style="bold green" if wins == total else "bold red")
        state = Text(
            f"▶ {SPEEDS[self.speed]}/s" if self.running else "paused", style="reverse" if self.running else "dim"
        )
        parts = [  # (text, whether it may be left out), in the order shown
            (Text("".join(char_label(c) for c in lesson.word), style="bold"), False),
            (Text(f"{lesson.cell.upper()} ×{lesson.hidden}"), False),
            (Text(f"seed {lesson.seed}"), True),
            (Text(f"lr {lesson.lr:g}"), True),
            (Text(f"update {lesson.updates:,}"), False),
            (won, False),
            (Text(f"all since {self._all_won_at:,}", style="dim") if self._all_won_at is not None else Text(), True),
            (state, False),
        ]
        parts = [(text, optional) for text, optional in parts if text.plain]
        while sum(t.cell_len + 3 for t, _ in parts) > width and any(optional for _, optional in parts):
            parts.remove(next(p for p in reversed(parts) if p[1]))
        return Text(" · ").join(t for t, _ in parts)

    # ------------------------------------------------------------ actions

    def action_update(self) -> None:
        self.lesson.update()
        self.redraw()

    def action_run(self) -> None:
        self.running = not self.running
        self._schedule()
        self.redraw()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.running:
            self._timer = self.set_interval(max(TICK, 1 / SPEEDS[self.speed]), self._tick)

    def _tick(self) -> None:
        """The updates due in a tick, within half a tick's time; a redraw, unless the last one was too
        recent for its cost (a long word with many hidden units), so that keys are still answered."""
        deadline = time.monotonic() + TICK / 2
        for _ in range(max(1, round(SPEEDS[self.speed] * TICK))):
            self.lesson.update()
            if time.monotonic() > deadline:
                break
        if time.monotonic() - self._drawn_at >= 2 * self._draw_cost:
            self.redraw()

    def action_speed(self, delta: int) -> None:
        self.speed = min(max(self.speed + delta, 0), len(SPEEDS) - 1)
        self._schedule()
        self.redraw()

    def action_restart(self) -> None:
        self._start(self.lesson.restarted(self.lesson.seed + 1))

    def action_cell(self) -> None:
        self._start(self.lesson.with_cell(CELLS[(CELLS.index(self.lesson.cell) + 1) % len(CELLS)]))

    def _start(self, lesson: Lesson) -> None:
        self.lesson = lesson
        self._all_won_at = None
        self.redraw()

    def action_choose(self, delta: int) -> None:
        self.action_choose_at(min(max(self.selected + delta, 0), len(self.lesson.steps) - 1))

    def action_choose_at(self, step: int) -> None:
        self.selected = step % len(self.lesson.steps)
        self.redraw()

    @on(Figure.StepClicked)
    def _clicked(self, event: Figure.StepClicked) -> None:
        self.action_choose_at(event.step)

    def export_view(self) -> tuple[Group, Text, str, int]:
        """The figure, the chosen step and the weights; the legend, the title, and the width they need."""
        lesson, t = self.lesson, self.selected
        figure = figure_text(lesson.steps, lesson.vocab, t)
        step, weights = step_text(lesson.cell, lesson.steps, t), weights_text(lesson, t)
        below = Table.grid(padding=(0, 4))
        below.add_row(step, weights)
        title = f"rnn-tui lesson {lesson.word} {lesson.cell}"
        caption = Text(f"{lesson.word!r}, {lesson.cell.upper()} with {lesson.hidden} hidden units, ")
        caption.append(f"after {lesson.updates:,} updates (seed {lesson.seed}, lr {lesson.lr:g}): ")
        caption.append(f"loss {lesson.loss:.3f}")
        key = legend()
        width = max(_width(figure), _width(step) + 4 + _width(weights), _width(caption), _width(key))
        return Group(caption, Text(), figure, Text(), below), key, title, width

    def action_export(self) -> None:
        body, key, title, width = self.export_view()
        try:
            stem = save_all(EXPORTS, body, legend=key, title=title, width=width)
        except UserError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(f"saved {stem}.svg, .html and .txt", title="Export", markup=False)


def _width(text: Text) -> int:
    """The widest line of `text`, in cells."""
    return max(line.cell_len for line in text.split())


class LessonApp(App):
    TITLE = "rnn-tui lesson"
    SCOPE = LESSON_APP
    BINDINGS = bindings(SCOPE)

    def __init__(self, lesson: Lesson) -> None:
        super().__init__()
        self.lesson = lesson

    def on_mount(self) -> None:
        self.push_screen(LessonScreen(self.lesson))  # pushed, so that its CSS_PATH is read


def run_lesson(lesson: Lesson) -> int:
    LessonApp(lesson).run()
    return 0
