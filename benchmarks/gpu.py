"""The GPU check (issue "Speed and quality", item 5), for a machine with a CUDA GPU.

    python benchmarks/gpu.py --out OUT_DIR [--data tinyshakespeare.txt]
    python benchmarks/gpu.py --smoke       # seconds, on the CPU, to keep the script working in CI

1. Throughput of the default GPU preset (bf16 autocast, cuDNN) against a plain fp32 nn.LSTM loop of
   the same size and batch on the same GPU, interleaved in the same run.
2. Time to a validation loss of 1.47 on tinyshakespeare with the GPU defaults (`rnn-tui train` as a
   user runs it), and the same for the alternatives in `--also`.
3. A small run trained on the GPU, packed as OUT_DIR/gpu-small.tar, with a reference sample drawn
   from it on the CPU there; unpack it on a CPU-only machine and `rnn-tui sample` must print the same.
4. torchrun: the same `rnn-tui train` (GPU defaults) alone and as a torchrun job of one process
   (NCCL; gloo on the CPU in --smoke), interleaved rounds, chars/s of each; and the gradient bytes
   a job would all-reduce each step against the step's time.

Only the torchrun check, for a short GPU session:
    python benchmarks/gpu.py --out OUT_DIR --skip throughput --skip checkpoint --skip time
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from _common import SHAKESPEARE, machine, precisions, run_spec, smoke_corpus, steady_speed, trainer
from _common import emit as emit_line
from baselines import BaselineLSTM, baseline_trainer

TARGET = 1.47
SMOKE_MODEL = {"hidden": 32, "layers": 1}
SMOKE_TRAIN = {"batch_size": 4, "seq_len": 16}


@dataclass(frozen=True)
class Rig:
    """Where and at what size the checks run: the GPU defaults, or (--smoke) a tiny model on the CPU."""

    device: str = "cuda"
    smoke: bool = False

    def flags(self) -> list[str]:
        sizes = {**SMOKE_MODEL, **SMOKE_TRAIN} if self.smoke else {}
        return ["--device", self.device, *(x for k, v in sizes.items() for x in (f"--{k.replace('_', '-')}", str(v)))]


def emit(record: dict) -> None:
    emit_line({**record, "date": date.today().isoformat()})


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def cuda_chars_per_s(step, chars: int, steps: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return chars * steps / (time.perf_counter() - t)


def throughput(rig: Rig, data: str, tmp: str, steps: int, rounds: int) -> None:
    quiet = {"eval_every": 10**9, "sample_every": 10**9, "checkpoint_every": 10**9}
    ours = {
        prec: trainer(
            run_spec(
                data,
                tmp,
                f"tp-{prec}",
                SMOKE_MODEL if rig.smoke else {},
                {**quiet, **(SMOKE_TRAIN if rig.smoke else {}), "precision": prec, "device": rig.device},
            )
        )
        for prec in precisions(rig.device)
    }
    cfg, tc = ours["fp32"].model_cfg, ours["fp32"].cfg
    torch.manual_seed(0)
    base = BaselineLSTM(cfg.vocab_size, cfg.hidden, cfg.layers, cfg.embedding).to(rig.device)
    base_step = baseline_trainer(base)
    x = torch.randint(1, cfg.vocab_size, (tc.batch_size, tc.seq_len), device=rig.device)
    chars = tc.batch_size * tc.seq_len
    runs: dict[str, list[float]] = {"baseline fp32 nn.LSTM (cuDNN)": [], **{f"rnn-tui {p}": [] for p in ours}}
    for _ in range(rounds):
        runs["baseline fp32 nn.LSTM (cuDNN)"].append(cuda_chars_per_s(lambda: base_step(x, x), chars, steps))
        for prec, t in ours.items():
            runs[f"rnn-tui {prec}"].append(cuda_chars_per_s(t.train_step, chars, steps))
    baseline = statistics.median(runs["baseline fp32 nn.LSTM (cuDNN)"])
    for name, values in runs.items():
        cps = statistics.median(values)
        emit(
            {
                "bench": "gpu_throughput",
                "name": name,
                "chars_per_s": round(cps),
                "ratio": round(cps / baseline, 3),
                "model": f"{cfg.cell} {cfg.layers}x{cfg.hidden} emb{cfg.embedding}",
                "batch": f"{tc.batch_size}x{tc.seq_len}",
                "params": sum(p.numel() for p in base.parameters()),
            }
        )
    del ours, base
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def time_to_target(rig: Rig, data: str, tmp: str, name: str, minutes: float, flags: list[str]) -> None:
    cmd = [sys.executable, "-m", "rnn_tui", "train", "--data", data, *rig.flags(), "--json"]
    cmd += f"--max-minutes {minutes} --eval-every 50 --checkpoint-every 100000".split()
    cmd += ["--checkpoint-dir", tmp, "--run-name", name, *flags]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    evals = [e for e in events if e["event"] == "eval"]
    hit = next((e for e in evals if e["val_loss"] <= TARGET), None)
    speeds = [e["chars_per_s"] for e in events if e["event"] == "progress"]
    emit(
        {
            "bench": "gpu_time_to_target",
            "run": name,
            "flags": " ".join(flags) or "(defaults)",
            "target": TARGET,
            "reached": hit is not None,
            "seconds_to_target": round(hit["elapsed"], 1) if hit else None,
            "step_at_target": hit["step"] if hit else None,
            "best_val": min((e["val_loss"] for e in evals), default=None),
            "best_step": min(evals, key=lambda e: e["val_loss"])["step"] if evals else None,
            "last_val": evals[-1]["val_loss"] if evals else None,
            "steps": evals[-1]["step"] if evals else None,
            "chars_per_s": round(statistics.median(speeds)) if speeds else None,
            "curve": [(e["step"], round(e["elapsed"], 1), round(e["val_loss"], 3)) for e in evals][::4],
            "wall_s": round(wall, 1),
            "rc": out.returncode,
            "stderr": out.stderr[-400:],
        }
    )
    shutil.rmtree(Path(tmp) / name, ignore_errors=True)


def small_checkpoint(rig: Rig, data: str, out: Path) -> None:
    """A small run trained on the GPU, then sampled on this machine's CPU for reference."""
    run = out / "gpu-small"
    train = [sys.executable, "-m", "rnn_tui", "train", "--data", data, "--json"]
    train += ["--layers", "2", "--hidden", "256", "--batch-size", "64", "--seq-len", "128", "--eval-every", "200"]
    train += ["--max-steps", "4" if rig.smoke else "400"]
    train += ["--checkpoint-dir", str(out), "--run-name", "gpu-small", *rig.flags()]
    lines = subprocess.run(train, capture_output=True, text=True).stdout.splitlines()
    done = [e for e in (json.loads(x) for x in lines if x.startswith("{")) if e["event"] == "done"]
    sample = [sys.executable, "-m", "rnn_tui", "sample", str(run), "--prime", "ROMEO:"]
    sample += ["--length", "200", "--seed", "7", "--no-color"]
    text = subprocess.run(sample, capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    (out / "gpu-small-sample.txt").write_text(text.stdout)
    emit(
        {
            "bench": "gpu_checkpoint",
            "done": done[-1] if done else None,
            "sample_rc": text.returncode,
            "sample": text.stdout[:80],
            "stderr": text.stderr[-300:],
        }
    )
    with tarfile.open(out / "gpu-small.tar", "w") as tar:
        tar.add(run, arcname="gpu-small", filter=lambda m: None if "/best" in m.name else m)  # under 16 MiB
    shutil.rmtree(run)


def torchrun_vs_alone(rig: Rig, data: str, tmp: str, steps: int, rounds: int) -> None:
    """chars/s of `rnn-tui train` alone and under `torchrun --nproc_per_node 1`, interleaved rounds."""
    flags = ["--data", data, *rig.flags(), "--max-steps", str(steps), "--json", "--checkpoint-dir", tmp]
    flags += ["--eval-every", "1000000000", "--sample-every", "1000000000", "--checkpoint-every", "1000000000"]
    train = ["-m", "rnn_tui", "train"]
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    launchers = {"alone": [sys.executable, *train], "torchrun, 1 process": [sys.executable, *torchrun, *train]}
    speeds: dict[str, list[float]] = {name: [] for name in launchers}
    started: dict[str, dict] = {}
    for r in range(rounds):
        for name, cmd in launchers.items():
            run = f"torchrun-{r}-{len(started)}"
            out = subprocess.run([*cmd, *flags, "--run-name", run], capture_output=True, text=True)
            events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
            if out.returncode or not any(e["event"] == "progress" for e in events):
                emit({"bench": "gpu_torchrun", "name": name, "rc": out.returncode, "stderr": out.stderr[-600:]})
                return
            speeds[name].append(steady_speed(events))
            started[name] = next(e for e in events if e["event"] == "start")
            shutil.rmtree(Path(tmp) / run, ignore_errors=True)
    alone = statistics.median(speeds["alone"])
    for name, values in speeds.items():
        cps = statistics.median(values)
        emit(
            {
                "bench": "gpu_torchrun",
                "name": name,
                "device": started[name]["device"],
                "chars_per_s": round(cps),
                "ratio": round(cps / alone, 3),
                "runs": [round(v) for v in values],
            }
        )
    start = started["alone"]
    chars = start["train"]["batch_size"] * start["train"]["seq_len"]
    step_s = chars / alone
    grad_bytes = start["params"] * 4  # fp32 gradients, all-reduced once a step
    emit(
        {
            "bench": "gpu_allreduce_volume",
            "params": start["params"],
            "grad_bytes_per_step": grad_bytes,
            "chars_per_step": chars,
            "step_ms": round(1000 * step_s, 2),
            # a ring all-reduce sends and receives about 2x the gradient per GPU; to hide it inside one step:
            "link_gb_per_s_to_keep_up": round(2 * grad_bytes / step_s / 1e9, 2),
        }
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("gpu-out"))
    p.add_argument("--data", default=str(SHAKESPEARE))
    p.add_argument("--minutes", type=float, default=1.5, help="budget of the run with the GPU defaults")
    p.add_argument("--also", action="append", default=[], help="flags of another run to time (minutes/2 each)")
    p.add_argument("--skip", action="append", default=[], choices=["throughput", "checkpoint", "time", "torchrun"])
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    rig, steps, rounds = Rig(), 20, 2
    if args.smoke:
        rig = Rig(device="cpu", smoke=True)
        args.data = str(smoke_corpus(Path(args.data)))
        args.minutes, steps, rounds = 0.05, 2, 1
    args.out.mkdir(parents=True, exist_ok=True)
    emit(
        {
            "bench": "gpu_machine",
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            **machine(),
        }
    )
    tmp = tempfile.mkdtemp(prefix="rnn-tui-gpu-")
    if "throughput" not in args.skip:
        throughput(rig, args.data, tmp, steps, rounds)
    if "checkpoint" not in args.skip:
        small_checkpoint(rig, args.data, args.out)
    if "torchrun" not in args.skip:
        torchrun_vs_alone(rig, args.data, tmp, 6 if args.smoke else 400, rounds)
    if "time" not in args.skip:
        time_to_target(rig, args.data, tmp, "gpu-defaults", args.minutes, [])
        for i, flags in enumerate(args.also):
            time_to_target(rig, args.data, tmp, f"gpu-alt{i}", args.minutes / 1.5, flags.split())


if __name__ == "__main__":
    main()
