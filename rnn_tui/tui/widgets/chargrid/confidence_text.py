"""The prompt and its continuation, every character coloured by the model's confidence.

Rendered line by line (Textual's line API) from our own character wrap, so a screen
position maps straight to a character: the mouse and the arrow keys move a cursor, and
the character under it is announced with `CursorMoved` for the inspector.

It is on the keystroke path, so it is frugal: new text never triggers a layout of the
screen (the widget scrolls itself and follows the end as text streams in), rendered lines
are cached, and only the lines that changed are redrawn.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from rnn_tui import palette
from rnn_tui.generation import Token
from rnn_tui.tui.actions import OUTPUT, bindings
from rnn_tui.tui.messages import Choose, CursorMoved

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


COPIED = Style(bgcolor="grey30")  # a character in a stretch that occurs verbatim in the training text


@lru_cache(maxsize=512)
def token_style(
    bin_: int | None, color_system: str | None, prompt: bool, cursor: bool, base: Style, copied: bool = False
) -> Style:
    """The style of a character in confidence bin `bin_` (None: unknown to the model)."""
    style = base + Style.parse(palette.bin_style(bin_, color_system) or "none")
    if copied:
        style += COPIED
    if prompt:
        style += Style(underline=True)
    if cursor:
        style += Style(reverse=True)
    return style


class ConfidenceText(Widget, can_focus=True):
    SCOPE = OUTPUT
    BINDINGS = bindings(SCOPE)

    cursor: reactive[int] = reactive(-1, always_update=False)

    def __init__(self, *, id: str | None = None, choosable: bool = False) -> None:
        super().__init__(id=id)
        self.choosable = choosable  # enter offers the character under the cursor for a branch (the playground's)
        self.tokens: list[Token] = []
        self.n_prompt = 0
        self.top = 0  # the first line shown
        self._lines: list[tuple[int, int]] = [(0, 0)]  # token index range of each screen line
        self._strips: dict[int, Strip] = {}  # rendered lines, by line number
        self._width = 0
        self._tracked = -1  # the prompt character just before the prompt's cursor
        self._copied = bytearray()  # 1 for each character marked as copied (`mark_copied`), up to the last marked

    # ------------------------------------------------------------ content

    def edit(self, keep: int, tokens: list[Token], n_prompt: int) -> None:
        """Keep the first `keep` tokens, append `tokens`; the first `n_prompt` are then the prompt's.

        The one list is edited in place, and only the lines from token `keep` on are wrapped again and
        redrawn, so an edit costs what it adds (the generation engine's messages are such edits).
        """
        following = self.top + self.size.height >= len(self._lines)
        del self.tokens[keep:]
        del self._copied[keep:]
        self.tokens.extend(tokens)
        self.n_prompt = n_prompt
        self._layout(keep)
        if not self.has_focus and 0 <= self._tracked < self.n_prompt:
            self.cursor = self._tracked
        elif self.cursor >= len(self.tokens):
            self.cursor = len(self.tokens) - 1
        elif self.cursor >= 0:  # the same place may hold a new character now, or its line more of them
            self.post_message(CursorMoved(self.cursor, self.tokens[self.cursor]))
        if following:
            self._scroll_to(max(0, len(self._lines) - self.size.height))

    def set_tokens(self, prompt: list[Token], generated: list[Token]) -> None:
        """Show `prompt` and `generated`: an `edit` from the first token that is not the same object as before
        (a view that sends whole lists, such as the temperatures' columns, shares the tokens between them)."""
        new = [*prompt, *generated]
        keep = 0
        while keep < min(len(self.tokens), len(new)) and self.tokens[keep] is new[keep]:
            keep += 1
        self.edit(keep, new[keep:], len(prompt))

    def mark_copied(self, spans: Sequence[tuple[int, int]]) -> None:
        """Shade the characters of `spans` ([start, end) token indices) as copied; no spans: none."""
        old = self._copied
        self._copied = bytearray(len(self.tokens))
        for a, b in spans:
            self._copied[a:b] = b"\x01" * (min(b, len(self.tokens)) - a)
        if self._copied.rstrip(b"\x00") != old.rstrip(b"\x00"):
            self._strips.clear()
            self.refresh()

    @property
    def copied(self) -> list[int]:
        """The indices of the characters shaded as copied."""
        return [i for i, c in enumerate(self._copied) if c]

    def _layout(self, changed: int = 0) -> None:
        """Wrap the tokens into screen lines, redoing only the lines from token `changed` on."""
        width = max(1, self.size.width or 80)
        if width != self._width:
            self._width, changed = width, 0
        # Lines that end before the change are done (the last line may still grow).
        keep = bisect.bisect_left(self._lines, changed, hi=len(self._lines) - 1, key=lambda line: line[1])
        old = len(self._lines)
        del self._lines[keep:]
        start = self._lines[-1][1] if self._lines else 0
        col = 0
        lines = self._lines
        for i in range(start, len(self.tokens)):
            char = self.tokens[i].char
            w = cell_len(display(char))
            if col + w > width and col > 0:
                lines.append((start, i))
                start, col = i, 0
            col += w
            if char == "\n":
                lines.append((start, i + 1))
                start, col = i + 1, 0
        lines.append((start, len(self.tokens)))
        for n in [n for n in self._strips if n >= keep]:
            del self._strips[n]
        # Only the lines from `keep` on are new: redraw those that are on screen.
        first, last = max(keep, self.top), min(max(len(lines), old), self.top + self.size.height)
        if first < last:
            self.refresh(Region(0, first - self.top, self.size.width, last - first))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # a new theme: the cached lines have the old colours

    def on_resize(self, event: events.Resize) -> None:
        self._strips.clear()
        self._layout(0)
        self.refresh()

    # ------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        line = y + self.top
        width = self.size.width
        if line >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get(line)
        if strip is None:
            strip = self._strips[line] = self._render(line, width)
        return strip

    def _render(self, line: int, width: int) -> Strip:
        start, end = self._lines[line]
        cs = self.app.console.color_system
        base = self.rich_style
        copied, marked = self._copied, len(self._copied)
        segments: list[Segment] = []
        text, style = "", None
        for i in range(start, end):
            tok = self.tokens[i]
            s = token_style(
                None if tok.prob is None else palette.bin_of(tok.prob),
                cs,
                i < self.n_prompt,
                i == self.cursor,
                base,
                i < marked and copied[i] == 1,
            )
            if s is style:
                text += display(tok.char)
                continue
            if text:
                segments.append(Segment(text, style))
            text, style = display(tok.char), s
        if text:
            segments.append(Segment(text, style))
        return Strip(segments).extend_cell_length(width, base)

    def _redraw_line(self, line: int) -> None:
        self._strips.pop(line, None)
        if self.top <= line < self.top + self.size.height:
            self.refresh(Region(0, line - self.top, self.size.width, 1))

    # ------------------------------------------------------------ the cursor

    def index_at(self, x: int, y: int) -> int:
        """The token at widget offset (x, y), or -1."""
        line = y + self.top
        if not 0 <= line < len(self._lines):
            return -1
        start, end = self._lines[line]
        col = 0
        for i in range(start, end):
            col += cell_len(display(self.tokens[i].char))
            if x < col:
                return i
        return -1

    def line_span(self, index: int) -> tuple[int, int]:
        """The token range of the screen line that holds token `index`."""
        return self._lines[self._line_of(index)]

    def track(self, index: int) -> None:
        """Follow the prompt's cursor (the character just before it) while the prompt has the keyboard."""
        self._tracked = index
        if 0 <= index < self.n_prompt:
            self.cursor = index

    def watch_cursor(self, old: int, new: int) -> None:
        for index in (old, new):
            if 0 <= index < len(self.tokens):
                self._redraw_line(self._line_of(index))
        token = self.tokens[new] if 0 <= new < len(self.tokens) else None
        self.post_message(CursorMoved(new, token))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        index = self.index_at(event.x, event.y)
        if index >= 0:
            self.cursor = index

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.action_scroll_lines(3)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.action_scroll_lines(-3)

    def on_focus(self) -> None:
        if self.cursor < 0 and self.tokens:
            self.cursor = max(0, self.n_prompt - 1)

    def _line_of(self, index: int) -> int:
        lo, hi = 0, len(self._lines) - 1
        while lo < hi:  # the lines are sorted by their first token
            mid = (lo + hi + 1) // 2
            if self._lines[mid][0] <= index:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _scroll_to(self, top: int) -> None:
        if top != self.top:
            self.top = top
            self.refresh()

    def _show_cursor(self) -> None:
        line = self._line_of(self.cursor)
        if line < self.top:
            self._scroll_to(line)
        elif line >= self.top + self.size.height:
            self._scroll_to(line - self.size.height + 1)

    def action_scroll_lines(self, delta: int) -> None:
        self._scroll_to(min(max(0, self.top + delta), max(0, len(self._lines) - self.size.height)))

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.choosable if action == "choose" else True

    def action_choose(self) -> None:
        """Enter: offer the character under the cursor for a branch (the playground's inspector takes it)."""
        if 0 <= self.cursor < len(self.tokens):
            self.post_message(Choose(self.cursor))
