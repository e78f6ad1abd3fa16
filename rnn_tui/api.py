"""The Python API, for notebooks and scripts: load a trained model, generate, stream and score. Torch-free.

    import rnn_tui
    m = rnn_tui.load("pretrained:shakespeare")        # or a run folder, a run name, or "latest"
    m.generate("ROMEO:", length=200, temperature=0.8, seed=1)
    for t in m.stream("def ", length=50, seed=1): print(t.char, t.prob)
    s = m.score("To be, or not to be")              # s.bits_per_char, s.per_char, s.lines; coloured in Jupyter

It runs the model with NumPy, as the app does (`generation.Generator`). `rnn_tui.load` imports this module
on first use, so `import rnn_tui` stays cheap. Rich is imported only to draw (a face, like the CLI's output).
Mistakes are the same one-line `UserError`s the CLI prints.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rnn_tui import checkpoint, scoring
from rnn_tui.config import SampleConfig, Settings
from rnn_tui.errors import UserError
from rnn_tui.generation import Generator, Token
from rnn_tui.text.vocab import Vocab

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["Model", "Score", "Token", "load"]


def load(run: str | Path, *, best: bool = False, checkpoint_dir: str | Path = checkpoint.CHECKPOINT_DIR) -> Model:
    """A trained model: `pretrained:NAME` (a shipped model, see `rnn-tui models`), a run folder, a run name
    under `checkpoint_dir`, or "latest". `best`: the run's best validation checkpoint instead of its newest."""
    folder = checkpoint.resolve(str(run) if isinstance(run, Path) else run, checkpoint_dir)
    if best:
        if not (folder / checkpoint.BEST / checkpoint.META).exists():
            raise UserError(f"{folder} has no best/ checkpoint yet (no evaluation has run); load it without best")
        folder = folder / checkpoint.BEST
    return Model(checkpoint.load(folder, optimizer=False), str(run))


class Model:
    """A trained character-level model. Not thread-safe: use one Model from one thread at a time."""

    def __init__(self, ckpt: checkpoint.Checkpoint, name: str | None = None) -> None:
        self.name = name or ckpt.path.name
        self.path = ckpt.path
        self.step = ckpt.step
        self.config = ckpt.config
        self.vocab = ckpt.vocab
        self.meta = ckpt.meta
        self._gen = Generator(ckpt.config, ckpt.vocab, ckpt.model)

    def __repr__(self) -> str:
        val = self.meta.get("best_val_loss")
        loss = f", best val {val:.3f} nats/char" if isinstance(val, float) else ""
        return f"<rnn_tui.Model {self.name}: {self.config.summary()}, step {self.step:,}{loss}>"

    @property
    def chars(self) -> list[str]:
        """The characters the model knows (any other is read as unknown)."""
        return list(self.vocab.chars)

    def stream(
        self,
        prompt: str = "",
        length: int = 300,
        temperature: float = 0.8,
        seed: int | None = None,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        draw: str = "every",
    ) -> Iterator[Token]:
        """Yield `length` generated characters after `prompt`, one at a time, each a `Token`: `.char`, `.prob`
        (the probability the model gave it, at temperature 1) and `.top` (its five likeliest characters there).
        `top_p`, `repetition_penalty` and `draw` ("every" or "word-start") are the `sample` command's flags.
        The same seed gives the same text; no seed, a new one each time."""
        values = {"length": length, "temperature": temperature, "top_k": top_k, "top_p": top_p}
        values |= {"repetition_penalty": repetition_penalty, "draw": draw}
        return self._gen.stream(prompt, _sampling(prompt, values, seed))

    def generate(
        self,
        prompt: str = "",
        length: int = 300,
        temperature: float = 0.8,
        seed: int | None = None,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        draw: str = "every",
    ) -> str:
        """The text the model writes after `prompt` (`length` characters, without the prompt)."""
        tokens = self.stream(prompt, length, temperature, seed, top_k, top_p, repetition_penalty, draw)
        return "".join(t.char for t in tokens)

    def score(self, text: str) -> Score:
        """How surprising `text` is to the model: bits per character in all, per character and per line."""
        if not isinstance(text, str):
            raise UserError(f"score takes text (a str), not {type(text).__name__}")
        bits = self._gen.surprise(text)
        unknown = self.vocab.encode(text) == Vocab.UNK
        return Score(text, bits, unknown, scoring.line_scores(text, bits, unknown))


def _sampling(prompt: str, values: dict, seed: int | None) -> SampleConfig:
    """The sampling settings, checked as the CLI's flags are (the messages name those flags); no seed: a new one."""
    if not isinstance(prompt, str):
        raise UserError(f"the prompt must be text (a str), not {type(prompt).__name__}")
    return Settings(SampleConfig, {**values, "seed": secrets.randbelow(2**32) if seed is None else seed}).build()


@dataclass(frozen=True)
class Score:
    """A text's surprise to a model. `per_char[i]`: -log2 p(text[i] | text before it), in bits (a character the
    model does not know is charged as its least likely one); `lines`: each line's figures, its newline included."""

    text: str
    per_char: np.ndarray
    unknown: np.ndarray  # per character: outside the model's vocabulary
    lines: list[scoring.LineScore]

    @property
    def bits_per_char(self) -> float:
        return float(self.per_char.mean()) if len(self.per_char) else math.nan

    @property
    def probs(self) -> np.ndarray:
        """p(character | text before it), NaN where the model does not know the character."""
        return np.where(self.unknown, np.nan, scoring.probabilities(self.per_char))

    def most_surprising(self, n: int = 5) -> list[scoring.LineScore]:
        """The `n` lines with the most bits per character."""
        return scoring.most_surprising(self.lines, n)

    def __repr__(self) -> str:
        return (
            f"<rnn_tui.Score {len(self.text):,} chars, {self.bits_per_char:.3f} bits/char, "
            f"{len(self.lines):,} lines, {int(self.unknown.sum())} unknown>"
        )

    def __rich__(self) -> Text:
        """The text coloured by confidence, with the legend under it (what `rich.print` and Jupyter show)."""
        from rich.text import Text

        from rnn_tui.export import confidence_legend, confidence_text

        summary = Text(f"\n{self.bits_per_char:.3f} bits/char over {len(self.text):,} characters", style="bold")
        return Text("\n").join([confidence_text(self.text, self.probs), summary, confidence_legend(prompt=False)])

    def _repr_html_(self) -> str:
        """Jupyter's rendering: the coloured text as HTML."""
        import io

        from rich.console import Console

        console = Console(record=True, file=io.StringIO(), width=100, color_system="truecolor", markup=False)
        console.print(self.__rich__(), overflow="fold")
        return console.export_html(inline_styles=True, code_format="<pre style='white-space: pre-wrap'>{code}</pre>")
