"""Train the shipped models again and put them into the package (rnn_tui/models/NAME/).

    python scripts/train_pretrained.py shakespeare --threads 1
    python scripts/train_pretrained.py python --minutes 10 -- --dropout 0.3   # a time budget; extra train flags
    python scripts/train_pretrained.py shakespeare --package WORK/shakespeare  # only package a trained run

Each model is an ordinary `rnn-tui train` run on its corpus's standard split (the first 90 % trains, the last
10 % validates), with the settings in MODELS plus any flags after `--`. Its budget is MODELS' number of steps
(so many characters, whatever the machine's speed), or --minutes. The run's best/ checkpoint (lowest
validation loss) is then packaged: its weights in half precision (the loader makes them float32 again), its
meta.json with a `shipped` entry (the validation loss, the command, the machine, the time), and no optimizer.
tinyshakespeare comes from the cache (`rnn-tui corpora`) or, offline, from --shakespeare-file (a local copy,
checked against the corpus's checksum like a download).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from rnn_tui import checkpoint, models

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rnn_tui" / "models"  # not models.models_dir(): never $RNN_TUI_MODELS

# What each shipped model trains on and with. Everything not named here is rnn-tui train's default.
MODELS = {
    # 10,000 steps of 16 x 64: 10.24 M characters, ten passes over tinyshakespeare's training part.
    "shakespeare": {"corpus": "shakespeare", "steps": 10_000, "flags": ["--eval-every", "250"]},
    # 1,028 steps of 16 x 64: the 1.05 M characters the shipped model read in its 10 minutes (514 of 32 x 64).
    "python": {"corpus": "stdlib", "steps": 1028, "flags": ["--eval-every", "500"]},
}


def train(name: str, budget: list[str], threads: int, work: Path, extra: list[str], env: dict[str, str]) -> Path:
    """One headless run of `rnn-tui train`; its folder."""
    model = MODELS[name]
    command = [
        sys.executable, "-m", "rnn_tui", "train",
        "--corpus", model["corpus"],
        *budget,
        "--threads", str(threads),
        "--checkpoint-dir", str(work),
        "--run-name", name,
        *model["flags"],
        *extra,
    ]  # fmt: skip
    print("+", shlex.join(command), flush=True)
    subprocess.run(command, check=True, env=env)
    return work / name


def package(name: str, run_dir: Path, command: str, wall_seconds: float | None) -> Path:
    """The run's best checkpoint (its newest, if it has none) as the shipped model NAME, in the package."""
    best = run_dir / checkpoint.BEST
    ckpt = checkpoint.load(best if (best / checkpoint.META).exists() else run_dir, optimizer=False)
    val = ckpt.meta.get("best_val_loss")
    out = models.ship(
        ckpt,
        PACKAGE / name,
        run_dir,
        val_loss=val,
        validation="the last 10 % of the corpus, never trained on",
        command=command,
        machine=f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.system()}",
        wall_seconds=None if wall_seconds is None else round(wall_seconds),
    )
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"{name}: step {ckpt.step}, best val {val} nats/char, {size / 1e6:.1f} MB in {out}")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", choices=sorted(MODELS))
    p.add_argument("--minutes", type=float, help="a time budget instead of the model's steps in MODELS")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="training threads (default: every core)")
    p.add_argument("--work", type=Path, default=ROOT / "checkpoints" / "shipped", help="where the runs train")
    p.add_argument("--shakespeare-file", type=Path, help="a local tinyshakespeare.txt, for a machine offline")
    p.add_argument("--package", type=Path, metavar="RUN", help="package this trained run; train nothing")
    p.add_argument("--command", help="with --package: the command that trained RUN, for its meta.json")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = p.parse_args(argv[:cut]), argv[cut + 1 :]  # after --: more rnn-tui train flags
    steps = MODELS[args.name]["steps"]
    budget = ["--max-minutes", f"{args.minutes:g}"] if args.minutes else ["--max-steps", str(steps)]
    command = shlex.join(["python", "scripts/train_pretrained.py", *sys.argv[1:]])
    if args.package:
        package(args.name, args.package, args.command or command, None)
        return 0
    env = dict(os.environ)
    if args.shakespeare_file:
        env["RNN_TUI_MIRROR"] = args.shakespeare_file.resolve().parent.as_uri()  # fetched and checked as usual
        env["RNN_TUI_CACHE"] = str((args.work / ".cache").resolve())  # and kept apart from the user's cache
    start = time.monotonic()
    run_dir = train(args.name, budget, args.threads, args.work, extra, env)
    package(args.name, run_dir, command, time.monotonic() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
