"""The app while training runs: keystroke to first generated character, event-loop lag, and training speed.

    python benchmarks/app_latency.py                          # default model on tinyshakespeare, ~3 minutes
    python benchmarks/app_latency.py --compare ../wt-before   # this tree and another, interleaved, ~10 minutes
    python benchmarks/app_latency.py --smoke

The app runs headless (Textual's run_test) with the real trainer in its child process, in a
subprocess with the tree first on PYTHONPATH. The user types in bursts, as people do: 20 keys
about 120 ms apart (a fast typist), then reads for 5 seconds. Each key's latency runs from the
key event to the screen refresh that first shows a generated character for the new prompt.
The baseline for training speed is headless `rnn-tui train` of the same tree at the same
settings, in the same run; the ratio is in-app chars/s (over the whole session, bursts and
pauses) over headless chars/s. The throughput during the bursts alone is reported too.

With --compare the two trees' sessions alternate (ABBA, --rounds of each) so that the machine's
drift and other people's jobs fall on both; the figures of each tree pool its rounds, and the
comparison is the ratio of --tree's to --compare's. The probe finds the widgets by id and reads
ConfidenceText's tokens, so it works with the trees before and after the generation engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    ROOT,
    app_arguments,
    app_request,
    emit,
    machine,
    percentile,
    steady_speed,
    table,
    train_json,
    typing_options,
)

SENTENCE = "ROMEO:\nWhat light through yonder window breaks? It is the east, and Juliet is the sun.\n"
RESULT = "app_latency result: "  # the worker's line on stdout


def options(p: argparse.ArgumentParser) -> None:
    typing_options(p, help="seconds of typing per session")
    p.add_argument("--tree", type=Path, default=ROOT, help="the source tree to run (default: this repository)")
    p.add_argument("--compare", type=Path, metavar="PATH", help="a second tree, its sessions interleaved with --tree's")
    p.add_argument("--rounds", type=int, default=2, help="sessions of each tree with --compare (default 2)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one session, in this process


def headless(args, seconds: float, env: dict | None = None) -> float:
    never = "1000000"
    events = train_json("--data", str(args.data), "--max-minutes", str(seconds / 60), "--eval-every", never,
                        "--sample-every", never, *args.flags, env=env)  # fmt: skip
    return steady_speed(events)


async def in_app(args, seconds: float, tmp: str, priority=None) -> dict:
    """Type in bursts into the app for `seconds` while its trainer (scheduled by `priority`, by default the
    app's own choice) trains."""
    from textual import events

    from rnn_tui.events import Progress
    from rnn_tui.priority import APP_TRAINER
    from rnn_tui.runs import plan
    from rnn_tui.session import LocalSession
    from rnn_tui.tui.app import RnnTuiApp

    request = app_request(args, tmp, f"in-app-{time.monotonic_ns()}", eval_every=10**6, sample_every=10**6)
    session = LocalSession(
        plan(request), log_path=Path(tmp) / request.run_name / "train.log", priority=priority or APP_TRAINER
    )
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
            out, prompt = app.query_one("#output"), app.query_one("#prompt")
            while not speeds or not out.tokens:  # trainer up, weights in and a first continuation shown
                await pilot.pause(0.2)
            pending: dict[str, int] = {}  # the prompt after a key -> that key's index in `keys`
            # The method that puts new tokens on screen: `edit` (the engine's incremental messages) or,
            # in the trees before it, `set_tokens`. Either way the widget's tokens and n_prompt say what it shows.
            name = "edit" if hasattr(out, "edit") else "set_tokens"
            show = getattr(out, name)

            def timed(*a, **kw):
                show(*a, **kw)
                if len(out.tokens) > out.n_prompt and pending:
                    text = "".join(t.char for t in out.tokens[: out.n_prompt])
                    if text in pending:
                        pressed = keys[pending.pop(text)]
                        app.call_after_refresh(lambda: latencies.append(time.monotonic() - pressed))

            setattr(out, name, timed)

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
            deadline = time.perf_counter() + 60  # a trainer starved by a loaded host still reports once
            while not speeds and time.perf_counter() < deadline:
                await pilot.pause(0.2)
    finally:
        session.close()
    return {
        "latencies": latencies,
        "lags": lags,
        "chars_per_s": statistics.mean(speeds),
        # No progress during any burst (a very short --smoke session): the whole session's speed stands in.
        "typing_chars_per_s": statistics.mean(typing_speeds or speeds),
    }


def session_in(tree: Path, argv: list[str]) -> dict:
    """One session of typing into `tree`'s app, in a subprocess with the tree first on PYTHONPATH."""
    env = tree_env(tree)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *argv]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        sys.exit(f"app_latency: the session in {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix(RESULT))


def tree_env(tree: Path) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(":")}


