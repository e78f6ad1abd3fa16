"""Fine-tuning a shipped model against training from scratch, with the same wall-clock budget, in one run.

    python benchmarks/finetune.py                         # War and Peace (the cached corpus), 5 minutes each
    python benchmarks/finetune.py --data book.txt --minutes 5 --threads 1
    python benchmarks/finetune.py --smoke                 # seconds, on a slice, to keep the script working

Both are `rnn-tui train --max-minutes M` on the same text with its last 10 % as validation: one with
`--init-from pretrained:shakespeare` (lr 1e-3, the fine-tuning default), one from random weights with the
default settings. Each evaluates every --eval-every steps; the figure at T minutes is the best validation
loss (nats/char) of the evaluations within T minutes of training (evaluations included), so both runs follow
their own schedule over the whole budget and are read at 1, 2 and 5 minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from _common import SHAKESPEARE, SMOKE_FLAGS, emit, machine, smoke_corpus, table, train_json

from rnn_tui.text.downloads import NAMED, is_cached, named_path


def best_within(events: list[dict], seconds: float) -> float | None:
    """The lowest validation loss of the evaluations at or before `seconds` of training."""
    losses = [e["val_loss"] for e in events if e["event"] == "eval" and e["elapsed"] <= seconds]
    return min(losses) if losses else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="the text (default: the cached war-and-peace corpus)")
    p.add_argument("--init-from", default="pretrained:shakespeare", help="the model to fine-tune")
    p.add_argument("--minutes", type=float, default=5.0, help="each run's budget (default 5)")
    p.add_argument("--at", type=float, nargs="+", default=[1, 2, 5], help="minutes to read the loss at")
    p.add_argument("--threads", default="1", help="training threads (default 1: steady on a shared machine)")
    p.add_argument("--eval-every", default="50", help="steps between evaluations (default 50)")
    p.add_argument("--smoke", action="store_true", help="a few seconds on a slice, with a tiny model to start from")
    args = p.parse_args()
    common = ["--threads", args.threads, "--eval-every", args.eval_every, "--max-minutes", f"{args.minutes:g}"]
    common += ["--sample-every", "100000", "--checkpoint-every", "100000"]
    source, scratch = ["--init-from", args.init_from], []
    if args.smoke:  # a tiny model of its own to start from, on a slice
        data = smoke_corpus(args.data or SHAKESPEARE)
        base = data.parent / "checkpoints"
        tiny = [*SMOKE_FLAGS, "--max-steps", "10", "--threads", "1", "--checkpoint-dir", str(base)]
        cmd = [sys.executable, "-m", "rnn_tui", "train", "--data", str(data), *tiny, "--run-name", "base"]
        subprocess.run(cmd, check=True, capture_output=True)
        common += ["--max-steps", "20", "--eval-every", "10"]
        source = ["--init-from", str(base / "base"), *SMOKE_FLAGS[4:]]  # its shape; a small batch
        scratch = SMOKE_FLAGS
    elif args.data:
        data = args.data
    elif is_cached(NAMED["war-and-peace"]):
        data = named_path(NAMED["war-and-peace"])
    else:
        raise SystemExit(
            "war-and-peace is not cached here (rnn-tui train --corpus war-and-peace fetches it); "
            "give another text with --data"
        )
    common = ["--data", str(data), *common]
    where = machine()
    print(f"text: {data} ({data.stat().st_size:,} bytes); {where}", file=sys.stderr)
    tuned = train_json(*common, *source)
    fresh = train_json(*common, *scratch)
    rows = []
    for minutes in args.at:
        a, b = best_within(tuned, minutes * 60), best_within(fresh, minutes * 60)
        rows.append((f"{minutes:g} min", "-" if a is None else f"{a:.4f}", "-" if b is None else f"{b:.4f}"))
        emit({"bench": "finetune", "minutes": minutes, "fine_tuned": a, "from_scratch": b, "data": str(data), **where})
    table(rows, ("budget", f"from {args.init_from}: best val", "from scratch: best val"))
    for name, events in (("fine-tuned", tuned), ("from scratch", fresh)):
        done = next(e for e in events if e["event"] == "done")
        print(f"{name}: {done['step']:,} steps in {done['elapsed']:.0f} s, best val {done['best_val_loss']}")


if __name__ == "__main__":
    main()
