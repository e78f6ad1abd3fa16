"""The app: a training panel beside a playground.

The app owns the session (the trainer's process) and drains it on a 10 Hz timer: events
update the widgets in one pass, and the newest published weights go to the playground.
It never waits on training.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs, TextArea
from threadpoolctl import threadpool_limits

from rnn_tui.corpus import Vocab
from rnn_tui.model import ModelConfig
from rnn_tui.session import Failed, Ready, Status, TrainingSession
from rnn_tui.training import Checkpoint, Done, Eval, Progress, Sample, Warning
from rnn_tui.tui.widgets.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.loss_chart import LossChart
from rnn_tui.tui.widgets.playground import DEFAULT_PROMPT, Playground, PromptArea
from rnn_tui.tui.widgets.run_header import RunHeader
from rnn_tui.tui.widgets.sample_feed import SampleFeed
from rnn_tui.tui.widgets.stats import TrainingStats

POLL_INTERVAL = 0.1  # 10 Hz
CHART_INTERVAL = 2.0
FOLLOW_INTERVAL = 10.0  # seconds between weight refreshes of the playground while following
NARROW = 110  # columns below which the two panels become tabs


class RnnTuiApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "rnn-tui"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("p", "toggle_pause", "Pause"),
        Binding("s,ctrl+s", "save", "Save"),
        Binding("f2", "temperature(-0.1)", "Temp−"),
        Binding("f3", "temperature(0.1)", "Temp+"),
        Binding("f4", "new_seed", "Seed"),
        Binding("f5", "regenerate", "Again"),
        Binding("f8", "toggle_follow", "Follow/freeze"),
        Binding("ctrl+t", "switch_tab", "Switch panel", show=False),
    ]

    def __init__(
        self,
        session: TrainingSession | None = None,
        *,
        playground_only: dict | None = None,
        prompt: str = DEFAULT_PROMPT,
    ) -> None:
        """`session` trains; `playground_only` (config, vocab, weights, step, info) opens a saved run."""
        super().__init__()
        self.session = session
        self.playground_only = playground_only
        self.initial_prompt = prompt
        self.state = "starting"
        self.paused = False
        self.model: tuple[ModelConfig, Vocab] | None = None
        self.run_dir: str | None = None
        self._last_chart = 0.0
        self._chart_dirty = False
        self._last_follow = -math.inf
        self.quitting = False

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        yield Tabs(Tab("Playground", id="tab-playground"), Tab("Training", id="tab-training"), id="tabs")
        with Horizontal(id="main"):
            with Vertical(id="training", classes="panel") as training:
                training.border_title = "Training"
                yield TrainingStats(id="stats")
                yield LossChart(id="chart")
                yield SampleFeed(id="samples")
            with Vertical(id="playground-panel", classes="panel") as play:
                play.border_title = "Playground"
                yield Playground(prompt=self.initial_prompt, id="playground")
        yield Footer()

    def on_mount(self) -> None:
        # Generation runs on one core beside the trainer: a BLAS thread pool would fight it for the other.
        self._blas_threads = threadpool_limits(limits=1, user_api="blas")
        self.query_one(PromptArea).focus()
        self._fit_layout(self.size.width)
        if self.playground_only is not None:
            po = self.playground_only
            self._set_state("playground")
            self.query_one(RunHeader).info = po["info"]
            self.query_one(Playground).offer_weights(po["config"], po["vocab"], po["weights"], po["step"], force=True)
            return
        self.set_interval(POLL_INTERVAL, self.poll_session)

    # ------------------------------------------------------------ layout

    def on_resize(self, event) -> None:
        self._fit_layout(event.size.width)

    def _fit_layout(self, width: int) -> None:
        narrow = width < NARROW and self.playground_only is None
        self.set_class(narrow, "-narrow")
        if narrow:
            self._show_tab(self.query_one(Tabs).active)
        else:
            self.query_one("#training").display = self.playground_only is None
            self.query_one("#playground-panel").display = True

    @on(Tabs.TabActivated)
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        if self.has_class("-narrow"):
            self._show_tab(event.tab.id)

    def _show_tab(self, tab_id: str | None) -> None:
        self.query_one("#training").display = tab_id == "tab-training"
        self.query_one("#playground-panel").display = tab_id != "tab-training"

    def action_switch_tab(self) -> None:
        tabs = self.query_one(Tabs)
        tabs.active = "tab-training" if tabs.active == "tab-playground" else "tab-playground"

    # ------------------------------------------------------------ the session

    def poll_session(self) -> None:
        """Drain the trainer's events (never blocking) and update the widgets in one pass."""
        if self.session is None or not self.is_running:
            return
        stats = self.query_one(TrainingStats)
        chart = self.query_one(LossChart)
        changed = False
        for msg in self.session.poll():
            changed = True
            if isinstance(msg, Progress):
                stats.record(msg)
                self.query_one(RunHeader).step = msg.step
                chart.add("train", msg.step, msg.loss)
                self._chart_dirty = True
                if self.state == "starting" and not self.paused:
                    self._set_state("training")
            elif isinstance(msg, Eval):
                stats.record(msg)
                chart.add("val", msg.step, msg.val_loss)
                self._chart_dirty = True
            elif isinstance(msg, Sample):
                self.query_one(SampleFeed).add(msg)
            elif isinstance(msg, Ready):
                self._trainer_ready(msg)
            elif isinstance(msg, Status):
                self.paused = msg.state == "paused"
                self._set_state(msg.state)
            elif isinstance(msg, Checkpoint):
                if not msg.best:
                    self.notify(f"Saved step {msg.step:,} to {msg.path}", timeout=3)
            elif isinstance(msg, Warning):
                self.notify(msg.message, title="Training", severity="warning", timeout=8)
            elif isinstance(msg, Done):
                self._set_state("diverged" if msg.reason == "diverged" else "done")
                if msg.reason == "diverged":
                    self.notify(
                        "Training diverged: the loss kept going non-finite. The playground keeps the "
                        "last good weights.",
                        title="Training stopped",
                        severity="error",
                        timeout=30,
                    )
                if self.quitting:
                    self.exit()
            elif isinstance(msg, Failed):
                self._set_state("failed")
                self.notify(
                    f"{msg.message}. The playground keeps the last weights.",
                    title="Training stopped",
                    severity="error",
                    timeout=30,
                )
                if self.quitting:
                    self.exit()
        if changed:
            stats.render_figures()
        now = time.monotonic()
        if self._chart_dirty and now - self._last_chart >= CHART_INTERVAL:
            chart.draw()
            self._chart_dirty = False
            self._last_chart = now
        self._follow_weights(now)

    def _follow_weights(self, now: float) -> None:
        """Hand the newest weights to the playground every few seconds while it follows training.

        Not while the user inspects the output: the text under the cursor would change.
        """
        playground = self.query_one(Playground)
        if self.model is None:
            return
        if playground.generator is not None:
            if not playground.controls.follow or now - self._last_follow < FOLLOW_INTERVAL:
                return
            if self.focused is self.query_one(ConfidenceText):
                return
        weights = self.session.weights()
        if weights is None:
            return
        cfg, vocab = self.model
        playground.offer_weights(cfg, vocab, weights.tensors, weights.step)
        self._last_follow = now

    def _trainer_ready(self, msg: Ready) -> None:
        self.model = (ModelConfig.from_dict(msg.model), Vocab(msg.vocab))
        self.run_dir = msg.run_dir
        c, m = msg.corpus, msg.model
        self.query_one(RunHeader).info = (
            f"{m['cell']} {m['layers']}×{m['hidden']} ({msg.params / 1e6:.2f}M) on {msg.device} │ "
            f"{c['name']} ({c['chars'] / 1e6:.1f}M chars) │ {Path(msg.run_dir).name}"
        )
        self.query_one(RunHeader).step = msg.step
        stats = self.query_one(TrainingStats)
        stats.restore(msg.history)
        chart = self.query_one(LossChart)
        for kind in ("train", "val"):
            for step, value in msg.history.get(kind, []):
                chart.add(kind, int(step), value)
        self._chart_dirty = True
        self._set_state("training")

    def _set_state(self, state: str) -> None:
        self.state = state
        self.query_one(RunHeader).state = state

    # ------------------------------------------------------------ actions

    def action_toggle_pause(self) -> None:
        if self.session is None or self.session.finished:
            self.notify("Not training", severity="warning", timeout=2)
            return
        if self.paused:
            self.session.resume()
        else:
            self.session.pause()

    def action_save(self) -> None:
        if self.session is None or self.session.finished:
            self.notify("Not training: nothing new to save", severity="warning", timeout=2)
            return
        self.session.save()
        self._set_state("saving")

    async def action_quit(self) -> None:
        """Quit, saving a checkpoint first: the trainer saves when it stops."""
        if self.session is None or self.session.finished:
            self.exit()
            return
        if self.quitting:  # a second ctrl+q does not wait
            self.exit()
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
        controls = self.query_one(Playground).controls
        controls.follow = not controls.follow
        self._last_follow = -math.inf
        self.notify(
            "Following training" if controls.follow else "Frozen: the playground keeps these weights", timeout=2
        )

    @on(TextArea.SelectionChanged, "#prompt")
    def _prompt_cursor(self, event: TextArea.SelectionChanged) -> None:
        """The inspector follows the prompt's cursor: it shows the character just before it."""
        area = event.text_area
        if not area.has_focus:  # a late message after the keyboard moved on
            return
        self.query_one(ConfidenceText).track(area.document.get_index_from_location(event.selection.end) - 1)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Pause / resume training", "Pause training, or carry on", self.action_toggle_pause)
        yield SystemCommand("Save checkpoint", "Save the run now", self.action_save)
        yield SystemCommand("Temperature up", "Sample more adventurously (+0.1)", lambda: self.action_temperature(0.1))
        yield SystemCommand(
            "Temperature down", "Sample more conservatively (−0.1)", lambda: self.action_temperature(-0.1)
        )
        yield SystemCommand("New sampling seed", "Draw a new random seed", self.action_new_seed)
        yield SystemCommand("Regenerate", "Generate the continuation again", self.action_regenerate)
        yield SystemCommand(
            "Follow training / freeze weights", "Toggle which weights the playground uses", self.action_toggle_follow
        )
        yield SystemCommand("Save and quit", "Save a checkpoint, then quit", self.action_quit)


