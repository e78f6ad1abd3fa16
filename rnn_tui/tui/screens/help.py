"""The help screen (? or f1): every key of the app, by where it applies, read from the action table."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from rnn_tui.tui import actions


def keys_table() -> Group:
    """Each scope of the table as a heading, then its rows: keys, footer label, and the palette's description."""
    parts: list = []
    widths = [max(len(f(row)) for row in actions.TABLE) for f in (lambda r: r.keys_shown, lambda r: r.title or r.label)]
    for scope, rows in actions.by_scope().items():
        if not rows:
            continue
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", min_width=widths[0])  # the widest of all: the columns line up
        table.add_column(min_width=widths[1])
        table.add_column(style="dim")
        for row in rows:
            table.add_row(Text(row.keys_shown), Text(row.title or row.label), Text(row.description))
        parts += [Text(actions.SCOPES[scope], style="bold underline"), table, Text("")]
    parts.append(Text("ctrl+p opens the command palette: every command above, searchable.", style="dim"))
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    SCOPE = actions.HELP
    BINDINGS = actions.bindings(SCOPE)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(keys_table(), id="help-keys")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#help").border_title = "Keys (esc closes)"
        self.query_one("#help").focus()

    def action_close(self) -> None:
        self.dismiss(None)
