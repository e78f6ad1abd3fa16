"""Saving a coloured view as HTML, SVG or plain text, with its colours and its legend.

Used by the app's views (a key saves the view) and by the CLI (`--html`, `--svg`). The
format follows the file's suffix.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.text import Text

from rnn_tui.errors import UserError

FORMATS = (".html", ".svg", ".txt")


def save_view(
    path: Path | str, body: Text, *, legend: Text | None = None, title: str = "rnn-tui", width: int = 100
) -> Path:
    """Write `body` (and `legend` under it) to `path`, as HTML, SVG or text by its suffix."""
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
