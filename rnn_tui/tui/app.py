"""The app: routes a session's events to the widgets, and the user's commands to the session.

It paints first, then starts the session (the trainer's process, or a saved run) behind
the first frame, and drains the session on a 10 Hz timer: events go to the widgets in one
pass, the newest weights to the playground. It never waits on training, and it never
imports PyTorch.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs, TextArea
from threadpoolctl import threadpool_limits

from rnn_tui.config import ModelConfig
from rnn_tui.errors import UserError
from rnn_tui.events import (
    CheckpointSaved,
    Evaluation,
    Event,
    Finished,
    History,
    Notice,
    Progress,
    RunStarted,
    Sample,
    TrainerFailed,
    TrainerState,
)
from rnn_tui.export import save_all
from rnn_tui.session import Session, Weights
from rnn_tui.stdio import private_terminal, stdin_hung_up
from rnn_tui.tui.messages import OpenRun
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.playground.playground import Playground
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from rnn_tui.tui.widgets.run_header import RunHeader
from rnn_tui.tui.widgets.training.panel import TrainingPanel

POLL_INTERVAL = 0.1  # 10 Hz
FOLLOW_INTERVAL = 10.0  # seconds between weight refreshes of the playground while following
NARROW = 110  # columns below which the two panels become tabs
EXPORTS = Path("rnn-tui-exports")  # where ctrl+e saves the view on screen
QUIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# The screens' ids. Each screen's module is imported when it first opens (together about 80 ms of start-up).
NEURONS, RUNS, TIMELINE = "neurons", "runs-screen", "timeline-screen"


class RnnTuiApp(App):
    CSS_PATH = ["app.tcss", "training.tcss", "playground.tcss", "neurons.tcss", "views.tcss", "runs.tcss"]
    TITLE = "rnn-tui"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("p", "toggle_pause", "Pause"),
        Binding("s,ctrl+s", "save", "Save"),
        Binding("r,ctrl+r", "restart", "Restart", show=False),
        Binding("f2", "temperature(-0.1)", "Temp−"),
        Binding("f3", "temperature(0.1)", "Temp+"),
        Binding("f4", "new_seed", "Seed"),
        Binding("f5", "regenerate", "Again"),
        Binding("f6", "neurons", "Neurons", priority=True),  # before the prompt's own f6 (select line)
        Binding("f8", "toggle_follow", "Follow/freeze"),
        Binding("ctrl+t", "switch_tab", "Switch panel", show=False),
        Binding("f7", "timeline", "Timeline", show=False, priority=True),  # the prompt would select all
        Binding("f9", "temperatures", "Temperatures", show=False),
        Binding("ctrl+g", "toggle_prediction", "Guesses", show=False),
        Binding("ctrl+o", "open_file", "Open file", show=False),
        Binding("ctrl+e", "export_view", "Export", show=False, priority=True),  # before the prompt's end-of-line
        Binding("f10", "runs", "Runs", show=False),
    ]

    def __init__(
        self,
        session: Session,
        *,
        prompt: str = "",
        checkpoint_dir: Path | str = "checkpoints",
        handle_signals: bool = False,
    ) -> None:
        super().__init__()
        self.session = session
        self.initial_prompt = prompt
        self.checkpoint_dir = Path(checkpoint_dir)
        self.handle_signals = handle_signals
        self.state = "starting"
        self.paused = False
        self.quitting = False
        self.failed: TrainerFailed | None = None
        self._last_follow = -math.inf
        self.run_dir: Path | None = None
        self._session_weights: Weights | None = None  # the newest the session gave, kept while another run is shown

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        yield Tabs(Tab("Playground", id="tab-playground"), Tab("Training", id="tab-training"), id="tabs")
        with Horizontal(id="main"):
            yield TrainingPanel(id="training", classes="panel")
            yield Playground(prompt=self.initial_prompt, id="playground", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        # Generation runs on one core beside the trainer: a BLAS thread pool would fight it for the other.
        self._blas_threads = threadpool_limits(limits=1, user_api="blas")
        self.query_one(PromptArea).focus()
        self._fit_layout(self.size.width)
        if not self.session.controllable:  # a saved run, or one another process trains (watch)
            live = not self.session.finished
            self._set_state("watching" if live else "playground")
            self.query_one(Playground).controls.live = live
        self.call_after_refresh(self._start_session)
        if self.handle_signals:
            self._take_signals()

    def _take_signals(self) -> None:
        """SIGTERM and SIGINT (`kill`, a shutdown) quit as ctrl+q does: the trainer saves, then the app exits."""
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
                loop.add_signal_handler(sig, self.call_later, self.action_quit)

    def on_unmount(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in QUIT_SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)

    def _start_session(self) -> None:
        """After the first frame: start the trainer (or open the run), then drain it at 10 Hz."""
        try:
            self.session.start()
        except UserError as exc:  # e.g. a run record from a newer rnn-tui
            self._trainer_failed(TrainerFailed(str(exc)))
            return
        self.poll_session()
        self.set_interval(POLL_INTERVAL, self.poll_session)

    # ------------------------------------------------------------ layout

    def on_resize(self, event) -> None:
        self._fit_layout(event.size.width)

    def _fit_layout(self, width: int) -> None:
        narrow = width < NARROW
        self.set_class(narrow, "-narrow")
        if narrow:
            self._show_tab(self.query_one(Tabs).active)
        else:
            self.query_one(TrainingPanel).display = True
            self.query_one(Playground).display = True

    @on(Tabs.TabActivated)
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        if self.has_class("-narrow"):
            self._show_tab(event.tab.id)

    def _show_tab(self, tab_id: str | None) -> None:
        self.query_one(TrainingPanel).display = tab_id == "tab-training"
        self.query_one(Playground).display = tab_id != "tab-training"

    def action_switch_tab(self) -> None:
        tabs = self.query_one(Tabs)
        tabs.active = "tab-training" if tabs.active == "tab-playground" else "tab-playground"

    # ------------------------------------------------------------ the session

    def poll_session(self) -> None:
        """Drain the session (never blocking) and update the widgets in one pass."""
        if not self.is_running:
            return
        if self.is_web and stdin_hung_up():  # textual-serve is gone: nobody will send "quit"
            self.exit()
            return
        events = self.session.poll()
        for event in events:
            self.route(event)
        if events:
            self.query_one(TrainingPanel).show()
        self._follow_weights(time.monotonic())

    def route(self, event: Event) -> None:
        """One event to where it belongs."""
        panel, header = self.query_one(TrainingPanel), self.query_one(RunHeader)
        match event:
            case History():
                panel.load(event.events)
                for past in event.events:
                    if isinstance(past, RunStarted):
                        self._run_started(past)
                    if isinstance(past, Progress):
                        header.step = past.step
            case RunStarted():
                self._run_started(event)
                if self.session.controllable:
                    self._set_state("training")
            case Progress():
                panel.add(event)
                header.step = event.step
                if self.state == "starting" and not self.paused:
                    self._set_state("training")
            case Evaluation() | Sample():
                panel.add(event)
            case TrainerState():
                self.paused = event.state == "paused"
                self._set_state(event.state)
            case CheckpointSaved() if not event.best:
                self.notify(f"Saved step {event.step:,} to {event.path}", timeout=3, markup=False)
            case Notice():
                severity = {"error": "error", "information": "information"}.get(event.level, "warning")
                self.notify(event.message, title="Training", severity=severity, timeout=8, markup=False)
            case Finished():
                self._finished(event)
            case TrainerFailed():
                self._trainer_failed(event)

    def _run_started(self, event: RunStarted) -> None:
        model = ModelConfig.from_dict(event.model)
        c = event.corpus
        header = self.query_one(RunHeader)
        header.info = (
            f"{model.summary()} ({event.params / 1e6:.2f}M) on {event.device} │ "
            f"{c.get('name', '?')} ({c.get('chars', 0) / 1e6:.1f}M chars) │ {Path(event.run_dir).name}"
        )
        header.step = event.step
        self.run_dir = Path(event.run_dir)

    def _finished(self, event: Finished) -> None:
        self._set_state("diverged" if event.reason == "diverged" else "done")
        self.query_one(RunHeader).step = event.step  # the last steps may not have had a progress event
        if event.reason == "diverged":
            self.notify(
                "Training diverged: the loss kept going non-finite. The playground keeps the last good weights.",
                title="Training stopped",
                severity="error",
                timeout=30,
            )
        if self.quitting:
            self.exit()

    def _trainer_failed(self, event: TrainerFailed) -> None:
        self.failed = event
        self._set_state("failed")
        again = " Press ctrl+r to restart it from the last checkpoint." if event.restartable else ""
        self.notify(
            f"{event.message}. The playground keeps the last weights.{again}",
            title="Training stopped",
            severity="error",
            timeout=30,
            markup=False,
        )
        if self.quitting:
            self.exit()

    def _follow_weights(self, now: float) -> None:
        """Hand the newest weights to the playground every few seconds while it follows training.

        Not while the user inspects the output (the text under the cursor would change), nor while
        a long prompt is being scored (new weights would start it again).
        """
        playground = self.query_one(Playground)
        if playground.generator is not None:
            if not playground.controls.follow or now - self._last_follow < FOLLOW_INTERVAL or playground.busy:
                return
            if self.focused is self.query_one(ConfidenceText):
                return
        weights = self.session.weights()
        if weights is not None:
            self._session_weights = weights
            playground.offer_weights(weights)
            self._last_follow = now

    def _set_state(self, state: str) -> None:
        self.state = state
        self.query_one(RunHeader).state = state

    # ------------------------------------------------------------ actions

    def _training(self) -> bool:
        if self.session.controllable and not self.session.finished:
            return True
        self.notify("Not training", severity="warning", timeout=2)
        return False

    def action_toggle_pause(self) -> None:
        if self._training():
            (self.session.resume if self.paused else self.session.pause)()

    def action_save(self) -> None:
        if self._training():
            self.session.save()
            self._set_state("saving")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause, save and restart are offered only where this app trains; the playground's keys only with it."""
        if action in ("toggle_pause", "save", "restart"):
            return self.session.controllable
        if action in ("temperature", "new_seed", "regenerate", "toggle_follow"):
            return self.screen.id != RUNS
        return True

    def action_runs(self) -> None:
        """The runs in the checkpoint folder: compare their curves, open one in the playground."""
        if self.screen.id != RUNS:
            from rnn_tui.tui.screens.runs import RunsScreen

            self.push_screen(RunsScreen(self.checkpoint_dir, id=RUNS))

    @on(OpenRun)
    def show_run(self, message: OpenRun) -> None:
        """Another run's weights in the playground, frozen, and the header says whose they are (f8 goes back)."""
        if self.screen.id == RUNS:
            self.pop_screen()
        playground = self.query_one(Playground)
        playground.controls.follow = False
        playground.offer_weights(message.weights, force=True)
        self.query_one(RunHeader).playground = f"{message.name} at step {message.weights.step:,}"
        self.notify(f"The playground shows {message.name}; f8 goes back to this run", timeout=4, markup=False)

    def action_restart(self) -> None:
        """After the trainer died: start it again from the run's last checkpoint."""
        if self.failed is None or not self.failed.restartable:
            self.notify("Nothing to restart", severity="warning", timeout=2)
            return
        failed, self.failed = self.failed, None
        self._set_state("starting")
        try:
            self.session.restart()
        except UserError as exc:  # e.g. another process took the run meanwhile, or its text is gone
            self.failed = failed
            self._set_state("failed")
            self.notify(str(exc), title="Cannot restart training", severity="error", timeout=30, markup=False)

    async def action_quit(self) -> None:
        """Quit, saving a checkpoint first: the trainer saves when it stops."""
        if not self.session.controllable or self.session.finished or self.quitting:
            self.exit()  # a second ctrl+q does not wait
            return
        self.quitting = True
        self._set_state("saving")
        self.notify("Saving a checkpoint, then quitting… (ctrl+q again to quit at once)", timeout=30)
        self.session.stop()

    def action_temperature(self, delta: float) -> None:
        self.query_one(Playground).controls.nudge("temperature", delta)

    def action_new_seed(self) -> None:
        self.query_one(Playground).controls.set_value("seed", random.randrange(2**32))

    def action_regenerate(self) -> None:
        self.query_one(Playground).regenerate()

    def action_toggle_follow(self) -> None:
        playground = self.query_one(Playground)
        controls = playground.controls
        controls.follow = not controls.follow
        self._last_follow = -math.inf
        header = self.query_one(RunHeader)
        if controls.follow and header.playground:  # from another run back to this one
            header.playground = ""
            if self._session_weights is not None:
                playground.offer_weights(self._session_weights)
        self.notify(
            "Following training" if controls.follow else "Frozen: the playground keeps these weights", timeout=2
        )

    def action_neurons(self) -> None:
        """The neuron view (F6 opens and closes it): the model's cells on the playground's text or validation text."""
        if self.screen.id == NEURONS:
            self.screen.dismiss()
            return
        weights = self.query_one(Playground).weights
        if weights is None:
            self.notify("No weights yet: the model is still starting", severity="warning", timeout=3)
            return
        if not self.is_screen_installed(NEURONS):
            from rnn_tui.tui.screens.neurons import NeuronScreen

            self.install_screen(NeuronScreen(id=NEURONS), NEURONS)
        text = "".join(t.char for t in self.query_one(ConfidenceText).tokens)
        self.get_screen(NEURONS).offer(weights, text, self.run_dir)
        self.push_screen(NEURONS)

    # ------------------------------------------------------------ views

    def action_timeline(self) -> None:
        if self.screen.id == TIMELINE:
            self.pop_screen()
        else:
            from rnn_tui.tui.screens.timeline import TimelineScreen

            self.push_screen(TimelineScreen(self.query_one(TrainingPanel), id=TIMELINE))

    def action_temperatures(self) -> None:
        playground = self.query_one(Playground)
        settings = playground.controls.settings
        if settings is None:
            self.notify("Fix the sampling settings first", severity="warning", timeout=3)
            return
        from rnn_tui.tui.screens.temperatures import TemperaturesScreen

        self.push_screen(TemperaturesScreen(playground.weights, playground.prompt, settings))

    def action_toggle_prediction(self) -> None:
        self.query_one(Playground).toggle_prediction()

    def action_open_file(self) -> None:
        self.query_one(Playground).ask_for_file()

    def action_export_view(self) -> None:
        """Save the view on screen (the playground on the main screen) as HTML, SVG and text."""
        source = self.screen if hasattr(self.screen, "export_view") else self.query_one(Playground)
        body, legend, title = source.export_view()
        self._export(body, legend, title)

    @work(thread=True, group="export")
    def _export(self, body: RenderableType, legend: Text | None, title: str) -> None:
        try:
            stem = save_all(EXPORTS, body, legend=legend, title=title)
        except UserError as exc:
            self.call_from_thread(self.notify, str(exc), title="Export", severity="error", markup=False)
            return
        self.call_from_thread(self.notify, f"Saved {stem}.html, .svg and .txt", title="Export", markup=False)

    @on(TextArea.SelectionChanged, "#prompt")
    def _prompt_cursor(self, event: TextArea.SelectionChanged) -> None:
        """The inspector follows the prompt's cursor: it shows the character just before it."""
        area = event.text_area
        if not area.has_focus:  # a late message after the keyboard moved on
            return
        self.query_one(ConfidenceText).track(area.document.get_index_from_location(event.selection.end) - 1)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.session.controllable:
            yield SystemCommand("Pause / resume training", "Pause training, or carry on", self.action_toggle_pause)
            yield SystemCommand("Save checkpoint", "Save the run now", self.action_save)
            yield SystemCommand(
                "Restart training", "Start the trainer again from the last checkpoint", self.action_restart
            )
        yield SystemCommand("Temperature up", "Sample more adventurously (+0.1)", lambda: self.action_temperature(0.1))
        yield SystemCommand(
            "Temperature down", "Sample more conservatively (−0.1)", lambda: self.action_temperature(-0.1)
        )
        yield SystemCommand("New sampling seed", "Draw a new random seed", self.action_new_seed)
        yield SystemCommand("Regenerate", "Generate the continuation again", self.action_regenerate)
        yield SystemCommand(
            "Follow training / freeze weights", "Toggle which weights the playground uses", self.action_toggle_follow
        )
        yield SystemCommand("Neuron view", "Colour text by one cell; find cells tracking quotes…", self.action_neurons)
        if screen.id == NEURONS:
            yield from screen.system_commands()
        yield SystemCommand("Timeline of samples", "The run's samples in order (F7)", self.action_timeline)
        yield SystemCommand(
            "Temperatures side by side",
            "The prompt at 0.2, 0.5, 1.0 and 1.5 in one batch (F9)",
            self.action_temperatures,
        )
        yield SystemCommand(
            "Prediction figure",
            "The top 5 guesses under the cursor's line, or the inspector (ctrl+g)",
            self.action_toggle_prediction,
        )
        yield SystemCommand("Open a file as the prompt", "Continue a text file (ctrl+o)", self.action_open_file)
        yield SystemCommand(
            "Export this view", f"Save it as HTML, SVG and text in {EXPORTS}/ (ctrl+e)", self.action_export_view
        )
        yield SystemCommand(
            "Runs", "Compare the runs in the checkpoint folder, open one in the playground (f10)", self.action_runs
        )
        yield SystemCommand("Save and quit", "Save a checkpoint, then quit", self.action_quit)


def run_app(session: Session, checkpoint_dir: Path | str = "checkpoints") -> int:
    """Run the app on a session, and stop the session when the app exits.

    Only the app draws: everything else that writes to fds 1 and 2 (a library, the trainer's
    process) writes into /dev/null, so nothing tears the screen or textual-serve's stream.
    """
    try:
        with private_terminal():
            app = RnnTuiApp(session, checkpoint_dir=checkpoint_dir, handle_signals=True)
            app.run()
    finally:
        session.close()
    return app.return_code or 0
