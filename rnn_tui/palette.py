"""The confidence scale: eight bins from "the model was sure" to "the model was surprised".

Colours are foreground colours of middling lightness, so every bin reads on dark and on
light backgrounds; they run from a cool, quiet blue (sure) through green and amber to a
hot red and magenta (surprised), so the surprising characters are the ones that stand out.
Terminals with 16 colours get named ANSI colours, with dim and bold at the two ends.
Faces turn these into their own style objects; this module imports neither rich nor Textual.
"""

from __future__ import annotations

# Lower edges of the probability bins, from sure (bin 0) to surprised (bin 7).
EDGES = (0.9, 0.7, 0.5, 0.3, 0.15, 0.05, 0.01, 0.0)
LABELS = ("≥90%", "70", "50", "30", "15", "5", "1", "<1%")  # lower edges, as the legend shows them
TRUECOLOR = ("#7a8fb8", "#4f9fc8", "#3fa98f", "#7fae3f", "#c9a227", "#e07b2e", "#e5484d", "#d6409f")
ANSI16 = ("dim blue", "blue", "cyan", "green", "yellow", "magenta", "red", "bold red")
UNKNOWN = "reverse"  # a character the model has never seen: shown reversed, whatever the colours


def bin_of(prob: float) -> int:
    """The bin (0 = sure ... 7 = surprised) of the probability the model gave a character."""
    for i, edge in enumerate(EDGES):
        if prob >= edge:
            return i
    return len(EDGES) - 1


def style_of(prob: float | None, color_system: str | None = "truecolor") -> str:
    """A rich/Textual style string for a character of probability `prob` (None: unknown character)."""
    if prob is None:
        return UNKNOWN
    b = bin_of(prob)
    if color_system == "standard":
        return ANSI16[b]
    if color_system is None:  # no colour at all: keep the two ends apart
        return "dim" if b == 0 else "bold" if b >= 6 else ""
    return TRUECOLOR[b] + (" bold" if b >= 6 else "")
