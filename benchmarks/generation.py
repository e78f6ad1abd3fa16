"""Generation at batch 1: ms per character, priming a 200-character prompt, and the cost of a keystroke.

    python benchmarks/generation.py                          # the default model
    OPENBLAS_NUM_THREADS=1 python benchmarks/generation.py   # as in the app, beside the trainer
    python benchmarks/generation.py --compare ../wt-before   # this tree and another, interleaved
    python benchmarks/generation.py --smoke

Ours is `Generator` (NumPy, prompt states cached). The baseline, in the same run, is the
plain way with PyTorch: `nn.LSTM` fed the prime in one call, then one call per character.

A key on a long prompt (--long characters, an opened file's size) is the playground's work for
one keystroke up to its first generated character on screen: with the generation engine, one
look at the common prefix, the new character scored, the new tokens appended to what is shown;
before it, three looks, a copy of the prompt's tokens and a new list for the screen (the calls
the playground made, which both trees can make). The engine's way needs this tree's Generator.

Each tree runs in a subprocess with the tree first on PYTHONPATH; with --compare their runs
alternate (--rounds each) and the figures are medians over the rounds.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, SHAKESPEARE, emit, machine, table, timeit

RESULT = "generation result: "


def options() -> argparse.Namespace:
    from rnn_tui.config import ModelConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=ModelConfig(vocab_size=2).hidden)
    p.add_argument("--layers", type=int, default=ModelConfig(vocab_size=2).layers)
    p.add_argument("--chars", type=int, default=2000)
    p.add_argument("--long", type=int, default=50_000, help="characters of the long prompt (default 50,000)")
    p.add_argument("--tree", type=Path, default=ROOT, help="the source tree to run (default: this repository)")
    p.add_argument("--compare", type=Path, metavar="PATH", help="a second tree, its runs interleaved with --tree's")
    p.add_argument("--rounds", type=int, default=3, help="runs of each tree with --compare (default 3)")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one run, in this process
    args = p.parse_args()
    if args.smoke:
        args.hidden, args.layers, args.chars, args.long, args.rounds = 32, 1, 50, 2000, 1
    return args


@functools.cache
def _settings(n: int, temperature: float):
    """The sampling settings as this tree's Generator takes them: a SampleConfig (from issue 19 on), or
    None for the positional arguments (n, temperature, top_k, seed) of the tree before. Made once, as the
    playground makes them once per change of settings, not per key (a SampleConfig checks itself: ~1.7 ms)."""
    from rnn_tui import generation
    from rnn_tui.config import SampleConfig

    return SampleConfig(length=n, temperature=temperature, seed=1) if hasattr(generation, "Sampler") else None


def _stream(gen, text: str):
    s = _settings(1, 0.8)
    return gen.stream(text, s) if s is not None else gen.stream(text, 1, 0.8, 0, 1)


def _continuation(gen):
    s = _settings(1, 0.8)
    return gen.continuation(s) if s is not None else gen.continuation(1, 0.8, 0, 1)


def _sample(gen, prompt: str, n: int) -> str:
    s = _settings(n, 1.0)
    return gen.sample(prompt, s) if s is not None else gen.sample(prompt, n, 1.0, seed=1)


def key_before(gen, text: str, shown: list) -> None:
    """A keystroke as the playground took it before the engine (to the first character on screen)."""
    gen.cached_prefix(text)
    tokens = gen.score(text)
    first = next(_stream(gen, text))
    shown[:] = [*tokens, first]


def key_engine(gen, text: str, shown: list) -> None:
    """A keystroke as the engine takes it: `shown` holds the prompt before the key, and a continuation."""
    cached = gen.cached_prefix(text)
    for _ in gen.priming(text, 256, cached):
        pass
    keep = min(cached, len(text) - 1)
    new = gen.scored(keep)
    new.append(next(_continuation(gen)))
    del shown[keep:]
    shown.extend(new)


def measure(args) -> dict:
    """This process's tree: the figures, as a dict."""
    import numpy as np
    import torch
    from baselines import BaselineLSTM, baseline_sample

    import rnn_tui
    from rnn_tui.config import ModelConfig
    from rnn_tui.generation import Generator

    # The package's layout after and before the reshape. Asked of the folder, not of an import: an editable
    # install of another checkout would otherwise lend the older tree its train/ and text/.
    if (Path(rnn_tui.__file__).parent / "train").is_dir():
        from rnn_tui.text.vocab import Vocab
        from rnn_tui.train.model import CharRNN
    else:
        from rnn_tui.corpus import Vocab
        from rnn_tui.model import CharRNN

    torch.set_grad_enabled(False)
    text = SHAKESPEARE.read_text() if SHAKESPEARE.exists() else "To be, or not to be: that is the question.\n" * 2000
    vocab = Vocab(text)
    prompt = text[:200]
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=len(vocab), hidden=args.hidden, layers=args.layers)
    model = CharRNN(cfg).eval()
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    gen = Generator(cfg, vocab, weights)
    base = BaselineLSTM(len(vocab), args.hidden, args.layers, cfg.embedding).eval()
    prime_ids = torch.from_numpy(vocab.encode(prompt).astype(np.int64))

    ms_ours = timeit(lambda: _sample(gen, prompt, args.chars), 3) / args.chars * 1e3
    ms_base = timeit(lambda: baseline_sample(base, prime_ids[:1], args.chars), 3) / args.chars * 1e3

    def fresh_prime():
        gen.set_weights(weights)  # empties the prompt cache
        gen.score(prompt)

    prime_ours = timeit(fresh_prime, 10) * 1e3 - timeit(lambda: gen.set_weights(weights), 10) * 1e3
    prime_base = timeit(lambda: base(prime_ids[None]), 10) * 1e3

    def keystroke():  # the prompt is cached; one more character, then the first generated one
        gen.score(prompt)
        next(_stream(gen, prompt + "e"))

    key_ours = timeit(keystroke, 50) * 1e3
    figures = {
        "ms_per_char": round(ms_ours, 4),
        "baseline_ms_per_char": round(ms_base, 4),
        "speedup": round(ms_base / ms_ours, 2),
        "prime_200_ms": round(prime_ours, 2),
        "baseline_prime_200_ms": round(prime_base, 2),
        "keystroke_ms": round(key_ours, 3),
    }
    ways = {"before": key_before} | ({"engine": key_engine} if hasattr(Generator, "continuation") else {})
    long = (text * (args.long // len(text) + 1))[: args.long]
    for name, way in ways.items():
        gen.set_weights(weights)
        shown = [*gen.score(long), next(_stream(gen, long))]
        times = []
        for k in range(1, 41):  # forty keys typed at the end of the long prompt
            started = time.perf_counter()
            way(gen, long + "e" * k, shown)
            times.append(time.perf_counter() - started)
        figures[f"key_long_{name}_ms"] = round(statistics.median(times[5:]) * 1e3, 3)
    figures["key_long_ms"] = figures.get("key_long_engine_ms", figures["key_long_before_ms"])
    return figures


def run_tree(tree: Path, argv: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", *argv], env=env,
                          capture_output=True, text=True, timeout=3600)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        sys.exit(f"generation: the run in {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix(RESULT))


def main() -> None:
    args = options()
    if args.worker:
        print(RESULT + json.dumps(measure(args)), flush=True)
        return
    trees = [t.resolve() for t in [args.tree, args.compare] if t is not None]
    if len(set(trees)) < len(trees):
        sys.exit("generation: --compare names the same tree as --tree")
    argv = ["--hidden", str(args.hidden), "--layers", str(args.layers), "--chars", str(args.chars)]
    argv += ["--long", str(args.long)]
    runs: dict[Path, list[dict]] = {t: [] for t in trees}
    rounds = args.rounds if args.compare else 1
    for r in range(rounds):
        for t in trees if r % 2 == 0 else trees[::-1]:  # ABBA
            print(f"generation: round {r + 1}/{rounds}, {t}", file=sys.stderr, flush=True)
            runs[t].append(run_tree(t, argv))
    info = machine() | {
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "model": f"lstm {args.layers}x{args.hidden}",
        "long_prompt": args.long,
    }
    medians = {t: {k: statistics.median(r[k] for r in runs[t]) for k in runs[t][0]} for t in trees}
    for t in trees:
        emit({"bench": "generation", "tree": str(t), "rounds": len(runs[t]), **medians[t], **info})
    keys = [("ms per generated char", "ms_per_char"), ("prime 200 chars (ms)", "prime_200_ms"),
            ("keystroke: 1 step + 1st char (ms)", "keystroke_ms"),
            (f"a key on a {args.long:,}-char prompt (ms)", "key_long_ms"),
            ("  the same, the way before the engine (ms)", "key_long_before_ms")]  # fmt: skip
    if args.compare:
        a, b = (medians[t] for t in trees)
        emit({"bench": "generation", "compare": [str(t) for t in trees],
              **{f"{k}_ratio": round(a[k] / b[k], 3) for _, k in keys}, **info})  # fmt: skip
        rows = [(label, f"{a[k]:.3f}", f"{b[k]:.3f}", f"{a[k] / b[k]:.2f}") for label, k in keys]
        table(rows, ("batch 1", trees[0].name, trees[1].name, "ratio"))
        return
    m = medians[trees[0]]
    rows = [
        ("ms per generated char", f"{m['ms_per_char']:.3f}", f"{m['baseline_ms_per_char']:.3f}",
         f"{m['baseline_ms_per_char'] / m['ms_per_char']:.1f}x"),
        ("prime 200 chars (ms)", f"{m['prime_200_ms']:.2f}", f"{m['baseline_prime_200_ms']:.2f}",
         f"{m['baseline_prime_200_ms'] / m['prime_200_ms']:.1f}x"),
        ("keystroke: 1 step + 1st char (ms)", f"{m['keystroke_ms']:.3f}", "-", "-"),
        (f"a key on a {args.long:,}-char prompt (ms)", f"{m['key_long_ms']:.3f}", f"{m['key_long_before_ms']:.3f}",
         f"{m['key_long_before_ms'] / m['key_long_ms']:.1f}x (the way before the engine)"),
    ]  # fmt: skip
    table(rows, ("batch 1", "rnn-tui", "baseline", "speed-up"))


if __name__ == "__main__":
    main()
