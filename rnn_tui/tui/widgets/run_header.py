"""One line at the top: run, corpus, device, size and state."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STATE_STYLES = {
    "starting": "bold",
    "training": "bold green",
    "paused": "bold yellow",
    "saving": "bold cyan",
    "diverged": "bold red",
    "done": "bold blue",
    "failed": "bold red",
    "playground": "bold magenta",
    "watching": "bold green",
    "trainer gone": "bold red",
    "folder gone": "bold red",
    "quiet": "bold yellow",
}


class RunHeader(Static):
    state: reactive[str] = reactive("starting")
    step: reactive[int | None] = reactive(None)
    info: reactive[str] = reactive("")
    playground: reactive[str] = reactive("")  # another run shown in the playground, if any

    def render(self) -> Text:
        """The state comes first, so it survives a narrow terminal."""
        text = Text("rnn-tui ", style="bold")
        text.append(f"● {self.state}", style=STATE_STYLES.get(self.state.split(" for ")[0], "bold"))
        if self.step is not None:
            text.append(f" · step {self.step:,}")
        if self.playground:
            text.append(" │ ")
            text.append(f"playground: {self.playground}", style="bold reverse")
        if self.info:
            text.append(" │ " + self.info)
        return text
