"""Type a prompt; the model continues it as you type, every character coloured by confidence.

Each change starts an exclusive thread worker at once: the previous one is cancelled at
its next character, and the prompt's cached prefix states make a keystroke cost one model
step. While you type, only the first characters of the continuation are generated at once;
the rest follows when the prompt has been still for a moment (a debounce on the tail, not
on the first character), so fast typing does not starve training of CPU. Partial results
are posted about every 30 ms. The worker holds a lock on the generator (it is not
thread-safe) and swaps in newer weights between runs.
"""

from __future__ import annotations

import threading
import time

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import TextArea
from textual.worker import get_current_worker

from rnn_tui.config import SampleConfig
from rnn_tui.generation import Generator
from rnn_tui.session import Weights
from rnn_tui.tui.messages import CursorMoved, Generated, SettingsChanged
from rnn_tui.tui.widgets.playground.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.playground.controls import Controls
from rnn_tui.tui.widgets.playground.inspector import Inspector
from rnn_tui.tui.widgets.playground.legend import Legend
from rnn_tui.tui.widgets.playground.prompt import PromptArea

POST_EVERY = 0.03  # seconds between partial results
PRIME_CHUNK = 64  # prompt characters scored between cancellation checks
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
        self.last_result: Generated | None = None

    def compose(self) -> ComposeResult:
        yield PromptArea(self.initial_prompt, id="prompt", soft_wrap=True, placeholder="Type a prompt…")
        yield Controls(id="controls")
        yield ConfidenceText(id="output")
        yield Inspector(id="inspector")
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
            gen = self.generator
            for end in range(PRIME_CHUNK, len(prompt), PRIME_CHUNK):  # long pastes: stay cancellable
                gen.score(prompt[:end])
                if stop():
                    return
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
            if held:
                self._lock.release()

    @on(Generated)
    def _show(self, message: Generated) -> None:
        message.stop()
        if self.last_result is not None and message.started < self.last_result.started:
            return  # from a generation that a newer one replaced
        self.last_result = message
        self.query_one(ConfidenceText).set_tokens(message.prompt, message.generated)

    @on(CursorMoved)
    def _inspect(self, message: CursorMoved) -> None:
        message.stop()
        out = self.query_one(ConfidenceText)
        if message.token is None:
            where = ""
        elif message.index < out.n_prompt:
            where = f"prompt char {message.index + 1}"
        else:
            where = f"generated char {message.index - out.n_prompt + 1}"
        self.query_one(Inspector).show(message.token, where)
