"""Training throughput against what this CPU allows, all measured in the same run.

    python benchmarks/throughput.py                # the default model
    python benchmarks/throughput.py --hidden 256   # another size
    python benchmarks/throughput.py --threads 1    # one thread: steadier when other programs share the CPU
    python benchmarks/throughput.py --smoke        # seconds: keeps the script working in CI

Three figures, as issue "Quality in time" asks:
1. the baseline's chars/s: a plain fp32 `nn.LSTM` + Adam loop, same model size and batch;
2. ours: `rnn-tui train`'s step at its automatic precision (bf16 where the CPU multiplies it, else fp32);
3. the bf16 / fp32 matmul ratio at the recurrent product's shape (batch x hidden x 4 hidden), each
   dtype's best round (a micro-benchmark's best is what the hardware can do; one slow fp32 moment
   would otherwise inflate the ratio: 49 against the LSTM's own 84 GFLOP/s once, on 12-07).
What bf16 allows is that ratio, or 1 where it is below 1 (fp32 is always there: a CPU without
bf16 arithmetic runs it ~100x slower). The target: ours / baseline >= 0.8 x that limit.
Also the loss after the same steps in bf16 and in fp32, where bf16 is available (it must cost
no quality).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch
from _common import SHAKESPEARE, emit, machine, precisions, run_spec, table, timeit, trainer
from baselines import BaselineLSTM, baseline_trainer

from rnn_tui.config import ModelConfig, TrainConfig

TARGET_FRACTION = 0.8


def flops_per_char(cfg: ModelConfig) -> float:
    """Matmul FLOPs per character of one training step (forward + backward = 3x forward)."""
    fwd, inp = 0, cfg.embedding
    for _ in range(cfg.layers):
        fwd += 2 * cfg.spec.gates * cfg.hidden * (inp + (cfg.hidden if cfg.spec.recurrent else 0))
        inp = cfg.hidden
    fwd += 2 * cfg.hidden * cfg.vocab_size
    return 3 * fwd


def matmul_gflops(dtype: torch.dtype, m: int, k: int, n: int, seconds: float = 1.0) -> float:
    """GFLOP/s of an (m x k) @ (k x n) product at `dtype`, timed for about `seconds`."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    once = timeit(lambda: a @ b, 1, warmup=1)
    repeat = max(1, min(200, int(seconds / max(once, 1e-6))))
    return 2 * m * k * n / timeit(lambda: a @ b, repeat) / 1e9


def ours(args, precision: str, tmp: str):
    req = run_spec(
        str(SHAKESPEARE) if SHAKESPEARE.exists() else None,
        tmp,
        f"tp-{precision}",
        {"hidden": args.hidden, "layers": args.layers},
        {
            "batch_size": args.batch_size,
            "seq_len": args.seq_len,
            "precision": precision,
            "threads": args.threads,
            "eval_every": 10**9,
            "sample_every": 10**9,
            "checkpoint_every": 10**9,
        },
    )
    return trainer(req)


