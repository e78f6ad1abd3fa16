"""Type a prompt; the model continues it as you type, every character coloured by confidence.

Each change starts an exclusive thread worker at once: the previous one is cancelled at
its next character, and the prompt's cached prefix states make a keystroke cost one model
step (a long prompt, such as an opened file, is scored a chunk at a time, with its progress in
the panel's border and the coloured text filling in). While you type, only the first
characters of the continuation are generated at once;
the rest follows when the prompt has been still for a moment (a debounce on the tail, not
on the first character), so fast typing does not starve training of CPU. Partial results
are posted about every 30 ms. The worker holds a lock on the generator (it is not
thread-safe) and swaps in newer weights between runs.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import TextArea
from textual.worker import get_current_worker

from rnn_tui.config import SampleConfig
from rnn_tui.errors import UserError
from rnn_tui.export import confidence_legend, confidence_text
from rnn_tui.generation import Generator, Token
from rnn_tui.session import Weights
from rnn_tui.text.sources import read_text
from rnn_tui.tui.messages import CursorMoved, Generated, Priming, SettingsChanged
from rnn_tui.tui.screens.open_file import OpenFileScreen
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.chargrid.legend import NOTE, Legend
from rnn_tui.tui.widgets.playground.controls import Controls
from rnn_tui.tui.widgets.playground.inspector import Inspector
from rnn_tui.tui.widgets.playground.prediction import PredictionView
from rnn_tui.tui.widgets.playground.prompt import PromptArea

POST_EVERY = 0.03  # seconds between partial results
PRIME_CHUNK = 256  # prompt characters scored between cancellation checks
LONG_PROMPT = 4096  # characters left to score above which progress is shown
PROGRESS_EVERY = 0.25  # seconds between progress reports (and partial colouring) of a long prompt
MAX_PROMPT = 250_000  # characters: the prompt cache keeps every position's prediction
TOO_LONG = f"the playground opens files up to {MAX_PROMPT:,} characters; score longer ones with rnn-tui score"
FIRST_BURST = 8  # characters generated at once after a keystroke
TAIL_DELAY = 0.4  # seconds the prompt must be still before the rest is generated


class Playground(Vertical):
    def __init__(self, *, prompt: str = "", id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "Playground"
        self.initial_prompt = prompt
        self.generator: Generator | None = None
        self._lock = threading.Lock()  # the generator: one worker at a time
        self._pending_lock = threading.Lock()  # new weights handed over by the UI thread
        self._pending: Weights | None = None
        self._superseded = threading.Event()  # set when a newer generation replaces the running one
        self._scoring_long = False  # a worker is scoring a long prompt (new weights would start it over)
        self.last_result: Generated | None = None
        self.weights: Weights | None = None  # the weights the generator has now

    def compose(self) -> ComposeResult:
        yield PromptArea(self.initial_prompt, id="prompt", soft_wrap=True, placeholder="Type a prompt…")
        yield Controls(id="controls")
        yield ConfidenceText(id="output")
        yield Inspector(id="inspector")
        yield PredictionView(id="prediction")
        yield Legend(id="legend")

    @property
    def controls(self) -> Controls:
        return self.query_one(Controls)

    @property
    def prompt(self) -> str:
        return self.query_one(PromptArea).text

    # ------------------------------------------------------------ weights

    def offer_weights(self, weights: Weights, *, force: bool = False) -> bool:
        """New weights from training: taken unless the playground is frozen (or `force`). Returns if taken."""
        if not (self.controls.follow or force or (self.generator is None and self._pending is None)):
            return False
        with self._pending_lock:
            self._pending = weights
        self.controls.weights_step = weights.step
        self.regenerate()
        return True

    @property
    def busy(self) -> bool:
        """A long prompt is not scored yet: newer weights would only start it again, so they wait."""
        if self._scoring_long:
            return True
        gen = self.generator
        return gen is not None and len(self.prompt) - gen.cached_prefix(self.prompt) > LONG_PROMPT

    # ------------------------------------------------------------ generation

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self, event: TextArea.Changed) -> None:
        self.regenerate(typing=True)

    @on(SettingsChanged)
    def _settings_changed(self) -> None:
        self.regenerate()

    def regenerate(self, typing: bool = False) -> None:
        settings = self.controls.settings
        if settings is None or (self.generator is None and self._pending is None):
            return
        self._superseded.set()  # wakes a worker that waits to finish its tail
        self._superseded = threading.Event()
        started = time.perf_counter()
        if typing:
            self._first_character(self.prompt, settings, started)
        self._generate(self.prompt, settings, started, typing, self._superseded)

    def _first_character(self, prompt: str, settings: SampleConfig, started: float) -> None:
        """Answer a keystroke on the spot: when the generator is free and the prompt grew by a key or
        two, score it and draw the first character here (two model steps), without waiting for a thread."""
        gen = self.generator
        if gen is None or self._pending is not None or len(prompt) - gen.cached_prefix(prompt) > 2:
            return
        if not self._lock.acquire(timeout=0.002):
            return
        try:
            tokens = gen.score(prompt)
            first = next(gen.stream(prompt, 1, settings.temperature, settings.top_k, settings.seed))
        finally:
            self._lock.release()
        self._show(Generated(tokens, [first], False, started))

    @work(thread=True, exclusive=True, group="generate")
    def _generate(
        self, prompt: str, settings: SampleConfig, started: float, typing: bool, superseded: threading.Event
    ) -> None:
        worker = get_current_worker()

        def stop() -> bool:
            return worker.is_cancelled or superseded.is_set()

        held = self._lock.acquire()
        try:
            if stop():
                return
            with self._pending_lock:
                pending, self._pending = self._pending, None
            if pending is not None:
                gen = self.generator
                if gen is not None and gen.cfg == pending.config and gen.vocab == pending.vocab:
                    gen.set_weights(pending.tensors)
                else:
                    self.generator = Generator(pending.config, pending.vocab, pending.tensors)
                self.weights = pending
            gen = self.generator
            long = self._scoring_long = len(prompt) - gen.cached_prefix(prompt) > LONG_PROMPT
            last = time.perf_counter()
            for done in gen.priming(prompt, PRIME_CHUNK):  # a chunk at a time: long prompts stay cancellable
                if stop():
                    return
                if long and time.perf_counter() - last >= PROGRESS_EVERY:
                    self.post_message(Priming(done, len(prompt)))
                    if pending is None:  # a new prompt fills in as it is scored; new weights show when done
                        self.post_message(Generated(gen.scored(), [], False, started))
                    last = time.perf_counter()
            if long:
                self.post_message(Priming(len(prompt), len(prompt)))
                self._scoring_long = False
            tokens = gen.score(prompt)
            out: list = []
            last = 0.0
            for tok in gen.stream(prompt, settings.length, settings.temperature, settings.top_k, settings.seed):
                if stop():
                    return
                out.append(tok)
                now = time.perf_counter()
                if len(out) == 1 or now - last >= POST_EVERY:
                    self.post_message(Generated(tokens, list(out), False, started))
                    last = now
                    time.sleep(0)  # hand the GIL to the event loop, so it can draw what we posted
                if typing and len(out) == FIRST_BURST < settings.length:
                    self.post_message(Generated(tokens, list(out), False, started))
                    self._lock.release()  # the next keystroke may use the generator meanwhile
                    held = False
                    if superseded.wait(TAIL_DELAY):  # another key came: this continuation is stale
                        return
                    held = self._lock.acquire()
                    if stop():
                        return
            self.post_message(Generated(tokens, out, True, started))
        finally:
            self._scoring_long = False
            if held:
                self._lock.release()

    @on(Generated)
    def _show(self, message: Generated) -> None:
        message.stop()
        if self.last_result is not None and message.started < self.last_result.started:
            return  # from a generation that a newer one replaced
        self.last_result = message
        self.query_one(ConfidenceText).set_tokens(message.prompt, message.generated)

    @on(Priming)
    def _priming(self, message: Priming) -> None:
        message.stop()
        done = message.done >= message.total
        self.border_subtitle = "" if done else f"scoring the prompt: {message.done:,} of {message.total:,} characters"

    @on(CursorMoved)
    def _inspect(self, message: CursorMoved) -> None:
        message.stop()
        self._show_cursor(message.index, message.token)

    def _show_cursor(self, index: int, token: Token | None) -> None:
        """What the model expected at the cursor: in the inspector, or the prediction figure for its line."""
        out = self.query_one(ConfidenceText)
        if token is None:
            where = ""
        elif index < out.n_prompt:
            where = f"prompt char {index + 1}"
        else:
            where = f"generated char {index - out.n_prompt + 1}"
        prediction = self.query_one(PredictionView)
        if prediction.display:
            line = out.line_span(index) if token is not None else (0, 0)
            prediction.show(out.tokens, index if token is not None else -1, line, where)
        else:
            self.query_one(Inspector).show(token, where)

    def toggle_prediction(self) -> bool:
        """Show the prediction figure in the inspector's place, or the inspector again. Returns if shown."""
        prediction, inspector = self.query_one(PredictionView), self.query_one(Inspector)
        prediction.display = not prediction.display
        inspector.display = not prediction.display
        out = self.query_one(ConfidenceText)
        index = out.cursor if 0 <= out.cursor < len(out.tokens) else -1
        self._show_cursor(index, out.tokens[index] if index >= 0 else None)
        return prediction.display

    def ask_for_file(self) -> None:
        """Ask for a file's path, then open it as the prompt."""
        self.app.push_screen(OpenFileScreen(), self.open_file)

    def open_file(self, path: str | None) -> None:
        """Make a text file the prompt (as char-rnn's -primetext); a mistake is a one-line notice."""
        if not path:
            return
        try:
            file = Path(path).expanduser()
            if file.is_file() and file.stat().st_size > 4 * MAX_PROMPT:  # UTF-8: at most 4 bytes a character
                raise UserError(f"{path} is {file.stat().st_size:,} bytes; {TOO_LONG}")
            text = read_text(path, fix="choose a UTF-8 text file")
            if len(text) > MAX_PROMPT:
                raise UserError(f"{path} has {len(text):,} characters; {TOO_LONG}")
        except (UserError, OSError) as exc:
            message = str(exc) if isinstance(exc, UserError) else f"cannot open {path}: {exc.strerror or exc}"
            self.app.notify(message, title="Open", severity="error", timeout=8, markup=False)
            return
        area = self.query_one(PromptArea)
        area.load_text(text)
        area.move_cursor(area.document.end)
        area.focus()
        self.app.notify(f"Opened {path} ({len(text):,} characters) as the prompt", timeout=4, markup=False)

    def export_view(self) -> tuple[Text, Text, str]:
        """The coloured text with its legend (and the prediction figure, when it is shown), for saving."""
        out = self.query_one(ConfidenceText)
        body = confidence_text("".join(t.char for t in out.tokens), [t.prob for t in out.tokens], prompt=out.n_prompt)
        prediction = self.query_one(PredictionView)
        if prediction.display and prediction.index >= 0:
            figure = Text("\n").join([prediction.caption("truecolor"), prediction.figure("truecolor")])
            body = Text("\n\n").join([body, figure])
        settings, step = self.controls.settings, self.controls.weights_step
        about = "" if settings is None else f"temperature {settings.temperature:g} · seed {settings.seed} · "
        about += f"top-k {settings.top_k} · " if settings is not None and settings.top_k else ""
        about += "weights at step " + ("—" if step is None else f"{step:,}")
        return body, Text("\n").join([confidence_legend(note=NOTE), Text(about, style="dim")]), "rnn-tui playground"
