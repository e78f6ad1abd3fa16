"""One line at the top: run, corpus, device, size and state."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from rnn_tui.config import ModelConfig
from rnn_tui.events import RunStarted

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

    def started(self, event: RunStarted) -> None:
        """A run started (or resumed): its model, device, text and name, and its step."""
        model, c = ModelConfig.from_dict(event.model), event.corpus
        self.info = (
            f"{model.summary()} ({event.params / 1e6:.2f}M) on {event.device} │ "
            f"{c.get('name', '?')} ({c.get('chars', 0) / 1e6:.1f}M chars) │ {Path(event.run_dir).name}"
        )
        self.step = event.step

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
