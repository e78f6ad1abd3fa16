"""What the CLI prints for sample, score, cells, runs, corpora and the lesson: Rich tables and colours, or JSON lines.

cli.py parses and computes; this module shows. Outside text (model output, file contents, run
and file names) is printed with markup off.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rnn_tui import palette
from rnn_tui.humanize import duration, size

if TYPE_CHECKING:  # each command imports what it shows, when it runs (`rnn-tui runs` stays quick)
    import numpy as np

    from rnn_tui.generation import Sample, Token
    from rnn_tui.neurons import Effect, Ranking
    from rnn_tui.scoring import LineScore
    from rnn_tui.text.copies import Copies


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, markup=False)


# --------------------------------------------------------------------------- sample


def tokens(parts: Iterable[Iterable[Token]], *, no_color: bool) -> None:
    """Characters as they come, each coloured by its probability on a terminal that shows colour; then a newline."""
    console = Console(highlight=False, soft_wrap=True, emoji=False, markup=False)
    color = console.is_terminal and not no_color and console.color_system is not None
    out = sys.stdout
    for part in parts:
        for tok in part:
            if color:
                console.print(Text(tok.char, style=palette.style_of(tok.prob, console.color_system)), end="")
            else:
                out.write(tok.char)
            out.flush()
    out.write("\n")


def novelty(copies: Copies) -> None:
    """How much of a sample is copied from the training text, on stderr."""
    stretches = len(copies.spans)
    what = f"{stretches} stretch{'es' if stretches != 1 else ''} of {copies.n}+ characters"
    _stderr().print(f"{copies.novel:.0%} novel · {what} copied from the training text")


def samples(
    prompt: Sequence[Token], made: Sequence[Sample], copies: Sequence[Copies | None], *, as_json: bool, no_color: bool
) -> None:
    """Samples, likeliest first: JSON lines, or each under a line with its figures, copied stretches underlined."""
    if as_json:
        for rank, (m, c) in enumerate(zip(made, copies, strict=True), 1):
            copied = None if c is None else [list(span) for span in c.spans]
            novel = None if c is None else round(c.novel, 6)
            figures = {"rank": rank, "seed": m.seed, "bits_per_char": round(m.bits_per_char, 6)}
            print(json.dumps({"text": m.text, **figures, "novel": novel, "copied": copied}, ensure_ascii=False))
        return
    console = Console(highlight=False, soft_wrap=True, emoji=False, markup=False)
    color = console.is_terminal and not no_color and console.color_system is not None
    head = "".join(t.char for t in prompt)
    for rank, (m, c) in enumerate(zip(made, copies, strict=True), 1):
        novel = "" if c is None else f" · {c.novel:.0%} novel"
        console.print(Text(f"── {rank}/{len(made)} · seed {m.seed} · {m.bits_per_char:.2f} bits/char{novel}", "dim"))
        if not color:
            console.print(head + m.text)
            continue
        text = Text("".join(t.char for t in prompt), style="dim")
        marked = c.mask() if c is not None else None
        for i, t in enumerate(m.tokens):
            style = palette.style_of(t.prob, console.color_system)
            text.append(t.char, style=f"{style} underline" if marked is not None and marked[i] else style)
        console.print(text)


@contextmanager
def progress(what: str) -> Iterator[Callable[[float], None]]:
    """A callback that shows a fraction done on stderr, when that is a terminal (and nothing until called)."""
    err = _stderr()
    shown = False

    def show(done: float) -> None:
        nonlocal shown
        if err.is_terminal:
            err.print(f"\r{what}: {done:4.0%}", end="")
            shown = True

    yield show
    if shown:
        err.print()


# --------------------------------------------------------------------------- cells


def passes(progress: Iterable[float], what: str) -> None:
    """Run a pass that yields its fraction done, showing it on stderr when that is a terminal."""
    err = _stderr()
    for done in progress:
        if err.is_terminal:
            err.print(f"\r{what}: {done:4.0%}", end="")
    if err.is_terminal:
        err.print()


def cells(
    ranking: Ranking,
    effects: dict[str, Effect],
    *,
    run_dir: Path,
    model: str,
    step: int,
    text: str,
    chars: int,
    as_json: bool,
) -> None:
    """The cells that follow each feature (`ranking`), with the ablation of each feature's top cell (`effects`)."""
    from rnn_tui.neurons import FEATURES

    if as_json:
        features = {
            f.name: {
                "label": f.label,
                "cells": [c.to_dict() for c in ranking.top[f.name]],
                "ablation": effects[f.name].to_dict() if f.name in effects else None,
            }
            for f in FEATURES
        }
        out = {"run": str(run_dir), "step": step, "text": text, "chars": chars, "features": features}
        print(json.dumps(out, ensure_ascii=False))
        return
    console = Console(highlight=False, markup=False)
    console.print(f"{model} at step {step:,}, on {chars:,} characters of {text}")
    table = Table("feature", "layer", "cell", "r", "holds (chars)", "Δ there", "Δ elsewhere", box=None)
    for row in ranking.rows():
        c = row.cell
        if c is None:
            table.add_row(row.feature.label, "-", "-", "-", "absent")
            continue
        e = effects.get(row.feature.name) if row.first else None
        label = row.feature.label if row.first else ""
        table.add_row(label, str(c.layer), str(c.cell), f"{c.r:+.3f}", *(_effect_columns(e) if e else ()))
    console.print(table)
    console.print(
        "Δ: how much the loss rises (bits per character) when the feature's top cell is zeroed at every step, "
        "where the feature holds (its value is above the threshold shown) and elsewhere"
    )


def _effect_columns(e: Effect) -> tuple[str, str, str]:
    def rise(bits: float | None) -> str:
        return "-" if bits is None else f"{bits:+.3f}"

    return f"> {e.above:g} ({e.chars_holds:,})", rise(e.rise_holds), rise(e.rise_elsewhere)


