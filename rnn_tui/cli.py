"""The command line: launch | train | sample | score | cells | runs | corpora | watch | serve | lesson.

The model, training and sampling flags are built from the config dataclasses (config.py),
and their values are checked there too. Every user mistake becomes one line on stderr that
names the problem and the fix, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import NoReturn

from rnn_tui import __version__, config
from rnn_tui.config import CellsConfig, ModelConfig, SampleConfig, TrainConfig
from rnn_tui.errors import JobFailed, UserError
from rnn_tui.humanize import duration, size
from rnn_tui.runs import RunRequest
from rnn_tui.text.downloads import NAMED


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line instead of usage plus message."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _config_flags(group: argparse._ArgumentGroup, cls: type, gpu: dict | None = None) -> None:
    """One flag per field of `cls`, taken as text and checked by config.parse after parsing."""
    for f in fields(cls):
        spec = f.metadata["spec"]
        if spec.flag == "":
            continue
        kind = config.kind_of(cls, f.name)
        metavar = "{" + ",".join(spec.choices) + "}" if spec.choices else {int: "N", float: "X"}.get(kind, "TEXT")
        default = f" (default {f.default})" if f.default not in (None, "") else ""
        if gpu and f.name in gpu:
            default = f" (default {f.default}; {gpu[f.name]} on a GPU)"
        group.add_argument(config.flag_of(cls, f.name), dest=f.name, metavar=metavar, help=spec.help + default)


def _parsed(args: argparse.Namespace, cls: type) -> dict:
    """The flags of `cls` the user gave, as checked values."""
    return {
        f.name: config.parse(cls, f.name, getattr(args, f.name))
        for f in fields(cls)
        if getattr(args, f.name, None) is not None
    }


def _run_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("text")
    g.add_argument("--data", metavar="PATH", help="a text file, or a folder read recursively")
    g.add_argument(
        "--glob",
        dest="globs",
        action="append",
        default=[],
        metavar="PATTERN",
        help="with a folder: read only files matching PATTERN (repeatable), e.g. --glob '*.c'",
    )
    g.add_argument(
        "--corpus",
        metavar="NAME",
        help=f"a named corpus: stdlib (built in, the default), {', '.join(NAMED)} (see rnn-tui corpora)",
    )
    g.add_argument("--encoding", default="utf-8", help="text encoding of --data (default utf-8)")
    _config_flags(p.add_argument_group("model"), ModelConfig, config.GPU_MODEL)
    _config_flags(p.add_argument_group("training"), TrainConfig, config.GPU_TRAIN)
    r = p.add_argument_group("run")
    r.add_argument(
        "--checkpoint-dir", default="checkpoints", metavar="DIR", help="where runs live (default checkpoints)"
    )
    r.add_argument("--run-name", metavar="NAME", help="the run's folder name (default: corpus, date and time)")
    r.add_argument("--resume", metavar="RUN", help="continue a run: a run folder, a run name, or latest")


def build_parser() -> Parser:
    parser = Parser(prog="rnn-tui", description="Train, watch and play with character-level RNN language models.")
    parser.add_argument("--version", action="version", version=f"rnn-tui {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    launch = sub.add_parser("launch", help="the app: train live next to a playground")
    _run_flags(launch)
    launch.add_argument("--no-train", action="store_true", help="open the playground on --resume RUN without training")

    train = sub.add_parser("train", help="train headless")
    _run_flags(train)
    train.add_argument("--json", action="store_true", help="one JSON object per event on stdout")

    sample = sub.add_parser("sample", help="stream text from a trained run")
    sample.add_argument("run", metavar="RUN", help="a run folder, a run name, or latest")
    sample.add_argument("--prime", default="", help="text to start from")
    _config_flags(sample.add_argument_group("sampling"), SampleConfig)
    sample.add_argument("--best", action="store_true", help="use the run's best validation checkpoint")
    sample.add_argument("--no-color", action="store_true", help="plain text even in a terminal")
    sample.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR")

    cells = sub.add_parser("cells", help="find the cells that track quotes, brackets, line position...")
    cells.add_argument("run", metavar="RUN", help="a run folder, a run name, or latest")
    cells.add_argument("--text", metavar="FILE", help="the text to read (default: the run's validation text)")
    _config_flags(cells.add_argument_group("ranking"), CellsConfig)
    cells.add_argument("--best", action="store_true", help="use the run's best validation checkpoint")
    cells.add_argument("--json", action="store_true", help="one JSON object: each feature's cells, r and ablation")
    cells.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR")

    score = sub.add_parser("score", help="how surprising a file is to a run: bits per character, the oddest lines")
    score.add_argument("run", metavar="RUN", help="a run folder, a run name, or latest")
    score.add_argument("file", metavar="FILE", help="the text file to score")
    score.add_argument("--top", type=int, metavar="N", help="list the N most surprising lines instead of the text")
    score.add_argument(
        "--json", action="store_true", help="per-line figures, one JSON object per line, then the file's"
    )
    score.add_argument("--html", metavar="FILE", help="also save the coloured text and its legend as HTML")
    score.add_argument("--svg", metavar="FILE", help="also save the coloured text and its legend as SVG")
    score.add_argument("--encoding", default="utf-8", help="text encoding of FILE (default utf-8)")
    score.add_argument("--best", action="store_true", help="use the run's best validation checkpoint")
    score.add_argument("--no-color", action="store_true", help="plain text even in a terminal")
    score.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR")

    watch = sub.add_parser("watch", help="the app on a run that another process trains; it never writes there")
    watch.add_argument("run", metavar="RUN", help="a run folder, a run name, or latest")
    watch.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR")

    serve = sub.add_parser(
        "serve",
        help="the app in a browser (textual-serve): each tab gets its own app",
        usage="rnn-tui serve [--host HOST] [--port PORT] [--public-url URL] [-- LAUNCH FLAGS]",
    )
    serve.add_argument("--host", default="127.0.0.1", help="where to listen (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="(default 8000)")
    serve.add_argument("--public-url", metavar="URL", help="the address browsers use, if not http://HOST:PORT")
    serve.add_argument("launch", nargs=argparse.REMAINDER, help="after --: the flags of rnn-tui launch")

    lesson = sub.add_parser("lesson", help='the post\'s "hello" figure, live: a tiny RNN learns one word')
    lesson.add_argument("word", nargs="?", default="hello", metavar="WORD", help="the word to learn (default hello)")
    lesson.add_argument(
        "--cell", choices=("rnn", "lstm", "gru"), default="rnn", help="the cell (default rnn; c switches)"
    )
    lesson.add_argument("--hidden", type=int, default=3, metavar="N", help="hidden units (default 3)")
    lesson.add_argument("--seed", type=int, default=0, metavar="N", help="the first weights' seed (default 0)")
    lesson.add_argument("--lr", type=float, default=0.1, metavar="X", help="Adagrad's learning rate (default 0.1)")
    lesson.add_argument("--steps", type=int, default=0, metavar="N", help="updates to take first (default 0)")
    lesson.add_argument("--json", action="store_true", help="no screen: print the figure's numbers as one JSON object")

    sub.add_parser("corpora", help="list the named corpora")
    runs = sub.add_parser("runs", help="list the runs in a checkpoint folder")
    runs.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR")
    runs.add_argument("--json", action="store_true", help="one JSON object per run")
    return parser


def run_request(args: argparse.Namespace) -> RunRequest:
    return RunRequest(
        data=args.data,
        corpus=args.corpus,
        globs=tuple(args.globs),
        encoding=args.encoding,
        model=_parsed(args, ModelConfig),
        train=_parsed(args, TrainConfig),
        checkpoint_dir=args.checkpoint_dir,
        run_name=args.run_name,
        resume=args.resume,
    )


# --------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    """Train headless; under torchrun, as one rank of a job (rank 0 plans, writes and reports)."""
    from rnn_tui.reporting import reporter_for
    from rnn_tui.runs import plan
    from rnn_tui.train import distributed
    from rnn_tui.train.loop import prepare

    request = run_request(args)
    with distributed.start(request.train.get("device", "auto")) as job:
        run_plan = job.share_plan(lambda: plan(request))
        reporter = reporter_for(json_lines=args.json) if job.writer else None
        on_event = reporter.on_event if reporter else None
        with (
            prepare(run_plan, on_event, job) as trainer,
            _StopOnSignal(quiet=not job.writer) as stop,
            reporter or contextlib.nullcontext(),
        ):
            trainer.run(should_stop=stop)
    return 0


class _StopOnSignal:
    """Ctrl-C or SIGTERM: finish the step and save. A second Ctrl-C aborts (the last checkpoint stays)."""

    def __init__(self, quiet: bool = False) -> None:
        self.requested = False
        self.quiet = quiet  # the other ranks of a distributed job: rank 0 says it

    def __call__(self) -> bool:
        return self.requested

    def __enter__(self) -> _StopOnSignal:
        self._old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: object) -> None:
            if self.requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.requested = True
            if not self.quiet:
                print("\nrnn-tui: stopping after this step and saving (Ctrl-C again to abort)", file=sys.stderr)

        for s in self._old:
            signal.signal(s, handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


def _load_run(args: argparse.Namespace):
    """The checkpoint of `args.run` (its best one with `--best`), for the commands that use a trained model."""
    from rnn_tui import checkpoint

    folder = checkpoint.resolve(args.run, args.checkpoint_dir)
    if args.best:
        if not (folder / checkpoint.BEST / checkpoint.META).exists():
            raise UserError(f"{folder} has no best/ checkpoint yet (no evaluation has run); drop --best")
        folder = folder / checkpoint.BEST
    return checkpoint.load(folder, optimizer=False)


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.text import Text

    from rnn_tui import palette
    from rnn_tui.generation import Generator

    settings = _parsed(args, SampleConfig)
    ckpt = _load_run(args)
    if "seed" not in settings:
        settings["seed"] = int(np.random.SeedSequence().entropy % 2**32)
        print(f"rnn-tui: sampling with --seed {settings['seed']}", file=sys.stderr)
    s = SampleConfig(**settings)
    gen = Generator(ckpt.config, ckpt.vocab, ckpt.model)
    console = Console(highlight=False, soft_wrap=True, emoji=False, markup=False)
    color = console.is_terminal and not args.no_color and console.color_system is not None
    out = sys.stdout

    def show(tokens):
        for tok in tokens:
            if color:
                console.print(Text(tok.char, style=palette.style_of(tok.prob, console.color_system)), end="")
            else:
                out.write(tok.char)
            out.flush()

    show(gen.score(args.prime))
    show(gen.stream(args.prime, s.length, s.temperature, s.top_k, s.seed))
    out.write("\n")
    return 0


def cmd_cells(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from rnn_tui.inference import Stepper
    from rnn_tui.neurons import FEATURES, Analysis, validation_text
    from rnn_tui.text.sources import file_source

    settings = CellsConfig(**_parsed(args, CellsConfig))
    ckpt = _load_run(args)
    run_dir = ckpt.path.parent if ckpt.path.name == "best" else ckpt.path
    if args.text:
        if not Path(args.text).expanduser().is_file():
            raise UserError(f"no such file: {args.text}; check the path given to --text")
        text = "".join(file_source(args.text).chunks())[: settings.chars]
        what = args.text
    else:
        text = validation_text(run_dir, settings.chars)
        what = f"the validation text of {run_dir.name}"
    analysis = Analysis(Stepper(ckpt.config, ckpt.model), ckpt.vocab, text)
    err = Console(stderr=True, highlight=False, markup=False)

    def run(passes, what_for: str) -> None:
        for done in passes:
            if err.is_terminal:
                err.print(f"\r{what_for}: {done:4.0%}", end="")
        if err.is_terminal:
            err.print()

    run(analysis.correlate(), f"reading {len(text):,} characters")
    ranking = analysis.ranking(settings.top)
    firsts = {name: cells[0] for name, cells in ranking.top.items() if cells}
    run(analysis.ablate([(c.layer, c.cell) for c in firsts.values()]), "zeroing each feature's top cell")
    effects = {name: analysis.effect((c.layer, c.cell), name) for name, c in firsts.items()}
    if args.json:
        features = {
            f.name: {
                "label": f.label,
                "cells": [c.to_dict() for c in ranking.top[f.name]],
                "ablation": effects[f.name].to_dict() if f.name in effects else None,
            }
            for f in FEATURES
        }
        out = {"run": str(run_dir), "step": ckpt.step, "text": what, "chars": len(text), "features": features}
        print(json.dumps(out, ensure_ascii=False))
        return 0
    console = Console(highlight=False, markup=False)
    console.print(f"{ckpt.config.summary()} at step {ckpt.step:,}, on {len(text):,} characters of {what}")
    table = Table("feature", "layer", "cell", "r", "holds (chars)", "Δ there", "Δ elsewhere", box=None)
    for f in FEATURES:
        cells = ranking.top[f.name]
        if not cells:
            table.add_row(f.label, "-", "-", "-", "absent")
        for i, c in enumerate(cells):
            e = effects[f.name] if i == 0 else None
            table.add_row(
                f.label if i == 0 else "",
                str(c.layer),
                str(c.cell),
                f"{c.r:+.3f}",
                *(_effect_columns(e) if e else ()),
            )
    console.print(table)
    console.print(
        "Δ: how much the loss rises (bits per character) when the feature's top cell is zeroed at every step, "
        "where the feature holds (its value is above the threshold shown) and elsewhere"
    )
    return 0


def _effect_columns(e) -> tuple[str, str, str]:
    def rise(bits: float | None) -> str:
        return "-" if bits is None else f"{bits:+.3f}"

    return f"> {e.above:g} ({e.chars_holds:,})", rise(e.rise_holds), rise(e.rise_elsewhere)


def cmd_score(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from rnn_tui import scoring
    from rnn_tui.export import confidence_legend, confidence_text, save_view
    from rnn_tui.generation import Generator
    from rnn_tui.text.sources import read_text
    from rnn_tui.text.vocab import Vocab

    if args.top is not None and args.top < 1:
        raise UserError(f"--top {args.top} lists no lines; give a count of 1 or more")
    for suffix, path in ((".html", args.html), (".svg", args.svg)):
        if path and not path.lower().endswith(suffix):
            raise UserError(f"--{suffix[1:]} {path}: name a file ending in {suffix}")
    text = read_text(args.file, args.encoding, fix="give a text file, or pass --encoding if it uses another one")
    ckpt = _load_run(args)
    out = Console(highlight=False, markup=False, emoji=False, no_color=args.no_color)
    err = Console(stderr=True, highlight=False, markup=False)

    def progress(done: int) -> None:
        if err.is_terminal and len(text) > 100_000:
            err.print(f"scoring {args.file}: {done / len(text):.0%}", end="\r")

    bits = Generator(ckpt.config, ckpt.vocab, ckpt.model).surprise(text, progress)
    unknown = ckpt.vocab.encode(text) == Vocab.UNK
    lines = scoring.line_scores(text, bits, unknown)
    shown = scoring.most_surprising(lines, args.top) if args.top else lines
    figures = scoring.summary(bits, unknown)
    about = f"{args.file}: {figures['bits_per_char']:.3f} bits/char over {figures['chars']:,} characters"
    about += f" ({ckpt.path.name}, step {ckpt.step:,})"
    if figures["unknown"]:
        about += f"; {figures['unknown']:,} outside the model's vocabulary, counted as its least likely character"
    probs = np.where(unknown, np.nan, scoring.probabilities(bits))
    for path in (args.html, args.svg):
        if path:  # saved files carry their colours whatever this terminal can show
            legend = Text("\n").join([confidence_legend(prompt=False), Text(about)])
            save_view(path, confidence_text(text, probs), legend=legend, title=f"rnn-tui score {args.file}")
            err.print(f"saved {path}")
    cs = out.color_system
    if args.json:
        for line in shown:
            print(json.dumps(line.to_json(text), ensure_ascii=False))
        print(json.dumps({"file": str(args.file), "run": str(ckpt.path), "step": ckpt.step, **figures}))
        return 0
    if args.top:
        table = Table("line", "bits/char", "text", box=None, pad_edge=False)
        table.columns[2].no_wrap = True
        for line in shown:
            row = confidence_text(text[line.start : line.end], probs[line.start : line.end], color_system=cs)
            row.rstrip()
            table.add_row(f"{line.line:,}", f"{line.bits_per_char:.2f}", row)
        out.print(table)
    else:
        out.print(confidence_text(text, probs, color_system=cs), soft_wrap=True)
        if out.is_terminal and cs is not None:
            out.print(confidence_legend(cs, prompt=False))
    out.print(about, soft_wrap=True)
    return 0


def cmd_corpora(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rnn_tui.text.sources import list_corpora

    table = Table("name", "size", "status", box=None, pad_edge=False)
    table.add_column("source", overflow="fold")  # an address is never cut short
    table.add_column("description")
    for row in list_corpora():
        status = f"download ({size(row['download_size'])})" if row["download_size"] else row["status"]
        table.add_row(row["name"], size(row["size"]), status, row["source"], row["description"])
    Console(markup=False, highlight=False).print(table)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rnn_tui.checkpoint import list_runs

    rows = list_runs(args.checkpoint_dir)
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no runs in {args.checkpoint_dir}/ yet; start one with rnn-tui train or rnn-tui launch")
        return 0
    table = Table("run", "corpus", "model", "steps", "best val", "trained", "last change", box=None, pad_edge=False)
    for r in rows:
        table.add_row(
            r["name"],
            r["corpus"],
            r["model_summary"],
            f"{r['step']:,}",
            f"{r['best_val_loss']:.4f}" if r["best_val_loss"] is not None else "-",
            duration(r["train_seconds"]) if r["train_seconds"] is not None else "-",
            r["updated"].replace("T", " ")[:16],
        )
    Console(markup=False, highlight=False).print(table)
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    from rnn_tui import checkpoint, record
    from rnn_tui.runs import plan
    from rnn_tui.session import FolderSession, LocalSession

    request = run_request(args)
    if args.no_train:
        if not args.resume:
            raise UserError("--no-train needs a trained run: add --resume RUN (see rnn-tui runs)")
        folder = checkpoint.resolve(args.resume, args.checkpoint_dir)
        checkpoint.load(folder, optimizer=False)  # a damaged run is one line here, not a crash in the app
        record.read(folder)
        session = FolderSession(folder)
    else:
        run_plan = plan(request)
        session = LocalSession(run_plan, log_path=run_plan.run_dir / checkpoint.LOG)
        session.start()  # PyTorch's import in the trainer overlaps the app's start-up
    from rnn_tui.tui.app import run_app

    return run_app(session, checkpoint_dir=args.checkpoint_dir)


def cmd_lesson(args: argparse.Namespace) -> int:
    from rnn_tui.lesson import Lesson

    lesson = Lesson(args.word, cell=args.cell, hidden=args.hidden, seed=args.seed, lr=args.lr)
    lesson.train(args.steps)
    if args.json:
        print(json.dumps(lesson.to_json(), ensure_ascii=False))
        return 0
    from rnn_tui.tui.screens.lesson import run_lesson

    return run_lesson(lesson)


def cmd_watch(args: argparse.Namespace) -> int:
    from rnn_tui.session import WatchSession, watched_folder
    from rnn_tui.tui.app import run_app

    folder = watched_folder(args.run, args.checkpoint_dir)
    return run_app(WatchSession(folder), checkpoint_dir=folder.parent)


def exposure_warning(host: str, port: int) -> str | None:
    """What `serve` says when it listens beyond this machine (textual-serve has no password)."""
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may reach anywhere
        loopback = False
    if loopback:
        return None
    return (
        f"rnn-tui serve: warning: listening on {host}:{port}, beyond this machine: anyone who can reach it "
        "can open the app, train here and read the runs' text; there is no password (the default is 127.0.0.1)"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import shlex
    import socket

    from rnn_tui.runs import plan

    try:
        from textual_serve.server import Server
    except ImportError:
        raise UserError('rnn-tui serve needs textual-serve: pip install "rnn-tui[web]"') from None
    flags = args.launch[1:] if args.launch[:1] == ["--"] else args.launch
    if flags and not flags[0].startswith("-"):
        raise UserError(f"{flags[0]!r} is not a flag of rnn-tui launch; put launch flags after --")
    plan(run_request(build_parser().parse_args(["launch", *flags])))  # a mistake shows now, not in every tab
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port} is not a port number; use 1 to 65535")
    public = args.public_url
    warning = exposure_warning(args.host, args.port)
    if warning:
        print(warning, file=sys.stderr)
    if public is None and args.host in ("0.0.0.0", "::"):  # the page must name an address browsers can use
        public = f"http://{socket.gethostname()}:{args.port}"
    command = shlex.join([sys.executable, "-m", "rnn_tui", "launch", *flags])
    server = Server(command, host=args.host, port=args.port, title="rnn-tui", public_url=public)
    try:
        server.serve()
    except OSError as exc:
        where = f"{args.host}:{args.port}"
        raise UserError(f"cannot listen on {where} ({exc.strerror or exc}); choose another --port") from None
    return 0


COMMANDS = {
    "train": cmd_train,
    "sample": cmd_sample,
    "corpora": cmd_corpora,
    "runs": cmd_runs,
    "launch": cmd_launch,
    "cells": cmd_cells,
    "score": cmd_score,
    "watch": cmd_watch,
    "serve": cmd_serve,
    "lesson": cmd_lesson,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        message = " ".join(str(exc).splitlines())  # one line, even where a value or a file name holds a newline
        print(f"rnn-tui {args.command}: error: {message}", file=sys.stderr)
        return 2
    except JobFailed as exc:
        print(f"rnn-tui {args.command}: stopped: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nrnn-tui: aborted; the last saved checkpoint is intact", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rnn-tui sample run | head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"rnn-tui {args.command}: error: cannot use{where}: {exc.strerror or exc}; "
            "check the path and its permissions",
            file=sys.stderr,
        )
        return 2
