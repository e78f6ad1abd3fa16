"""The app while training runs: keystroke to first generated character, event-loop lag, and training speed.

    python benchmarks/app_latency.py            # default model on tinyshakespeare, ~3 minutes
    python benchmarks/app_latency.py --smoke

The app runs headless (Textual's run_test) with the real trainer in its child process.
The user types in bursts, as people do: 20 keys about 120 ms apart (a fast typist), then
reads for 5 seconds. Each key's latency runs from the key event to the screen refresh that
first shows a generated character for the new prompt. The baseline for training speed is
headless `rnn-tui train` at the same settings, in the same run; the ratio is in-app chars/s
(over the whole session, bursts and pauses) over headless chars/s. The throughput during
the bursts alone is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from _common import SHAKESPEARE, emit, machine, percentile, run_spec, smoke_corpus, steady_speed, table, train_json
from textual import events

from rnn_tui.events import Progress
from rnn_tui.priority import APP_TRAINER, Priority
from rnn_tui.runs import plan
from rnn_tui.session import LocalSession
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.playground.playground import Playground
from rnn_tui.tui.widgets.playground.prompt import PromptArea

SENTENCE = "ROMEO:\nWhat light through yonder window breaks? It is the east, and Juliet is the sun.\n"


def headless(args, seconds: float) -> float:
    never = "1000000"
    events = train_json("--data", str(args.data), "--max-minutes", str(seconds / 60), "--eval-every", never,
                        "--sample-every", never, *args.flags)  # fmt: skip
    return steady_speed(events)


async def in_app(args, seconds: float, tmp: str, priority: Priority = APP_TRAINER) -> dict:
    """Type in bursts into the app for `seconds` while its trainer (scheduled by `priority`) trains."""
    flags = dict(zip(args.flags[::2], args.flags[1::2], strict=True))
    model = {k.lstrip("-"): int(v) for k, v in flags.items() if k in ("--hidden", "--layers", "--embedding")}
    train = {
        k.lstrip("-").replace("-", "_"): int(v)
        for k, v in flags.items()
        if k in ("--batch-size", "--seq-len", "--eval-chars")
    }
    request = run_spec(
        str(args.data),
        tmp,
        f"in-app-{time.monotonic_ns()}",
        model,
        {**train, "eval_every": 10**6, "sample_every": 10**6},
    )
    session = LocalSession(plan(request), log_path=Path(tmp) / request.run_name / "train.log", priority=priority)
    speeds: list[float] = []
    typing_speeds: list[float] = []
    poll = session.poll

    def spying_poll():
        msgs = poll()
        speeds.extend(m.chars_per_s for m in msgs if isinstance(m, Progress))
        return msgs

    session.poll = spying_poll
    latencies: list[float] = []
    lags: list[float] = []
    keys: list[float] = []  # when each key event was made (Textual's clock: monotonic)

    def hook(message) -> None:
        if isinstance(message, events.Key):
            keys.append(message.time)

    app = RnnTuiApp(session)
    try:
        async with app.run_test(size=(160, 48), message_hook=hook) as pilot:
            while not speeds or app.query_one(Playground).generator is None:  # trainer up, weights in
                await pilot.pause(0.2)
            out = app.query_one(ConfidenceText)
            prompt = app.query_one(PromptArea)
            pending: dict[str, int] = {}  # the prompt after a key -> that key's index in `keys`
            set_tokens = out.set_tokens

            def timed_set_tokens(prompt_tokens, generated):
                set_tokens(prompt_tokens, generated)
                text = "".join(t.char for t in prompt_tokens)
                if generated and text in pending:
                    pressed = keys[pending.pop(text)]
                    app.call_after_refresh(lambda: latencies.append(time.monotonic() - pressed))

            out.set_tokens = timed_set_tokens

            async def probe():
                while True:
                    t = time.perf_counter()
                    await asyncio.sleep(0.01)
                    lags.append(time.perf_counter() - t - 0.01)

            prober = asyncio.ensure_future(probe())
            speeds.clear()
            end = time.perf_counter() + seconds
            i = 0
            while time.perf_counter() < end:
                burst_start = len(speeds)
                for _ in range(args.burst):
                    char = SENTENCE[i % len(SENTENCE)]
                    if i % len(SENTENCE) == 0:
                        prompt.clear()
                    pending[prompt.text + char] = len(keys)
                    await pilot.press("enter" if char == "\n" else char)
                    await pilot.pause(0.12)
                    i += 1
                typing_speeds.extend(speeds[burst_start:])
                await pilot.pause(args.read)
            prober.cancel()
    finally:
        session.close()
    return {
        "latencies": latencies,
        "lags": lags,
        "chars_per_s": statistics.mean(speeds),
        "typing_chars_per_s": statistics.mean(typing_speeds),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--burst", type=int, default=20, help="keys per burst of typing")
    p.add_argument("--read", type=float, default=5.0, help="seconds of reading after each burst")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    args.flags, args.data = [], SHAKESPEARE
    if args.smoke:
        args.data = smoke_corpus()
        args.seconds, args.burst, args.read = 3, 5, 0.5
        args.flags = ["--hidden", "32", "--layers", "1", "--batch-size", "8", "--seq-len", "32", "--eval-chars", "2000"]
    tmp = tempfile.mkdtemp(prefix="rnn-tui-bench-")
    info = machine()
    before = headless(args, args.seconds / 2)  # the baseline before and after: the machine drifts
    app = asyncio.run(in_app(args, args.seconds, tmp))
    base = (before + headless(args, args.seconds / 2)) / 2
    lat = [x * 1e3 for x in app["latencies"]]
    lag = [x * 1e3 for x in app["lags"]]
    rec = {
        "bench": "app",
        "keystrokes": len(lat),
        "keystroke_p50_ms": round(percentile(lat, 50), 1),
        "keystroke_p95_ms": round(percentile(lat, 95), 1),
        "loop_lag_p99_ms": round(percentile(lag, 99), 1),
        "app_chars_per_s": round(app["chars_per_s"]),
        "headless_chars_per_s": round(base),
        "throughput_ratio": round(app["chars_per_s"] / base, 3),
        "typing_chars_per_s": round(app["typing_chars_per_s"]),
        "typing_throughput_ratio": round(app["typing_chars_per_s"] / base, 3),
        **info,
    }
    emit(rec)
    table(
        [
            (
                "keystroke -> first generated char (ms)",
                f"p50 {rec['keystroke_p50_ms']}",
                f"p95 {rec['keystroke_p95_ms']}",
                "target p95 <= 50",
            ),
            ("event-loop lag (ms)", "", f"p99 {rec['loop_lag_p99_ms']}", "target p99 <= 50"),
            (
                "  while typing only, app / headless",
                f"{rec['typing_chars_per_s']:,} / {rec['headless_chars_per_s']:,}",
                f"{rec['typing_throughput_ratio']:.2f}",
                "",
            ),
            (
                "training chars/s, app / headless",
                f"{rec['app_chars_per_s']:,} / {rec['headless_chars_per_s']:,}",
                f"{rec['throughput_ratio']:.2f}",
                "target >= 0.85",
            ),
        ],
        ("while training runs", "", "", ""),
    )


if __name__ == "__main__":
    main()
