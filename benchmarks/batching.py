"""Carrying the hidden state across consecutive batches (truncated BPTT) against random windows.

    python benchmarks/batching.py              # the default model, 1500 steps each (~7 min here)
    python benchmarks/batching.py --smoke

Both train the same model from the same seed for the same number of steps (so the same
characters and, on one machine, the same time) and are evaluated the same way; the baseline
is random windows, nanoGPT's way, and the ratio is tbptt / random validation loss.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import SHAKESPEARE, emit, machine, run_spec, table, trainer


def run(mode: str, steps: int, evals: int, tmp: str, smoke: bool) -> tuple[list[tuple[int, float]], float]:
    model = {"hidden": 32, "layers": 1} if smoke else {}
    train = {
        "batching": mode,
        "max_steps": steps,
        "eval_every": 10**9,
        "sample_every": 10**9,
        "checkpoint_every": 10**9,
    }
    if smoke:
        train |= {"batch_size": 4, "seq_len": 16, "eval_chars": 2000}
    t = trainer(run_spec(str(SHAKESPEARE) if SHAKESPEARE.exists() else None, tmp, mode, model, train))
    curve = []
    start = time.perf_counter()
    for i in range(1, steps + 1):
        t.train_step()
        if i % (steps // evals) == 0:
            curve.append((i, t.evaluate()))
    return curve, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--evals", type=int, default=5)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.steps, args.evals = 8, 2
    tmp = tempfile.mkdtemp(prefix="rnn-tui-bench-")
    info = machine()
    curves = {}
    for mode in ("random", "tbptt"):
        curves[mode], seconds = run(mode, args.steps, args.evals, tmp, args.smoke)
        emit(
            {
                "bench": "batching",
                "mode": mode,
                "steps": args.steps,
                "seconds": round(seconds, 1),
                "val_curve": [[s, round(v, 4)] for s, v in curves[mode]],
                **info,
            }
        )
    final = {m: c[-1][1] for m, c in curves.items()}
    emit(
        {
            "bench": "batching",
            "ratio_val_tbptt_over_random": round(final["tbptt"] / final["random"], 4),
            "winner": min(final, key=final.get),
            **info,
        }
    )
    table(
        [(str(s), f"{r:.4f}", f"{b:.4f}") for (s, r), (_, b) in zip(curves["random"], curves["tbptt"], strict=True)],
        ("step", "random windows", "tbptt (carried state)"),
    )


if __name__ == "__main__":
    main()
