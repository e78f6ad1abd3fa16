"""One step of the model laid open (ctrl+l in the playground): the lesson's figure for the real model.

At the character under the playground's cursor, the step that reads it: the character and its id,
each layer's named vectors (an LSTM's gates i, f, g, o, its cell state and h; a GRU's r, z, n and h;
the min cells' gates and candidate) as strips on the activation scale, and the top scores and
probabilities of the next character, with the one that actually came next in green. `left` and
`right` move through the text.

It runs its own NumPy stepper (`onestep.Walk`) on the weights the playground uses, in a thread
worker; the playground's generation engine is never touched.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from rnn_tui.inference import Stepper
from rnn_tui.onestep import OneStep, Walk
from rnn_tui.session import Weights
from rnn_tui.tui.actions import STEP, bindings
from rnn_tui.tui.widgets.lesson.figure import TARGET
from rnn_tui.tui.widgets.lesson.look import char_label, score_style
from rnn_tui.tui.widgets.lesson.model_step import ModelStep, model_step_text, unit_text
from rnn_tui.tui.widgets.neurons.legend import legend_text

CONTEXT = 24  # characters of the text shown before the one read
POINT = Text("Point at a strip to read its unit: every part of it, in numbers", style="dim")
PROGRESS_EVERY = 0.1  # seconds between reports while a long text is read
EXPORT_WIDTH = 100  # cells: the exported figure's strips wrap at this width (export.save_all's for a text)


@dataclass
class Opened(Message):
    step: OneStep


@dataclass
class Reading(Message):
    """The text before the chosen character is being read: `reached` characters of `index`."""

    index: int
    reached: int


class StepScreen(Screen):
    SCOPE = STEP
    BINDINGS = bindings(SCOPE)

    def __init__(self, weights: Weights, text: str, index: int) -> None:
        super().__init__()
        self.weights, self.text = weights, text
        self.index = min(max(0, index), len(text) - 1)
        self.step: OneStep | None = None
        self.pointed: tuple[int, int, str] | None = None  # the unit the mouse read last: (layer, unit, part)
        self._walk: Walk | None = None
        self._lock = threading.Lock()  # one worker at a time walks the text

    def compose(self) -> ComposeResult:
        yield Static(id="step-title")
        yield Static(id="step-context")
        with VerticalScroll(id="step-body"):
            yield ModelStep(id="step-figure")
        yield Static(POINT, id="step-unit")
        yield Static(id="step-legend")
        yield Footer()

    def on_mount(self) -> None:
        cs, dark = self.app.console.color_system, self.app.current_theme.dark
        self.query_one("#step-title", Static).update(self.title_text())
        self.query_one("#step-legend", Static).update(self.legend(cs, dark))
        self.query_one("#step-body").focus()
        self._show_context()
        self._open(self.index)

    def title_text(self) -> Text:
        w = self.weights
        title = Text("One step of the model", style="bold")
        title.append(f"  {w.config.summary()}, weights of step {w.step:,}  ·  ctrl+e saves it")
        return title

    @staticmethod
    def legend(color_system: str | None, dark: bool) -> Text:
        text = legend_text(color_system, dark, "clipped to ±1; range on the right")
        text.append("\nscores: ")
        text.append(" came next ", style=score_style(0.7, True, color_system))
        text.append(" ")
        text.append(" others ", style=score_style(0.7, False, color_system))
        text.append(" brighter = more probable", style="dim")
        return text

    def context(self, index: int | None = None) -> Text:
        """Where the step at `index` (default: the chosen one) is: the text before the character read, the
        character, and what came next."""
        i, text = self.index if index is None else index, self.text
        line = Text(f"char {i + 1:,} of {len(text):,}  ", style="bold")
        if i > CONTEXT:
            line.append("…", style="dim")
        line.append("".join(char_label(c) for c in text[max(0, i - CONTEXT) : i]), style="dim")
        line.append(char_label(text[i]), style="bold reverse")
        if i + 1 < len(text):
            line.append(char_label(text[i + 1]), style=TARGET)
            line.append("".join(char_label(c) for c in text[i + 2 : i + 2 + CONTEXT // 2]), style="dim")
        line.append("   reads ")
        line.append(char_label(text[i]), style="bold reverse")
        line.append(" → ")
        line.append(char_label(text[i + 1]) if i + 1 < len(text) else "(the end)", style=TARGET)
        return line

    def _show_context(self, status: str = "") -> None:
        line = self.context()
        if status:
            line.append(f"  {status}", style="italic")
        self.query_one("#step-context", Static).update(line)

    @work(thread=True, exclusive=True, group="step")
    def _open(self, index: int) -> None:
        worker = get_current_worker()
        with self._lock:
            if self._walk is None:
                w = self.weights
                self._walk = Walk(Stepper(w.config, w.tensors), w.vocab, self.text)
            last = time.perf_counter()
            for reached in self._walk.reading(index):
                if worker.is_cancelled:  # a newer move: it carries on from what is read
                    return
                if time.perf_counter() - last >= PROGRESS_EVERY:
                    self.post_message(Reading(index, reached))
                    last = time.perf_counter()
            if worker.is_cancelled:
                return
            step = self._walk.at(index)
        self.post_message(Opened(step))

    @on(Reading)
    def _reading(self, message: Reading) -> None:
        if message.index == self.index:
            self._show_context(f"reading the text: {message.reached:,} of {message.index:,} characters")

    @on(Opened)
    def _opened(self, message: Opened) -> None:
        if message.step.index != self.index:  # a newer move is on its way
            return
        self.step = message.step
        self._show_context()
        self.query_one(ModelStep).show(message.step, self.weights)
        if self.pointed is not None:
            self._show_unit(*self.pointed)

    @on(ModelStep.Pointed)
    def _point(self, message: ModelStep.Pointed) -> None:
        self._show_unit(message.layer, message.unit, message.key)

    def _show_unit(self, layer: int, unit: int, key: str) -> None:
        """Every part of the unit pointed at, in numbers (the same unit again after a move)."""
        self.pointed = (layer, unit, key)
        if self.step is not None:
            self.query_one("#step-unit", Static).update(unit_text(self.step, self.weights, layer, unit, key))

    def action_move(self, delta: int) -> None:
        self.action_move_to(min(max(0, self.index + delta), len(self.text) - 1))

    def action_move_to(self, index: int) -> None:
        index %= len(self.text)
        if index == self.index and self.step is not None:
            return
        self.index = index
        self._show_context("…")
        self._open(index)

    def export_view(self) -> tuple[Text, Text, str]:
        """The step laid open, with where it is and the legend."""
        if self.step is None:
            body = self.context()
        else:
            body = Text("\n\n").join(
                [self.context(self.step.index), model_step_text(self.step, self.weights, EXPORT_WIDTH)]
            )
        legend = Text("\n").join([self.legend("truecolor", True), self.title_text()])
        return body, legend, "rnn-tui one step"
