"""Shared helpers: machine description, JSON lines and a short table; the app benchmarks' command line."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from rnn_tui.runs import plan

if TYPE_CHECKING:
    from rnn_tui.runs import RunSpec
    from rnn_tui.train.loop import Trainer

# PyTorch is imported where a benchmark needs it, not here: the app-side benchmarks (soak,
# startup) measure a process that must stay torch-free, as the real app's does.

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def smoke_corpus(data: Path = SHAKESPEARE) -> Path:
    """A 60,000-character slice of `data` (or a stand-in where it is absent), for --smoke runs."""
    text = (data.read_text() if data.exists() else "to be or not to be\n" * 5000)[:60_000]
    path = Path(tempfile.mkdtemp(prefix="rnn-tui-smoke-")) / "slice.txt"
    path.write_text(text)
    return path


# The model and text of an app benchmark's --smoke run: a tiny model on a slice of the text.
SMOKE_FLAGS = ["--hidden", "32", "--layers", "1", "--batch-size", "8", "--seq-len", "32", "--eval-chars", "2000"]
MODEL_FLAGS = ("--hidden", "--layers", "--embedding")
TRAIN_FLAGS = ("--batch-size", "--seq-len", "--eval-chars", "--eval-every", "--sample-every", "--checkpoint-every")


def typing_options(p: argparse.ArgumentParser, seconds: float = 60, help: str = "seconds of typing") -> None:
    """The options of a benchmark that types into the app while it trains (benchmarks/app_latency.py)."""
    p.add_argument("--seconds", type=float, default=seconds, help=help)
    p.add_argument("--burst", type=int, default=20, help="keys per burst of typing")
    p.add_argument("--read", type=float, default=5.0, help="seconds of reading after each burst")


def app_arguments(
    doc: str,
    options: Callable[[argparse.ArgumentParser], object],
    smoke: dict,
    smoke_flags: Sequence[str] = (),
    argv: Sequence[str] | None = None,
) -> argparse.Namespace:
    """The command line of a benchmark that runs the app with its trainer (app_latency, contention, soak).

    `options` adds the benchmark's own; --smoke sets `smoke`'s values over them and trains a tiny model
    (SMOKE_FLAGS, then `smoke_flags`) on a slice of the text. `args.flags` are the trainer's flags and
    `args.data` its text.
    """
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    options(p)
    p.add_argument("--smoke", action="store_true", help="a few seconds on a tiny model: does it still run?")
    args = p.parse_args(argv)
    args.flags, args.data = [], SHAKESPEARE
    if args.smoke:
        vars(args).update(smoke)
        args.data = smoke_corpus()
        args.flags = [*SMOKE_FLAGS, *smoke_flags]
    return args


def app_request(args: argparse.Namespace, checkpoint_dir: str, run_name: str, **train: int) -> RunSpec:
    """The run an app benchmark trains: `args.data` with the model and training flags of `args.flags`."""
    flags = dict(zip(args.flags[::2], args.flags[1::2], strict=True))
    model = {k.lstrip("-"): int(v) for k, v in flags.items() if k in MODEL_FLAGS}
    settings = {k.lstrip("-").replace("-", "_"): int(v) for k, v in flags.items() if k in TRAIN_FLAGS}
    return run_spec(str(args.data), checkpoint_dir, run_name, model, settings | train)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": date.today().isoformat(),
        "cpu": cpu,
        "threads": sys.modules["torch"].get_num_threads() if "torch" in sys.modules else len(os.sched_getaffinity(0)),
        "torch": version("torch"),
        "python": platform.python_version(),
    }


def emit(record: dict) -> None:
    """One JSON line per figure, on stdout."""
    print(json.dumps(record), flush=True)


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)), file=sys.stderr)


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def timeit(fn, repeat: int, warmup: int = 1) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_spec(
    data: str | None, checkpoint_dir: str, run_name: str, model: dict | None = None, train: dict | None = None
) -> RunSpec:
    """A run as its flags would ask for it: the text (None: the built-in corpus), then the settings given.
    In a tree from before RunSpec (`--compare` against the tree before the reshape), its RunRequest."""
    try:
        from rnn_tui.config import ModelConfig, Settings, TrainConfig
        from rnn_tui.runs import RunSpec
        from rnn_tui.text.sources import SourceSpec
    except ImportError:
        from rnn_tui.runs import RunRequest

        return RunRequest(
            data=data, checkpoint_dir=checkpoint_dir, run_name=run_name, model=model or {}, train=train or {}
        )
    return RunSpec(
        SourceSpec(data),
        Settings(ModelConfig, model or {}),
        Settings(TrainConfig, train or {}),
        checkpoint_dir,
        run_name,
    )


def trainer(spec: RunSpec) -> Trainer:
    """A ready trainer for `spec`, as `rnn-tui train` would build it."""
    from rnn_tui.train.loop import prepare

    return prepare(plan(spec))


def precisions(device: str = "cpu") -> tuple[str, ...]:
    """The precisions this machine can train in: bf16 only where the hardware multiplies it."""
    from rnn_tui.train.devices import cpu_has_native_bf16

    return ("bf16", "fp32") if device == "cuda" or cpu_has_native_bf16() else ("fp32",)


def train_json(*flags: str, env: dict | None = None) -> list[dict]:
    """Run `rnn-tui train --json FLAGS` (into a throwaway checkpoint folder); return its events.

    With `env` it runs from that folder, so that `env`'s PYTHONPATH alone decides which tree it runs
    (`python -m` puts the working folder first); its paths must then be absolute."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "rnn_tui", "train", "--json", "--checkpoint-dir", tmp, *flags]
        cwd = tmp if env is not None else None
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, cwd=cwd).stdout
    return [json.loads(line) for line in out.splitlines()]


def steady_speed(events: list[dict]) -> float:
    """Mean chars/s of the progress events after the first third (warm-up)."""
    speeds = [e["chars_per_s"] for e in events if e["event"] == "progress"]
    return statistics.mean(speeds[len(speeds) // 3 :])
