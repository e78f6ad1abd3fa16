"""Training throughput: our trainer against a plain fp32 nn.LSTM loop, same model size, same batch, same run.

    python benchmarks/throughput.py                # the default model
    python benchmarks/throughput.py --hidden 512   # another size
    python benchmarks/throughput.py --smoke        # seconds: keeps the script working in CI

Also reports the fraction of this machine's measured fp32 and bf16 matmul peaks that the
trainer reaches, and the loss after the same number of steps in bf16 and in fp32.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from _common import SHAKESPEARE, emit, machine, matmul_peak, precisions, table, trainer
from baselines import BaselineLSTM, baseline_trainer

from rnn_tui.config import ModelConfig, TrainConfig
from rnn_tui.runs import RunRequest


def flops_per_char(cfg: ModelConfig) -> float:
    """Matmul FLOPs per character of one training step (forward + backward = 3x forward)."""
    fwd, inp = 0, cfg.embedding
    for _ in range(cfg.layers):
        fwd += 2 * 4 * cfg.hidden * (inp + cfg.hidden)
        inp = cfg.hidden
    fwd += 2 * cfg.hidden * cfg.vocab_size
    return 3 * fwd


def ours(args, precision: str, steps: int, tmp: str):
    req = RunRequest(
        data=str(SHAKESPEARE) if SHAKESPEARE.exists() else None,
        checkpoint_dir=tmp,
        run_name=f"tp-{precision}",
        model={"hidden": args.hidden, "layers": args.layers},
        train={
            "batch_size": args.batch_size,
            "seq_len": args.seq_len,
            "precision": precision,
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
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.hidden, args.layers, args.batch_size, args.seq_len = 32, 1, 4, 16
        args.steps, args.rounds, args.quality_steps = 2, 1, 4
    import tempfile

    tmp = tempfile.mkdtemp(prefix="rnn-tui-bench-")
    info = machine()
    trainers = {prec: ours(args, prec, args.steps, tmp) for prec in precisions()}
    cfg = trainers["fp32"].model_cfg
    vocab = cfg.vocab_size
    torch.manual_seed(0)
    base_model = BaselineLSTM(vocab, args.hidden, args.layers, cfg.embedding)
    base_step = baseline_trainer(base_model)
    x = torch.randint(1, vocab, (args.batch_size, args.seq_len))
    chars = args.batch_size * args.seq_len
    runs: dict[str, list[float]] = {"baseline fp32 nn.LSTM": [], **{f"rnn-tui {p}": [] for p in trainers}}
    for _ in range(args.rounds):  # interleaved, so drift on a noisy machine hits all of them alike
        runs["baseline fp32 nn.LSTM"].append(chars_per_s(lambda: base_step(x, x), chars, args.steps))
        for prec, t in trainers.items():
            runs[f"rnn-tui {prec}"].append(chars_per_s(t.train_step, chars, args.steps))
    med = {k: statistics.median(v) for k, v in runs.items()}
    peaks = {p: matmul_peak(torch.float32 if p == "fp32" else torch.bfloat16) for p in trainers}
    fpc = flops_per_char(cfg)
    base = med["baseline fp32 nn.LSTM"]
    rows = []
    for name, cps in med.items():
        prec = "bf16" if "bf16" in name else "fp32"
        gflops = cps * fpc / 1e9
        rec = {
            "bench": "throughput",
            "name": name,
            "chars_per_s": round(cps),
            "ratio": round(cps / base, 3),
            "gflops": round(gflops, 1),
            **{f"peak_fraction_{p}": round(gflops / peak, 3) for p, peak in peaks.items()},
            "model": f"{cfg.cell} {cfg.layers}x{cfg.hidden}",
            "batch": f"{args.batch_size}x{args.seq_len}",
            **info,
        }
        emit(rec)
        rows.append(
            (name, f"{cps:,.0f}", f"{cps / base:.2f}x", f"{gflops:.0f}", f"{gflops / peaks[prec]:.0%} of {prec}")
        )
    emit({"bench": "matmul_peak", **{f"gflops_{p}": round(peak) for p, peak in peaks.items()}, **info})
    if "bf16" not in trainers:
        print("this CPU has no native bf16: fp32 only", file=sys.stderr)
        table(rows, ("trainer", "chars/s", "vs baseline", "GFLOP/s", "of measured peak"))
        return
    # bf16 must not cost quality: the same steps from the same seed, in each precision.
    fresh = {prec: ours(args, prec, args.quality_steps, tmp + "/q") for prec in ("bf16", "fp32")}
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
    table(rows, ("trainer", "chars/s", "vs baseline", "GFLOP/s", "of measured peak"))
    print(f"matmul peak here: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s", file=sys.stderr)
    print(
        f"val loss after {args.quality_steps} steps: bf16 {losses['bf16']:.4f}, fp32 {losses['fp32']:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
