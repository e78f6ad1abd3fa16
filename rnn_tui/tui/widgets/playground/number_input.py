"""A number field for a config setting: type a value, or nudge it with up and down.

Its value is checked by the same function as the command line's flags (config.parse), so a
mistake gets the same message in both.
"""

from __future__ import annotations

from textual.widgets import Input

from rnn_tui import config
from rnn_tui.errors import UserError
from rnn_tui.tui.actions import NUMBER, bindings


class NumberInput(Input):
    SCOPE = NUMBER
    BINDINGS = bindings(SCOPE)

    def __init__(self, cls: type, name: str, value: float, *, step: float) -> None:
        self.cls, self.setting, self.step = cls, name, step
        self.integer = config.kind_of(cls, name) is int
        spec = config.spec_of(cls, name)
        self.low, self.high = spec.low, spec.high
        super().__init__(
            self.format(value),
            id=name,
            type="integer" if self.integer else "number",
            compact=True,
            select_on_focus=True,
        )

    def format(self, value: float) -> str:
        """Whole numbers as they are; others to two decimals, the second dropped when it is 0 (0.8, 0.95)."""
        if self.integer:
            return str(int(value))
        shown = f"{value:.2f}"
        return shown[:-1] if shown.endswith("0") else shown

    @property
    def problem(self) -> str | None:
        """What is wrong with the value typed, or None."""
        try:
            config.parse(self.cls, self.setting, self.value)
        except UserError as exc:
            return str(exc)
        return None

    @property
    def number(self) -> float | None:
        """The value, or None while it is not a valid one."""
        try:
            return config.parse(self.cls, self.setting, self.value)
        except UserError:
            return None

    def set_number(self, value: float) -> None:
        value = min(max(value, self.low), self.high)
        self.value = self.format(round(value, 6))

    def action_nudge(self, direction: int) -> None:
        current = self.number
        self.set_number((current if current is not None else self.low) + direction * self.step)
