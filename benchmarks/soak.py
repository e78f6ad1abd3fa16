"""A long session: the app trains for half an hour while someone types into the playground every few seconds.
Every 30 s it samples both processes' memory (RSS), open files and threads, and the app's queues and histories;
after the warm-up each must stay flat (bounded), or the run fails.

    python benchmarks/soak.py                          # 30 minutes, the default model on tinyshakespeare
    python benchmarks/soak.py --minutes 120 --out soak
    python benchmarks/soak.py --smoke

Writes OUT/soak.jsonl (one sample per line), OUT/soak.svg and, where rsvg-convert is installed, OUT/soak.png.
The baseline is the run's own first sample after the warm-up: the figures are growth from there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import app_arguments, app_request, emit, machine, table

from rnn_tui.runs import plan
from rnn_tui.session import LocalSession
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.playground.playground import Playground
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from rnn_tui.tui.widgets.training.loss_chart import LossChart
from rnn_tui.tui.widgets.training.sample_feed import SampleFeed

PHRASES = ["ROMEO:\n", "What light through yonder window breaks? ", "To be, or not to be", "KING HENRY:\nNow ", "the "]

# What may grow after the warm-up, at most: a leak shows as steady growth beyond these.
LIMITS = {
    "app_rss_mib": 40.0,
    "trainer_rss_mib": 60.0,
    "app_fds": 2,
    "trainer_fds": 2,
    "app_threads": 2,
    "trainer_threads": 2,
}
BOUNDS = {
    "app_queue": 200,
    "session_inbox": 200,
    "events_queue": 200,
    "notifications": 50,
    "workers": 10,
    "sample_feed_lines": 2000,  # SampleFeed's max_lines
    "chart_points": 2 * 4000,  # LossChart's MAX_KEPT per curve
}


def proc_stats(pid: int) -> tuple[float, int, int]:
    """RSS (MiB), open files and threads of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd")), int(fields["Threads"])


def sample(app: RnnTuiApp, session: LocalSession, t0: float) -> dict:
    rss, fds, threads = proc_stats(os.getpid())
    t_rss, t_fds, t_threads = proc_stats(session.pid)
    try:
        events_queue = session._child.events.qsize()  # the child of this start
    except (NotImplementedError, AttributeError):  # macOS has no qsize
        events_queue = -1
    chart = app.query_one(LossChart)
    return {
        "minutes": round((time.monotonic() - t0) / 60, 2),
        "app_rss_mib": round(rss, 1),
        "app_fds": fds,
        "app_threads": threads,
        "trainer_rss_mib": round(t_rss, 1),
        "trainer_fds": t_fds,
        "trainer_threads": t_threads,
        "app_queue": app._message_queue.qsize(),
        "session_inbox": len(session._inbox),
        "events_queue": events_queue,
        "notifications": len(app._notifications),
        "workers": len(app.workers),
        "sample_feed_lines": len(app.query_one(SampleFeed).lines),
        "chart_points": len(chart.train) + len(chart.val),
        "step": app.query_one("#header").step,
    }


async def soak(args, tmp: str) -> list[dict]:
    request = app_request(args, tmp, "soak")
    session = LocalSession(plan(request), log_path=Path(tmp) / "soak" / "train.log")
    app = RnnTuiApp(session)
    rng = random.Random(1)
    samples: list[dict] = []
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            while app.query_one(Playground).weights is None:
                await pilot.pause(0.2)
            t0 = time.monotonic()
            end, next_sample, next_type = t0 + args.minutes * 60, t0, t0
            prompt = app.query_one(PromptArea)
            while time.monotonic() < end:
                now = time.monotonic()
                if now >= next_sample:
                    samples.append(sample(app, session, t0))
                    print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
                    next_sample += args.sample_every
                if now >= next_type:
                    if len(prompt.text) > 300:
                        prompt.clear()
                    for char in rng.choice(PHRASES):
                        await pilot.press("enter" if char == "\n" else char)
                    next_type += args.type_every
                await pilot.pause(0.1)
            samples.append(sample(app, session, t0))
    finally:
        session.close()
    return samples


