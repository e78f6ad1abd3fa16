"""Generation at batch 4 against batch 1: what the temperatures view (four columns, one batch) costs.

    OPENBLAS_NUM_THREADS=1 python benchmarks/batch.py     # as in the app: one BLAS thread beside the trainer
    python benchmarks/batch.py --smoke

Both are `Generator` (NumPy) on the default model, in the same run: batch 1 is `stream` at one
temperature, batch 4 is `stream_batch` at 0.2, 0.5, 1.0 and 1.5 from the same prompt and seed.
A step of the batch gives four characters, one per column; the target (issue 11) is that a step
at batch 4 costs at most 1.5x a character at batch 1 (`step_ratio`). It also prints the model
step alone (`Stepper.step`, no sampling) at both sizes, and the products' share of it.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from _common import SHAKESPEARE, emit, machine, table, timeit

from rnn_tui.config import ModelConfig, SampleConfig, param_shapes
from rnn_tui.generation import Generator
from rnn_tui.text.vocab import Vocab

TEMPERATURES = (0.2, 0.5, 1.0, 1.5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=ModelConfig(vocab_size=2).hidden)
    p.add_argument("--layers", type=int, default=ModelConfig(vocab_size=2).layers)
    p.add_argument("--chars", type=int, default=1000, help="characters per column")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.hidden, args.layers, args.chars, args.repeat = 32, 1, 40, 1
    text = SHAKESPEARE.read_text() if SHAKESPEARE.exists() else "To be, or not to be: that is the question.\n" * 50
    vocab = Vocab(text)
    cfg = ModelConfig(vocab_size=len(vocab), hidden=args.hidden, layers=args.layers)
    rng = np.random.default_rng(0)  # weights of a realistic scale; their values do not change the cost
    weights = {k: (rng.standard_normal(s) / np.sqrt(s[-1])).astype(np.float32) for k, s in param_shapes(cfg).items()}
    gen = Generator(cfg, vocab, weights)
    prompt = text[:200]
    n = args.chars

    one = timeit(lambda: gen.sample(prompt, SampleConfig(length=n, temperature=1.0, seed=1)), args.repeat) / n * 1e3
    four = (
        timeit(lambda: list(gen.stream_batch(prompt, SampleConfig(length=n, seed=1), TEMPERATURES)), args.repeat)
        / n
        * 1e3
    )

    stepper, steps = gen.stepper, 200
    state1 = stepper.initial_state()
    state4 = [np.repeat(s[None], len(TEMPERATURES), axis=0) for s in state1]
    ids4 = np.arange(1, len(TEMPERATURES) + 1)

    def run(ids, state) -> None:
        for _ in range(steps):
            stepper.step(ids, state)

    step1 = timeit(lambda: run(1, state1), args.repeat) / steps * 1e3
    step4 = timeit(lambda: run(ids4, state4), args.repeat) / steps * 1e3
    info = machine() | {
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "model": f"{cfg.cell} {cfg.layers}x{cfg.hidden}",
        "smoke": args.smoke,
    }
    emit(
        {
            "bench": "batch",
            "ms_per_char_batch1": round(one, 4),
            "ms_per_step_batch4": round(four, 4),
            "ms_per_char_batch4": round(four / len(TEMPERATURES), 4),
            "step_ratio": round(four / one, 3),
            "target_step_ratio": 1.5,
            "model_step_ms_batch1": round(step1, 4),
            "model_step_ms_batch4": round(step4, 4),
            "model_step_ratio": round(step4 / step1, 3),
            **info,
        }
    )
    table(
        [
            ("ms per step (a character per column)", f"{one:.3f}", f"{four:.3f}", f"{four / one:.2f}x"),
            ("model step alone (ms)", f"{step1:.3f}", f"{step4:.3f}", f"{step4 / step1:.2f}x"),
        ],
        ("generation", "batch 1", "batch 4", "batch 4 / batch 1 (target <= 1.5x)"),
    )


if __name__ == "__main__":
    main()
