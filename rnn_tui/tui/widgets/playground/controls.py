"""Sampling controls: temperature, seed, length, top-k, top-p, the repetition penalty, word-start, and
follow-training versus frozen weights."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Input, Label, Static

from rnn_tui.config import SampleConfig
from rnn_tui.tui.messages import SettingsChanged
from rnn_tui.tui.widgets.playground.number_input import NumberInput

# The fields, their labels, and how far up and down nudge them.
FIELDS = (
    ("temperature", "temp", 0.1),
    ("seed", "seed", 1),
    ("length", "len", 50),
    ("top_k", "top-k", 1),
    ("top_p", "top-p", 0.05),
    ("repetition_penalty", "penalty", 0.1),
)
FIRST_ROW = 4  # fields on the first row (with which weights); the rest on the second (with word-start)


class Controls(Vertical):
    follow: reactive[bool] = reactive(True)
    live: reactive[bool] = reactive(True)  # False: a saved run, nothing to follow
    weights_step: reactive[int | None] = reactive(None)
    word_start: reactive[bool] = reactive(False, init=False)  # draw at random only at a word's first character

    def __init__(self, settings: SampleConfig | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.initial = settings or SampleConfig()
        self.set_reactive(Controls.word_start, self.initial.draw == "word-start")

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield from self._fields(FIELDS[:FIRST_ROW])
            yield Static(id="follow")
        with Horizontal():
            yield from self._fields(FIELDS[FIRST_ROW:])
            yield Static(self._draw_label(), id="draw")

    def _fields(self, fields: tuple[tuple[str, str, float], ...]) -> ComposeResult:
        for name, label, step in fields:
            yield Label(label)
            yield NumberInput(SampleConfig, name, getattr(self.initial, name), step=step)

    def field(self, name: str) -> NumberInput:
        return self.query_one(f"#{name}", NumberInput)

    def value(self, name: str) -> float | None:
        return self.field(name).number

    def set_value(self, name: str, value: float) -> None:
        self.field(name).set_number(value)

    def nudge(self, name: str, delta: float) -> None:
        current = self.value(name)
        self.set_value(name, (current if current is not None else 0) + delta)

    @property
    def settings(self) -> SampleConfig | None:
        """The settings, or None while a field holds an invalid value."""
        values = {name: self.value(name) for name, _, _ in FIELDS}
        if any(v is None for v in values.values()):
            return None
        return replace(self.initial, **values, draw="word-start" if self.word_start else "every")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        field = event.input
        if isinstance(field, NumberInput):
            problem = field.problem
            field.set_class(problem is not None, "-invalid")
            field.tooltip = problem
        self._show_status()
        if self.settings is not None:
            self.post_message(SettingsChanged())

    def watch_word_start(self) -> None:
        self.query_one("#draw", Static).update(self._draw_label())
        if self.settings is not None:
            self.post_message(SettingsChanged())

    def _draw_label(self) -> Text:
        """Word-start, bold while it is on (ctrl+b)."""
        if self.word_start:
            return Text.assemble(("word-start", "bold"), (" (^b: every character)", "dim"))
        return Text("^b: word-start", style="dim")

    def watch_follow(self) -> None:
        self._show_status()

    def watch_weights_step(self) -> None:
        self._show_status()

    def watch_live(self) -> None:
        self._show_status()

    def _show_status(self) -> None:
        """Which weights the playground uses; or, while a field is invalid, what is wrong with it."""
        if not self.is_mounted:
            return
        problems = [f.problem for f in self.query(NumberInput) if f.problem]
        if problems:
            self.query_one("#follow", Static).update(Text(problems[0], style="bold"), layout=False)
            return
        step = "—" if self.weights_step is None else f"{self.weights_step:,}"
        mode = "saved run at" if not self.live else "following" if self.follow else "frozen at"
        self.query_one("#follow", Static).update(Text(f"{mode} step {step}"), layout=False)
