"""The main screen: the run's header, the training panel beside the playground (tabs on a narrow
terminal, app.tcss), the footer. The app composes them (so that they are there when it mounts).

Its footer lists the keys in the action table's order, wherever the keyboard is (Textual lists
the focused widget's keys first, so the playground's would push Quit out of a narrow footer
whenever the prompt has the keyboard). Its view to save (ctrl+e) is the playground's.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.binding import ActiveBinding
from textual.screen import Screen
from textual.widgets import Tabs

from rnn_tui.tui import actions
from rnn_tui.tui.widgets.playground.playground import Playground


class MainScreen(Screen):
    SCOPE = actions.MAIN
    BINDINGS = actions.bindings(SCOPE)

    @on(Tabs.TabActivated)
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        self.app.set_class(event.tab.id == "tab-training", "-training-tab")  # app.tcss shows that panel when narrow

    def action_switch_tab(self) -> None:
        tabs = self.query_one(Tabs)
        tabs.active = "tab-training" if tabs.active == "tab-playground" else "tab-playground"

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        bindings = super().active_bindings
        return dict(sorted(bindings.items(), key=lambda item: actions.position(item[1].binding)))

    def export_view(self) -> tuple[Text, Text, str]:
        return self.query_one(Playground).export_view()
