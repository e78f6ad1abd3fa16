"""The main screen: the run's header, the training panel beside the playground, the footer.

The app composes its widgets. This class orders its footer: the keys in the action table's order,
wherever the keyboard is (Textual lists the focused widget's keys first, so the playground's
would push Quit out of a narrow footer whenever the prompt has the keyboard).
"""

from __future__ import annotations

from textual.binding import ActiveBinding
from textual.screen import Screen

from rnn_tui.tui import actions


class MainScreen(Screen):
    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        bindings = super().active_bindings
        return dict(sorted(bindings.items(), key=lambda item: actions.position(item[1].binding)))
