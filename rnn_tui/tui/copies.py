"""The copy index of the run the app shows, for every view that marks copies: built once, in a thread worker.

A view asks `indexes(app).get()`: the index when it is ready, else None, and the first ask starts
the build (a 100 MB corpus takes a minute or so; a cached one opens at once). When an index is
ready, or cannot be had (the run's text is gone), every node on the app's screens with a
`copies_ready()` method is called, so each view marks its text then.
"""

from __future__ import annotations

import time
from pathlib import Path
from weakref import WeakKeyDictionary

from textual.app import App

from rnn_tui.errors import UserError
from rnn_tui.text import copies
from rnn_tui.text.copies import CopyIndex

_BY_APP: WeakKeyDictionary[App, CopyIndexes] = WeakKeyDictionary()
RETRY = 30.0  # seconds before a run whose text could not be had is asked again (its first checkpoint may come)


class CopyIndexes:
    """The copy index of each run folder this app has asked about."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._ready: dict[Path, CopyIndex] = {}
        self._problems: dict[Path, tuple[str, float]] = {}  # why not, and when
        self._building: set[Path] = set()

    def run_dir(self) -> Path | None:
        run_dir = getattr(self.app, "run_dir", None)
        return Path(run_dir) if run_dir is not None else None

    def get(self) -> CopyIndex | None:
        """The index of the app's run, or None while it is built (the first ask starts it) or cannot be."""
        run_dir = self.run_dir()
        if run_dir is None:
            return None
        if run_dir in self._ready:
            return self._ready[run_dir]
        problem = self._problems.get(run_dir)
        if problem is not None and time.monotonic() - problem[1] >= RETRY:
            del self._problems[run_dir]
        if run_dir not in self._building and run_dir not in self._problems:
            self._building.add(run_dir)
            self.app.run_worker(lambda: self._build(run_dir), thread=True, group="copies", exit_on_error=False)
        return None

    def status(self) -> str:
        """What `get` gives, in words: ready, being built, or why it cannot be."""
        run_dir = self.run_dir()
        if run_dir is None:
            return "no run yet to compare with"
        if run_dir in self._problems:
            return self._problems[run_dir][0]
        return "ready" if run_dir in self._ready else "indexing the training text…"

    def _build(self, run_dir: Path) -> None:
        try:
            index, problem = copies.for_run(run_dir), None
        except UserError as exc:
            index, problem = None, str(exc)
        self.app.call_from_thread(self._done, run_dir, index, problem)

    def _done(self, run_dir: Path, index: CopyIndex | None, problem: str | None) -> None:
        self._building.discard(run_dir)
        if index is not None:
            self._ready[run_dir] = index
        else:
            self._problems[run_dir] = (problem or "cannot index the training text", time.monotonic())
        for screen in self.app.screen_stack:
            for node in (screen, *screen.walk_children()):
                if callable(ready := getattr(node, "copies_ready", None)):
                    ready()


def indexes(app: App) -> CopyIndexes:
    """The app's copy indexes (one holder per app)."""
    if app not in _BY_APP:
        _BY_APP[app] = CopyIndexes(app)
    return _BY_APP[app]
