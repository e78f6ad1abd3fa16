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
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from rnn_tui.errors import UserError


@dataclass(frozen=True)
class Priority:
    niceness: int = 19
    batch: bool = False
    threads: int | None = None
    passive: bool = False

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
                elif key in ("batch", "passive") and not value:
                    values[key] = True
                else:
                    raise ValueError
            except ValueError:
                raise UserError(
                    f"priority {part!r} is not one of nice=0..19, batch, threads=N, passive; e.g. nice=10,threads=1"
                ) from None
        return cls(**values)

    def __str__(self) -> str:
        parts = [f"nice={self.niceness}"] + ["batch"] * self.batch
        parts += [f"threads={self.threads}"] * (self.threads is not None) + ["passive"] * self.passive
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


# The app's trainer. To be chosen by measurement (BENCHMARKS.md, "Sharing the CPU").
APP_TRAINER = Priority(niceness=19)
