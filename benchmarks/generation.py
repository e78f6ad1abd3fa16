"""Generation at batch 1: ms per character, priming a 200-character prompt, and the cost of a keystroke.

    python benchmarks/generation.py                          # the default model
    OPENBLAS_NUM_THREADS=1 python benchmarks/generation.py   # as in the app, beside the trainer
    python benchmarks/generation.py --smoke

Ours is `Generator` (NumPy, prompt states cached). The baseline, in the same run, is the
plain way with PyTorch: `nn.LSTM` fed the prime in one call, then one call per character.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from _common import SHAKESPEARE, emit, machine, table, timeit
from baselines import BaselineLSTM, baseline_sample

from rnn_tui.config import ModelConfig
from rnn_tui.generation import Generator
from rnn_tui.text.vocab import Vocab
from rnn_tui.train.model import CharRNN


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=ModelConfig(vocab_size=2).hidden)
    p.add_argument("--layers", type=int, default=ModelConfig(vocab_size=2).layers)
    p.add_argument("--chars", type=int, default=2000)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.hidden, args.layers, args.chars = 32, 1, 50
    torch.set_grad_enabled(False)
    text = SHAKESPEARE.read_text() if SHAKESPEARE.exists() else "To be, or not to be: that is the question.\n" * 50
    vocab = Vocab(text)
    prompt = text[:200]
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=len(vocab), hidden=args.hidden, layers=args.layers)
    model = CharRNN(cfg).eval()
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    gen = Generator(cfg, vocab, weights)
    base = BaselineLSTM(len(vocab), args.hidden, args.layers, cfg.embedding).eval()
    prime_ids = torch.from_numpy(vocab.encode(prompt).astype(np.int64))

    ms_ours = timeit(lambda: gen.sample(prompt, args.chars, 1.0, seed=1), 3) / args.chars * 1e3
    ms_base = timeit(lambda: baseline_sample(base, prime_ids[:1], args.chars), 3) / args.chars * 1e3

    def fresh_prime():
        gen.set_weights(weights)  # empties the prompt cache
        gen.score(prompt)

    prime_ours = timeit(fresh_prime, 10) * 1e3 - timeit(lambda: gen.set_weights(weights), 10) * 1e3
    prime_base = timeit(lambda: base(prime_ids[None]), 10) * 1e3

    def keystroke():  # the prompt is cached; one more character, then the first generated one
        gen.score(prompt)
        next(gen.stream(prompt + "e", 1, 0.8, seed=1))

    key_ours = timeit(keystroke, 50) * 1e3
    info = machine() | {
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "model": f"{cfg.cell} {cfg.layers}x{cfg.hidden}",
    }
    emit(
        {
            "bench": "generation",
            "ms_per_char": round(ms_ours, 4),
            "baseline_ms_per_char": round(ms_base, 4),
            "speedup": round(ms_base / ms_ours, 2),
            "prime_200_ms": round(prime_ours, 2),
            "baseline_prime_200_ms": round(prime_base, 2),
            "keystroke_ms": round(key_ours, 3),
            **info,
        }
    )
    table(
        [
            ("ms per generated char", f"{ms_ours:.3f}", f"{ms_base:.3f}", f"{ms_base / ms_ours:.1f}x"),
            ("prime 200 chars (ms)", f"{prime_ours:.2f}", f"{prime_base:.2f}", f"{prime_base / prime_ours:.1f}x"),
            ("keystroke: 1 step + 1st char (ms)", f"{key_ours:.3f}", "-", "-"),
        ],
        ("batch 1", "rnn-tui", "nn.LSTM baseline", "speed-up"),
    )


if __name__ == "__main__":
    main()
