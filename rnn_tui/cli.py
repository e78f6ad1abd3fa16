"""The command line: launch | train | sample | score | cells | runs | models | corpora | watch | serve | lesson.

The model, training and sampling flags are built from the config dataclasses (config.py),
and their values are checked there too. Every user mistake becomes one line on stderr that
names the problem and the fix, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, NoReturn

from rnn_tui import __version__, checkpoint, config, models
from rnn_tui.checkpoint import CHECKPOINT_DIR
from rnn_tui.config import CellsConfig, ModelConfig, SampleConfig, Settings, TrainConfig
from rnn_tui.errors import JobFailed, UserError
from rnn_tui.runs import FINE_TUNE_LR, RunSpec
from rnn_tui.text.downloads import NAMED
from rnn_tui.text.sources import SourceSpec

if TYPE_CHECKING:
    from rnn_tui.generation import Token
    from rnn_tui.text.copies import CopyIndex


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
        if gpu and f.name in config.BUDGETED:  # a CPU run with --max-steps: config.Budget
            ends = ((config.SHORT, "a short"), (config.LONG, "a long"))
            said = [
                f"{getattr(end, f.name)} for {which} --max-steps run"
                for end, which in ends
                if getattr(end, f.name) != f.default
            ]
            default = default[:-1] + "".join(f"; {s}" for s in said) + ")"
        group.add_argument(config.flag_of(cls, f.name), dest=f.name, metavar=metavar, help=spec.help + default)


def _parsed(args: argparse.Namespace, cls: type[config.C]) -> Settings[config.C]:
    """The flags of `cls` the user gave, parsed and checked (once: nothing checks them again)."""
    given = {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
    return Settings.parse(cls, given)


def _run(p: argparse.ArgumentParser) -> None:
    """RUN: the trained run a command works on (with `_run_folder` after the command's own flags)."""
    p.add_argument("run", metavar="RUN", help="a run folder, a run name, latest, or pretrained:NAME (rnn-tui models)")


def _run_folder(p: argparse.ArgumentParser, *, best: bool = True) -> None:
    """`--best` and `--checkpoint-dir`: which checkpoint of RUN, and where runs live."""
    if best:
        p.add_argument("--best", action="store_true", help="use the run's best validation checkpoint")
    _checkpoint_dir(p)


def _checkpoint_dir(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--checkpoint-dir", default=CHECKPOINT_DIR, metavar="DIR", help=f"where runs live (default {CHECKPOINT_DIR})"
    )


def _json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=what)