def figures(sessions: list[dict], headless_speed: float) -> dict:
    """One tree's figures from its sessions (pooled) and its headless speed."""
    lat = [x * 1e3 for s in sessions for x in s["latencies"]]
    lag = [x * 1e3 for s in sessions for x in s["lags"]]
    app_speed = statistics.mean(s["chars_per_s"] for s in sessions)
    typing_speed = statistics.mean(s["typing_chars_per_s"] for s in sessions)
    return {
        "keystrokes": len(lat),
        "keystroke_p50_ms": round(percentile(lat, 50), 1),
        "keystroke_p95_ms": round(percentile(lat, 95), 1),
        "keystroke_p95_ms_by_session": [round(percentile([x * 1e3 for x in s["latencies"]], 95), 1) for s in sessions],
        "loop_lag_p99_ms": round(percentile(lag, 99), 1),
        "app_chars_per_s": round(app_speed),
        "headless_chars_per_s": round(headless_speed),
        "throughput_ratio": round(app_speed / headless_speed, 3),
        "typing_chars_per_s": round(typing_speed),
        "typing_throughput_ratio": round(typing_speed / headless_speed, 3),
    }


def main() -> None:
    args = app_arguments(__doc__, options, smoke={"seconds": 3, "burst": 5, "read": 0.5, "rounds": 1})
    if args.worker:
        tmp = tempfile.mkdtemp(prefix="rnn-tui-bench-")
        print(RESULT + json.dumps(asyncio.run(in_app(args, args.seconds, tmp))), flush=True)
        return
    trees = [t.resolve() for t in [args.tree, args.compare] if t is not None]
    if len(set(trees)) < len(trees):
        sys.exit("app_latency: --compare names the same tree as --tree")
    argv = ["--seconds", str(args.seconds), "--burst", str(args.burst), "--read", str(args.read)]
    argv += ["--smoke"] if args.smoke else []
    info = machine()
    # Headless before and after the sessions, per tree: the machine drifts.
    speeds: dict[Path, list[float]] = {t: [headless(args, args.seconds / 2, tree_env(t))] for t in trees}
    sessions: dict[Path, list[dict]] = {t: [] for t in trees}
    rounds = args.rounds if args.compare else 1
    for r in range(rounds):
        for t in trees if r % 2 == 0 else trees[::-1]:  # ABBA
            print(f"app_latency: round {r + 1}/{rounds}, {t}", file=sys.stderr, flush=True)
            sessions[t].append(session_in(t, argv))
    for t in trees[::-1]:
        speeds[t].append(headless(args, args.seconds / 2, tree_env(t)))
    recs = {t: figures(sessions[t], statistics.mean(speeds[t])) for t in trees}
    for t in trees:
        emit({"bench": "app", "tree": str(t), "sessions": len(sessions[t]), **recs[t], **info})
    if args.compare:
        a, b = (recs[t] for t in trees)
        emit(
            {
                "bench": "app",
                "compare": [str(t) for t in trees],
                **{
                    f"{k}_ratio": round(a[k] / b[k], 3) if b[k] else None
                    for k in ("keystroke_p50_ms", "keystroke_p95_ms", "loop_lag_p99_ms", "throughput_ratio")
                },
                **info,
            }
        )
    rows = []
    for label, key, target in (
        ("keystroke -> first generated char, p50 (ms)", "keystroke_p50_ms", ""),
        ("keystroke -> first generated char, p95 (ms)", "keystroke_p95_ms", "p95 <= 50"),
        ("event-loop lag, p99 (ms)", "loop_lag_p99_ms", "p99 <= 50"),
        ("training in the app / headless", "throughput_ratio", ">= 0.85"),
        ("  while typing only", "typing_throughput_ratio", ""),
    ):
        values = [recs[t][key] for t in trees]
        ratio = f"{values[0] / values[1]:.2f}" if len(values) == 2 and values[1] else ""
        rows.append((label, *map(str, values), *([ratio] if args.compare else []), target))
    header = ("while training runs", *(t.name for t in trees), *(["ratio"] if args.compare else []), "target")
    table(rows, header)
    for t in trees:
        r = recs[t]
        print(f"{t.name}: {r['keystrokes']} keys; app {r['app_chars_per_s']:,} / headless "
              f"{r['headless_chars_per_s']:,} chars/s", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
