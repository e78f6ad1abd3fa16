"""Helpers that several test modules share: the app under Pilot, the CLI as a user runs it, a trainer's events,
and a real terminal (tmux). Fixtures and the waits (`until`, `wait_for`) are in conftest.py; stand-ins for the
trainer's process in fakes.py."""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from textual.notifications import Notification, Notify
from textual.worker import WorkerCancelled

from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.playground.playground import Playground
from tests.conftest import TINY_FLAGS, cli_env

# --------------------------------------------------------------------------- the app under Pilot

SIZE = (140, 44)  # the terminal the Pilot tests run in, unless a test needs another


class Shown(list[Notification]):
    """Every notification the app raised, recorded as `run_test(message_hook=shown)` sees them. Read this rather
    than `app._notifications`, which drops a notification once its timeout has passed: a busy host can take
    longer than that to reach the assertion."""

    def __call__(self, message) -> None:
        if isinstance(message, Notify):
            self.append(message.notification)


async def settle(pilot, timeout: float = 15.0) -> None:
    """Wait until the app has drained its session, taken the weights it follows, and finished generating:
    the generation engine has nothing left to answer, and what it posted has been shown."""
    app = pilot.app
    session = app.session
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.02)
        with contextlib.suppress(WorkerCancelled):  # a newer worker replaced one: look again
            await app.workers.wait_for_complete()
        playground = app.query_one_optional(Playground)  # None: the main screen is still being composed
        if playground is None:
            continue
        generated = playground.idle  # then the pause below handles every message it posted
        await pilot.pause()
        weights_taken = session.weights_seen or not playground.controls.follow
        workers_done = not any(w.is_running for w in app.workers)
        if generated and playground.idle and session.started and not session.inbox and weights_taken and workers_done:
            return
    raise AssertionError("the app did not settle")


def output(app) -> ConfidenceText:
    """The playground's coloured text: the prompt, then what the model wrote."""
    return app.query_one(ConfidenceText)


def generated_text(app) -> str:
    """What the model wrote after the prompt, as the playground shows it."""
    out = output(app)
    return "".join(t.char for t in out.tokens[out.n_prompt :])


# --------------------------------------------------------------------------- the CLI in a subprocess

TINY = [*TINY_FLAGS, "--eval-every", "20", "--sample-every", "20"]  # a tiny run that evaluates and samples


def rnn_tui(*args, cwd, input=None, timeout=120) -> subprocess.CompletedProcess:
    """`rnn-tui ARGS` in `cwd`, as a user runs it (text out, no colour, 120 columns)."""
    return subprocess.run(
        [sys.executable, "-m", "rnn_tui", *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def assert_user_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    """A user error: exit code 2 and one line on stderr that holds `words`, no traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0]


class LineReader:
    """A subprocess's text output, read line by line in a thread: waiting for a line has a deadline, even where
    the process falls silent without closing its end."""

    def __init__(self, stream):
        self.lines: list[str] = []  # what was taken so far
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def _next(self, deadline: float, what: str) -> str | None:
        try:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"timed out waiting for {what}; the output ends with {self.lines[-5:]}") from None
        if line is not None:
            self.lines.append(line)
        return line

    def wait_for(self, predicate: Callable[[str], object], what: str, timeout: float = 60.0) -> str:
        """The first line from here on that satisfies `predicate`; fail if none comes within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (line := self._next(deadline, what)) is not None:
            if predicate(line):
                return line
        raise AssertionError(f"the output ended before {what}; it ends with {self.lines[-5:]}")

    def rest(self, timeout: float = 60.0) -> str:
        """The lines from here to the end of the output, which must come within `timeout` seconds."""
        deadline, start = time.monotonic() + timeout, len(self.lines)
        while self._next(deadline, "the end of the output") is not None:
            pass
        return "".join(self.lines[start:])


# --------------------------------------------------------------------------- a session's events


def drain_until(session, predicate: Callable, timeout: float = 60.0) -> list:
    """Poll `session` until an event satisfies `predicate`; return every event seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = session.poll()
        seen.extend(msgs)
        if any(predicate(m) for m in msgs):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"timed out; saw {[type(m).__name__ for m in seen]}")


# --------------------------------------------------------------------------- a real terminal

STEP = re.compile(r"step (\d[\d,]*)")  # the header's step counter


class Tmux:
    """A tmux server of its own (its own socket), for one test."""

    def __init__(self, cwd: Path):
        self.socket = f"rnn-tui-test-{uuid.uuid4().hex[:8]}"
        self.cwd = cwd

    def __call__(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        return out.stdout

    def screen(self, colours: bool = False) -> str:
        return self("capture-pane", "-p", *(["-e"] if colours else []), "-t", "app")

    def wait_for(self, predicate: Callable[[str], object], what: str = "the screen", timeout: float = 60.0) -> str:
        """The screen, once `predicate(screen)` is true; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{self.screen()}")


def descendants(pid: int) -> set[int]:
    """The processes below `pid` (children, their children, ...)."""
    rows = [
        line.split()
        for line in subprocess.run(
            ["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    ]
    children: dict[int, list[int]] = {}
    for p, pp in rows:
        children.setdefault(int(pp), []).append(int(p))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out
