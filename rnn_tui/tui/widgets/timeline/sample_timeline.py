"""The run's samples in order, each under its step: scroll from the first to the last and watch the
model learn spelling, then words, then structure.

A line-API scroll view: each sample is wrapped once (again only when the width changes) and a
line is rendered when it comes into view, so thousands of samples and a live run stay cheap.
New samples are appended; when the view is at the end, it follows them.
"""

from __future__ import annotations

import bisect
import math

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from rnn_tui.events import Sample
from rnn_tui.export import visible
from rnn_tui.text.copies import Copies
from rnn_tui.tui.actions import SAMPLES, bindings
from rnn_tui.tui.widgets.chargrid.confidence_text import COPIED

TAB = "    "


class SampleTimeline(ScrollView, can_focus=True):
    SCOPE = SAMPLES
    BINDINGS = bindings(SCOPE)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[tuple[Sample, float | None]] = []  # each sample, with the validation loss by then
        self._lines: list[Text] = []  # the wrapped lines of every entry, in order
        self._starts: list[int] = []  # each entry's first line
        self._strips: dict[int, Strip] = {}
        self._width = 0
        self.current = 0  # the selected sample
        self.copies: dict[int, Copies] = {}  # what each checked sample copies from the training text

    # ------------------------------------------------------------ content

    def add(self, entries: list[tuple[Sample, float | None]]) -> None:
        """Append samples (with the validation loss at their step); follow them if the view is at the end."""
        following = self.scroll_y >= self.max_scroll_y
        for entry in entries:
            self.entries.append(entry)
            self._wrap(len(self.entries) - 1)
        self._sized()
        if following:
            self.scroll_end(animate=False, immediate=True)
        if self.entries:
            self._select(self.current)

    def clear(self) -> None:
        """Forget every sample (the run's history was replaced)."""
        self.entries, self._lines, self._starts, self._strips, self.current = [], [], [], {}, 0
        self.copies = {}
        self._sized()

    def set_copies(self, found: dict[int, Copies]) -> None:
        """Shade what these samples (by index) copy from the training text, and give their novel share."""
        self.copies.update(found)
        self._lines, self._starts, self._strips = [], [], {}
        for i in range(len(self.entries)):
            self._wrap(i)
        self._sized()

    @staticmethod
    def entry_text(sample: Sample, val: float | None, found: Copies | None = None) -> Text:
        """A sample as text: a heading with its step, then its prompt (underlined) and what the model wrote,
        the stretches it copies from the training text shaded (`found`)."""
        heading = f"── step {sample.step:,}"
        if val is not None:
            heading += f" · val loss {val:.3f} ({val / math.log(2):.2f} bits/char)"
        if found is not None:
            heading += f" · {found.novel:.0%} novel"
        text = Text(heading + " ──\n", style="bold")
        shown = [visible(c).replace("\t", TAB) for c in sample.prompt + sample.text]
        text.append("".join(shown[: len(sample.prompt)]), style="underline")
        at = len(text)
        text.append("".join(shown[len(sample.prompt) :]))
        offsets = [0]  # where each generated character starts in the text (a tab is four)
        for piece in shown[len(sample.prompt) :]:
            offsets.append(offsets[-1] + len(piece))
        for a, b in found.spans if found is not None else ():
            text.stylize(COPIED, at + offsets[a], at + offsets[b])
        return text

    def _wrap(self, index: int) -> None:
        width = max(1, self._width or self.size.width or 80)
        self._starts.append(len(self._lines))
        for line in self.entry_text(*self.entries[index], self.copies.get(index)).split("\n"):
            self._lines += line.divide(range(width, len(line), width)) if len(line) > width else [line]
        self._lines.append(Text())

    def _sized(self) -> None:
        self.virtual_size = Size(0, len(self._lines))  # lines are wrapped to the width: no sideways scrolling
        self.refresh()

    def on_resize(self) -> None:
        if self.size.width == self._width:
            return
        self._width = self.size.width
        self._lines, self._starts, self._strips = [], [], {}
        for i in range(len(self.entries)):
            self._wrap(i)
        self._sized()
        if self.entries:  # the selected sample stays in view
            self.scroll_to(y=self._starts[self.current], animate=False, immediate=True)

    # ------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        row = round(self.scroll_y) + y
        width = self.size.width
        if row >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get(row)
        if strip is None:
            base = self.rich_style
            if self.entries and row == self._starts[self.current]:
                base += Style(reverse=True)
            segments = [
                Segment(s.text, base + s.style if s.style else base) for s in self._lines[row].render(self.app.console)
            ]
            strip = self._strips[row] = Strip(segments).crop_extend(0, width, base)
        return strip

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        top = round(new)
        if self.entries and not top <= self._starts[self.current] < top + self.size.height:
            self._select(bisect.bisect_right(self._starts, top) - 1)  # scrolled away: the sample at the top

    # ------------------------------------------------------------ the selected sample

    def _select(self, index: int) -> None:
        """Select a sample: its heading is shown reversed, and the border says which it is."""
        old, self.current = self.current, index
        for i in {old, index}:
            if 0 <= i < len(self._starts):
                self._strips.pop(self._starts[i], None)
                self.refresh_line(self._starts[i] - round(self.scroll_y))
        step = self.entries[index][0].step
        self.border_subtitle = f"sample {index + 1:,} of {len(self.entries):,} · step {step:,}"

    def action_jump(self, delta: int) -> None:
        """Select the next (1) or previous (-1) sample, and scroll it to the top."""
        self.action_jump_to(min(max(0, self.current + delta), len(self.entries) - 1))

    def action_jump_to(self, index: int) -> None:
        """Select sample `index` (-1: the last), and scroll it to the top."""
        if self.entries:
            self._select(index % len(self.entries))
            self.scroll_to(y=self._starts[self.current], animate=False, immediate=True)

    def export_text(self) -> Text:
        """Every sample, one after another, for saving."""
        return Text("\n\n").join(self.entry_text(*entry, self.copies.get(i)) for i, entry in enumerate(self.entries))
