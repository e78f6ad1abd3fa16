"""The trainer beside another busy program: training throughput with and without one competing CPU-bound job,
headless and in the app (with keystroke latency and event-loop lag), for candidate trainer priorities.

    python benchmarks/contention.py                       # the candidates below, default model, ~30 minutes
    python benchmarks/contention.py --candidates nice=19 nice=10 nice=19,threads=1 --seconds 60
    python benchmarks/contention.py --smoke

A candidate says how the trainer is scheduled (rnn_tui/priority.py): `nice=N`, `batch` (SCHED_BATCH),
`threads=N` (PyTorch threads), `passive` (OpenMP threads sleep when idle). The competitor is one
single-threaded busy loop at normal priority, like a build or a browser tab. The baseline, in the
same run, is headless `rnn-tui train` at normal priority with the machine to itself; every
throughput is reported as a ratio to it. In the app the user types in bursts (benchmarks/app_latency.py)
and the keystroke latency and loop lag must stay within the app's targets (p95 <= 50 ms, p99 <= 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile

from _common import app_arguments, emit, machine, percentile, steady_speed, table, typing_options
from app_latency import in_app

from rnn_tui.priority import Priority

CANDIDATES = ["nice=19,adaptive", "nice=19", "nice=10", "nice=19,threads=1", "nice=10,passive", "nice=10,batch"]
BUSY = "while True: pass"


@contextlib.contextmanager
def competitor(on: bool):
    """One CPU-bound process at normal priority for the duration, or nothing."""
    if not on:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def headless(args, seconds: float, priority: Priority | None) -> float:
    """Steady chars/s of `rnn-tui train` scheduled by `priority` (None: as the user starts it)."""
    never = "1000000"
    flags = ["--data", str(args.data), "--max-minutes", str(seconds / 60), "--eval-every", never,
             "--sample-every", never, "--checkpoint-every", never, *args.flags]  # fmt: skip
    if priority is not None and priority.threads is not None:
        flags += ["--threads", str(priority.threads)]
    env = {**os.environ, **(priority.environment() if priority else {})}
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-m", "rnn_tui", "train", "--json", "--checkpoint-dir", tmp, *flags],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            preexec_fn=priority.apply if priority else None,
        ).stdout
    return steady_speed([json.loads(line) for line in out.splitlines()])


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--candidates", nargs="+", default=CANDIDATES, help="trainer priorities to compare")
    typing_options(p, help="seconds per measurement")


def main() -> None:
    args = app_arguments(__doc__, options, smoke={"seconds": 2, "burst": 5, "read": 0.5})
    if args.smoke and args.candidates == CANDIDATES:
        args.candidates = args.candidates[:1]
    candidates = [Priority.parse(c) for c in args.candidates]
    info = machine()
    tmp = tempfile.mkdtemp(prefix="rnn-tui-bench-")
    base = headless(args, args.seconds, None)
    emit({"bench": "contention", "mode": "baseline", "chars_per_s": round(base), **info})
    rows = []
    for priority in candidates:
        for busy in (True,) if args.smoke else (False, True):  # a smoke run checks the harder path only
            with competitor(busy):
                speed = headless(args, args.seconds, priority)
            rec = {"bench": "contention", "candidate": str(priority), "mode": "headless", "competitor": busy,
                   "chars_per_s": round(speed), "ratio": round(speed / base, 3), **info}  # fmt: skip
            emit(rec)
            rows.append(
                (str(priority), "headless", "yes" if busy else "no", f"{speed:,.0f}", f"{speed / base:.2f}", "", "")
            )
            with competitor(busy):
                app = asyncio.run(in_app(args, args.seconds, tmp, priority))
            lat = [x * 1e3 for x in app["latencies"]]
            lag = [x * 1e3 for x in app["lags"]]
            rec = {
                "bench": "contention",
                "candidate": str(priority),
                "mode": "app",
                "competitor": busy,
                "chars_per_s": round(app["chars_per_s"]),
                "ratio": round(app["chars_per_s"] / base, 3),
                "keystroke_p95_ms": round(percentile(lat, 95), 1) if lat else None,
                "loop_lag_p99_ms": round(percentile(lag, 99), 1) if lag else None,
                **info,
            }
            emit(rec)
            rows.append(
                (
                    str(priority),
                    "app",
                    "yes" if busy else "no",
                    f"{app['chars_per_s']:,.0f}",
                    f"{rec['ratio']:.2f}",
                    f"{rec['keystroke_p95_ms']}",
                    f"{rec['loop_lag_p99_ms']}",
                )
            )
    table(rows, ("trainer", "where", "competitor", "chars/s", "÷ alone", "key p95 ms", "lag p99 ms"))
    print(f"baseline: headless at normal priority, machine to itself: {base:,.0f} chars/s", file=sys.stderr)


if __name__ == "__main__":
    main()
