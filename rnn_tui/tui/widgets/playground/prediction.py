"""The blog's prediction figure: under a line of text, the model's top five guesses at each character.

Each column is one character of the line around the cursor: the character itself on top,
coloured by confidence (the cursor's one reversed), and under it the five likeliest
characters the model expected there, from the likeliest down, each shaded by its
probability; the one that came is underlined and bold. It is redrawn only when its window
of the text, the cursor, or a token in the window changes.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.widgets import Static

from rnn_tui import palette
from rnn_tui.generation import TOP, Token
from rnn_tui.tui.widgets.playground.inspector import show_char

COLUMN = 2  # cells per character: the character and a gap
STANDARD = ((0.5, "reverse bold"), (0.2, "reverse"), (0.05, "bold"), (0.0, "dim"))  # shades in 16 colours
CAPTION = "the top 5 guesses at each character, shaded by probability; underlined: the one that came"


def cell(char: str) -> str:
    """A character in one cell: spaces and line ends as symbols, anything wider as a dot."""
    shown = show_char(char)
    return shown if cell_len(shown) == 1 else "·"


def window(line: tuple[int, int], index: int, columns: int) -> tuple[int, int]:
    """The part of `line` (a token range) shown around `index`: the line in pages of `columns` characters,
    so moving the cursor along it moves the highlight, not the text."""
    start, end = line
    first = start + (index - start) // columns * columns
    return first, min(end, first + columns)


class PredictionView(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tokens: list[Token] = []
        self.index = -1
        self.where = ""
        self.line = self.span = (0, 0)
        self._shown: tuple | None = None

    def show(self, tokens: list[Token], index: int, line: tuple[int, int], where: str = "") -> None:
        """The figure for the screen line `line` (a token range) of `tokens`, with the cursor on `index`."""
        self.tokens, self.index, self.where, self.line = tokens, index, where, line
        columns = max(1, (self.size.width or 80) // COLUMN)
        self.span = window(line, index, columns) if index >= 0 else (0, 0)
        a, b = self.span
        key = (a, b, index, where, self.size, *map(id, tokens[a:b]))
        if key != self._shown:
            self._shown = key
            cs = self.app.console.color_system
            self.border_title = self.caption(cs)
            self.update(self.figure(cs, rows=max(1, self.size.height - 1)), layout=False)

    def caption(self, color_system: str | None) -> Text:
        """The character at the cursor, its probability, and how to read the figure."""
        if not self.tokens or self.index < 0:
            return Text(CAPTION)
        token = self.tokens[self.index]
        out = Text(f"{self.where} ")
        out.append(f" {show_char(token.char)} ", style=f"{palette.style_of(token.prob, color_system)} reverse")
        out.append(" unknown" if token.unknown else f" p = {token.prob:.1%}")
        out.append(f" · {CAPTION}", style="dim")
        return out

    def figure(self, color_system: str | None, rows: int = TOP) -> Text:
        """The figure as text: the characters, then `rows` rows of guesses."""
        a, b = self.span
        if not self.tokens or self.index < 0:
            return Text("Move the cursor over the coloured text to see the model's guesses.", style="dim")
        out = Text()
        for i in range(a, b):
            token = self.tokens[i]
            style = palette.style_of(token.prob, color_system) + (" reverse" if i == self.index else "")
            out.append(cell(token.char), style=style.strip() or None)
            out.append(" ")
        shades = Shades(self, color_system)
        for k in range(min(rows, TOP)):
            out.append("\n")
            for i in range(a, b):
                top = self.tokens[i].top
                if k < len(top):
                    char, p = top[k]
                    style = shades(p) + (Style(bold=True, underline=True) if char == self.tokens[i].char else Style())
                    out.append(cell(char), style=style)
                else:
                    out.append(" ")
                out.append(" ")
        return out

    def on_resize(self) -> None:
        self.show(self.tokens, self.index, self.line, self.where)


class Shades:
    """A probability as a shade: the theme's background blended toward its primary colour; in 16
    colours, dim, plain, bold and reverse."""

    def __init__(self, widget: Static, color_system: str | None) -> None:
        self.standard = color_system in ("standard", None)
        self.background = widget.background_colors[1]
        self.accent = Color.parse(widget.app.current_theme.primary)
        self._cache: dict[int, Style] = {}

    def __call__(self, p: float) -> Style:
        level = min(10, round(p * 10))
        style = self._cache.get(level)
        if style is None:
            style = self._cache[level] = self._style(level / 10)
        return style

    def _style(self, p: float) -> Style:
        if self.standard:
            return Style.parse(next(s for edge, s in STANDARD if p >= edge))
        shade = self.background.blend(self.accent, 0.15 + 0.85 * p)
        ink = Color(0, 0, 0) if shade.brightness > 0.55 else Color(255, 255, 255)
        return Style(color=ink.rich_color, bgcolor=shade.rich_color)
