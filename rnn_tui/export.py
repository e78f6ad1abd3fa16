"""Coloured views as Rich text, and saving them as HTML, SVG or plain text with their legend.

Used by the app's views (a key saves the view) and by the CLI (`score`, `--html`, `--svg`).
The format follows the file's suffix.
"""

from __future__ import annotations

import io
import re
import time
import unicodedata
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.text import Span, Text

from rnn_tui import palette
from rnn_tui.errors import UserError

if TYPE_CHECKING:
    import numpy as np

FORMATS = (".html", ".svg", ".txt")
EXPORTS = Path("rnn-tui-exports")  # where the app saves the view on screen (ctrl+e)
CONFIDENCE_NOTE = "colour = p(char | text before it) at T=1"


def visible(char: str) -> str:
    """A character as text shows it: control characters (other than newline and tab) as symbols."""
    if char in "\n\t" or unicodedata.category(char) != "Cc":
        return char
    return chr(0x2400 + ord(char)) if ord(char) < 0x20 else "·"


def confidence_text(
    text: str, probs: Sequence[float | None] | np.ndarray, *, prompt: int = 0, color_system: str | None = "truecolor"
) -> Text:
    """`text` coloured by confidence: character i by probs[i] (None or NaN: outside the vocabulary).

    The first `prompt` characters are underlined. One span per run of equal style, so long texts stay cheap.
    """
    import numpy as np  # here: the app's first frame imports this module for EXPORTS, before NumPy

    if not isinstance(probs, np.ndarray):
        probs = np.array([np.nan if q is None else q for q in probs], np.float64)
    if not len(probs):
        return Text("", end="")
    bins = np.minimum(np.searchsorted(-np.asarray(palette.EDGES), -probs, side="right"), len(palette.EDGES) - 1)
    key = np.where(np.isnan(probs), -1, bins) * 2 + (np.arange(len(probs)) < prompt)  # bin, and whether in the prompt
    styles: dict[int, str] = {}
    spans = []
    for a, b in pairwise([0, *(np.flatnonzero(np.diff(key)) + 1).tolist(), len(key)]):
        k = int(key[a])
        if k not in styles:
            style = palette.bin_style(None if k < 0 else k >> 1, color_system)
            styles[k] = f"{style} underline" if k & 1 else style
        if styles[k]:
            spans.append(Span(a, b, styles[k]))
    return Text("".join(map(visible, text)), spans=spans, end="")


def confidence_legend(
    color_system: str | None = "truecolor", *, prompt: bool = True, note: str = CONFIDENCE_NOTE
) -> Text:
    """What the colours mean: the eight bins from sure to surprised, unknown characters, and the prompt."""
    text = Text("sure ")
    for i, label in enumerate(palette.LABELS):
        text.append(label, style=palette.bin_style(i, color_system))
        text.append(" ")
    text.append("surprised  ")
    text.append("?", style=palette.UNKNOWN)
    text.append(" unknown")
    if prompt:
        text.append("  ")
        text.append("prompt", style="underline")
    text.append(f"\n{note}", style="dim")
    return text


def save_view(
    path: Path | str, body: RenderableType, *, legend: Text | None = None, title: str = "rnn-tui", width: int = 100
) -> Path:
    """Write `body` (a Text, or any Rich renderable such as a table of columns) and `legend` under it
    to `path`, as HTML, SVG or text by its suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"cannot save a view as {path.name!r}; use a file name ending in .html, .svg or .txt")
    console = Console(record=True, width=width, file=io.StringIO(), color_system="truecolor", markup=False)
    console.print(body, overflow="fold")
    if legend is not None:
        console.print()
        console.print(legend)
    if suffix == ".html":
        data = console.export_html(inline_styles=True)
    elif suffix == ".svg":
        data = console.export_svg(title=title)
    else:
        data = console.export_text()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror}); choose another place to save it") from None
    return path


def save_all(
    folder: Path | str,
    body: RenderableType,
    *,
    legend: Text | None = None,
    title: str = "rnn-tui view",
    width: int | None = None,
) -> Path:
    """Save a view as HTML, SVG and text in `folder`, named after its title and the time; returns the
    path without its suffix (the three files are that path with .html, .svg and .txt). `width`: the
    view's width in cells (by default 100 for a text, 160 for other renderables)."""
    name = re.sub(r"[^a-z0-9]+", "-", title.lower().removeprefix("rnn-tui")).strip("-") or "view"
    base = Path(folder) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem, n = base, 1
    while any(stem.with_name(stem.name + s).exists() for s in FORMATS):  # two saves in one second
        n += 1
        stem = base.with_name(f"{base.name}-{n}")
    if width is None:
        width = 100 if isinstance(body, Text) else 160  # a table of columns gets room
    for suffix in FORMATS:
        save_view(stem.with_name(stem.name + suffix), body, legend=legend, title=title, width=width)
    return stem
