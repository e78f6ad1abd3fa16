"""Findings: the cells a trained model grew, how well they follow each feature, what zeroing them costs.

    python benchmarks/findings.py --train          # trains 10 min on the built-in corpus and 10 min on
                                                   # tinyshakespeare (default settings), then reports: ~25 min
    python benchmarks/findings.py RUN [RUN ...]    # runs trained already: folders, or names in --checkpoint-dir
    python benchmarks/findings.py --smoke

For each run: find cells over 50,000 characters of its validation text (as `rnn-tui cells`),
the top cells per feature with r, and the ablation of each feature's top cell (the loss rise,
in bits per character, where the feature holds and elsewhere). It writes one section per run
into FINDINGS.md (--out; a run's old section is replaced), a screenshot of the neuron view on
that run beside it (findings/RUN.svg, and .png where rsvg-convert is installed), and one JSON
line per run on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import SHAKESPEARE, emit, machine, smoke_corpus

from rnn_tui import checkpoint
from rnn_tui.config import CellsConfig
from rnn_tui.humanize import duration
from rnn_tui.inference import Stepper
from rnn_tui.neurons import FEATURE, FEATURES, Analysis, Ranking, validation_text
from rnn_tui.session import FolderSession
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.screens.neurons import NeuronScreen
from rnn_tui.tui.widgets.playground.playground import Playground

HEADER = "# Findings\n\nWhat the cells of trained models do, found by `benchmarks/findings.py`.\n"
SMOKE_FLAGS = ["--hidden", "32", "--layers", "1", "--embedding", "8", "--batch-size", "8", "--seq-len", "32"]
SMOKE_FLAGS += ["--max-steps", "30", "--eval-every", "30", "--eval-chars", "2000", "--threads", "1"]


def train(checkpoint_dir: Path, smoke: bool) -> list[Path]:
    """Train (or reuse) one run on the built-in corpus and one on tinyshakespeare."""
    runs = []
    python = smoke_python_text() if smoke else None
    for name, source in (
        ("findings-stdlib", ["--data", str(python)] if smoke else ["--corpus", "stdlib"]),
        ("findings-shakespeare", ["--data", str(smoke_corpus() if smoke else SHAKESPEARE)]),
    ):
        folder = checkpoint_dir / name
        if not (folder / checkpoint.META).exists():
            budget = SMOKE_FLAGS if smoke else ["--max-minutes", "10"]
            where = ["--run-name", name, "--checkpoint-dir", str(checkpoint_dir)]
            cmd = [sys.executable, "-m", "rnn_tui", "train", *source, *budget, *where]
            subprocess.run(cmd, check=True, stdout=sys.stderr)  # stdout is for the JSON lines
        runs.append(folder)
    return runs


def smoke_python_text() -> Path:
    """A slice of this repository's Python source: code with comments, strings and brackets."""
    root = Path(__file__).resolve().parents[1] / "rnn_tui"
    text = "\n\n".join(p.read_text() for p in sorted(root.glob("*.py")))[:60_000]
    path = Path(tempfile.mkdtemp(prefix="rnn-tui-smoke-")) / "code.py"
    path.write_text(text)
    return path


def analyse(folder: Path, chars: int) -> tuple[Analysis, Ranking, float]:
    ckpt = checkpoint.load(folder, optimizer=False)
    analysis = Analysis(Stepper(ckpt.config, ckpt.model), ckpt.vocab, validation_text(folder, chars))
    started = time.perf_counter()
    for _ in analysis.correlate():
        pass
    seconds = time.perf_counter() - started
    ranking = analysis.ranking(top=3)
    for _ in analysis.ablate([(c[0].layer, c[0].cell) for c in ranking.top.values() if c]):
        pass
    return analysis, ranking, seconds


def strongest(ranking: Ranking) -> str:
    """The feature whose top cell follows it best."""
    present = [name for name, cells in ranking.top.items() if cells]
    return max(present, key=lambda name: abs(ranking.top[name][0].r))


async def screenshot(folder: Path, feature: str, path: Path) -> None:
    """The neuron view on the run's validation text, on the top cell for `feature`, after find cells."""
    os.environ["COLORTERM"] = "truecolor"  # the picture in full colour, whatever terminal runs this
    session = FolderSession.open(folder)
    app = RnnTuiApp(session)
    async with app.run_test(size=(140, 40)) as pilot:

        async def until(predicate, timeout: float = 600.0) -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                if time.monotonic() > deadline:
                    raise TimeoutError("the neuron view did not finish")
                await pilot.pause(0.05)

        await until(lambda: app.query_one(Playground).weights is not None)
        await pilot.press("f6")
        await until(lambda: isinstance(app.screen, NeuronScreen) and app.screen.trace is not None)
        screen = app.screen
        if screen.source != "validation":
            traced = screen.trace
            await pilot.press("t")
            await until(lambda: screen.trace is not traced)
        await pilot.press("f")
        await until(lambda: screen.ranking is not None)
        top = screen.ranking.top[feature][0]
        table = screen.query_one("#find-table")
        table.focus()
        table.move_cursor(row=table.get_row_index(f"{feature}:{top.layer}:{top.cell}"))
        await pilot.press("enter")
        await until(lambda: "bits/char" in str(screen.query_one("#find-effect").render()))
        screen.query_one("#activations").focus()
        await pilot.pause(0.2)
        app.save_screenshot(path.name, str(path.parent))
    session.close()