# --------------------------------------------------------------------------- score


def score_progress(file: str, chars: int) -> Callable[[int], None]:
    """What `Generator.surprise` calls after each chunk: the share done of a long file, on a terminal's stderr."""
    err = _stderr()

    def progress(done: int) -> None:
        if err.is_terminal and chars > 100_000:
            err.print(f"scoring {file}: {done / chars:.0%}", end="\r")

    return progress


@dataclass(frozen=True)
class Scored:
    """A file scored by a run: its text, each character's probability (NaN: outside the vocabulary), its lines."""

    file: str
    text: str
    probs: np.ndarray
    lines: list[LineScore]  # the ones to show: all of them, or the most surprising
    figures: dict  # scoring.summary
    run: Path  # the checkpoint's folder
    step: int


def score(s: Scored, *, top: bool, as_json: bool, no_color: bool, html: str | None, svg: str | None) -> None:
    """The coloured text (or its `top` most surprising lines), its figures, and the saved views."""
    from rnn_tui.export import confidence_legend, confidence_text, save_view

    out = Console(highlight=False, markup=False, emoji=False, no_color=no_color)
    figures = s.figures
    about = f"{s.file}: {figures['bits_per_char']:.3f} bits/char over {figures['chars']:,} characters"
    about += f" ({s.run.name}, step {s.step:,})"
    if figures["unknown"]:
        about += f"; {figures['unknown']:,} outside the model's vocabulary, counted as its least likely character"
    for path in (html, svg):
        if path:  # saved files carry their colours whatever this terminal can show
            legend = Text("\n").join([confidence_legend(prompt=False), Text(about)])
            save_view(path, confidence_text(s.text, s.probs), legend=legend, title=f"rnn-tui score {s.file}")
            _stderr().print(f"saved {path}")
    cs = out.color_system
    if as_json:
        for line in s.lines:
            print(json.dumps(line.to_json(s.text), ensure_ascii=False))
        print(json.dumps({"file": s.file, "run": str(s.run), "step": s.step, **figures}))
        return
    if top:
        table = Table("line", "bits/char", "text", box=None, pad_edge=False)
        table.columns[2].no_wrap = True
        for line in s.lines:
            row = confidence_text(s.text[line.start : line.end], s.probs[line.start : line.end], color_system=cs)
            row.rstrip()
            table.add_row(f"{line.line:,}", f"{line.bits_per_char:.2f}", row)
        out.print(table)
    else:
        out.print(confidence_text(s.text, s.probs, color_system=cs), soft_wrap=True)
        if out.is_terminal and cs is not None:
            out.print(confidence_legend(cs, prompt=False))
    out.print(about, soft_wrap=True)


# --------------------------------------------------------------------------- runs and corpora


def runs(rows: list[dict], checkpoint_dir: str, *, as_json: bool) -> None:
    """The runs of a checkpoint folder (checkpoint.list_runs), one line each."""
    if as_json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return
    if not rows:
        print(f"no runs in {checkpoint_dir}/ yet; start one with rnn-tui train or rnn-tui launch")
        return
    tuned = any(r.get("init_from") for r in rows)  # a column for fine-tuned runs' sources, where there are any
    heads = ("run", "corpus", "model", "steps", "best val", "trained", "last change", *(("from",) if tuned else ()))
    table = Table(*heads, box=None, pad_edge=False)
    for r in rows:
        table.add_row(
            r["name"],
            r["corpus"],
            r["model_summary"],
            f"{r['step']:,}",
            f"{r['best_val_loss']:.4f}" if r["best_val_loss"] is not None else "-",
            duration(r["train_seconds"]) if r["train_seconds"] is not None else "-",
            r["updated"].replace("T", " ")[:16],
            *((init_from(r.get("init_from")),) if tuned else ()),
        )
    Console(markup=False, highlight=False).print(table)


def curves_csv(rows: list[dict], columns: Sequence[str]) -> None:
    """A run's curves (record.curves) as CSV on stdout: a header line, then one row per step."""
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in columns])


def init_from(source: dict | None) -> str:
    """A fine-tuned run's source as `runs` shows it: `pretrained:shakespeare at step 3,000`."""
    return f"{source['source']} at step {source['step']:,}" if source else "-"


def models(rows: list[dict], *, as_json: bool) -> None:
    """The shipped models (models.listing): name, model, corpus, validation loss, size."""
    if as_json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return
    if not rows:
        print("no shipped models are installed with this rnn-tui")
        return
    table = Table("name", "model", "corpus", "val loss", "steps", "size", box=None, pad_edge=False)
    for r in rows:
        val = f"{r['val_loss']:.4f}" if r["val_loss"] is not None else "-"
        table.add_row(r["name"], r["model_summary"], r["corpus"], val, f"{r['step']:,}", size(r["bytes"]))
    Console(markup=False, highlight=False).print(table)
    print("val loss: nats/char on the last 10 % of the corpus, never trained on")


def corpora(rows: list[dict]) -> None:
    """The named corpora (text.sources.list_corpora)."""
    table = Table("name", "size", "status", box=None, pad_edge=False)
    table.add_column("source", overflow="fold")  # an address is never cut short
    table.add_column("description")
    for row in rows:
        status = f"download ({size(row['download_size'])})" if row["download_size"] else row["status"]
        table.add_row(row["name"], size(row["size"]), status, row["source"], row["description"])
    Console(markup=False, highlight=False).print(table)


# --------------------------------------------------------------------------- lesson


def lesson(figure: dict) -> None:
    """`rnn-tui lesson --json`: the figure's numbers as one JSON object."""
    print(json.dumps(figure, ensure_ascii=False))
