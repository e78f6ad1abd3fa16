"""The lesson's figure for the real model: one step of it, read bottom to top as the post draws it.

    next      l came next: rank 1 of 64, p 61.2%
    top 8     1  l   +4.12  61.2%  ████████         the highest scores; what came next in green
              ↑ W_hy · h
    layer 2   i input gate σ   ▒▒▒▒▒▒▒▒▒▒  +0.02 +0.98   each layer's named vectors (`KERNELS[cell].PARTS`)
              ...                                      as strips on the activation scale, with their range
              ↑ h of layer 1
    layer 1   ...
              ↑ W_xh · x
    input     e  id 17 of 65

It draws a `onestep.OneStep`; the strips wrap to the width given, a unit a cell (two when there
is room). The mouse over a strip reads its unit: every part of it, in numbers (`unit_text`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import Static

from rnn_tui.inference import KERNELS
from rnn_tui.onestep import OneStep
from rnn_tui.session import Weights
from rnn_tui.tui.widgets.lesson.figure import TARGET, TOP
from rnn_tui.tui.widgets.lesson.look import char_label, fit, score_style, swatches

SECTION = 10  # the section's name
RANGE = 13  # a vector's least and greatest value
BAR = 20  # a probability of 1 as a bar
OTHER = "red"  # the bars of the characters that did not come next


def _range(values: np.ndarray) -> str:
    return f" {float(values.min()):+.2f} {float(values.max()):+.2f}"


@dataclass(frozen=True)
class Spot:
    """Where a row of a strip is: its layer and part, its first unit and how many it holds, the column of its
    first cell, and each unit's width in cells."""

    layer: int
    key: str
    first: int
    count: int
    x: int
    cell: int

    def unit_at(self, x: int) -> int | None:
        """The unit under column `x` of the row, or None."""
        if x < self.x:
            return None
        i = (x - self.x) // self.cell
        return self.first + i if i < self.count else None


