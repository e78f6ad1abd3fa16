"""How the app's trainer shares the CPU with the screen and with other programs. Torch-free.

The screen must win: the trainer runs at a lower priority than the app. But a user's build
or browser must not stall training for minutes either. A `Priority` says how the trainer's
process is scheduled; `benchmarks/contention.py` measures candidates against each other.

    nice=N      the process's niceness (0 to 19); the kernel gives a nice-19 process about
                1/70 of a core that a nice-0 program also wants
    batch       SCHED_BATCH (Linux): a CPU-bound process that never preempts an interactive one
    threads=N   PyTorch threads in the trainer (default: every core); --threads still wins
    passive     idle OpenMP threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE), so a
                starved thread does not keep its siblings spinning
    adaptive    every core while the others leave them free, one thread while another program
                keeps a core busy (`SharedCpu` watches the machine's load and decides)

Why `adaptive`: at nice 19 with two threads, one busy program on a 2-core machine stalls the
trainer (each step waits for the thread that shares its core, which gets about 1/70 of it),
while one thread alone gives up about a third of the speed on an idle machine.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from rnn_tui.errors import UserError


@dataclass(frozen=True)
class Priority:
    niceness: int = 19
    batch: bool = False
    threads: int | None = None
    passive: bool = False
    adaptive: bool = False

    @classmethod
    def parse(cls, text: str) -> Priority:
        """From e.g. "nice=10,batch,threads=1"; "default" is the app's own choice."""
        if text.strip() == "default":
            return APP_TRAINER
        values: dict = {"niceness": 0}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            try:
                if key == "nice" and 0 <= int(value) <= 19:
                    values["niceness"] = int(value)
                elif key == "threads" and int(value) >= 1:
                    values["threads"] = int(value)
                elif key in ("batch", "passive", "adaptive") and not value:
                    values[key] = True
                else:
                    raise ValueError
            except ValueError:
                raise UserError(
                    f"priority {part!r} is not one of nice=0..19, batch, threads=N, passive, adaptive; "
                    "e.g. nice=19,adaptive"
                ) from None
        return cls(**values)

    def __str__(self) -> str:
        parts = [f"nice={self.niceness}"] + ["batch"] * self.batch
        parts += [f"threads={self.threads}"] * (self.threads is not None) + ["passive"] * self.passive
        parts += ["adaptive"] * self.adaptive
        return ",".join(parts)

    def environment(self) -> dict[str, str]:
        """Variables the process needs before PyTorch loads."""
        return {"OMP_WAIT_POLICY": "PASSIVE"} if self.passive else {}

    def apply(self) -> None:
        """Schedule the calling process this way (where the system allows; silently not elsewhere)."""
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, 0, self.niceness)
        if self.batch:
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


class SharedCpu:
    """How many threads the trainer should use now: all of `most` while the machine is otherwise
    idle, one while other programs keep at least `busy` of a core working.

    Every `interval` seconds it reads the machine's busy time (/proc/stat) and this process's
    own CPU time (`os.times`); the difference is what everything else used. It goes back to
    `most` only after two calm readings in a row, so a short burst does not make it flap.
    Where /proc/stat cannot be read it never changes anything.
    """

    def __init__(self, most: int, interval: float = 2.0, busy: float = 0.5, calm: float = 0.25,
                 stat: Path = Path("/proc/stat")) -> None:  # fmt: skip
        self.most, self.interval, self.busy, self.calm, self.stat = most, interval, busy, calm, stat
        self.current = most
        self.others = 0.0  # cores' worth of CPU that other programs used over the last interval
        self._calm_readings = 0
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        """(wall time, seconds of CPU busy on the whole machine, seconds of CPU this process used)."""
        try:
            fields = self.stat.read_text().split("\n", 1)[0].split()
            ticks = [int(v) for v in fields[1:]]
        except (OSError, ValueError, IndexError):
            return None
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
        own = os.times()
        return time.monotonic(), (sum(ticks[:8]) - idle) / self._hz, own.user + own.system

    def threads(self) -> int | None:
        """The thread count to switch to, when it should change now; else None. Cheap to call every step."""
        if self._last is None or self.most <= 1 or time.monotonic() - self._last[0] < self.interval:
            return None
        now = self._read()
        if now is None:
            return None
        (t0, busy0, own0), (t1, busy1, own1) = self._last, now
        self._last = now
        self.others = max(0.0, (busy1 - busy0) - (own1 - own0)) / max(t1 - t0, 1e-9)
        if self.others >= self.busy:
            self._calm_readings = 0
            want = 1
        elif self.others < self.calm:
            self._calm_readings += 1
            want = self.most if self._calm_readings >= 2 else self.current
        else:  # neither busy nor calm: wait for two calm readings in a row
            self._calm_readings = 0
            want = self.current
        if want == self.current:
            return None
        self.current = want
        return want


# The app's trainer, chosen by measurement (BENCHMARKS.md, "Sharing the CPU").
APP_TRAINER = Priority(niceness=19, adaptive=True)
