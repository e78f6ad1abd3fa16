"""A branch (enter in the inspector): the text from one character on, with another of the model's top five
in that character's place and continued from it, beside the earlier text to compare.

Both columns start from the same text (underlined: its last PROMPT_SHOWN characters), then differ at the
chosen character. The branch is as long as the earlier text from there, drawn with the playground's
sampling settings (its seed starts afresh at the branch), in a thread worker with a generator of its own.
Both columns are coloured by confidence; once the run's copy index is ready, copied stretches are shaded.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Label, Static
from textual.worker import get_current_worker

from rnn_tui.config import SampleConfig
from rnn_tui.generation import Generator, Token, bits_per_char
from rnn_tui.session import Weights
from rnn_tui.tui import actions
from rnn_tui.tui.copies import indexes
from rnn_tui.tui.messages import CursorMoved
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.chargrid.legend import Legend
from rnn_tui.tui.widgets.playground.inspector import show_char

PROMPT_SHOWN = 200  # characters of the shared text shown above both columns
POST_EVERY = 0.05  # seconds between partial results


@dataclass
class Branched(Message):
    """The branch so far: the chosen character's token, then what followed it."""

    tokens: list[Token]
    done: bool


class BranchScreen(Screen):
    SCOPE = actions.BRANCH
    BINDINGS = actions.bindings(SCOPE)

    def __init__(self, weights: Weights, tokens: list[Token], index: int, char: str, settings: SampleConfig) -> None:
        super().__init__()
        self.weights, self.settings, self.char = weights, settings, char
        self.shared, self.earlier = tokens[:index], tokens[index:]
        self.branch: list[Token] = []
        self.done = False

    def compose(self) -> ComposeResult:
        yield Static(id="branch-about")
        with Horizontal(id="branches"):
            for name in ("earlier", "branch"):
                with Vertical(classes="temperature"):
                    yield Label(name, id=f"{name}-title", classes="temperature-title")
                    yield ConfidenceText(id=name)
        yield Legend()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#branch-about", Static).update(self.about(), layout=False)
        self.query_one("#earlier", ConfidenceText).set_tokens(self.shown, self.earlier)
        self._title("earlier", self.earlier)
        self.query_one("#branch", ConfidenceText).focus()
        self._generate()

    @property
    def shown(self) -> list[Token]:
        return self.shared[-PROMPT_SHOWN:]

    def about(self) -> Text:
        was = self.earlier[0]
        text = Text(f"At character {len(self.shared) + 1:,}, ")
        text.append(f"'{show_char(self.char)}'", style="bold")
        text.append(f" in place of '{show_char(was.char)}'; the same text before it (underlined), then ")
        text.append(f"{len(self.earlier):,} characters each: the earlier text, and the branch drawn from there")
        s = self.settings
        text.append(f" (temperature {s.temperature:g}, seed {s.seed}) · weights at step {self.weights.step:,}")
        return text

    def _title(self, name: str, tokens: list[Token], novel: float | None = None) -> None:
        if not tokens:
            return
        first = tokens[0]
        p = "" if first.prob is None else f" (p {first.prob:.1%})" if first.prob < 0.1 else f" (p {first.prob:.0%})"
        title = f"{name}: '{show_char(first.char)}'{p} · {bits_per_char(tokens):.2f} bits/char"
        title += "" if novel is None else f" · {novel:.0%} novel"
        self.query_one(f"#{name}-title", Label).update(title)

    @work(thread=True, exclusive=True, group="branch")
    def _generate(self) -> None:
        worker = get_current_worker()
        w = self.weights
        gen = Generator(w.config, w.vocab, w.tensors)
        prefix = "".join(t.char for t in self.shared) + self.char
        tokens = [dataclasses.replace(gen.score(prefix)[-1], generated=True)]  # the chosen one, as the model saw it
        rest = len(self.earlier) - 1
        last = 0.0
        if rest:
            for token in gen.stream(prefix, dataclasses.replace(self.settings, length=rest, until="")):
                if worker.is_cancelled:
                    return
                tokens.append(token)
                if time.perf_counter() - last >= POST_EVERY:
                    self.post_message(Branched(list(tokens), False))
                    last = time.perf_counter()
        self.post_message(Branched(tokens, True))

    @on(Branched)
    def _show(self, message: Branched) -> None:
        self.branch, self.done = message.tokens, message.done
        self.query_one("#branch", ConfidenceText).set_tokens(self.shown, message.tokens)
        if message.done:
            self._title("branch", message.tokens)
            self.copies_ready()

    def copies_ready(self) -> None:
        """Shade what each column copies from the training text (the shared text too), with its novel share."""
        index = indexes(self.app).get()
        if index is None or not self.done:
            return
        head = "".join(t.char for t in self.shown)
        for name, tokens in (("earlier", self.earlier), ("branch", self.branch)):
            found = index.copies(head + "".join(t.char for t in tokens), self.settings.copied_min)
            self.query_one(f"#{name}", ConfidenceText).mark_copied(found.spans)
            mine = index.copies("".join(t.char for t in tokens), self.settings.copied_min)
            self._title(name, tokens, mine.novel)

    @on(CursorMoved)
    def _cursor(self, message: CursorMoved) -> None:
        message.stop()
