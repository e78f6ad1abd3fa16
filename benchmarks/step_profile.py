"""Where a training step's time goes: PyTorch's profiler over the same steps of ours and of the baseline.

    python benchmarks/step_profile.py               # the default model, each precision this CPU has
    python benchmarks/step_profile.py --threads 1   # one thread (steadier on a busy machine)
    python benchmarks/step_profile.py --smoke       # seconds: keeps the script working in CI

Each operator's own CPU time is put in a group (the recurrent kernel, other matrix products,
dropout's random masks, the optimizer, casts and copies, the rest) and divided by the profiled
steps. The baseline is throughput.py's plain fp32 `nn.LSTM` + Adam loop on the same batch.
Profiling adds a little to every operator, so read the shares, and take speeds from throughput.py.

Then, without the profiler, what our dropout bought: the same trainers' steps with torch's
dropout (`F.dropout`, one Bernoulli draw per activation on a CPU) and with ours, interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from _common import SHAKESPEARE, emit, machine, precisions, run_spec, table, trainer
from baselines import BaselineLSTM, baseline_trainer
from torch.profiler import ProfilerActivity, profile

from rnn_tui.train import model

GROUPS = (  # (group, operator name fragments), first match wins
    ("recurrent kernel", ("rnn_layer", "lstm", "gru", "rnn_tanh")),
    ("matrix products", ("mm", "linear", "matmul")),
    ("dropout masks", ("bernoulli", "random", "randint", "rand", "ge", "dropout")),
    ("optimizer", ("adam", "foreach", "lerp", "addcdiv", "sqrt")),
    ("gradient clip", ("norm",)),
    ("casts and copies", ("copy", "_to_copy", "clone", "contiguous")),
    ("elementwise", ("mul", "add", "div", "sub", "where", "sigmoid", "tanh")),
    ("loss", ("softmax", "nll", "cross_entropy")),
    ("embedding", ("embedding", "index")),
)


def group_of(name: str) -> str:
    op = name.removeprefix("aten::").lower()
    for group, parts in GROUPS:
        if any(p in op for p in parts):
            return group
    return "other"


def profiled(step, steps: int) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """ms per step by group, and the top operators (ms per step), over `steps` calls of `step`."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    groups: dict[str, float] = {}
    ops = []
    for e in prof.key_averages():
        if e.key.startswith(("ProfilerStep", "autograd::", "torch::autograd")) or e.self_cpu_time_total <= 0:
            continue
        ms = e.self_cpu_time_total / 1000 / steps
        groups[group_of(e.key)] = groups.get(group_of(e.key), 0.0) + ms
        ops.append((e.key, ms))
    return groups, sorted(ops, key=lambda o: -o[1])[:8]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10, help="profiled steps, after 5 warm-up steps")
    p.add_argument("--threads", type=int, help="CPU threads (default: every core)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the dropout comparison")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    size = {"hidden": 32, "layers": 1} if args.smoke else {}
    train = {"batch_size": 4, "seq_len": 16} if args.smoke else {}
    steps = 2 if args.smoke else args.steps
    tmp = tempfile.mkdtemp(prefix="rnn-tui-profile-")
    trainers = {}
    for prec in precisions():
        req = run_spec(
            str(SHAKESPEARE) if SHAKESPEARE.exists() else None,
            tmp,
            f"profile-{prec}",
            size,
            {
                **train,
                "precision": prec,
                "threads": args.threads,
                "eval_every": 10**9,
                "sample_every": 10**9,
                "checkpoint_every": 10**9,
            },
        )
        trainers[f"rnn-tui {prec}"] = trainer(req)
    t = trainers["rnn-tui fp32"]
    cfg = t.model_cfg
    torch.manual_seed(0)
    base_step = baseline_trainer(BaselineLSTM(cfg.vocab_size, cfg.hidden, cfg.layers, cfg.embedding))
    x = torch.randint(1, cfg.vocab_size, (t.cfg.batch_size, t.cfg.seq_len))
    runs = {name: tr.train_step for name, tr in trainers.items()}
    runs["baseline fp32 nn.LSTM"] = lambda: base_step(x, x)
    info = machine()
    for name, step in runs.items():
        for _ in range(5):
            step()
        groups, ops = profiled(step, steps)
        total = sum(groups.values())
        emit({"bench": "step_profile", "trainer": name, "ms_per_step": round(total, 2), "groups": groups, **info})
        rows = [(g, f"{ms:.1f}", f"{ms / total:.0%}") for g, ms in sorted(groups.items(), key=lambda kv: -kv[1])]
        print(f"\n{name}: {total:.1f} ms per step (profiled)", file=sys.stderr)
        table(rows, ("group", "ms/step", "share"))
        print("  top operators: " + ", ".join(f"{k} {ms:.1f}" for k, ms in ops[:5]), file=sys.stderr)
    dropout_ab(trainers, 1 if args.smoke else args.rounds, steps, info)


def torch_dropout(x: torch.Tensor, p: float, training: bool = True, locked: bool = False) -> torch.Tensor:
    assert not locked  # the defaults' masks, per element
    return F.dropout(x, p, training)


def dropout_ab(trainers: dict, rounds: int, steps: int, info: dict) -> None:
    """Steps with torch's dropout against ours, the same trainers, interleaved rounds (median ms per step)."""
    ours = model.dropout
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, t in trainers.items():
            for which, fn in (("torch", torch_dropout), ("ours", ours)):
                model.dropout = fn
                start = time.perf_counter()
                for _ in range(steps):
                    t.train_step()
                times.setdefault((name, which), []).append((time.perf_counter() - start) / steps * 1000)
    model.dropout = ours
    rows = []
    for name in trainers:
        before, after = (statistics.median(times[(name, w)]) for w in ("torch", "ours"))
        emit(
            {
                "bench": "dropout_ab",
                "trainer": name,
                "ms_torch_dropout": round(before, 2),
                "ms_our_dropout": round(after, 2),
                "speedup": round(before / after, 3),
                **info,
            }
        )
        rows.append((name, f"{before:.1f}", f"{after:.1f}", f"{before / after:.3f}x"))
    table(rows, ("trainer", "ms/step, torch's dropout", "ms/step, ours", "speed-up"))


if __name__ == "__main__":
    main()
