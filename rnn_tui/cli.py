"""The command line: launch | train | sample | runs | corpora.

The model, training and sampling flags are built from the config dataclasses (config.py),
and their values are checked there too. Every user mistake becomes one line on stderr that
names the problem and the fix, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import NoReturn

from rnn_tui import __version__, config
from rnn_tui.config import ModelConfig, SampleConfig, TrainConfig
from rnn_tui.errors import UserError
from rnn_tui.humanize import duration, size
from rnn_tui.runs import RunRequest


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
    g.add_argument("--corpus", metavar="NAME", help="a named corpus: stdlib (built in, the default) or shakespeare")
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
    from rnn_tui.reporting import reporter_for
    from rnn_tui.runs import plan
    from rnn_tui.training import prepare

    run_plan = plan(run_request(args))
    reporter = reporter_for(json_lines=args.json)
    with prepare(run_plan, reporter.on_event) as trainer, _StopOnSignal() as stop, reporter:
        trainer.run(should_stop=stop)
    return 0


class _StopOnSignal:
    """Ctrl-C or SIGTERM: finish the step and save. A second Ctrl-C aborts (the last checkpoint stays)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def __enter__(self) -> _StopOnSignal:
        self._old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: object) -> None:
            if self.requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.requested = True
            print("\nrnn-tui: stopping after this step and saving (Ctrl-C again to abort)", file=sys.stderr)

        for s in self._old:
            signal.signal(s, handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.text import Text

    from rnn_tui import checkpoint, palette
    from rnn_tui.generation import Generator

    settings = _parsed(args, SampleConfig)
    folder = checkpoint.resolve(args.run, args.checkpoint_dir)
    if args.best:
        if not (folder / checkpoint.BEST / checkpoint.META).exists():
            raise UserError(f"{folder} has no best/ checkpoint yet (no evaluation has run); drop --best")
        folder = folder / checkpoint.BEST
    ckpt = checkpoint.load(folder, optimizer=False)
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


def cmd_corpora(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rnn_tui.corpus import list_corpora

    table = Table("name", "size", "status", "description", box=None, pad_edge=False)
    for row in list_corpora():
        table.add_row(row["name"], size(row["size"]), row["status"], row["description"])
    Console().print(table)
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
        m = r["model"]
        table.add_row(
            r["name"],
            r["corpus"],
            f"{m.get('cell', '?')} {m.get('layers', '?')}×{m.get('hidden', '?')}",
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
    from rnn_tui.tui.app import run_app

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
    return run_app(session)


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "corpora": cmd_corpora, "runs": cmd_runs, "launch": cmd_launch}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        message = " ".join(str(exc).splitlines())  # one line, even where a value or a file name holds a newline
        print(f"rnn-tui {args.command}: error: {message}", file=sys.stderr)
        return 2
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
