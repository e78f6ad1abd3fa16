"""The blog's prediction figure for one position: the character there and the model's top five.

Enter on a generated character focuses it: up and down pick one of the five, enter continues the
text from it in that character's place (a `Branch` for the playground), escape goes back.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from rnn_tui import palette
from rnn_tui.generation import Token
from rnn_tui.tui.actions import INSPECTOR, bindings
from rnn_tui.tui.messages import Branch

BAR = 20
NAMES = {" ": "␣", "\n": "↵", "\t": "⇥"}


def show_char(char: str) -> str:
    if char in NAMES:
        return NAMES[char]
    return char if char.isprintable() else f"\\x{ord(char):02x}"


class Inspector(Static, can_focus=True):
    SCOPE = INSPECTOR
    BINDINGS = bindings(SCOPE)

    token: Token | None = None
    where = ""
    index = -1  # the token's place in the coloured text
    choice = 0  # the candidate picked while focused

    def choose(self, index: int) -> None:
        """Take the keyboard to pick a candidate at character `index` (its token is the one shown)."""
        self.index, self.choice = index, 0
        self.focus()
        self.show(self.token, self.where)

    def action_pick(self, delta: int) -> None:
        if self.token is not None and self.token.top:
            self.choice = (self.choice + delta) % len(self.token.top)
            self.show(self.token, self.where)

    def action_branch(self) -> None:
        if self.token is not None and self.token.top and self.index >= 0:
            self.post_message(Branch(self.index, self.token.top[self.choice][0]))

    def action_back(self) -> None:
        self.screen.query_one("#output").focus()

    def on_blur(self) -> None:
        self.show(self.token, self.where)

    def on_mount(self) -> None:
        self.show(None)

    def show(self, token: Token | None, where: str = "") -> None:
        if token is not self.token:
            self.choice = 0
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
            for i, (char, p) in enumerate(token.top):
                mark = " underline" if self.has_focus and i == self.choice else ""
                row.append(f" {show_char(char)} ", style=palette.style_of(p, cs) + " reverse" + mark)
                row.append(f" {p:.1%}  ")
            self.update(Text("\n").join([head, row]), layout=False)
            return
        lines = [head]
        for i, (char, p) in enumerate(token.top):
            picked = self.has_focus and i == self.choice
            row = Text(f" {show_char(char):>2} ", style="reverse" if picked else "bold" if char == token.char else "")
            row.append("█" * max(1, round(p * BAR)), style=palette.style_of(p, cs))
            row.append(f" {p:6.1%}")
            if picked:
                row.append("  enter: continue from this", style="dim")
            lines.append(row)
        self.update(Text("\n").join(lines), layout=False)

    def on_resize(self) -> None:
        if self.token is not None:
            self.show(self.token, self.where)
