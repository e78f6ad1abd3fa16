"""Sampling controls: temperature, seed, length, top-k, and follow-training versus frozen weights."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Input, Label, Static

from rnn_tui.tui.messages import SettingsChanged


class NumberInput(Input):
    """A number field: type a value, or nudge it with up and down."""

    BINDINGS = [
        Binding("up", "nudge(1)", "More", show=False),
        Binding("down", "nudge(-1)", "Less", show=False),
    ]

    def __init__(self, value: float, *, step: float, low: float, high: float, integer: bool, id: str) -> None:
        self.step, self.low, self.high, self.integer = step, low, high, integer
        super().__init__(
            self.format(value), id=id, type="integer" if integer else "number", compact=True, select_on_focus=True
        )

    def format(self, value: float) -> str:
        return str(int(value)) if self.integer else f"{value:.1f}"

    @property
    def number(self) -> float | None:
        try:
            value = int(self.value) if self.integer else float(self.value)
        except ValueError:
            return None
        return value if self.low <= value <= self.high else None

    def set_number(self, value: float) -> None:
        value = min(max(value, self.low), self.high)
        self.value = self.format(round(value, 6))

    def action_nudge(self, direction: int) -> None:
        current = self.number
        self.set_number((current if current is not None else self.low) + direction * self.step)


class Controls(Horizontal):
    DEFAULT_CSS = """
    Controls { height: 1; }
    Controls Label { padding: 0 0 0 1; color: $text-muted; }
    Controls NumberInput { width: 8; }
    Controls #seed { width: 12; }
    Controls #follow { width: 1fr; text-align: right; padding: 0 1; }
    Controls NumberInput.-invalid { text-style: reverse; }
    """

    follow: reactive[bool] = reactive(True)
    weights_step: reactive[int | None] = reactive(None)

    def compose(self) -> ComposeResult:
        yield Label("temp")
        yield NumberInput(0.8, step=0.1, low=0.0, high=5.0, integer=False, id="temperature")
        yield Label("seed")
        yield NumberInput(42, step=1, low=0, high=2**32 - 1, integer=True, id="seed")
        yield Label("len")
        yield NumberInput(300, step=50, low=1, high=5000, integer=True, id="length")
        yield Label("top-k")
        yield NumberInput(0, step=1, low=0, high=1000, integer=True, id="top-k")
        yield Static(id="follow")

    def _field(self, name: str) -> NumberInput:
        return self.query_one(f"#{name}", NumberInput)

    def value(self, name: str) -> float | None:
        return self._field(name).number

    def set_value(self, name: str, value: float) -> None:
        self._field(name).set_number(value)

    def nudge(self, name: str, delta: float) -> None:
        current = self.value(name)
        self.set_value(name, (current if current is not None else 0) + delta)

    @property
    def settings(self) -> dict | None:
        """temperature, seed, length and top_k, or None while a field holds an invalid value."""
        values = {k: self.value(k) for k in ("temperature", "seed", "length", "top-k")}
        if any(v is None for v in values.values()):
            return None
        return {
            "temperature": values["temperature"],
            "seed": int(values["seed"]),
            "length": int(values["length"]),
            "top_k": int(values["top-k"]),
        }

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        field = event.input
        if isinstance(field, NumberInput):
            field.set_class(field.number is None, "-invalid")
        if self.settings is not None:
            self.post_message(SettingsChanged())

    def watch_follow(self) -> None:
        self._show_follow()

    def watch_weights_step(self) -> None:
        self._show_follow()

    def _show_follow(self) -> None:
        step = "—" if self.weights_step is None else f"{self.weights_step:,}"
        mode = "following" if self.follow else "frozen at"
        self.query_one("#follow", Static).update(f"{mode} step {step}", layout=False)