# --------------------------------------------------------------------------- entry point


def run_app(request, train: bool = True) -> int:  # request: training.RunRequest
    """`rnn-tui launch`: check the flags, start the trainer's process, run the app, stop the trainer."""
    from rnn_tui import checkpoint
    from rnn_tui.corpus import resolve_source
    from rnn_tui.training import _slug, validate_run

    run_dir, ckpt = validate_run(request)  # bad flags fail here, before the app starts
    if not train:
        info = (
            f"{run_dir.name} │ {ckpt.meta.get('corpus', {}).get('name', '?')} │ step {ckpt.meta['step']:,} │ "
            f"{ckpt.config.cell} {ckpt.config.layers}×{ckpt.config.hidden} │ no training"
        )
        app = RnnTuiApp(
            playground_only={
                "config": ckpt.config,
                "vocab": ckpt.vocab,
                "weights": ckpt.model,
                "step": ckpt.meta["step"],
                "info": info,
            }
        )
        app.run()
        return app.return_code or 0
    if run_dir is None:
        from datetime import datetime

        source = resolve_source(request.data, request.corpus, request.globs, request.encoding)
        request.run_name = request.run_name or f"{_slug(source.name)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        run_dir = Path(request.checkpoint_dir) / request.run_name
        if (run_dir / checkpoint.META).exists():
            from rnn_tui.errors import UserError

            raise UserError(
                f"a run named {request.run_name!r} already exists in {request.checkpoint_dir}/; "
                f"continue it with --resume {request.run_name}, or choose another --run-name"
            )
    session = TrainingSession(request, log_path=run_dir / checkpoint.LOG)
    session.start()
    app = RnnTuiApp(session)
    try:
        app.run()
    finally:
        session.close()
    return app.return_code or 0