def verdict(samples: list[dict], warmup: float) -> dict[str, float]:
    """Growth of each figure from the first sample after the warm-up to the mean of the last third."""
    settled = [s for s in samples if s["minutes"] >= warmup] or samples[-1:]
    tail = settled[-max(1, len(settled) // 3) :]
    return {k: round(sum(s[k] for s in tail) / len(tail) - settled[0][k], 2) for k in LIMITS}


def plot(samples: list[dict], out: Path) -> None:
    """An SVG with one panel per group of figures (and a PNG from it where rsvg-convert is installed)."""
    panels = [
        ("memory (MiB)", ["app_rss_mib", "trainer_rss_mib"]),
        ("open files", ["app_fds", "trainer_fds"]),
        ("threads", ["app_threads", "trainer_threads"]),
        ("queues", ["app_queue", "events_queue", "session_inbox", "notifications", "workers"]),
        ("histories (bounded)", ["sample_feed_lines", "chart_points"]),
    ]
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    w, h, pad = 900, 220, 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h * len(panels)}" font-family="sans-serif"'
             ' font-size="12"><rect width="100%" height="100%" fill="white"/>']  # fmt: skip
    xs = [s["minutes"] for s in samples]
    x0, x1 = min(xs), max(xs) or 1
    for i, (title, keys) in enumerate(panels):
        top = i * h
        ys = [s[k] for s in samples for k in keys]
        y0, y1 = min(0, min(ys)), max(ys) * 1.1 or 1

        def px(x, y, top=top, y0=y0, y1=y1):
            return pad + (x - x0) / ((x1 - x0) or 1) * (w - 2 * pad), top + h - pad + (y0 - y) / (y1 - y0) * (
                h - 2 * pad
            )

        parts.append(f'<text x="{pad}" y="{top + 20}" font-weight="bold">{title}</text>')
        parts.append(f'<line x1="{pad}" y1="{top + h - pad}" x2="{w - pad}" y2="{top + h - pad}" stroke="#888"/>')
        parts.append(f'<line x1="{pad}" y1="{top + pad}" x2="{pad}" y2="{top + h - pad}" stroke="#888"/>')
        parts.append(f'<text x="{pad - 5}" y="{top + pad + 4}" text-anchor="end">{y1:.0f}</text>')
        parts.append(f'<text x="{pad - 5}" y="{top + h - pad + 4}" text-anchor="end">{y0:.0f}</text>')
        parts.append(f'<text x="{w - pad}" y="{top + h - pad + 16}" text-anchor="end">{x1:.1f} min</text>')
        for j, key in enumerate(keys):
            points = " ".join("{:.1f},{:.1f}".format(*px(s["minutes"], s[key])) for s in samples)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colours[j]}" stroke-width="2"/>')
            parts.append(f'<text x="{w - pad - 150}" y="{top + 20 + 14 * j}" fill="{colours[j]}">{key}</text>')
    parts.append("</svg>")
    (out / "soak.svg").write_text("\n".join(parts))
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", str(out / "soak.svg"), "-o", str(out / "soak.png")], check=True)


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--warmup", type=float, default=5, help="minutes before the figures must stay flat")
    p.add_argument("--sample-every", type=float, default=30, help="seconds")
    p.add_argument("--type-every", type=float, default=3, help="seconds between bursts of typing")
    p.add_argument("--out", type=Path, default=Path("soak"))


def main() -> None:
    args = app_arguments(
        __doc__,
        options,
        smoke={"minutes": 0.15, "warmup": 0.05, "sample_every": 2, "type_every": 1},
        smoke_flags=["--eval-every", "100", "--sample-every", "50", "--checkpoint-every", "200"],
    )
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="rnn-tui-soak-")
    samples = asyncio.run(soak(args, tmp))
    info = machine()
    with open(args.out / "soak.jsonl", "w") as fh:
        for s in samples:
            fh.write(json.dumps(s) + "\n")
    plot(samples, args.out)
    growth = verdict(samples, args.warmup)
    peaks = {k: max(s[k] for s in samples) for k in BOUNDS}
    flat = all(growth[k] <= LIMITS[k] for k in LIMITS) and all(peaks[k] <= BOUNDS[k] for k in BOUNDS)
    emit({"bench": "soak", "minutes": args.minutes, "samples": len(samples), "steps": samples[-1]["step"],
          "growth_after_warmup": growth, "peaks": peaks, "flat": flat, **info})  # fmt: skip
    rows = [(k, f"{samples[0][k]}", f"{samples[-1][k]}", f"{growth[k]:+}", f"<= {LIMITS[k]}") for k in LIMITS]
    rows += [(k, f"{samples[0][k]}", f"{samples[-1][k]}", f"peak {peaks[k]}", f"<= {BOUNDS[k]}") for k in BOUNDS]
    table(rows, ("figure", "first", "last", "growth after warm-up", "allowed"))
    print(f"figures and plot in {args.out}/", file=sys.stderr)
    if not flat and not args.smoke:  # a smoke run is too short for a verdict
        sys.exit("soak: a figure kept growing after the warm-up (see the table)")


if __name__ == "__main__":
    main()
