"""The prompt and its continuation, every character coloured by the model's confidence.

Rendered line by line (Textual's line API) from our own character wrap, so a screen
position maps straight to a character: the mouse and the arrow keys move a cursor, and
the character under it is announced with `CursorMoved` for the inspector.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from rnn_tui import palette
from rnn_tui.generation import Token
from rnn_tui.tui.messages import CursorMoved

TAB = 4


@lru_cache(maxsize=4096)
def display(char: str) -> str:
    """What a character looks like on screen: tabs as spaces, control characters as symbols."""
    if char == "\n":
        return " "
    if char == "\t":
        return " " * TAB
    if unicodedata.category(char) == "Cc":
        return chr(0x2400 + ord(char)) if ord(char) < 0x20 else "·"
    return char


@lru_cache(maxsize=64)
def token_style(prob: float | None, color_system: str | None, prompt: bool, cursor: bool) -> Style:
    style = Style.parse(palette.style_of(prob, color_system) or "none")
    if prompt:
        style += Style(underline=True)
    if cursor:
        style += Style(reverse=True)
    return style


class ConfidenceText(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    ConfidenceText { height: 1fr; }
    """
    BINDINGS = [
        Binding("left", "move(-1)", "Prev char", show=False),
        Binding("right", "move(1)", "Next char", show=False),
        Binding("up", "move_line(-1)", "Line up", show=False),
        Binding("down", "move_line(1)", "Line down", show=False),
        Binding("home", "move_to(0)", "First", show=False),
        Binding("end", "move_to(-1)", "Last", show=False),
    ]

    cursor: reactive[int] = reactive(-1)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tokens: list[Token] = []
        self.n_prompt = 0
        self._lines: list[tuple[int, int]] = []  # token index range per screen line
        self._layout_width = -1
        self._tracked = -1  # the prompt character just before the prompt's cursor

    # ------------------------------------------------------------ content

    def set_tokens(self, prompt: list[Token], generated: list[Token]) -> None:
        at_bottom = self.scroll_y >= self.max_scroll_y
        self.tokens = [*prompt, *generated]
        self.n_prompt = len(prompt)
        self._relayout()
        if not self.has_focus and 0 <= self._tracked < self.n_prompt:
            self.cursor = self._tracked
        elif self.cursor >= len(self.tokens):
            self.cursor = len(self.tokens) - 1
        elif self.cursor >= 0:  # the same place may hold a new character now
            self.post_message(CursorMoved(self.cursor, self.tokens[self.cursor]))
        if at_bottom:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def _relayout(self) -> None:
        width = max(1, self.scrollable_content_region.width or self.size.width or 80)
        lines, start, col = [], 0, 0
        for i, tok in enumerate(self.tokens):
            w = cell_len(display(tok.char))
            if col + w > width and col > 0:
                lines.append((start, i))
                start, col = i, 0
            col += w
            if tok.char == "\n":
                lines.append((start, i + 1))
                start, col = i + 1, 0
        lines.append((start, len(self.tokens)))
        self._lines = lines
        self._layout_width = width
        self.virtual_size = Size(width, len(lines))

    def on_resize(self, event: events.Resize) -> None:
        self._relayout()

    # ------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        line = y + scroll_y
        width = self.scrollable_content_region.width
        if line >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        start, end = self._lines[line]
        cs = self.app.console.color_system
        base = self.rich_style
        segments = [
            Segment(display(t.char), base + token_style(t.prob, cs, i < self.n_prompt, i == self.cursor))
            for i, t in zip(range(start, end), self.tokens[start:end], strict=True)
        ]
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, self.rich_style)

    # ------------------------------------------------------------ the cursor

    def index_at(self, x: int, y: int) -> int:
        """The token at content offset (x, y), or -1."""
        if not 0 <= y < len(self._lines):
            return -1
        start, end = self._lines[y]
        col = 0
        for i in range(start, end):
            col += cell_len(display(self.tokens[i].char))
            if x < col:
                return i
        return -1

    def track(self, index: int) -> None:
        """Follow the prompt's cursor (the character just before it) while the prompt has the keyboard."""
        self._tracked = index
        if 0 <= index < self.n_prompt:
            self.cursor = index

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh()
        token = self.tokens[new] if 0 <= new < len(self.tokens) else None
        self.post_message(CursorMoved(new, token))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        index = self.index_at(event.x + int(self.scroll_x), event.y + int(self.scroll_y))
        if index >= 0:
            self.cursor = index

    def on_focus(self) -> None:
        if self.cursor < 0 and self.tokens:
            self.cursor = max(0, self.n_prompt - 1)

    def _line_of(self, index: int) -> int:
        for n, (start, end) in enumerate(self._lines):
            if start <= index < end:
                return n
        return len(self._lines) - 1

    def _show_cursor(self) -> None:
        line = self._line_of(self.cursor)
        if line < self.scroll_y:
            self.scroll_to(y=line, animate=False)
        elif line >= self.scroll_y + self.scrollable_content_region.height:
            self.scroll_to(y=line - self.scrollable_content_region.height + 1, animate=False)

    def action_move(self, delta: int) -> None:
        if self.tokens:
            self.cursor = min(max(0, self.cursor + delta), len(self.tokens) - 1)
            self._show_cursor()

    def action_move_to(self, index: int) -> None:
        if self.tokens:
            self.cursor = index % len(self.tokens)
            self._show_cursor()

    def action_move_line(self, delta: int) -> None:
        if not self.tokens:
            return
        line = self._line_of(self.cursor)
        target = min(max(0, line + delta), len(self._lines) - 1)
        offset = self.cursor - self._lines[line][0]
        t_start, t_end = self._lines[target]
        self.cursor = min(t_start + offset, max(t_start, t_end - 1))
        self._show_cursor()
