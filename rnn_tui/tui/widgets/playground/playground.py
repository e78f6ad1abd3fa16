"""Type a prompt; the model continues it as you type, every character coloured by confidence.

The playground owns everything of it: the prompt and its cursor, the sampling controls, its keys
(the action table's PLAYGROUND rows), which weights it uses (following training every few
seconds, frozen, or another run's), and the generation engine (engine.py), the one thread that
generates. Every change (a key, a setting, new weights, an opened file) is a request to the
engine, and its messages edit the coloured text. The app hands it the session's newest weights
(`follow`) and another run's (`show_run`), and the views get its weights and text (`snapshot`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import TextArea

from rnn_tui.config import SampleConfig
from rnn_tui.errors import UserError
from rnn_tui.export import confidence_legend, confidence_text
from rnn_tui.generation import Token
from rnn_tui.session import Weights
from rnn_tui.text.sources import read_text
from rnn_tui.tui.actions import PLAYGROUND, bindings
from rnn_tui.tui.copies import indexes
from rnn_tui.tui.messages import (
    Branch,
    Choose,
    CursorMoved,
    EngineFailed,
    Generated,
    Priming,
    SettingsChanged,
    ShownRun,
    WeightsTaken,
)
from rnn_tui.tui.screens.open_file import OpenFileScreen
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.chargrid.legend import NOTE, Legend
from rnn_tui.tui.widgets.playground.controls import Controls
from rnn_tui.tui.widgets.playground.engine import Engine
from rnn_tui.tui.widgets.playground.inspector import Inspector
from rnn_tui.tui.widgets.playground.prediction import PredictionView
from rnn_tui.tui.widgets.playground.prompt import PromptArea

FOLLOW_INTERVAL = 10.0  # seconds between weight refreshes while following training
FIRST_WAIT = 0.01  # seconds a keystroke waits for the engine's first character (two model steps, usually ~1 ms)
MAX_PROMPT = 250_000  # characters: the prompt cache keeps every position's prediction
TOO_LONG = f"the playground opens files up to {MAX_PROMPT:,} characters; score longer ones with rnn-tui score"


@dataclass(frozen=True)
class Snapshot:
    """What the playground uses and shows, for the views that open from it."""

    weights: Weights | None  # the weights it generates with (None: none yet)
    prompt: str
    text: str  # the prompt and its continuation, as shown
    settings: SampleConfig | None  # None while a field holds an invalid value


class Playground(Vertical):
    SCOPE = PLAYGROUND
    BINDINGS = bindings(SCOPE)

    def __init__(
        self, *, prompt: str = "", live: bool = True, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "Playground"
        self.initial_prompt = prompt
        self.live = live  # False: a saved run, nothing to follow
        self.weights: Weights | None = None  # the weights the engine generates with
        self.engine = Engine(self.post_message)
        self._offered = False  # weights were handed to the engine
        self._last_follow = -math.inf
        self._session_weights: Weights | None = None  # the session's newest, kept while another run is shown
        self._other_run = False  # another run's weights are shown
        self.copies_on = False  # shade what the continuation copies from the training text (ctrl+n)
        self.copies_note = ""  # the novel share, under the text while copies are marked

    def compose(self) -> ComposeResult:
        yield PromptArea(self.initial_prompt, id="prompt", soft_wrap=True, placeholder="Type a prompt…")
        yield Controls(id="controls")
        yield ConfidenceText(id="output", choosable=True)
        yield Inspector(id="inspector")
        yield PredictionView(id="prediction")
        yield Legend(id="legend")

    def on_mount(self) -> None:
        self.controls.live = self.live
        self.engine.start()
        self.engine.settings(self.controls.settings or SampleConfig())
        self.engine.prompt(self.prompt)
        self.query_one(PromptArea).focus()

    def on_show(self) -> None:
        """Shown again (its tab, on a narrow terminal): the keyboard comes back to it, and with it its keys."""
        if not self.has_focus_within:
            self.query_one(PromptArea).focus()

    def on_unmount(self) -> None:
        self.engine.close()

    @property
    def controls(self) -> Controls:
        return self.query_one(Controls)

    @property
    def prompt(self) -> str:
        return self.query_one(PromptArea).text

    @property
    def idle(self) -> bool:
        """The engine has posted everything the requests so far call for."""
        return self.engine.idle

    def snapshot(self) -> Snapshot:
        out = self.query_one(ConfidenceText)
        return Snapshot(self.weights, self.prompt, "".join(t.char for t in out.tokens), self.controls.settings)

    # ------------------------------------------------------------ which weights

    def follow(self, newest: Callable[[], Weights | None]) -> None:
        """At each look at the session: take its newest weights (`newest()`) every FOLLOW_INTERVAL while following.

        Not while frozen, nor while the user inspects the output (the text under the cursor would change).
        The first weights are always taken. A long prompt being scored is the engine's to wait for.
        """
        now = time.monotonic()
        if self._offered:
            if not self.controls.follow or now - self._last_follow < FOLLOW_INTERVAL:
                return
            if self.query_one(ConfidenceText).has_focus:
                return
        weights = newest()
        if weights is not None:
            self._session_weights = weights
            self._use(weights)
            self._last_follow = now

    def show_run(self, name: str, weights: Weights) -> None:
        """Another run's weights, frozen; f8 goes back to the session's."""
        self.controls.follow, self._other_run = False, True
        self._use(weights)
        self.post_message(ShownRun(f"{name} at step {weights.step:,}"))
        self.notify(f"The playground shows {name}; f8 goes back to this run", timeout=4, markup=False)

    def _use(self, weights: Weights) -> None:
        self._offered = True
        self.engine.weights(weights)

    @on(WeightsTaken)
    def _taken(self, message: WeightsTaken) -> None:
        message.stop()
        self.weights = message.weights
        self.controls.weights_step = message.weights.step

    # ------------------------------------------------------------ generation

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self, event: TextArea.Changed) -> None:
        self.engine.prompt(event.text_area.text, typing=True)
        self.engine.first(FIRST_WAIT)  # the first character, drawn in the same frame as the key when it can be

    @on(SettingsChanged)
    def _settings_changed(self) -> None:
        settings = self.controls.settings
        if settings is not None:
            self.engine.settings(settings)

    @on(Generated)
    def _show(self, message: Generated) -> None:
        message.stop()
        self.query_one(ConfidenceText).edit(message.keep, message.tokens, message.n_prompt)
        self.call_after_refresh(self.engine.drawn)  # a keystroke's burst waits for this frame
        if message.done and self.copies_on:
            self._mark_copies()

    @on(Priming)
    def _priming(self, message: Priming) -> None:
        message.stop()
        done = message.done >= message.total
        self.border_subtitle = (
            self.copies_note if done else f"scoring the prompt: {message.done:,} of {message.total:,} characters"
        )

    @on(EngineFailed)
    def _failed(self, message: EngineFailed) -> None:
        raise message.error

    # ------------------------------------------------------------ the cursor

    @on(TextArea.SelectionChanged, "#prompt")
    def _prompt_cursor(self, event: TextArea.SelectionChanged) -> None:
        """The inspector follows the prompt's cursor: it shows the character just before it."""
        area = event.text_area
        if not area.has_focus:  # a late message after the keyboard moved on
            return
        self.query_one(ConfidenceText).track(area.document.get_index_from_location(event.selection.end) - 1)

    @on(CursorMoved)
    def _inspect(self, message: CursorMoved) -> None:
        message.stop()
        self._show_cursor(message.index, message.token)

    @on(Choose)
    def _choose(self, message: Choose) -> None:
        """Enter on a character: the inspector takes the keyboard to pick one of its top five."""
        message.stop()
        if not self.query_one(Inspector).display:
            self.action_toggle_prediction()
        out = self.query_one(ConfidenceText)
        if not out.tokens[message.index].top:
            return
        self._show_cursor(message.index, out.tokens[message.index])
        self.query_one(Inspector).choose(message.index)

    @on(Branch)
    def _branch(self, message: Branch) -> None:
        """Continue from the character picked, beside the earlier text, in a screen of its own."""
        message.stop()
        settings = self.controls.settings
        if settings is None or self.weights is None:
            self.notify("Fix the sampling settings first" if self.weights else "No weights yet", timeout=3)
            return
        from rnn_tui.tui.screens.branch import BranchScreen

        tokens = list(self.query_one(ConfidenceText).tokens)
        self.app.push_screen(BranchScreen(self.weights, tokens, message.index, message.char, settings))

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

    # ------------------------------------------------------------ actions (the action table's PLAYGROUND rows)

    def action_temperature(self, delta: float) -> None:
        self.controls.nudge("temperature", delta)

    def action_new_seed(self) -> None:
        self.controls.set_value("seed", random.randrange(2**32))

    def action_regenerate(self) -> None:
        self.engine.again()

    def action_toggle_follow(self) -> None:
        controls = self.controls
        controls.follow = not controls.follow
        self._last_follow = -math.inf
        if controls.follow and self._other_run:  # from another run back to this one
            self._other_run = False
            self.post_message(ShownRun(""))
            if self._session_weights is not None:
                self._use(self._session_weights)
        self.notify(
            "Following training" if controls.follow else "Frozen: the playground keeps these weights", timeout=2
        )

    def action_toggle_word_start(self) -> None:
        controls = self.controls
        controls.word_start = not controls.word_start
        self.notify(
            "Word-start: random at a word's first character, greedy inside words"
            if controls.word_start
            else "Every character drawn at random",
            timeout=2,
        )

    def action_toggle_copies(self) -> None:
        """Shade the stretches of the continuation that occur verbatim in the training text, or stop."""
        self.copies_on = not self.copies_on
        if self.copies_on:
            self._mark_copies()
        else:
            self.query_one(ConfidenceText).mark_copied([])
            self.copies_note = self.border_subtitle = ""

    def copies_ready(self) -> None:
        """The copy index is ready (or cannot be had): mark the text now."""
        if self.copies_on:
            self._mark_copies()

    def _mark_copies(self) -> None:
        out = self.query_one(ConfidenceText)
        index = indexes(self.app).get()
        if index is None:
            out.mark_copied([])
            self.copies_note = f"copies: {indexes(self.app).status()}"
        else:
            settings = self.controls.settings or SampleConfig()
            n = out.n_prompt
            found = index.copies("".join(t.char for t in out.tokens[n:]), settings.copied_min)
            out.mark_copied([(a + n, b + n) for a, b in found.spans])
            stretches = len(found.spans)
            self.copies_note = (
                f"{found.novel:.0%} novel · {stretches} copied stretch{'es' if stretches != 1 else ''} "
                f"({found.n}+ characters, shaded)"
            )
        self.border_subtitle = self.copies_note

    def action_temperatures(self) -> None:
        """The prompt at four temperatures, side by side, in a screen of its own."""
        settings = self.controls.settings
        if settings is None:
            self.notify("Fix the sampling settings first", severity="warning", timeout=3)
            return
        from rnn_tui.tui.screens.temperatures import TemperaturesScreen

        self.app.push_screen(TemperaturesScreen(self.weights, self.prompt, settings))

    def action_toggle_prediction(self) -> None:
        """Show the prediction figure in the inspector's place, or the inspector again."""
        prediction, inspector = self.query_one(PredictionView), self.query_one(Inspector)
        prediction.display = not prediction.display
        inspector.display = not prediction.display
        out = self.query_one(ConfidenceText)
        index = out.cursor if 0 <= out.cursor < len(out.tokens) else -1
        self._show_cursor(index, out.tokens[index] if index >= 0 else None)

    def action_open_step(self) -> None:
        """One step of the model laid open, at the character under the cursor (the inspector's), in a screen."""
        out = self.query_one(ConfidenceText)
        if self.weights is None:
            self.notify("No weights yet: the model is still starting", severity="warning", timeout=3)
            return
        if not out.tokens:
            self.notify("No text yet: type a prompt", severity="warning", timeout=3)
            return
        index = out.cursor if 0 <= out.cursor < len(out.tokens) else max(0, out.n_prompt - 1)
        from rnn_tui.tui.screens.step import StepScreen

        self.app.push_screen(StepScreen(self.weights, "".join(t.char for t in out.tokens), index))

    def action_open_file(self) -> None:
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
            self.notify(message, title="Open", severity="error", timeout=8, markup=False)
            return
        area = self.query_one(PromptArea)
        area.load_text(text)
        area.move_cursor(area.document.end)
        area.focus()
        self.notify(f"Opened {path} ({len(text):,} characters) as the prompt", timeout=4, markup=False)

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
        about += f"top-p {settings.top_p:g} · " if settings is not None and settings.top_p < 1 else ""
        about += f"penalty {settings.repetition_penalty:g} · " if settings and settings.repetition_penalty != 1 else ""
        about += "word-start · " if settings is not None and settings.draw == "word-start" else ""
        about += "weights at step " + ("—" if step is None else f"{step:,}")
        return body, Text("\n").join([confidence_legend(note=NOTE), Text(about, style="dim")]), "rnn-tui playground"