def vector_lines(
    layer: int,
    key: str,
    name: str,
    values: np.ndarray,
    label_width: int,
    width: int,
    color_system: str | None,
    dark: bool,
) -> list[tuple[Text, Spot]]:
    """A named vector as a strip of coloured cells (values clipped to ±1), wrapped to `width`, its range after;
    each row with its `Spot`."""
    room = max(8, width - SECTION - label_width - RANGE)
    cell = 2 if 2 * len(values) <= room else 1
    per_row = room // cell
    rows = -(-len(values) // per_row)
    per_row = -(-len(values) // rows)  # rows of equal length
    lines = []
    for r in range(rows):
        line = Text(" " * SECTION)
        line.append(fit(name if r == 0 else "", label_width, "left"))
        part = values[r * per_row : (r + 1) * per_row]
        line.append_text(swatches(part, cell, color_system, dark))
        if r == 0:
            line.append(" " * (cell * (per_row - len(part))))
            line.append(_range(values), style="dim")
        lines.append((line, Spot(layer, key, r * per_row, len(part), SECTION + label_width, cell)))
    return lines


def _section(name: str, rest: Text | str = "") -> Text:
    text = Text(fit(name, SECTION, "left"), style="bold")
    text.append_text(rest if isinstance(rest, Text) else Text(rest))
    return text


def _arrow(what: str) -> Text:
    return Text(" " * SECTION + f"↑ {what}", style="dim")


def score_lines(step: OneStep, chars: list[str], color_system: str | None) -> list[Text]:
    """What came next (its rank and probability), then the TOP highest scores with it marked."""
    known = len(chars) - 1  # the unknown character is never a guess
    if step.next_char is None:
        head = Text("the text ends here: nothing came next")
    elif not step.next_known:
        head = Text(char_label(step.next_char), style=TARGET)
        head.append(" came next: not in the vocabulary, so it has no score")
    else:
        head = Text(char_label(step.next_char), style=TARGET)
        head.append(f" came next: rank {step.next_rank} of {known}, p {step.next_prob:.1%}")
    lines = [_section("next", head)]
    for rank, v in enumerate(step.top(TOP)):
        target = v == step.next_id
        prob = float(step.probs[v])
        line = Text(" " * SECTION if rank else fit(f"top {TOP}", SECTION, "left"), style="bold")
        line.append(f"{rank + 1:>2} ")
        line.append(
            f" {fit(char_label(chars[v]), 2, 'left')} {step.logits[v]:+7.2f} {prob:6.1%} ",
            score_style(prob, target, color_system),
        )
        line.append(" ")
        line.append("█" * max(1, round(prob * BAR)), style=TARGET if target else OTHER)
        if target:
            line.append(" ← came next", style=TARGET)
        lines.append(line)
    if step.next_known and step.next_rank > TOP:
        v, prob = step.next_id, float(step.probs[step.next_id])
        line = Text(" " * SECTION + f"{step.next_rank:>2} ")
        line.append(
            f" {fit(char_label(chars[v]), 2, 'left')} {step.logits[v]:+7.2f} {prob:6.1%} ",
            score_style(prob, True, color_system),
        )
        line.append(" ← came next", style=TARGET)
        lines.append(line)
    return lines


def model_step_lines(
    step: OneStep, weights: Weights, width: int = 100, color_system: str | None = "truecolor", dark: bool = True
) -> tuple[list[Text], list[Spot | None]]:
    """The step laid open, top to bottom: what came next, the top scores, each layer (the top one first), the input;
    and for each line, where its strip is (None: a line without one)."""
    cfg = weights.config
    words = KERNELS[cfg.cell].PARTS
    label_width = max(cell_len(w) for w in words.values()) + 2
    chars = [weights.vocab.char(i) for i in range(len(weights.vocab))]
    lines: list[Text] = score_lines(step, chars, color_system)
    spots: list[Spot | None] = [None] * len(lines)
    for layer in reversed(range(cfg.layers)):
        top = layer == cfg.layers - 1  # what flows up into the section above: the scores, or the next layer
        lines.append(_arrow(f"W_hy · h of layer {layer + 1}" if top else f"W_ih · h of layer {layer + 1}"))
        lines.append(_section(f"layer {layer + 1}", Text(f"{cfg.cell}, {cfg.hidden} units", style="dim")))
        spots += [None, None]
        for key, name in words.items():
            rows = vector_lines(layer, key, name, step.layers[layer][key], label_width, width, color_system, dark)
            lines += [line for line, _ in rows]
            spots += [spot for _, spot in rows]
    lines.append(_arrow("W_ih · x: the input's embedding"))
    read = Text()
    read.append(char_label(step.char), style="bold reverse")
    if step.char_id:
        read.append(f"  id {step.char_id} of {len(chars)}", style="dim")
    else:
        read.append("  not in the vocabulary: read as the unknown character (id 0)", style="dim")
    lines.append(_section("input", read))
    spots += [None, None]
    return lines, spots


def model_step_text(
    step: OneStep, weights: Weights, width: int = 100, color_system: str | None = "truecolor", dark: bool = True
) -> Text:
    """The step laid open (`model_step_lines`) as one Text."""
    return Text("\n").join(model_step_lines(step, weights, width, color_system, dark)[0])


def unit_text(step: OneStep, weights: Weights, layer: int, unit: int, key: str = "") -> Text:
    """Every part of one unit of a layer, the part `key` in bold: "layer 2, unit 17 of 64: i +0.98 f +0.93 …"."""
    text = Text(f"layer {layer + 1}, unit {unit + 1} of {weights.config.hidden}:", style="bold")
    for name, values in step.layers[layer].items():
        text.append(f"  {name} ", style="bold" if name == key else "dim")
        text.append(f"{float(values[unit]):+.3f}", style="bold" if name == key else "")
    return text


class ModelStep(Static):
    """The step laid open, redrawn to the widget's width; the mouse over a strip reads that unit (`Pointed`)."""

    @dataclass
    class Pointed(Message):
        layer: int
        key: str
        unit: int

    step: OneStep | None = None
    weights: Weights | None = None
    spots: list[Spot | None] = []

    def show(self, step: OneStep, weights: Weights) -> None:
        self.step, self.weights = step, weights
        self.redraw()

    def redraw(self) -> None:
        if self.step is None or self.weights is None:
            return
        width = self.content_region.width or 80
        app = self.app
        lines, self.spots = model_step_lines(
            self.step, self.weights, width, app.console.color_system, app.current_theme.dark
        )
        self.update(Text("\n").join(lines))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        spot = self.spots[event.y] if 0 <= event.y < len(self.spots) else None
        unit = spot.unit_at(event.x) if spot is not None else None
        if unit is not None:
            self.post_message(self.Pointed(spot.layer, spot.key, unit))

    def on_resize(self) -> None:
        self.redraw()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self.redraw()
