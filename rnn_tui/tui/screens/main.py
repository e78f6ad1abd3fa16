"""The main screen: the run's header, the training panel beside the playground (tabs on a narrow
terminal, app.tcss), the footer. The app composes them (so that they are there when it mounts); in
a terminal its first frame holds the panels' empty frames (`frames`), which `fill` replaces with the
panels once that frame is drawn: their modules bring NumPy, plotext and the generation engine.

Its footer lists the keys in the action table's order, wherever the keyboard is (Textual lists
the focused widget's keys first, so the playground's would push Quit out of a narrow footer
whenever the prompt has the keyboard). Its view to save (ctrl+e) is the playground's.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.binding import ActiveBinding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static, Tabs

from rnn_tui.session import Session
from rnn_tui.tui import actions


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
        return self.app.playground.export_view()  # type: ignore[attr-defined]


def frames() -> list[Static]:
    """The two panels' frames, empty: what the first frame shows of them."""
    out = []
    for name in ("Training", "Playground"):
        out.append(frame := Static(classes=f"panel frame -{name.lower()}"))
        frame.border_title = name
    return out


def panels(session: Session, prompt: str) -> tuple[Widget, Widget]:
    """The training panel and the playground, for `session` (imported here, on first use)."""
    from rnn_tui.tui.widgets.playground.playground import Playground
    from rnn_tui.tui.widgets.training.panel import TrainingPanel

    live = session.controllable or not session.finished  # False: a saved run, nothing to follow
    return (
        TrainingPanel(id="training", classes="panel"),
        Playground(prompt=prompt, live=live, id="playground", classes="panel"),
    )


async def fill(where: Widget, session: Session, prompt: str) -> None:
    """The panels in place of their frames in `where` (none: they are there), composed and mounted."""
    if found := where.query(".frame"):
        await found.remove()
        await where.mount(*panels(session, prompt))
