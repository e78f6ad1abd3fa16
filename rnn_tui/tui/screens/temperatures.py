"""Temperatures side by side (F9): the playground's prompt and seed at 0.2, 0.5, 1.0 and 1.5, in columns.

The four columns are generated as one batch (`Generator.stream_batch`: one matrix-matrix
product per layer and step), in a thread worker with its own generator made from the
playground's weights, so the playground is never blocked. Every column is coloured by
confidence like the playground: the model's belief at temperature 1, whatever the draw.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Label, Static
from textual.worker import get_current_worker

from rnn_tui.config import SampleConfig
from rnn_tui.export import confidence_legend, confidence_text
from rnn_tui.generation import Generator, Token, bits_per_char
from rnn_tui.session import Weights
from rnn_tui.tui import actions
from rnn_tui.tui.copies import indexes
from rnn_tui.tui.messages import CursorMoved
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.chargrid.legend import NOTE, Legend

TEMPERATURES = (0.2, 0.5, 1.0, 1.5)
PROMPT_SHOWN = 200  # characters of the prompt's end shown above each column
POST_EVERY = 0.05  # seconds between partial results


@dataclass
class Columns(Message):
    """The prompt's tokens (its end) and each column's generated tokens so far."""

    prompt: list[Token]
    columns: list[list[Token]]
    done: bool


class TemperaturesScreen(Screen):
    SCOPE = actions.TEMPERATURES
    BINDINGS = actions.bindings(SCOPE)

    def __init__(self, weights: Weights | None, prompt: str, settings: SampleConfig) -> None:
        super().__init__()
        self.weights, self.prompt, self.settings = weights, prompt, settings
        self.result: Columns | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="temperatures-about")
        with Horizontal(id="temperatures"):
            for t in TEMPERATURES:
                with Vertical(classes="temperature"):
                    yield Label(f"T = {t:.1f}", classes="temperature-title")
                    yield ConfidenceText()
        yield Legend()
        yield Footer()

    def on_mount(self) -> None:
        self.query(ConfidenceText).first().focus()
        self.action_generate()

    def about(self) -> Text:
        s = self.settings
        shown = self.prompt[-60:].replace("\n", "↵")
        text = Text("The same prompt ")
        text.append(repr(("…" if len(self.prompt) > 60 else "") + shown) if self.prompt else "(empty)", style="bold")
        text.append(
            f", seed {s.seed}"
            + (f", top-k {s.top_k}" if s.top_k else "")
            + (f", top-p {s.top_p:g}" if s.top_p < 1 else "")
        )
        text.append(f", penalty {s.repetition_penalty:g}" if s.repetition_penalty != 1 else "")
        text.append(", word-start" if s.draw == "word-start" else "")
        text.append(f", {s.length:,} characters at four temperatures, generated as one batch of four")
        if self.weights is not None:
            text.append(f" · weights at step {self.weights.step:,}")
        return text

    def action_new_seed(self) -> None:
        self.settings = dataclasses.replace(self.settings, seed=random.randrange(2**32))
        self.action_generate()

    def action_generate(self) -> None:
        self.query_one("#temperatures-about", Static).update(self.about(), layout=False)
        if self.weights is None:
            self.notify("No weights yet: wait for the first checkpoint", severity="warning", timeout=3)
            return
        self._generate(self.weights, self.prompt, self.settings)

    @work(thread=True, exclusive=True, group="temperatures")
    def _generate(self, weights: Weights, prompt: str, settings: SampleConfig) -> None:
        worker = get_current_worker()
        gen = Generator(weights.config, weights.vocab, weights.tensors)
        for _ in gen.priming(prompt):
            if worker.is_cancelled:
                return
        shown = gen.score(prompt)[-PROMPT_SHOWN:]
        columns: list[list[Token]] = [[] for _ in TEMPERATURES]
        last = 0.0
        for row in gen.stream_batch(prompt, settings, TEMPERATURES):
            if worker.is_cancelled:
                return
            for column, token in zip(columns, row, strict=True):
                column.append(token)
            if time.perf_counter() - last >= POST_EVERY:
                self.post_message(Columns(shown, [list(c) for c in columns], False))
                last = time.perf_counter()
        self.post_message(Columns(shown, columns, True))

    @on(Columns)
    def _show(self, message: Columns) -> None:
        self.result = message
        titles = self.query(".temperature-title").results(Label)
        views = self.query(ConfidenceText)
        for t, title, view, column in zip(TEMPERATURES, titles, views, message.columns, strict=True):
            view.set_tokens(message.prompt, column)
            if message.done:
                title.update(f"T = {t:.1f} · {bits_per_char(column):.2f} bits/char at T=1")
        if message.done:
            self.copies_ready()

    def copies_ready(self) -> None:
        """Shade what each finished column copies from the training text, and give its novel share."""
        index = indexes(self.app).get()
        if index is None or self.result is None or not self.result.done:
            return
        titles = self.query(".temperature-title").results(Label)
        views = self.query(ConfidenceText)
        n = len(self.result.prompt)
        for t, title, view, column in zip(TEMPERATURES, titles, views, self.result.columns, strict=True):
            found = index.copies("".join(tok.char for tok in column), self.settings.copied_min)
            view.mark_copied([(a + n, b + n) for a, b in found.spans])
            title.update(f"T = {t:.1f} · {bits_per_char(column):.2f} bits/char at T=1 · {found.novel:.0%} novel")

    @on(CursorMoved)
    def _cursor(self, message: CursorMoved) -> None:
        message.stop()

    def export_view(self) -> tuple[Table, Text, str]:
        """The four columns side by side, with the legend."""
        table = Table(box=None, expand=True, padding=(0, 2))
        for title in self.query(".temperature-title").results(Label):
            table.add_column(str(title.render()), ratio=1)
        table.add_row(
            *(
                confidence_text("".join(t.char for t in v.tokens), [t.prob for t in v.tokens], prompt=v.n_prompt)
                for v in self.query(ConfidenceText)
            )
        )
        return table, Text("\n").join([confidence_legend(note=NOTE), self.about()]), "rnn-tui temperatures"
