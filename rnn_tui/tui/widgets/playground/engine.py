"""The generation engine: one thread that alone owns the playground's Generator and the newest weights.

The playground hands it requests, and the UI thread never touches the Generator. There are four
kinds: the prompt (a keystroke, or an opened file), the sampling settings, new weights, and
"again" (generate once more). Each kind has one slot that holds only its newest request, so a
burst of keys costs one answer, not one per key. A newer prompt, settings or "again" cancels the
answer under way at its next character (or chunk of a prompt). New weights cancel it too, except
while a long prompt is being scored: they wait in their slot to the scoring's very end (until
the scored prompt is on screen), since they would start it again.

The thread answers with messages posted to the playground:

- `WeightsTaken` when it starts using new weights;
- `Priming` while a long prompt (more than LONG_PROMPT characters to score, such as an opened
  file) is scored a chunk at a time: its progress, and the coloured text fills in as it goes
  (with new weights the old colours stay until the new ones are all there);
- `Generated`: an edit of the coloured text, "keep the first `keep` tokens shown, then append
  these". The engine knows what it has sent, so a message carries only what is new: after a
  keystroke the one new prompt token and the first generated character, then the continuation's
  new characters about every POST_EVERY seconds. Only new weights send the whole prompt again.

After a keystroke the first character goes at once (the playground waits for it, `first`, so
that it shows in the key's own frame), then the first FIRST_BURST; the rest follows when the
prompt has been still for `tail_delay` (TAIL_DELAY; a newer request abandons it), so fast typing
leaves the CPU to training. Settings, weights and "again" get the whole continuation at once.

The clock and the tail delay are parameters, so that tests step through it without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from textual.message import Message

from rnn_tui.config import SampleConfig
from rnn_tui.generation import Generator, Token
from rnn_tui.session import Weights
from rnn_tui.tui.messages import EngineFailed, Generated, Priming, WeightsTaken

POST_EVERY = 0.03  # seconds between partial results
PRIME_CHUNK = 256  # prompt characters scored between cancellation checks
LONG_PROMPT = 4096  # characters left to score above which progress is shown
PROGRESS_EVERY = 0.25  # seconds between progress reports (and partial colouring) of a long prompt
FIRST_BURST = 8  # characters generated at once after a keystroke
FIRST_DRAW = 0.05  # at most this long the engine waits for a keystroke's first character to be drawn
TAIL_DELAY = 0.4  # seconds the prompt must be still before the rest is generated


@dataclass(frozen=True)
class _Prompt:
    text: str
    typing: bool  # a keystroke: the tail of the continuation waits for stillness


class Engine:
    """Owns a Generator on its own thread; `prompt`, `settings`, `weights` and `again` are its requests.

    `post` receives the messages (from the engine's thread: Textual's `post_message` is thread-safe).
    """

    def __init__(
        self,
        post: Callable[[Message], object],
        *,
        clock: Callable[[], float] = time.monotonic,
        tail_delay: float = TAIL_DELAY,
    ) -> None:
        self._post, self._clock, self._tail_delay = post, clock, tail_delay
        self._lock = threading.Condition()
        # The slots: the newest request of each kind (None or False: none).
        self._prompt: _Prompt | None = None
        self._settings: SampleConfig | None = None
        self._weights: Weights | None = None
        self._again = False
        self._closed = False
        self._answering = False  # the thread took requests and is answering them
        self._requests = 0  # requests made so far
        self._taken = 0  # of them, those the thread took (its answer covers them all)
        self._posted = 0  # of them, those whose answer has its first message posted (or needs none)
        self._scoring = False  # it is scoring a long prompt: new weights wait
        self._drawn = False  # the screen has drawn what was posted (`drawn`): a keystroke's burst may start
        self._thread = threading.Thread(target=self._run, name="generation-engine", daemon=True)
        # The thread's own: no other thread reads or writes these.
        self._gen: Generator | None = None
        self._text = ""
        self._typing = False
        self._sampling: SampleConfig | None = None
        self._fresh = False  # new weights whose colours are not on screen yet
        self._shown_prompt = 0  # tokens at the start of the screen that are still the prompt's

    # ------------------------------------------------------------ requests (from any thread)

    def start(self) -> None:
        self._thread.start()

    def prompt(self, text: str, *, typing: bool = False) -> None:
        """Continue `text`; `typing`: it is a keystroke, so the tail waits for the prompt to be still."""
        self._request("_prompt", _Prompt(text, typing))

    def settings(self, settings: SampleConfig) -> None:
        self._request("_settings", settings)

    def weights(self, weights: Weights) -> None:
        self._request("_weights", weights)

    def again(self) -> None:
        """Generate the continuation again (with settings that draw the same, the same text)."""
        self._request("_again", True)

    def drawn(self) -> None:
        """The screen has drawn the messages posted so far (the playground calls it after each refresh that
        shows an answer): after a keystroke's first character, the engine waits for this (at most FIRST_DRAW)
        before it generates the rest, so that it does not take the GIL from the frame the user waits for."""
        with self._lock:
            self._drawn = True
            self._lock.notify_all()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread (at its next character or chunk) and wait for it up to `timeout` seconds."""
        self._request("_closed", True)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def first(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the first message of the answer to the requests so far; whether
        it came.

        For a keystroke, whose first character the user waits for: the UI thread hands its core to the
        engine meanwhile, as if it drew that character itself. Without the wait, on a busy machine the
        engine's thread and then the event loop each wait to be scheduled, which cost 10-20 ms a key.
        """
        with self._lock:
            return self._lock.wait_for(lambda: self._posted >= self._requests or self._closed, timeout)

    @property
    def idle(self) -> bool:
        """Nothing to answer: every message the requests so far call for has been posted."""
        with self._lock:
            return not self._answering and not self._pending()

    def _request(self, slot: str, value: object) -> None:
        with self._lock:
            setattr(self, slot, value)
            self._requests += 1
            self._lock.notify_all()

    def _first_posted(self) -> None:
        """The answer under way has its first message out (or needs none): `first` stops waiting."""
        with self._lock:
            self._posted = self._taken
            self._lock.notify_all()

    def _pending(self) -> bool:
        return self._prompt is not None or self._settings is not None or self._weights is not None or self._again

    def _superseded(self) -> bool:
        """A newer request replaces the answer under way (new weights wait while a long prompt is scored)."""
        newer = self._prompt is not None or self._settings is not None or self._again or self._closed
        return newer or (self._weights is not None and not self._scoring)

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            while self._take():
                self._answer()
        except Exception as error:  # a bug: raised on the UI thread, as a worker's would be
            self._post(EngineFailed(error))

    def _take(self) -> bool:
        """Wait for requests, then move them out of their slots; False once closed."""
        with self._lock:
            self._answering, self._posted = False, self._taken  # whatever was to be shown, was
            self._lock.notify_all()
            while not self._closed and not self._pending():
                self._lock.wait()
            if self._closed:
                return False
            self._answering, self._taken = True, self._requests
            prompt, self._prompt = self._prompt, None
            settings, self._settings = self._settings, None
            weights, self._weights = self._weights, None
            self._again = False
        if weights is not None:
            self._use(weights)
        if settings is not None:
            self._sampling = settings
        self._typing = prompt is not None and prompt.typing
        if prompt is not None:
            self._text = prompt.text
        return True

    def _use(self, weights: Weights) -> None:
        gen = self._gen
        if gen is not None and gen.cfg == weights.config and gen.vocab == weights.vocab:
            gen.set_weights(weights.tensors)
        else:
            self._gen = Generator(weights.config, weights.vocab, weights.tensors)
        self._fresh, self._shown_prompt = True, 0  # every token changes
        self._post(WeightsTaken(weights))

    def _answer(self) -> None:
        gen, settings, text = self._gen, self._sampling, self._text
        if gen is None or settings is None:
            return
        cached = gen.cached_prefix(text)  # the one look at the prompt's common prefix for this request
        self._shown_prompt = min(self._shown_prompt, cached)
        long = len(text) - cached > LONG_PROMPT
        if long:
            self._set_scoring(True)
        try:
            if self._score(gen, text, cached, long):
                if long:
                    self._post(Priming(len(text), len(text)))
                self._generate(gen, len(text), settings)
            elif long:
                self._post(Priming(0, 0))  # no longer under way
        finally:
            if long:
                self._set_scoring(False)

    def _set_scoring(self, scoring: bool) -> None:
        with self._lock:
            self._scoring = scoring

    def _score(self, gen: Generator, text: str, cached: int, long: bool) -> bool:
        """Bring the generator's cache to `text`, a chunk at a time; False if a newer request came first."""
        last = self._clock()
        for done in gen.priming(text, PRIME_CHUNK, cached):
            if self._superseded():
                return False
            if long and self._clock() - last >= PROGRESS_EVERY:
                self._post(Priming(done, len(text)))
                if not self._fresh:  # a new prompt fills in as it is scored; new weights show when done
                    new = gen.scored(self._shown_prompt)
                    self._post(Generated(self._shown_prompt, new, self._shown_prompt + len(new), False))
                    self._shown_prompt += len(new)
                last = self._clock()
        return True

    def _generate(self, gen: Generator, n_prompt: int, settings: SampleConfig) -> None:
        """Stream the continuation, posting what is new; a keystroke's tail waits for stillness."""
        head = gen.scored(self._shown_prompt)  # the prompt's tokens that are not on screen
        keep = self._shown_prompt
        out: list[Token] = []
        sent = 0

        def send(done: bool) -> None:
            nonlocal head, keep, sent
            with self._lock:
                self._drawn = False
            self._post(Generated(keep, head + out[sent:], n_prompt, done))
            keep += len(head) + len(out) - sent
            if not sent:
                self._first_posted()
            head, sent = [], len(out)
            self._shown_prompt, self._fresh = n_prompt, False
            if self._scoring:  # a long prompt is scored and on screen: new weights may come now
                self._set_scoring(False)

        last = self._clock()
        for token in gen.continuation(settings):
            if self._superseded():
                return
            out.append(token)
            burst = self._typing and len(out) == FIRST_BURST < settings.length
            if len(out) == 1 or burst or self._clock() - last >= POST_EVERY:
                send(False)
                last = self._clock()
                if self._typing and len(out) == 1:
                    with self._lock:  # the event loop draws the key's first character meanwhile, the GIL its own
                        self._lock.wait_for(lambda: self._superseded() or self._drawn, FIRST_DRAW)
                        if self._superseded():
                            return
                else:
                    time.sleep(0)  # hand the GIL to the event loop, so that it draws what was posted
                if burst and not self._still():
                    return
        send(True)

    def _still(self) -> bool:
        """Wait until the prompt has been still for the tail delay; False if a newer request came first."""
        deadline = self._clock() + self._tail_delay
        with self._lock:
            while not self._superseded():
                left = deadline - self._clock()
                if left <= 0:
                    return True
                self._lock.wait(left)
        return False
