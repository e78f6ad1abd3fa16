"""The command line: launch | train | sample | corpora | runs.

Every user mistake becomes one line on stderr that names the problem and the fix, with
exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from rnn_tui import __version__
from rnn_tui.errors import UserError

MODEL_FLAGS = ("cell", "layers", "hidden", "embedding", "dropout")
TRAIN_FLAGS = (
    "batch_size",
    "seq_len",
    "lr",
    "warmup_steps",
    "weight_decay",
    "grad_clip",
    "max_steps",
    "max_minutes",
    "eval_every",
    "eval_chars",
    "sample_every",
    "checkpoint_every",
    "val_frac",
    "batching",
    "seed",
    "device",
    "precision",
    "threads",
)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line instead of usage plus message."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(
    kind: type, low: float | None = None, high: float | None = None, *, open_low: bool = False, what: str = ""
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and (value < low or (open_low and value == low)):
            raise argparse.ArgumentTypeError(
                f"{text} is too small: it must be {what or ('> ' if open_low else '>= ') + str(low)}"
            )
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} is too large: it must be {what or '<= ' + str(high)}")
        return value

    parse.__name__ = kind.__name__
    return parse


positive = _number(int, 1)
non_negative = _number(int, 0)
positive_float = _number(float, 0.0, open_low=True)


def _data_flags(p: argparse.ArgumentParser) -> None:
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


def _model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (defaults depend on the device)")
    g.add_argument("--model", dest="cell", choices=("lstm", "gru", "rnn"), help="recurrent cell (default lstm)")
    g.add_argument("--layers", type=positive, help="recurrent layers")
    g.add_argument("--hidden", type=positive, help="hidden units per layer")
    g.add_argument("--embedding", type=positive, help="character embedding size")
    g.add_argument("--dropout", type=_number(float, 0.0, 0.9, what="between 0 and 0.9"), help="dropout")


def _train_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=positive, help="sequences per batch")
    g.add_argument("--seq-len", type=positive, help="characters per sequence (backprop length)")
    g.add_argument("--lr", type=positive_float, help="peak learning rate")
    g.add_argument("--warmup-steps", type=non_negative, help="learning-rate warm-up steps")
    g.add_argument("--weight-decay", type=_number(float, 0.0), help="AdamW weight decay")
    g.add_argument("--grad-clip", type=positive_float, help="gradient-norm clip")
    g.add_argument("--max-steps", type=positive, help="total steps of the run (a resumed run stops at N)")
    g.add_argument("--max-minutes", type=positive_float, help="wall-clock budget of the run, evaluations included")
    g.add_argument("--eval-every", type=positive, help="steps between validation passes")
    g.add_argument("--eval-chars", type=positive, help="validation characters per pass, at most")
    g.add_argument("--sample-every", type=positive, help="steps between samples")
    g.add_argument("--checkpoint-every", type=positive, help="steps between checkpoints")
    g.add_argument(
        "--val-frac",
        type=_number(float, 0.0, 0.5, open_low=True, what="in (0, 0.5]"),
        help="fraction of the text kept for validation (the end of it)",
    )
    g.add_argument(
        "--batching", choices=("tbptt", "random"), help="carry state across consecutive batches, or random windows"
    )
    g.add_argument("--seed", type=non_negative, help="random seed")
    g.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train (default auto)")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="auto: bf16 where the hardware has it")
    g.add_argument("--threads", type=positive, help="CPU threads for training")
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
    _data_flags(launch)
    _model_flags(launch)
    _train_flags(launch)
    launch.add_argument("--no-train", action="store_true", help="open the playground on --resume RUN without training")

    train = sub.add_parser("train", help="train headless")
    _data_flags(train)
    _model_flags(train)
    _train_flags(train)
    train.add_argument("--json", action="store_true", help="one JSON object per event on stdout")

    sample = sub.add_parser("sample", help="stream text from a trained run")
    sample.add_argument("run", metavar="RUN", help="a run folder, a run name, or latest")
    sample.add_argument("--prime", default="", help="text to start from")
    sample.add_argument("--length", type=non_negative, default=500, help="characters to generate (default 500)")
    sample.add_argument("--temperature", type=_number(float, 0.0), default=0.8, help="0 is greedy (default 0.8)")
    sample.add_argument("--top-k", type=non_negative, default=0, help="draw only from the k likeliest (0: all)")
    sample.add_argument("--seed", type=non_negative, help="sampling seed (default: random, printed on stderr)")
    sample.add_argument("--best", action="store_true", help="use the run's best validation checkpoint")
    sample.add_argument("--no-color", action="store_true", help="plain text even in a terminal")
    sample.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR")

    corpora = sub.add_parser("corpora", help="list the named corpora")
    corpora.set_defaults()
    runs = sub.add_parser("runs", help="list the runs in a checkpoint folder")
    runs.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR")
    return parser


def run_request(args: argparse.Namespace):  # -> training.RunRequest (imported lazily: torch is slow to import)
    from rnn_tui.training import RunRequest

    return RunRequest(
        data=args.data,
        corpus=args.corpus,
        globs=tuple(args.globs),
        encoding=args.encoding,
        model={k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None},
        train={k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k) is not None},
        checkpoint_dir=args.checkpoint_dir,
        run_name=args.run_name,
        resume=args.resume,
    )


# --------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    from rnn_tui.reporting import reporter_for
    from rnn_tui.training import prepare

    reporter = reporter_for(json_lines=args.json)
    trainer = prepare(run_request(args), reporter.on_event)
    reporter.start(trainer)
    stop = _StopOnInterrupt()
    with stop, reporter:
        done = trainer.run(should_stop=stop)
    reporter.finish(trainer, done)
    return 0


class _StopOnInterrupt:
    """First Ctrl-C: finish the step, evaluate and save. Second: abort (the last checkpoint stays)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def __enter__(self) -> _StopOnInterrupt:
        self._old = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: object) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("\nrnn-tui: stopping after this step and saving (Ctrl-C again to abort)", file=sys.stderr)

        signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._old)


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.text import Text

    from rnn_tui import checkpoint, palette
    from rnn_tui.generation import Generator

    folder = checkpoint.resolve(args.run, args.checkpoint_dir)
    if args.best:
        if not (folder / checkpoint.BEST / checkpoint.META).exists():
            raise UserError(f"{folder} has no best/ checkpoint yet (no evaluation has run); drop --best")
        folder = folder / checkpoint.BEST
    ckpt = checkpoint.load(folder, optimizer=False)
    gen = Generator(ckpt.config, ckpt.vocab, ckpt.model)
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    if args.seed is None:
        print(f"rnn-tui: sampling with --seed {seed}", file=sys.stderr)
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
    show(gen.stream(args.prime, args.length, args.temperature, args.top_k, seed))
    out.write("\n")
    return 0


