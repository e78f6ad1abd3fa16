"""Who writes to the screen: the app alone. Torch-free.

Textual draws through file descriptor 2 in a terminal, and through fd 1 under textual-serve,
which reads the app's stdout as its screen protocol. Any other write to those descriptors,
a library's print or a child process's first words, would tear the picture or the protocol.

- `private_terminal()`: for the app's lifetime, Textual draws on private copies of fds 1 and 2
  (which children do not inherit), and fds 1 and 2 point at /dev/null.
- `child_output(path)`: while a child process is started, fds 1 and 2 point at its log, so the
  child writes there from its first instruction.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def _flush(*streams: TextIO | None) -> None:
    for stream in streams:
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def private_terminal() -> Iterator[None]:
    """Give this process's terminal (or pipe) to whoever writes through `sys.__stdout__`/`sys.__stderr__`.

    Run the app inside it: Textual's drivers write through those streams, and everything
    else that writes to fds 1 and 2, including every child process, writes into /dev/null.
    """
    if sys.__stdout__ is None or sys.__stderr__ is None:  # no console at all (pythonw): nothing to protect
        yield
        return
    saved = sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__
    _flush(*saved)
    private = [os.dup(1), os.dup(2)]  # os.dup makes descriptors that children do not inherit
    streams = [
        os.fdopen(fd, "w", encoding=old.encoding, errors=old.errors, buffering=1 if old.line_buffering else -1)
        for fd, old in zip(private, saved[2:], strict=True)
    ]
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    sys.stdout = sys.__stdout__ = streams[0]
    sys.stderr = sys.__stderr__ = streams[1]
    try:
        yield
    finally:
        _flush(*streams)
        os.dup2(private[0], 1)
        os.dup2(private[1], 2)
        sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = saved
        for stream in streams:
            stream.close()


@contextlib.contextmanager
def child_output(log: Path | None) -> Iterator[None]:
    """Start child processes inside this: their fds 1 and 2 are `log` (appended) from the start.

    Without a log they inherit this process's fds. Either way `sys.stdout` and `sys.stderr`
    are real files meanwhile: multiprocessing hands the child `sys.stderr.fileno()`, which
    Textual's stand-ins do not have (Textual issue 3593).
    """
    saved = sys.stdout, sys.stderr
    _flush(*saved, sys.__stdout__, sys.__stderr__)
    target = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        target = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    kept = [os.dup(1), os.dup(2)] if target is not None else []
    try:
        if target is not None:
            os.dup2(target, 1)
            os.dup2(target, 2)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - closed below
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.close()
        sys.stdout, sys.stderr = saved
        for fd, original in zip(kept, (1, 2), strict=False):
            os.dup2(fd, original)
            os.close(fd)
        if target is not None:
            os.close(target)


def stdin_hung_up() -> bool:
    """Whether whoever wrote to our stdin is gone (a pipe whose writer closed it). Never reads."""
    try:
        poller = select.poll()
        poller.register(0, select.POLLIN)
        return any(flags & (select.POLLHUP | select.POLLNVAL) for _, flags in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), no stdin
        return False