def _no_color(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-color", action="store_true", help="plain text even in a terminal")


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
    _checkpoint_dir(r)
    r.add_argument("--run-name", metavar="NAME", help="the run's folder name (default: corpus, date and time)")
    r.add_argument("--resume", metavar="RUN", help="continue a run: a run folder, a run name, or latest")
    r.add_argument(
        "--init-from",
        metavar="RUN",
        help="fine-tune: a new run that starts from the weights of RUN or pretrained:NAME (see rnn-tui models); "
        "the text's new characters join the vocabulary, the optimizer and schedule start fresh, --lr defaults to "
        f"{FINE_TUNE_LR:g}",
    )


def build_parser() -> Parser:
    parser = Parser(prog="rnn-tui", description="Train, watch and play with character-level RNN language models.")
    parser.add_argument("--version", action="version", version=f"rnn-tui {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    launch = sub.add_parser("launch", help="the app: train live next to a playground")
    _run_flags(launch)
    launch.add_argument("--no-train", action="store_true", help="open the playground on --resume RUN without training")
    launch.add_argument(
        "--pretrained",
        metavar="NAME",
        help="play with a shipped model at once (see rnn-tui models): --resume pretrained:NAME --no-train",
    )

    train = sub.add_parser("train", help="train headless")
    _run_flags(train)
    _json(train, "one JSON object per event on stdout")

    sample = sub.add_parser("sample", help="stream text from a trained run")
    _run(sample)
    sample.add_argument("--prime", default="", help="text to start from")
    _config_flags(sample.add_argument_group("sampling"), SampleConfig)
    _json(sample, "one JSON object per sample, likeliest first: text, bits_per_char, novel, copied, seed")
    _no_color(sample)
    _run_folder(sample)

    cells = sub.add_parser("cells", help="find the cells that track quotes, brackets, line position...")
    _run(cells)
    cells.add_argument("--text", metavar="FILE", help="the text to read (default: the run's validation text)")
    _config_flags(cells.add_argument_group("ranking"), CellsConfig)
    _json(cells, "one JSON object: each feature's cells, r and ablation")
    _run_folder(cells)

    score = sub.add_parser("score", help="how surprising a file is to a run: bits per character, the oddest lines")
    _run(score)
    score.add_argument("file", metavar="FILE", help="the text file to score")
    score.add_argument("--top", type=int, metavar="N", help="list the N most surprising lines instead of the text")
    _json(score, "per-line figures, one JSON object per line, then the file's")
    score.add_argument("--html", metavar="FILE", help="also save the coloured text and its legend as HTML")
    score.add_argument("--svg", metavar="FILE", help="also save the coloured text and its legend as SVG")
    score.add_argument("--encoding", default="utf-8", help="text encoding of FILE (default utf-8)")
    _no_color(score)
    _run_folder(score)

    watch = sub.add_parser("watch", help="the app on a run that another process trains; it never writes there")
    _run(watch)
    _run_folder(watch, best=False)

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
    shipped = sub.add_parser("models", help="list the shipped models (pretrained:NAME): model, corpus, validation loss")
    _json(shipped, "one JSON object per model")
    runs = sub.add_parser("runs", help="list the runs in a checkpoint folder, or print one run's curves")
    runs.add_argument("run", nargs="?", metavar="RUN", help="with --csv: a run folder, a run name, or latest")
    runs.add_argument("--csv", action="store_true", help="RUN's curves as CSV: step, elapsed, chars, loss, val_loss…")
    _checkpoint_dir(runs)
    _json(runs, "one JSON object per run")
    return parser


def run_spec(args: argparse.Namespace) -> RunSpec:
    """The run the flags of `train` or `launch` ask for: every setting parsed and checked here, once."""
    return RunSpec(
        SourceSpec.from_dict(vars(args)),  # --data, --corpus, --glob and --encoding, by their field names
        _parsed(args, ModelConfig),
        _parsed(args, TrainConfig),
        args.checkpoint_dir,
        args.run_name,
        args.resume,
        args.init_from,
    )


# --------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    """Train headless; under torchrun, as one rank of a job (rank 0 plans, writes and reports)."""
    from rnn_tui.reporting import reporter_for
    from rnn_tui.runs import plan
    from rnn_tui.train import distributed
    from rnn_tui.train.loop import prepare

    spec = run_spec(args)
    with distributed.start(spec.train.get("device", "auto")) as job:
        run_plan = job.share_plan(lambda: plan(spec))
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


def _load_run(args: argparse.Namespace) -> checkpoint.Checkpoint:
    """The checkpoint of `args.run` (its best one with `--best`), for the commands that use a trained model."""
    folder = checkpoint.resolve(args.run, args.checkpoint_dir)
    if args.best:
        if not (folder / checkpoint.BEST / checkpoint.META).exists():
            raise UserError(f"{folder} has no best/ checkpoint yet (no evaluation has run); drop --best")
        folder = folder / checkpoint.BEST
    return checkpoint.load(folder, optimizer=False)


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from rnn_tui import output
    from rnn_tui.generation import Generator

    settings = _parsed(args, SampleConfig)
    ckpt = _load_run(args)
    if "seed" not in settings:
        seed = int(np.random.SeedSequence().entropy % 2**32)
        print(f"rnn-tui: sampling with --seed {seed}", file=sys.stderr)
        settings = Settings(SampleConfig, {"seed": seed}).over(settings)
    s = settings.build()
    gen = Generator(ckpt.config, ckpt.vocab, ckpt.model)
    prompt = gen.score(args.prime)
    if s.count == 1 and not args.json:  # streamed as it comes; how much is copied, after
        tokens: list[Token] = []
        output.tokens([prompt, _kept(gen.stream(args.prime, s), tokens)], no_color=args.no_color)
        if (index := _copy_index(ckpt)) is not None:
            output.novelty(index.copies("".join(t.char for t in tokens), s.copied_min))
        return 0
    samples = gen.samples(args.prime, s)
    index = _copy_index(ckpt)
    copies = [index.copies(m.text, s.copied_min) if index is not None else None for m in samples]
    output.samples(prompt, samples, copies, as_json=args.json, no_color=args.no_color)
    return 0


def _kept(tokens: Iterator[Token], into: list[Token]) -> Iterator[Token]:
    """`tokens`, each also appended to `into`."""
    for t in tokens:
        into.append(t)
        yield t


def _copy_index(ckpt: checkpoint.Checkpoint) -> CopyIndex | None:
    """The index of the run's training text (built on first use, with progress on stderr); None, with a
    note, when the text is not there any more."""
    from rnn_tui import output
    from rnn_tui.text import copies

    run_dir = ckpt.path.parent if ckpt.path.name == checkpoint.BEST else ckpt.path
    try:
        with output.progress("indexing the training text for copies (once per corpus)") as progress:
            return copies.for_run(run_dir, progress)
    except UserError as exc:
        print(f"rnn-tui: copies not checked: {exc}", file=sys.stderr)
        return None


def cmd_cells(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rnn_tui import output
    from rnn_tui.inference import Stepper
    from rnn_tui.neurons import Analysis, validation_text
    from rnn_tui.text.sources import file_source

    settings = _parsed(args, CellsConfig).build()
    ckpt = _load_run(args)
    run_dir = ckpt.path.parent if ckpt.path.name == checkpoint.BEST else ckpt.path
    if args.text:
        if not Path(args.text).expanduser().is_file():
            raise UserError(f"no such file: {args.text}; check the path given to --text")
        text = "".join(file_source(args.text).chunks())[: settings.chars]
        what = args.text
    else:
        text = validation_text(run_dir, settings.chars)
        what = f"the validation text of {run_dir.name}"
    analysis = Analysis(Stepper(ckpt.config, ckpt.model), ckpt.vocab, text)
    output.passes(analysis.correlate(), f"reading {len(text):,} characters")
    ranking = analysis.ranking(settings.top)
    firsts = {name: cells[0] for name, cells in ranking.top.items() if cells}
    output.passes(analysis.ablate([(c.layer, c.cell) for c in firsts.values()]), "zeroing each feature's top cell")
    effects = {name: analysis.effect((c.layer, c.cell), name) for name, c in firsts.items()}
    output.cells(
        ranking,
        effects,
        run_dir=run_dir,
        model=ckpt.config.summary(),
        step=ckpt.step,
        text=what,
        chars=len(text),
        as_json=args.json,
    )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import numpy as np

    from rnn_tui import output, scoring
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
    bits = Generator(ckpt.config, ckpt.vocab, ckpt.model).surprise(text, output.score_progress(args.file, len(text)))
    unknown = ckpt.vocab.encode(text) == Vocab.UNK
    lines = scoring.line_scores(text, bits, unknown)
    scored = output.Scored(
        file=str(args.file),
        text=text,
        probs=np.where(unknown, np.nan, scoring.probabilities(bits)),
        lines=scoring.most_surprising(lines, args.top) if args.top else lines,
        figures=scoring.summary(bits, unknown),
        run=ckpt.path,
        step=ckpt.step,
    )
    output.score(scored, top=bool(args.top), as_json=args.json, no_color=args.no_color, html=args.html, svg=args.svg)
    return 0


def cmd_corpora(args: argparse.Namespace) -> int:
    from rnn_tui import output
    from rnn_tui.text.sources import list_corpora

    output.corpora(list_corpora())
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from rnn_tui import models, output

    output.models(models.listing(), as_json=args.json)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from rnn_tui import output

    if args.run is None and args.csv:
        raise UserError("--csv prints one run's curves: name it, e.g. rnn-tui runs latest --csv")
    if args.run is not None:
        if not args.csv:
            raise UserError(f"to print the curves of {args.run}, add --csv (rnn-tui runs alone lists the runs)")
        from rnn_tui import record

        folder = checkpoint.resolve(args.run, args.checkpoint_dir)
        output.curves_csv(record.curves(record.read(folder).events), record.CURVE_COLUMNS)
        return 0
    output.runs(checkpoint.list_runs(args.checkpoint_dir), args.checkpoint_dir, as_json=args.json)
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    from rnn_tui.runs import plan
    from rnn_tui.session import FolderSession, LocalSession

    if args.pretrained is not None:
        if args.resume or args.init_from:
            raise UserError(
                "--pretrained NAME plays with a shipped model; to train from one, use --init-from pretrained:NAME"
            )
        args.resume, args.no_train = models.PREFIX + args.pretrained.removeprefix(models.PREFIX), True
    spec = run_spec(args)
    if args.no_train:
        if not spec.resume:
            raise UserError("--no-train needs a trained run: add --resume RUN (see rnn-tui runs)")
        # Read once, here: a damaged run is one line, not a crash in the app.
        session = FolderSession.open(checkpoint.resolve(spec.resume, spec.checkpoint_dir))
    else:
        run_plan = plan(spec)
        session = LocalSession(run_plan, log_path=run_plan.run_dir / checkpoint.LOG)  # started after the first frame
    from rnn_tui.tui.app import run_app

    return run_app(session, checkpoint_dir=args.checkpoint_dir)


def cmd_lesson(args: argparse.Namespace) -> int:
    from rnn_tui.lesson import Lesson

    lesson = Lesson(args.word, cell=args.cell, hidden=args.hidden, seed=args.seed, lr=args.lr)
    lesson.train(args.steps)
    if args.json:
        from rnn_tui import output

        output.lesson(lesson.to_json())
        return 0
    from rnn_tui.tui.screens.lesson import run_lesson

    return run_lesson(lesson)


def cmd_watch(args: argparse.Namespace) -> int:
    from rnn_tui.session import WatchSession, watched_folder
    from rnn_tui.tui.app import run_app

    if models.is_pretrained(args.run):
        name = args.run.removeprefix(models.PREFIX)
        raise UserError(
            f"{args.run} is a shipped model: nothing trains it, so there is nothing to watch; "
            f"play with it with rnn-tui launch --pretrained {name}"
        )
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
    plan(run_spec(build_parser().parse_args(["launch", *flags])))  # a mistake shows now, not in every tab
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
    "models": cmd_models,
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
