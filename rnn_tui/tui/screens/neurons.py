"""The neuron view: a text coloured by one cell of the model, and "find cells".

It shows the playground's text or a passage of the run's validation text, each character
coloured by one cell's activation after reading it (what its kernel `shows`: tanh of the cell
state for an LSTM, the hidden state for a GRU or an RNN, tanh of h for the min cells). Keys
move through cells and layers; the cursor reads the value.
"Find cells" ranks every cell by how well it follows simple features of about 50,000
characters of validation text (quotes, brackets, line position...), in a thread worker that
reports progress and stops when cancelled; choosing a cell in the list jumps to it and
measures what zeroing it costs (ablation), also in a worker.

The app installs the screen once, so a running search carries on while the user goes back
to the playground (Escape) and types; F6 comes back to it. It runs its own NumPy stepper on
the weights the app hands over (those the playground uses).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import get_current_worker

from rnn_tui import palette
from rnn_tui.config import CellsConfig
from rnn_tui.errors import UserError
from rnn_tui.inference import KERNELS, Stepper
from rnn_tui.neurons import Analysis, Ranking, Trace, validation_text
from rnn_tui.session import Weights
from rnn_tui.tui.actions import NEURONS, bindings
from rnn_tui.tui.messages import CursorMoved
from rnn_tui.tui.widgets.chargrid.activation_text import ActivationText
from rnn_tui.tui.widgets.neurons.cell_bar import CellBar
from rnn_tui.tui.widgets.neurons.find_panel import FindPanel, effect_text, parse_row_key
from rnn_tui.tui.widgets.neurons.legend import ActivationLegend, legend_text
from rnn_tui.tui.widgets.neurons.messages import Ablated, CellsFound, Failed, Traced, Working

VIEW_CHARS = 3000  # characters of validation text shown (find cells reads CellsConfig.chars)


class NeuronScreen(Screen):
    AUTO_FOCUS = "ActivationText"
    SCOPE = NEURONS
    BINDINGS = bindings(SCOPE)

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.weights: Weights | None = None  # the newest the app handed over
        self.playground_text = ""
        self.run_dir: Path | None = None
        self.source = "playground"  # or "validation"
        self.trace: Trace | None = None
        self._traced: tuple[Weights, str, str] | None = None  # what the trace was made from
        self.current = (0, 0)  # the cell shown: (layer, cell)
        self.ranking: Ranking | None = None
        self.analysis: Analysis | None = None  # the ranking's, kept for ablation
        self.finding = False
        self._validation: str | None = None
        self._validation_lock = threading.Lock()

    def compose(self) -> ComposeResult:
        yield Static(id="neuron-title")
        with Horizontal(id="neuron-main"):
            with Vertical(id="neuron-text"):
                yield ActivationText(id="activations")
                yield CellBar(id="cell-bar")
                yield ActivationLegend(id="activation-legend")
            yield FindPanel(id="find")
        yield Footer()

    # ------------------------------------------------------------ what to show

    def offer(self, weights: Weights, playground_text: str, run_dir: Path | None) -> None:
        """The app's newest weights, the playground's text and the run folder, before the screen is shown."""
        self.weights, self.playground_text = weights, playground_text
        if run_dir != self.run_dir:
            self.run_dir, self._validation = run_dir, None
        if not playground_text and self.source == "playground":
            self.source = "validation"

    def on_screen_resume(self) -> None:
        self._retrace()

    def _retrace(self) -> None:
        """Run the model over the shown text again if the weights or the text changed."""
        if self.weights is None:
            return
        key = (self.weights, self.source, self.playground_text if self.source == "playground" else "")
        if self._traced is not None and self._traced[0] is key[0] and self._traced[1:] == key[1:]:
            return
        self._traced = key
        self._trace(self.weights, self.source, self.playground_text)
        self._show_title()

    def _show_title(self, status: str = "") -> None:
        w = self.weights
        title = Text("Neurons", style="bold")
        if w is not None:
            title.append(f"  {w.config.summary()}, weights of step {w.step:,}")
        if self.trace is not None:
            what = "the playground's text" if self.source == "playground" else "validation text"
            title.append(f"  │  {what} ({len(self.trace.text):,} chars)")
        if status:
            title.append(f"  │  {status}", style="italic")
        self.query_one("#neuron-title", Static).update(title)

    def _validation_text(self) -> str:
        """The run's validation text (CellsConfig.chars of it), read once, from any worker."""
        with self._validation_lock:
            if self._validation is None:
                if self.run_dir is None:
                    raise UserError("the run has no folder yet")
                self._validation = validation_text(self.run_dir, CellsConfig().chars)
            return self._validation

    @work(thread=True, exclusive=True, group="trace")
    def _trace(self, weights: Weights, source: str, playground_text: str) -> None:
        worker = get_current_worker()
        try:
            text = playground_text if source == "playground" else self._validation_text()[:VIEW_CHARS]
        except UserError as exc:
            self.post_message(Failed("trace", f"No validation text to show: {exc}"))
            return
        trace = Trace(Stepper(weights.config, weights.tensors), weights.vocab, text)
        for done in trace.run():
            if worker.is_cancelled:
                return
            self.post_message(Working("trace", f"reading the text… {done:.0%}", done))
        self.post_message(Traced(trace, source))

    @on(Traced)
    def _traced_text(self, message: Traced) -> None:
        self.trace = message.trace
        cfg = message.trace.stepper.cfg
        self.current = (min(self.current[0], cfg.layers - 1), min(self.current[1], cfg.hidden - 1))
        self.query_one(ActivationText).show(message.trace.text, self._values())
        self.query_one(ActivationLegend).redraw(message.trace.stepper.kernel.shows)
        self._show_title()
        self._show_cell()

    def _values(self) -> np.ndarray:
        assert self.trace is not None
        return self.trace.values[:, self.current[0], self.current[1]].astype(np.float32)

    def _show_cell(self) -> None:
        if self.trace is None:
            return
        out = self.query_one(ActivationText)
        i = out.cursor
        value = out.value_at(i)
        char = None if value is None else (i, out.tokens[i].char, value)
        cfg = self.trace.stepper.cfg
        self.query_one(CellBar).show(self.current, cfg, self.ranking, char, len(self.trace.text))

    @on(CursorMoved)
    def _cursor_moved(self, message: CursorMoved) -> None:
        message.stop()
        self._show_cell()

    # ------------------------------------------------------------ moving through cells

    def _jump(self, layer: int, cell: int) -> None:
        if self.trace is None:
            return
        cfg = self.trace.stepper.cfg
        self.current = (min(max(0, layer), cfg.layers - 1), cell % cfg.hidden)
        self.query_one(ActivationText).set_values(self._values())
        self._show_cell()

    def action_cell(self, delta: int) -> None:
        self._jump(self.current[0], self.current[1] + delta)

    def action_layer(self, delta: int) -> None:
        self._jump(self.current[0] + delta, self.current[1])

    def action_toggle_text(self) -> None:
        if self.source == "validation" and not self.playground_text:
            self.notify("The playground has no text yet: type a prompt there first", timeout=3)
            return
        self.source = "validation" if self.source == "playground" else "playground"
        self._retrace()

    def action_close(self) -> None:
        self.dismiss()

    # ------------------------------------------------------------ find cells

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "find":
            return not self.finding
        if action == "cancel_find":
            return self.finding
        return True

    def _set_finding(self, finding: bool) -> None:
        self.finding = finding
        self.refresh_bindings()

    def action_find(self) -> None:
        if self.weights is None:
            return
        self._set_finding(True)
        self.query_one(FindPanel).working("Loading the validation text…", None)
        self._find(self.weights, self.playground_text)

    def action_cancel_find(self) -> None:
        self.workers.cancel_group(self, "find")
        self._set_finding(False)
        self.query_one(FindPanel).done(Text("Cancelled. Press f to find cells again.", style="dim"))

    @work(thread=True, exclusive=True, group="find")
    def _find(self, weights: Weights, playground_text: str) -> None:
        worker = get_current_worker()
        note = ""
        try:
            text = self._validation_text()
            what = f"{len(text):,} characters of validation text"
        except UserError as exc:
            if not playground_text:
                self.post_message(Failed("find", f"No text to read: {exc}; type a prompt in the playground"))
                return
            text, what = playground_text, f"the playground's {len(playground_text):,} characters"
            note = f" There is no validation text: {exc}."
        analysis = Analysis(Stepper(weights.config, weights.tensors), weights.vocab, text)
        for done in analysis.correlate():
            if worker.is_cancelled:
                return
            self.post_message(Working("find", f"Reading {what}… {done:.0%}", done))
        self.post_message(CellsFound(analysis.ranking(CellsConfig().top), analysis, weights.step, what, note))

    @on(CellsFound)
    def _found(self, message: CellsFound) -> None:
        if not self.finding:  # cancelled while its last message was on the way
            return
        self._set_finding(False)
        self.ranking, self.analysis = message.ranking, message.analysis
        panel = self.query_one(FindPanel)
        panel.found(message.ranking)
        panel.done(
            Text(
                f"Read {message.what} with the weights of step {message.step:,}.{message.note} "
                "Enter on a row shows its cell and what zeroing it costs."
            )
        )
        self._show_cell()

    @on(DataTable.RowSelected, "#find-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value or ""
        if key.endswith(":-"):
            return
        feature, layer, cell = parse_row_key(key)
        self._jump(layer, cell)
        self._ablate(self.analysis, (layer, cell), feature)

    @work(thread=True, exclusive=True, group="ablate")
    def _ablate(self, analysis: Analysis, cell: tuple[int, int], feature: str) -> None:
        worker = get_current_worker()
        for done in analysis.ablate([cell]):
            if worker.is_cancelled:
                return
            self.post_message(Working("ablate", f"Zeroing layer {cell[0]} cell {cell[1]}… {done:.0%}", done))
        self.post_message(Ablated(analysis.effect(cell, feature)))

    @on(Ablated)
    def _ablated(self, message: Ablated) -> None:
        self.query_one(FindPanel).effect(effect_text(message.effect))

    # ------------------------------------------------------------ progress and failures

    @on(Working)
    def _working(self, message: Working) -> None:
        if message.task == "trace":
            self._show_title(message.what)
        elif message.task == "find" and self.finding:
            self.query_one(FindPanel).working(message.what, message.fraction)
        elif message.task == "ablate":
            self.query_one(FindPanel).effect(Text(message.what, style="italic"))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        if message.task == "find":
            self._set_finding(False)
            self.query_one(FindPanel).done(Text(message.message))
        else:
            self.source, self._traced = "playground", None  # the text shown stays; `t` tries again
            self._show_title()
            self.notify(message.message, severity="warning", timeout=8, markup=False)

    # ------------------------------------------------------------ export

    def export_view(self) -> tuple[Text, Text, str]:
        """The coloured text, its legend and a title, for saving the view (export.save_view)."""
        dark = self.app.current_theme.dark
        body = Text()
        if self.trace is not None:
            bins = np.searchsorted(palette.ACTIVATION_EDGES, self._values(), side="right")
            for char, b in zip(self.trace.text, bins.tolist(), strict=True):
                body.append(char, palette.activation_style(b, "truecolor", dark))
        cfg = self.weights.config if self.weights is not None else None
        shown = KERNELS[cfg.cell].shows if cfg is not None else "the cell's value"
        layer, cell = self.current
        legend = Text(f"layer {layer}, cell {cell}\n")
        legend.append_text(legend_text("truecolor", dark, shown))
        return body, legend, f"rnn-tui neurons: layer {layer}, cell {cell}"