def chars_per_s(step_fn, chars: int, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step_fn()
    t = time.perf_counter()
    for _ in range(steps):
        step_fn()
    return chars * steps / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = TrainConfig()
    p.add_argument("--hidden", type=int, default=ModelConfig(vocab_size=2).hidden)
    p.add_argument("--layers", type=int, default=ModelConfig(vocab_size=2).layers)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--seq-len", type=int, default=defaults.seq_len)
    p.add_argument("--steps", type=int, default=20, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quality-steps", type=int, default=400, help="steps for the bf16-vs-fp32 loss check")
    p.add_argument("--threads", type=int, help="CPU threads for all of them (default: every core)")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.hidden, args.layers, args.batch_size, args.seq_len = 32, 1, 4, 16
        args.steps, args.rounds, args.quality_steps = 2, 1, 4
    tmp = tempfile.mkdtemp(prefix="rnn-tui-bench-")
    trainers = {prec: ours(args, prec, tmp) for prec in precisions()}
    info = machine()  # after the trainers have set this process's thread count (--threads)
    auto = "bf16" if "bf16" in trainers else "fp32"  # what `rnn-tui train` picks here
    cfg = trainers["fp32"].model_cfg
    torch.manual_seed(0)
    base_step = baseline_trainer(BaselineLSTM(cfg.vocab_size, args.hidden, args.layers, cfg.embedding))
    x = torch.randint(1, cfg.vocab_size, (args.batch_size, args.seq_len))
    chars = args.batch_size * args.seq_len
    runs: dict[str, list[float]] = {"baseline fp32 nn.LSTM": [], **{f"rnn-tui {p}": [] for p in trainers}}
    shape = (args.batch_size, args.hidden, cfg.spec.gates * args.hidden)  # the recurrent product
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    rounds: dict[str, list[float]] = {p: [] for p in dtypes}
    for _ in range(args.rounds):  # interleaved, so drift on a noisy machine hits all of them alike
        runs["baseline fp32 nn.LSTM"].append(chars_per_s(lambda: base_step(x, x), chars, args.steps))
        for prec, t in trainers.items():
            runs[f"rnn-tui {prec}"].append(chars_per_s(t.train_step, chars, args.steps))
        for p, d in dtypes.items():
            rounds[p].append(matmul_gflops(d, *shape, seconds=0.2 if args.smoke else 1.0))
    med = {k: statistics.median(v) for k, v in runs.items()}
    gflops = {p: max(v) for p, v in rounds.items()}
    ratio = gflops["bf16"] / gflops["fp32"]
    allowed = max(1.0, ratio)
    base = med["baseline fp32 nn.LSTM"]
    speedup = med[f"rnn-tui {auto}"] / base
    fpc = flops_per_char(cfg)
    rows = []
    for name, cps in med.items():
        emit(
            {
                "bench": "throughput",
                "name": name,
                "chars_per_s": round(cps),
                "ratio": round(cps / base, 3),
                "gflops": round(cps * fpc / 1e9, 1),
                "model": f"{cfg.cell} {cfg.layers}x{cfg.hidden}",
                "batch": f"{args.batch_size}x{args.seq_len}",
                **info,
            }
        )
        rows.append((name, f"{cps:,.0f}", f"{cps / base:.2f}x", f"{cps * fpc / 1e9:.0f}"))
    verdict = {
        "bench": "throughput_limit",
        "matmul_shape": "x".join(map(str, shape)),
        "matmul_gflops_fp32": round(gflops["fp32"], 1),
        "matmul_gflops_bf16": round(gflops["bf16"], 1),
        "matmul_gflops_rounds": {p: [round(g, 1) for g in v] for p, v in rounds.items()},
        "bf16_over_fp32": round(ratio, 3),
        "allowed": round(allowed, 3),
        "ours": auto,
        "ours_over_baseline": round(speedup, 3),
        "target": round(TARGET_FRACTION * allowed, 3),
        "fraction_of_allowed": round(speedup / allowed, 3),
        "met": speedup >= TARGET_FRACTION * allowed,
        **info,
    }
    emit(verdict)
    table(rows, ("trainer", "chars/s", "vs baseline", "GFLOP/s"))
    print(
        f"matmul {verdict['matmul_shape']}, best of {args.rounds} rounds (fp32 "
        f"{', '.join(f'{g:.0f}' for g in rounds['fp32'])}; bf16 {', '.join(f'{g:.0f}' for g in rounds['bf16'])}): "
        f"fp32 {gflops['fp32']:.0f} GFLOP/s, bf16 {gflops['bf16']:.1f} "
        f"(bf16/fp32 {ratio:.2f}; allowed {allowed:.2f}x) -> ours ({auto}) {speedup:.2f}x the baseline = "
        f"{speedup / allowed:.0%} of what this CPU allows (target {TARGET_FRACTION:.0%})",
        file=sys.stderr,
    )
    if "bf16" not in trainers:
        return
    # bf16 must not cost quality: the same steps from the same seed, in each precision.
    fresh = {prec: ours(args, prec, tmp + "/q") for prec in ("bf16", "fp32")}
    losses = {}
    for prec, t in fresh.items():
        for _ in range(args.quality_steps):
            t.train_step()
        losses[prec] = t.evaluate()
    emit(
        {
            "bench": "bf16_quality",
            "steps": args.quality_steps,
            "val_bf16": round(losses["bf16"], 4),
            "val_fp32": round(losses["fp32"], 4),
            "difference": round(losses["bf16"] - losses["fp32"], 4),
            **info,
        }
    )
    print(
        f"val loss after {args.quality_steps} steps: bf16 {losses['bf16']:.4f}, fp32 {losses['fp32']:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
