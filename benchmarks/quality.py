"""Quality in time: best validation loss on tinyshakespeare after 1, 2, 5 and 10 minutes, and the time to 1.47.

    python benchmarks/quality.py                 # 1, 2, 5 and 10 minutes, ours then the baseline (~40 min)
    python benchmarks/quality.py --budgets 10    # only the 10-minute figure
    python benchmarks/quality.py --smoke         # seconds, on a slice, to keep the script working

Ours is `rnn-tui train --data tinyshakespeare.txt --max-minutes M` with default settings.
The baseline, in the same run and with the same wall-clock budget, is a plain fp32 2x512
nn.LSTM (no dropout, Adam 2e-3, random windows of 64x128), evaluated the same way: mean
cross-entropy in nats per character over the whole validation split (the last 10%).
The time to 1.47 (nanoGPT's baby GPT after 3 minutes on an A100) is the training time,
evaluations included, at the first evaluation at or below it: ours evaluates every
--eval-every steps (default 500), the baseline every 30 s of its training time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import SHAKESPEARE, emit, machine, smoke_corpus, steady_speed, table, train_json
from baselines import BaselineLSTM, baseline_trainer

from rnn_tui.text.batches import eval_streams
from rnn_tui.text.corpus import load_corpus
from rnn_tui.text.sources import file_source

TARGET = 1.47
BASELINE_EVAL_SECONDS = 30.0


def ours(data: Path, minutes: float, extra: list[str]) -> dict:
    events = train_json("--data", str(data), "--max-minutes", str(minutes), *extra)
    done = events[-1]
    reached = [e["elapsed"] for e in events if e["event"] == "eval" and e["val_loss"] <= TARGET]
    return {
        "best_val": done["best_val_loss"],
        "steps": done["step"],
        "chars_per_s": round(steady_speed(events)),
        "time_to_target": round(reached[0], 1) if reached else None,
    }


@torch.no_grad()
def evaluate(model, vx: torch.Tensor, vy: torch.Tensor) -> float:
    total, state = 0.0, None
    for i in range(0, vx.shape[1], 512):
        logits, state = model(vx[:, i : i + 512], state)
        total += F.cross_entropy(logits.flatten(0, 1), vy[:, i : i + 512].flatten(), reduction="sum").item()
    return total / vy.numel()


def baseline(data: Path, minutes: float, hidden: int, layers: int, batch: int, seq: int) -> dict:
    corpus = load_corpus(file_source(data))
    train, val = corpus.split(0.1)
    vx, vy = (torch.from_numpy(a) for a in eval_streams(val, 200_000))
    torch.manual_seed(0)
    model = BaselineLSTM(len(corpus.vocab), hidden, layers)
    step = baseline_trainer(model)
    rng = np.random.default_rng(0)
    train_t = torch.from_numpy(np.asarray(train, dtype=np.int64))
    budget, spent, steps, best, reached = minutes * 60, 0.0, 0, float("inf"), None
    every = min(BASELINE_EVAL_SECONDS, budget / 4)
    next_eval = every
    while spent < budget:
        t = time.perf_counter()
        ix = torch.from_numpy(rng.integers(0, len(train_t) - seq - 1, batch))
        window = train_t[ix[:, None] + torch.arange(seq + 1)]
        step(window[:, :-1], window[:, 1:])
        steps += 1
        spent += time.perf_counter() - t
        if spent >= next_eval or spent >= budget:  # evaluations count towards the budget, as ours do
            t = time.perf_counter()
            model.eval()
            best = min(best, evaluate(model, vx, vy))
            model.train()
            spent += time.perf_counter() - t
            next_eval += every
            if reached is None and best <= TARGET:
                reached = round(spent, 1)
    return {
        "best_val": best,
        "steps": steps,
        "chars_per_s": round(steps * batch * seq / spent),
        "time_to_target": reached,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budgets", type=float, nargs="+", default=[1, 2, 5, 10], help="minutes")
    p.add_argument("--data", type=Path, default=SHAKESPEARE)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--flags", default="", help='extra `rnn-tui train` flags for ours, e.g. "--dropout 0.2"')
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    extra: list[str] = args.flags.split()
    base_size = (512, 2, 64, 128)
    if args.smoke:
        args.data = smoke_corpus(args.data)
        args.budgets = [0.05]
        extra += ["--hidden", "32", "--layers", "1", "--batch-size", "8", "--seq-len", "32", "--eval-every", "20"]
        base_size = (32, 1, 8, 32)
    info = machine()
    rows = []
    for minutes in args.budgets:
        ours_r = ours(args.data, minutes, extra)
        base_r = None if args.no_baseline else baseline(args.data, minutes, *base_size)
        rec = {
            "bench": "quality",
            "minutes": minutes,
            "ours_best_val": round(ours_r["best_val"], 4),
            "ours_steps": ours_r["steps"],
            "ours_chars_per_s": ours_r["chars_per_s"],
            "ours_flags": args.flags or "(defaults)",
            "ours_time_to_1.47_s": ours_r["time_to_target"],
            **info,
        }
        if base_r:
            rec.update(
                {
                    "baseline_best_val": round(base_r["best_val"], 4),
                    "baseline_steps": base_r["steps"],
                    "baseline_chars_per_s": base_r["chars_per_s"],
                    "ratio_val": round(ours_r["best_val"] / base_r["best_val"], 4),
                    "baseline_time_to_1.47_s": base_r["time_to_target"],
                }
            )
        emit(rec)
        rows.append(
            (
                f"{minutes:g} min",
                f"{ours_r['best_val']:.4f}",
                f"{ours_r['steps']:,}",
                f"{base_r['best_val']:.4f}" if base_r else "-",
                f"{base_r['steps']:,}" if base_r else "-",
                _reached(ours_r),
                _reached(base_r) if base_r else "-",
            )
        )
    table(
        rows,
        (
            "budget",
            "ours: best val",
            "ours: steps",
            "baseline: best val",
            "baseline: steps",
            "ours: 1.47 at",
            "baseline",
        ),
    )


def _reached(result: dict) -> str:
    t = result["time_to_target"]
    return "not reached" if t is None else f"{t:.0f} s"


if __name__ == "__main__":
    main()
