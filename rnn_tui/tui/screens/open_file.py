"""A small dialog that asks for the path of a file to open as the playground's prompt."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from rnn_tui.tui.actions import OPEN_FILE, bindings


class OpenFileScreen(ModalScreen[str | None]):
    """Dismissed with the path typed (Enter), or None (Escape)."""

    SCOPE = OPEN_FILE
    BINDINGS = bindings(SCOPE)

    def compose(self) -> ComposeResult:
        with Vertical(id="open-file"):
            yield Label("Open a file as the prompt", id="open-file-title")
            yield Input(placeholder="path/to/file.txt", id="open-file-path")
            yield Label("Enter opens it · Esc cancels · long files are scored with progress", id="open-file-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
