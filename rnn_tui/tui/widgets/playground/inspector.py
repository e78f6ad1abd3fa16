"""The blog's prediction figure for one position: the character there and the model's top five."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from rnn_tui import palette
from rnn_tui.generation import Token

BAR = 20
NAMES = {" ": "␣", "\n": "↵", "\t": "⇥"}


def show_char(char: str) -> str:
    if char in NAMES:
        return NAMES[char]
    return char if char.isprintable() else f"\\x{ord(char):02x}"


class Inspector(Static):
    token: Token | None = None
    where = ""

    def on_mount(self) -> None:
        self.show(None)

    def show(self, token: Token | None, where: str = "") -> None:
        self.token, self.where = token, where
        if token is None:
            self.update(
                Text(
                    "Move the cursor over the coloured text (mouse, or Esc then arrows) "
                    "to see what the model expected there.",
                    style="dim",
                )
            )
            return
        cs = self.app.console.color_system
        head = Text()
        head.append(f"{where} ")
        head.append(f" {show_char(token.char)} ", style=palette.style_of(token.prob, cs) + " reverse")
        if token.unknown:
            head.append("  not in the vocabulary: fed as the unknown character", style="bold")
        else:
            head.append(f"  p = {token.prob:.1%}" + ("  (drawn)" if token.generated else ""))
        if self.size.height < len(token.top) + 1:  # little room: the candidates on one line
            row = Text()
            for char, p in token.top:
                row.append(f" {show_char(char)} ", style=palette.style_of(p, cs) + " reverse")
                row.append(f" {p:.1%}  ")
            self.update(Text("\n").join([head, row]), layout=False)
            return
        lines = [head]
        for char, p in token.top:
            row = Text(f" {show_char(char):>2} ", style="bold" if char == token.char else "")
            row.append("█" * max(1, round(p * BAR)), style=palette.style_of(p, cs))
            row.append(f" {p:6.1%}")
            lines.append(row)
        self.update(Text("\n").join(lines), layout=False)

    def on_resize(self) -> None:
        if self.token is not None:
            self.show(self.token, self.where)
