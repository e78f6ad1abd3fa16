"""Quality in time: best validation loss on tinyshakespeare after 1, 2, 5 and 10 minutes, and the time to 1.47.

    python benchmarks/quality.py                 # 1, 2, 5 and 10 minutes, ours then the baseline (~40 min)
    python benchmarks/quality.py --budgets 10    # only the 10-minute figure
    python benchmarks/quality.py --steps 1000 --flags "--lr 6e-3" --flags "--ema 0.998"   # a screening run
    python benchmarks/quality.py --smoke         # seconds, on a slice, to keep the script working

Ours is `rnn-tui train --data tinyshakespeare.txt --max-minutes M` with default settings.
The baseline, in the same run and with the same wall-clock budget, is a plain fp32 2x512
nn.LSTM (no dropout, Adam 2e-3, random windows of 64x128), evaluated the same way: mean
cross-entropy in nats per character over the whole validation split (the last 10%).
The time to 1.47 (nanoGPT's baby GPT after 3 minutes on an A100) is the training time,
evaluations included, at the first evaluation at or below it: ours evaluates every
--eval-every steps (default 500), the baseline every 30 s of its training time.

Screening (`--steps N`): budgets in characters, not minutes, so that the figures do not depend
on how busy the machine is. N is steps of the default batch (16 x 64 = 1,024 characters); a
candidate with another batch shape trains for the same number of characters. The defaults run
first, then each `--flags` candidate, in the same run; `--common` flags go to all of them (e.g.
`--threads 1`, which changes the speed but not the loss). Each candidate's cost is its chars/s
against the defaults', measured in-process in interleaved rounds of training steps
(`--speed-rounds`), so that a busy machine slows both alike: per second of wall clock, and per
second of the process's CPU time, which with one thread a busy machine changes least.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import SHAKESPEARE, emit, machine, smoke_corpus, steady_speed, table, train_json, trainer
from baselines import BaselineLSTM, baseline_trainer

from rnn_tui.cli import build_parser, run_spec
from rnn_tui.config import TrainConfig
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


def train_settings(flags: list[str]) -> TrainConfig:
    """The training settings `rnn-tui train FLAGS` would use (on a CPU)."""
    return TrainConfig(**run_spec(build_parser().parse_args(["train", *flags])).train)


def screened(data: Path, chars: int, flags: list[str]) -> dict:
    """One run of `chars` training characters with `flags`: its evaluations and best validation loss."""
    cfg = train_settings(flags)
    steps = max(1, round(chars / (cfg.batch_size * cfg.seq_len)))
    events = train_json("--data", str(data), "--max-steps", str(steps), *flags)
    per_step = cfg.batch_size * cfg.seq_len
    evals = [(e["step"] * per_step, round(e["val_loss"], 4)) for e in events if e["event"] == "eval"]
    reached = [c for c, v in evals if v <= TARGET]
    return {
        "best_val": events[-1]["best_val_loss"],
        "steps": events[-1]["step"],
        "evals": evals,  # (training characters, validation loss)
        "chars_per_s": round(steady_speed(events)),
        "chars_to_target": reached[0] if reached else None,
    }


def paired_speed(
    data: Path, candidates: list[list[str]], rounds: int, steps: int = 10
) -> tuple[list[float], list[float]]:
    """Chars/s of each candidate's training step, in-process, interleaved rounds, median: per second of wall
    clock, and per second of this process's CPU time (with one thread, what another program's load changes least).
    """
    tmp = tempfile.mkdtemp(prefix="rnn-tui-quality-")
    parser = build_parser()
    trainers = []
    for i, flags in enumerate(candidates):
        args = parser.parse_args(["train", "--data", str(data), "--checkpoint-dir", tmp, "--run-name", f"c{i}", *flags])
        t = trainer(run_spec(args))
        for _ in range(3):  # warm-up
            t.train_step()
        trainers.append(t)
    wall: list[list[float]] = [[] for _ in trainers]
    cpu: list[list[float]] = [[] for _ in trainers]
    for _ in range(rounds):
        for i, t in enumerate(trainers):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                t.train_step()
            chars = steps * t.cfg.batch_size * t.cfg.seq_len
            wall[i].append(chars / (time.perf_counter() - start))
            cpu[i].append(chars / (time.process_time() - start_cpu))
    for t in trainers:
        t.close()
    return [statistics.median(s) for s in wall], [statistics.median(s) for s in cpu]


def screen(args: argparse.Namespace, info: dict) -> None:
    """The defaults and each candidate, trained for the same characters; their gain in loss and cost in speed."""
    common = args.common.split()
    candidates = [[]] + [f.split() for f in args.flags if f.strip()]
    speeds, cpu = (
        paired_speed(args.data, [common + c for c in candidates], args.speed_rounds)
        if args.speed_rounds
        else (None, None)
    )
    rows = []
    if args.speed_only and speeds:
        for i, flags in enumerate(candidates):
            name = " ".join(flags) or "(defaults)"
            emit(
                {
                    "bench": "quality_speed",
                    "flags": name,
                    "common": args.common,
                    "chars_per_s": round(speeds[i]),
                    "speed_ratio": round(speeds[i] / speeds[0], 3),
                    "cpu_ratio": round(cpu[i] / cpu[0], 3),
                    **info,
                }
            )
            rows.append((name, f"{speeds[i]:,.0f}", f"{speeds[i] / speeds[0]:.3f}x", f"{cpu[i] / cpu[0]:.3f}x"))
        table(rows, ("candidate", "chars/s", "vs defaults (wall)", "vs defaults (CPU time)"))
        return
    for budget in args.steps:
        chars = budget * TrainConfig().batch_size * TrainConfig().seq_len
        base = None
        for i, flags in enumerate(candidates):
            r = screened(args.data, chars, common + flags)
            base = base or r
            rec = {
                "bench": "quality_screen",
                "chars": chars,
                "default_steps": budget,
                "flags": " ".join(flags) or "(defaults)",
                "common": args.common,
                **r,
                "gain": round(base["best_val"] - r["best_val"], 4),
                "speed_ratio": round(speeds[i] / speeds[0], 3) if speeds else None,
                "paired_chars_per_s": round(speeds[i]) if speeds else None,
                "cpu_ratio": round(cpu[i] / cpu[0], 3) if cpu else None,
                **info,
            }
            emit(rec)
            rows.append(
                (
                    rec["flags"],
                    f"{chars / 1e6:.2f} M",
                    f"{r['best_val']:.4f}",
                    f"{rec['gain']:+.4f}",
                    f"{rec['speed_ratio']:.2f}x / {rec['cpu_ratio']:.2f}x" if speeds else "-",
                    f"{r['chars_per_s']:,}",
                )
            )
    header = (
        "candidate",
        "characters",
        "best val",
        "gain",
        "chars/s vs defaults (wall / CPU time)",
        "chars/s in its run",
    )
    table(rows, header)


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
    p.add_argument(
        "--flags",
        action="append",
        default=[],
        help='extra `rnn-tui train` flags for ours, e.g. "--dropout 0.2"; with --steps, repeat it: one per candidate',
    )
    p.add_argument("--steps", type=int, nargs="+", help="screen: budgets in steps of the default batch (see above)")
    p.add_argument("--common", default="", help="with --steps: flags for the defaults and every candidate")
    p.add_argument("--speed-rounds", type=int, default=3, help="with --steps: interleaved speed rounds (0: none)")
    p.add_argument("--speed-only", action="store_true", help="with --steps: only the interleaved speeds, no runs")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    extra: list[str] = " ".join(args.flags).split()
    base_size = (512, 2, 64, 128)
    if args.smoke:
        args.data = smoke_corpus(args.data)
        args.budgets = [0.05]
        extra += ["--hidden", "32", "--layers", "1", "--batch-size", "8", "--seq-len", "32", "--eval-every", "20"]
        base_size = (32, 1, 8, 32)
    info = machine()
    if args.smoke:  # the screening path too: one tiny candidate against the tiny defaults
        args.common, args.flags, args.steps, args.speed_rounds = " ".join(extra), ["--lr 1e-2"], [4], 1
        screen(args, info)
    elif args.steps:
        screen(args, info)
        return
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
