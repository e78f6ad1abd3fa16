"""The app: routes a session's events to the widgets, and the user's commands to the session.

It paints first (the header, the panels' frames, the footer: no NumPy, weights or session yet; see
tests/test_startup.py), then starts the session (the trainer's process, or a saved run), mounts the
panels and drains the session on a 10 Hz timer: events go to the widgets in one pass, the newest
weights to the playground. It never waits on training, and it never imports PyTorch.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs

from rnn_tui import events as ev
from rnn_tui.checkpoint import CHECKPOINT_DIR
from rnn_tui.errors import UserError
from rnn_tui.export import EXPORTS, save_all
from rnn_tui.session import Session
from rnn_tui.stdio import private_terminal, stdin_hung_up
from rnn_tui.tui import actions
from rnn_tui.tui.messages import OpenRun, ShownRun
from rnn_tui.tui.screens import main
from rnn_tui.tui.screens.help import HelpScreen
from rnn_tui.tui.widgets.run_header import RunHeader

if TYPE_CHECKING:  # imported after the first frame (main.panels): they bring NumPy, plotext and the engine
    from rnn_tui.tui.widgets.playground.playground import Playground
    from rnn_tui.tui.widgets.training.panel import TrainingPanel

POLL_INTERVAL = 0.1  # 10 Hz
NARROW = 110  # columns below which the two panels become tabs
QUIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOPPED = {"title": "Training stopped", "severity": "error", "timeout": 30}
DIVERGED = "Training diverged: the loss kept going non-finite. The playground keeps the last good weights."
# The screens' ids. Each screen's module is imported when it first opens (together about 80 ms of start-up).
NEURONS, RUNS, TIMELINE = "neurons", "runs-screen", "timeline-screen"


class RnnTuiApp(App):
    CSS_PATH = ["app.tcss", "training.tcss", "playground.tcss", "neurons.tcss", "views.tcss", "runs.tcss"]
    TITLE = "rnn-tui"
    BINDINGS = actions.bindings(actions.APP, actions.TRAINING)

    def __init__(
        self,
        session: Session,
        *,
        prompt: str = "",
        checkpoint_dir: Path | str = CHECKPOINT_DIR,
        handle_signals: bool = False,
        frames_first: bool | None = None,
    ) -> None:
        """frames_first: the first frame shows the panels' frames, the panels come after it (default: not headless)."""
        super().__init__()
        self.frames_first = frames_first
        self.session = session
        self.initial_prompt = prompt
        self.checkpoint_dir = Path(checkpoint_dir)
        self.handle_signals = handle_signals
        self.state = "starting"
        self.paused = False
        self.quitting = False
        self.failed: ev.TrainerFailed | None = None
        self.run_dir: Path | None = None

    def get_default_screen(self) -> Screen:
        return main.MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        yield Tabs(Tab("Playground", id="tab-playground"), Tab("Training", id="tab-training"), id="tabs")
        with Horizontal(id="main"):
            if not self.is_headless if self.frames_first is None else self.frames_first:
                yield from main.frames()  # the panels come after the first frame (_open)
            else:  # headless (tests, screenshots): nobody sees a first frame
                yield from main.panels(self.session, self.initial_prompt)
        yield Footer()

    @property
    def panel(self) -> TrainingPanel:
        return cast("TrainingPanel", self.query_one("#training"))

    @property
    def playground(self) -> Playground:
        return cast("Playground", self.query_one("#playground"))

    def on_mount(self) -> None:
        self.set_class(self.size.width < NARROW, "-narrow")
        if not self.session.controllable:  # a saved run, or one another process trains (watch)
            self._set_state("playground" if self.session.finished else "watching")
        self.call_after_refresh(self._open)
        if self.handle_signals:
            self._quit_on_signals(True)

    async def _open(self) -> None:
        """After the first frame: start the session (its PyTorch import overlaps the rest), the panels, the drain."""
        from threadpoolctl import threadpool_limits

        failed = None
        try:
            self.session.start()
        except UserError as exc:  # e.g. a run record from a newer rnn-tui
            failed = ev.TrainerFailed(str(exc))
        # Generation runs on one core beside the trainer: a BLAS thread pool would fight it for the other.
        self._blas_threads = threadpool_limits(limits=1, user_api="blas")
        await main.fill(self.query_one("#main"), self.session, self.initial_prompt)
        if failed is not None:
            self._trainer_failed(failed)
            return
        self.poll_session()
        self.set_interval(POLL_INTERVAL, self.poll_session)

    def on_unmount(self) -> None:
        if self.handle_signals:
            self._quit_on_signals(False)

    def _quit_on_signals(self, take: bool) -> None:
        """SIGTERM and SIGINT (`kill`, a shutdown) quit as ctrl+q does: the trainer saves, then the app exits."""
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
                if take:
                    loop.add_signal_handler(sig, self.call_later, self.action_quit)
                else:
                    loop.remove_signal_handler(sig)

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")  # app.tcss, and the main screen's tabs

    # ------------------------------------------------------------ the session

    def poll_session(self) -> None:
        """Drain the session (never blocking) and update the widgets in one pass."""
        if not self.is_running:
            return
        if self.is_web and stdin_hung_up():  # textual-serve is gone: nobody will send "quit"
            self.exit()
            return
        for event in (events := self.session.poll()):
            self.route(event)
        if events:
            self.panel.show()
        self.playground.follow(self.session.weights)

    def route(self, event: ev.Event) -> None:
        """One event to where it belongs."""
        panel, header = self.panel, self.query_one(RunHeader)
        match event:
            case ev.History():
                panel.load(event.events)
                for past in event.events:
                    if isinstance(past, ev.RunStarted):
                        self._run_started(past)
                    if isinstance(past, ev.Progress):
                        header.step = past.step
            case ev.RunStarted():
                self._run_started(event)
                if self.session.controllable:
                    self._set_state("training")
            case ev.Progress():
                panel.add(event)
                header.step = event.step
                if self.state == "starting" and not self.paused:
                    self._set_state("training")
            case ev.Evaluation() | ev.Sample():
                panel.add(event)
            case ev.TrainerState():
                self.paused = event.state == "paused"
                self._set_state(event.state)
            case ev.CheckpointSaved() if not event.best:
                self.notify(f"Saved step {event.step:,} to {event.path}", timeout=3, markup=False)
            case ev.Notice():
                severity = {"error": "error", "information": "information"}.get(event.level, "warning")
                self.notify(event.message, title="Training", severity=severity, timeout=8, markup=False)
            case ev.Finished():
                self._finished(event)
            case ev.TrainerFailed():
                self._trainer_failed(event)

    def _run_started(self, event: ev.RunStarted) -> None:
        self.query_one(RunHeader).started(event)
        self.run_dir = Path(event.run_dir)

    def _finished(self, event: ev.Finished) -> None:
        self._set_state("diverged" if event.reason == "diverged" else "done")
        self.query_one(RunHeader).step = event.step  # the last steps may not have had a progress event
        if event.reason == "diverged":
            self.notify(DIVERGED, **STOPPED)
        if self.quitting:
            self.exit()

    def _trainer_failed(self, event: ev.TrainerFailed) -> None:
        self.failed = event
        self._set_state("failed")
        again = " Press ctrl+r to restart it from the last checkpoint." if event.restartable else ""
        self.notify(f"{event.message}. The playground keeps the last weights.{again}", markup=False, **STOPPED)
        if self.quitting:
            self.exit()

    def _set_state(self, state: str) -> None:
        self.state = self.query_one(RunHeader).state = state

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
        """The TRAINING rows of the action table (pause, save, restart) are offered only where this app trains."""
        if any(row.action == action for row in actions.rows(actions.TRAINING)):
            return self.session.controllable
        return True

    def action_help(self) -> None:
        self.push_screen(HelpScreen())  # every key, from the action table; it closes itself

    def action_runs(self) -> None:
        """The runs in the checkpoint folder: compare their curves, open one in the playground."""
        if self.screen.id != RUNS:
            from rnn_tui.tui.screens.runs import RunsScreen

            self.push_screen(RunsScreen(self.checkpoint_dir, id=RUNS))

    @on(OpenRun)
    def show_run(self, message: OpenRun) -> None:
        """Another run's weights in the playground (frozen); the header says whose they are."""
        if self.screen.id == RUNS:
            self.pop_screen()
        self.playground.show_run(message.name, message.weights)

    @on(ShownRun)
    def _shown_run(self, message: ShownRun) -> None:
        self.query_one(RunHeader).playground = message.label

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

    def action_neurons(self) -> None:
        """The neuron view (F6 opens and closes it): the model's cells on the playground's text or validation text."""
        if self.screen.id == NEURONS:
            self.screen.dismiss()
            return
        shown = self.playground.snapshot()
        if shown.weights is None:
            self.notify("No weights yet: the model is still starting", severity="warning", timeout=3)
            return
        if not self.is_screen_installed(NEURONS):
            from rnn_tui.tui.screens.neurons import NeuronScreen

            self.install_screen(NeuronScreen(id=NEURONS), NEURONS)
        self.get_screen(NEURONS).offer(shown.weights, shown.text, self.run_dir)
        self.push_screen(NEURONS)

    # ------------------------------------------------------------ views

    def action_timeline(self) -> None:
        if self.screen.id == TIMELINE:
            self.pop_screen()
        else:
            from rnn_tui.tui.screens.timeline import TimelineScreen

            self.push_screen(TimelineScreen(self.panel, id=TIMELINE))

    def action_export_view(self) -> None:
        """Save the view on screen (or the main screen's, the playground) as HTML, SVG and text."""
        screen = self.screen if hasattr(self.screen, "export_view") else self.default_screen
        self._export(*screen.export_view())

    @work(thread=True, group="export")
    def _export(self, body: RenderableType, legend: Text | None, title: str) -> None:
        try:
            stem = save_all(EXPORTS, body, legend=legend, title=title)
        except UserError as exc:
            self.call_from_thread(self.notify, str(exc), title="Export", severity="error", markup=False)
            return
        self.call_from_thread(self.notify, f"Saved {stem}.html, .svg and .txt", title="Export", markup=False)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from actions.commands(self, screen)


def run_app(session: Session, checkpoint_dir: Path | str = CHECKPOINT_DIR) -> int:
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