def section(folder: Path, analysis: Analysis, ranking: Ranking, seconds: float, shot: Path | None) -> str:
    meta = checkpoint.read_meta(folder)
    ckpt_cfg = analysis.stepper.cfg
    best = meta.get("best_val_loss")
    trained = meta.get("train_seconds")
    lines = [
        f"<!-- findings:{folder.name} -->",
        f"### {folder.name}: {ckpt_cfg.summary()} on {(meta.get('corpus') or {}).get('name', '?')}",
        "",
        f"Step {meta['step']:,}"
        + (f", {duration(trained)} of training" if isinstance(trained, int | float) else "")
        + (f", best validation loss {best:.3f}" if isinstance(best, float) else "")
        + f". Find cells read {analysis.chars:,} characters of validation text in {seconds:.1f} s"
        + f" ({machine()['date']}, {machine()['cpu']}).",
        "",
        "| feature | layer | cell | r | zeroed: Δ bits/char where it holds | elsewhere | holds on |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in FEATURES:
        cells = ranking.top[f.name]
        if not cells:
            lines.append(f"| {f.label} | | | absent | | | |")
        for i, c in enumerate(cells):
            row = [f.label if i == 0 else "", str(c.layer), str(c.cell), f"{c.r:+.3f}"]
            if i == 0:
                e = analysis.effect((c.layer, c.cell), f.name)
                where = "" if f.binary else f" (> {e.above:g})"
                row += [_bits(e.rise_holds), _bits(e.rise_elsewhere), f"{e.chars_holds:,} chars{where}"]
            else:
                row += ["", "", ""]
            lines.append("| " + " | ".join(row) + " |")
    if shot is not None:
        feature = FEATURE[strongest(ranking)]
        top = ranking.top[feature.name][0]
        lines += ["", f"![The neuron view: layer {top.layer}, cell {top.cell} ({feature.label})]({shot.as_posix()})"]
    lines += [f"<!-- /findings:{folder.name} -->", ""]
    return "\n".join(lines)


def _bits(x: float | None) -> str:
    return "-" if x is None else f"{x:+.3f}"


def write(out: Path, name: str, text: str) -> None:
    """Put a run's section into `out`, replacing the one it had."""
    old = out.read_text() if out.exists() else HEADER
    pattern = re.compile(rf"<!-- findings:{re.escape(name)} -->.*?<!-- /findings:{re.escape(name)} -->\n?", re.S)
    new = pattern.sub(lambda _: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    out.write_text(new)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", metavar="RUN", help="run folders, or run names in --checkpoint-dir")
    p.add_argument("--train", action="store_true", help="train the two runs first (10 minutes each)")
    p.add_argument("--checkpoint-dir", default=checkpoint.CHECKPOINT_DIR, type=Path)
    p.add_argument("--chars", type=int, default=CellsConfig().chars)
    p.add_argument("--out", default="FINDINGS.md", type=Path, help="the Markdown file to write (default FINDINGS.md)")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.train, args.chars = True, 3000
        args.checkpoint_dir = Path(tempfile.mkdtemp(prefix="rnn-tui-findings-"))
        args.out = args.checkpoint_dir / "FINDINGS.md"  # a smoke run leaves the real findings alone
    folders = [checkpoint.resolve(r, args.checkpoint_dir) for r in args.runs]
    if args.train:
        folders += train(args.checkpoint_dir, args.smoke)
    if not folders:
        p.error("give run folders, or --train")
    shots = args.out.parent / "findings"
    shots.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        analysis, ranking, seconds = analyse(folder, args.chars)
        svg = shots / f"{folder.name}.svg"
        asyncio.run(screenshot(folder, strongest(ranking), svg))
        shot = svg
        if shutil.which("rsvg-convert"):
            shot = svg.with_suffix(".png")
            subprocess.run(["rsvg-convert", "-w", "1600", str(svg), "-o", str(shot)], check=True)
        write(args.out, folder.name, section(folder, analysis, ranking, seconds, shot.relative_to(args.out.parent)))
        features = {
            name: {
                "cells": [c.to_dict() for c in cells],
                "ablation": analysis.effect((cells[0].layer, cells[0].cell), name).to_dict() if cells else None,
            }
            for name, cells in ranking.top.items()
        }
        emit({"bench": "findings", "run": folder.name, "find_s": round(seconds, 2), "features": features, **machine()})


if __name__ == "__main__":
    main()
