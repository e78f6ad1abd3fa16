"""Find cells: the time to rank every cell of the default model over 50,000 characters, and typing meanwhile.

    python benchmarks/find_cells.py                     # LSTM 2x512, 50,000 characters, ~2 minutes
    python benchmarks/find_cells.py --smoke

Ours is `neurons.Analysis.correlate`: the text cut into pieces run side by side (one matrix
product per step over all of them), every cell's correlation with every feature gathered
chunk by chunk. The baseline, in the same run, is the plain way: `Stepper.run` over the
text one character at a time (exact, batch 1), then every cell's correlation from the whole
activation matrix. Both are timed with one BLAS thread (as in the app, where training has the
other core) and with the default threads (as `rnn-tui cells`). Also: the ablation of one
cell (one more pass), and the playground's keystroke (score one more character, draw the
first one) while a search runs in a thread, against the same keystroke idle. The target is
find cells in under 10 s on a 2-core CPU. `gflop` is the arithmetic of the pass; `gflops`
what it reached; `gemm_gflops` what one recurrent matrix product reaches here, for scale.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import torch
from _common import SHAKESPEARE, emit, machine, percentile, table, timeit
from threadpoolctl import threadpool_limits

from rnn_tui.config import ModelConfig, SampleConfig
from rnn_tui.generation import Generator
from rnn_tui.inference import Stepper
from rnn_tui.neurons import STREAMS, Analysis, text_features
from rnn_tui.text.vocab import Vocab
from rnn_tui.train.model import CharRNN


def baseline(stepper: Stepper, vocab: Vocab, text: str) -> np.ndarray:
    """Exact activations one character at a time, then every cell's r with every feature at once."""
    ids = vocab.encode(text)
    cfg = stepper.cfg
    acts = np.empty((len(ids), cfg.layers * cfg.hidden), np.float32)
    _, state = stepper.step(vocab.id("\n"), stepper.initial_state())
    for a in range(0, len(ids), 1024):
        _, states = stepper.run(ids[a : a + 1024], state)
        acts[a : a + len(states)] = stepper.kernel.shown(states, cfg.hidden).reshape(len(states), -1)
        state = list(states[-1])
    f = np.stack(list(text_features(text).values()), 1)
    a = acts - acts.mean(0)
    f = f - f.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a.T @ f) / np.sqrt(np.outer((a * a).sum(0), (f * f).sum(0)))


def find(stepper: Stepper, vocab: Vocab, text: str) -> Analysis:
    analysis = Analysis(stepper, vocab, text)
    for _ in analysis.correlate():
        pass
    return analysis


def ablate(analysis: Analysis, cell: tuple[int, int]) -> None:
    analysis.ablated.pop(cell, None)
    for _ in analysis.ablate([cell]):
        pass


def keystrokes(gen: Generator, prompt: str, n: int, going=lambda: True) -> list[float]:
    """ms per keystroke (at most n, while `going()`): score the prompt grown by one character, draw the next."""
    times = []
    for i in range(n):
        if not going():
            break
        text = prompt + "abcdefghij"[i % 10] * (i + 1)
        t = time.perf_counter()
        gen.score(text)
        next(gen.stream(text, SampleConfig(length=1, seed=1)))
        times.append((time.perf_counter() - t) * 1e3)
        time.sleep(0.02)  # a fast typist: keys come apart
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ModelConfig(vocab_size=2)
    p.add_argument("--hidden", type=int, default=default.hidden)
    p.add_argument("--layers", type=int, default=default.layers)
    p.add_argument("--chars", type=int, default=50_000)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.hidden, args.layers, args.chars = 32, 1, 3000
    torch.set_grad_enabled(False)
    corpus = SHAKESPEARE.read_text() if SHAKESPEARE.exists() else 'ROMEO:\nIs it (so), "Juliet"?\n\n' * 5000
    text = corpus[-args.chars :]
    vocab = Vocab(corpus)
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=len(vocab), hidden=args.hidden, layers=args.layers)
    weights = {k: v.numpy() for k, v in CharRNN(cfg).eval().state_dict().items()}
    stepper = Stepper(cfg, weights)
    h, layers = cfg.hidden, cfg.layers
    analysis = find(stepper, vocab, text)  # also the warm-up
    columns = analysis.steps * analysis.streams  # characters run, warm-up included
    flop = 2 * (cfg.spec.gates * h * h * (2 * layers - 1) + len(vocab) * h) * columns

    w = np.random.default_rng(0).standard_normal((cfg.spec.gates * h, h)).astype(np.float32)
    s = np.ones((h, min(STREAMS, analysis.streams)), np.float32)
    rows = []
    record = {"bench": "find_cells", "model": cfg.summary(), "chars": len(text), "streams": analysis.streams}
    for threads in (1, None):
        with threadpool_limits(limits=threads, user_api="blas"):
            gemm = 2 * w.size * s.shape[1] / timeit(lambda: w @ s, 50) / 1e9
            ours = timeit(lambda: find(stepper, vocab, text), 1, warmup=0)
            base = timeit(lambda: baseline(stepper, vocab, text), 1, warmup=0)
            one = timeit(lambda: ablate(analysis, (layers - 1, 0)), 1, warmup=0)
        name = "1" if threads == 1 else "default"
        record |= {
            f"find_s_threads_{name}": round(ours, 2),
            f"baseline_s_threads_{name}": round(base, 2),
            f"speedup_threads_{name}": round(base / ours, 2),
            f"ablate_one_cell_s_threads_{name}": round(one, 2),
            f"gflops_threads_{name}": round(flop / ours / 1e9, 1),
            f"gemm_gflops_threads_{name}": round(gemm, 1),
        }
        rows.append((name, f"{ours:.2f}", f"{base:.2f}", f"{base / ours:.1f}x", f"{one:.2f}", f"{gemm:.0f}"))

    # Typing while a search runs in a thread, as in the app (one BLAS thread).
    gen = Generator(cfg, vocab, weights)
    prompt = text[:200]
    n = 10 if args.smoke else 60
    with threadpool_limits(limits=1, user_api="blas"):
        gen.score(prompt)
        idle = keystrokes(gen, prompt, n)
        gen.score(prompt)
        worker = threading.Thread(target=find, args=(stepper, vocab, text))
        worker.start()
        busy = keystrokes(gen, prompt, n, worker.is_alive)
        worker.join()
    record |= {
        "gflop": round(flop / 1e9, 1),
        "keystroke_idle_p50_ms": round(percentile(idle, 50), 2),
        "keystroke_idle_p95_ms": round(percentile(idle, 95), 2),
        "keystroke_during_find_p50_ms": round(percentile(busy, 50), 2) if busy else None,
        "keystroke_during_find_p95_ms": round(percentile(busy, 95), 2) if busy else None,
        "keystrokes_during_find": len(busy),
        **machine(),
    }
    emit(record)
    table(rows, ("BLAS threads", "find cells s", "baseline s", "speedup", "ablate 1 cell s", "GEMM GFLOP/s"))


if __name__ == "__main__":
    main()
