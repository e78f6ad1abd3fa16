"""The prompt. Escape hands the keyboard to the coloured text, to inspect it."""

from __future__ import annotations

from textual.widgets import TextArea

from rnn_tui.tui.actions import PROMPT, bindings
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText


class PromptArea(TextArea):
    SCOPE = PROMPT
    BINDINGS = bindings(SCOPE)

    def action_inspect(self) -> None:
        self.app.query_one(ConfidenceText).focus()