def cmd_corpora(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rnn_tui.corpus import list_corpora

    table = Table("name", "size", "status", "description", box=None, pad_edge=False)
    for row in list_corpora():
        table.add_row(row["name"], _size(row["size"]), row["status"], row["description"])
    Console().print(table)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rnn_tui.checkpoint import list_runs

    rows = list_runs(args.checkpoint_dir)
    if not rows:
        print(f"no runs in {args.checkpoint_dir}/ yet; start one with rnn-tui train or rnn-tui launch")
        return 0
    table = Table("run", "corpus", "model", "step", "best val", "updated", box=None, pad_edge=False)
    for r in rows:
        m = r["model"]
        best = f"{r['best_val_loss']:.4f}" if r["best_val_loss"] is not None else "-"
        table.add_row(
            r["name"],
            r["corpus"],
            f"{m.get('cell', '?')} {m.get('layers', '?')}x{m.get('hidden', '?')}",
            f"{r['step']:,}",
            best,
            r["updated"].replace("T", " ")[:16],
        )
    Console().print(table)
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    from rnn_tui.tui.app import run_app

    if args.no_train and not args.resume:
        raise UserError("--no-train needs a trained run: add --resume RUN (see rnn-tui runs)")
    return run_app(run_request(args), train=not args.no_train)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {
        "train": cmd_train,
        "sample": cmd_sample,
        "corpora": cmd_corpora,
        "runs": cmd_runs,
        "launch": cmd_launch,
    }[args.command]
    try:
        return command(args)
    except UserError as exc:
        print(f"rnn-tui {args.command}: error: {exc}", file=sys.stderr)
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
