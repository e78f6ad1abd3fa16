"""A process's CPU, threads and memory, from /proc (Linux); None elsewhere. Torch-free.

The trainer samples itself about once a second and sends the figures with its progress
events; the app reads its own memory the same way.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    cpu_percent: float | None  # of one core since the last sample: 200 is two cores busy
    threads: int | None
    rss_mb: float | None


def _stat(pid: int | str) -> tuple[float, int, float] | None:
    """(CPU seconds used, threads, resident MB) of a process, or None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # after the command name, which may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of proc(5))
    return cpu, int(fields[17]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20  # num_threads, rss


class ProcessUsage:
    """Samples a process ("self" by default); the CPU share is over the time since the previous sample."""

    def __init__(self, pid: int | str = "self") -> None:
        self.pid = pid
        self._last: tuple[float, float] | None = None  # (wall clock, CPU seconds)

    def sample(self) -> Usage:
        stat = _stat(self.pid)
        if stat is None:
            return Usage(None, None, None)
        cpu, threads, rss = stat
        now = time.monotonic()
        percent = None
        if self._last is not None and now > self._last[0]:
            percent = round(100 * (cpu - self._last[1]) / (now - self._last[0]), 1)
        self._last = (now, cpu)
        return Usage(percent, threads, round(rss, 1))


def rss_mb(pid: int | str = "self") -> float | None:
    """A process's resident memory in MB, or None without /proc."""
    stat = _stat(pid)
    return None if stat is None else round(stat[2], 1)
