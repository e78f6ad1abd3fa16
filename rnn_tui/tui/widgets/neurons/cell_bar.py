"""Which cell the neuron view shows, what it follows best, and its value under the cursor."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from rnn_tui import palette
from rnn_tui.config import ModelConfig
from rnn_tui.neurons import Ranking
from rnn_tui.tui.widgets.playground.inspector import show_char


class CellBar(Static):
    def show(
        self,
        current: tuple[int, int],
        cfg: ModelConfig,
        ranking: Ranking | None,
        char: tuple[int, str, float] | None,
        text_length: int,
    ) -> None:
        """`current`: (layer, cell); `char`: (index, character, value) under the cursor, if any."""
        layer, cell = current
        line = Text()
        line.append(f"layer {layer}", style="bold")
        line.append(f" of 0–{cfg.layers - 1}  ", style="dim")
        line.append(f"cell {cell}", style="bold")
        line.append(f" of 0–{cfg.hidden - 1}", style="dim")
        best = ranking.best_feature(current) if ranking is not None else None
        if best is not None:
            feature, r = best
            line.append(f"   follows {feature.label} best: r = {r:+.2f}")
        under = Text()
        if char is None:
            under.append("Move the cursor over the text (arrows, or the mouse) to read the cell's value.", style="dim")
        else:
            index, c, value = char
            cs, dark = self.app.console.color_system, self.app.current_theme.dark
            under.append(f"char {index + 1:,} of {text_length:,} ")
            style = palette.activation_style(palette.activation_bin(value), cs, dark)
            under.append(f" {show_char(c)} ", style or "reverse")
            under.append(f"  value {value:+.3f}")
        self.update(Text("\n").join([line, under]))
