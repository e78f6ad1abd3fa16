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
    return UNKNOWN if prob is None else bin_style(bin_of(prob), color_system)


def bin_style(b: int | None, color_system: str | None = "truecolor") -> str:
    """The style of confidence bin `b` (None: a character unknown to the model), as `style_of` gives it."""
    if b is None:
        return UNKNOWN
    if color_system == "standard":
        return ANSI16[b]
    if color_system is None:  # no colour at all: keep the two ends apart
        return "dim" if b == 0 else "bold" if b >= 6 else ""
    return TRUECOLOR[b] + (" bold" if b >= 6 else "")


# --------------------------------------------------------------------------- the activation scale

# A cell's activation, from −1 (blue) through 0 (neutral) to +1 (red), for the neuron view. Nine
# bins; the middle one (|value| < 0.1) is left unstyled. Backgrounds carry the colour, each with
# a foreground chosen to stay readable on it. On a dark theme a stronger value is lighter; on a
# light theme, darker: either way the strong values stand out from the page. 16-colour terminals
# get ANSI colours, cool for negative and warm for positive.
ACTIVATION_EDGES = (-0.8, -0.55, -0.3, -0.1, 0.1, 0.3, 0.55, 0.8)  # bin i holds values below edge i
ACTIVATION_LABELS = ("−1", "", "", "", "0", "", "", "", "+1")
ACTIVATION_DARK = (
    "#000000 on #9ccbf0",
    "#000000 on #5aa3dc",
    "#ffffff on #2c6aa6",
    "#e8e8e8 on #1f3b5c",
    "",
    "#e8e8e8 on #5a2328",
    "#ffffff on #b2182b",
    "#000000 on #ea7a62",
    "#000000 on #f8b9a2",
)
ACTIVATION_LIGHT = (
    "#ffffff on #2166ac",
    "#000000 on #4393c3",
    "#000000 on #92c5de",
    "#000000 on #d1e5f0",
    "",
    "#000000 on #fddbc7",
    "#000000 on #f4a582",
    "#000000 on #d6604d",
    "#ffffff on #b2182b",
)
ACTIVATION_ANSI16 = (
    "bold bright_white on blue",
    "black on bright_blue",
    "black on cyan",
    "blue",
    "",
    "red",
    "black on yellow",
    "black on bright_red",
    "bold bright_white on red",
)
ACTIVATION_PLAIN = ("underline", "", "", "", "", "", "", "", "reverse")  # no colour at all: only the ends


def activation_bin(value: float) -> int:
    """The bin (0 = most negative ... 8 = most positive) of an activation in [-1, 1]."""
    for i, edge in enumerate(ACTIVATION_EDGES):
        if value < edge:
            return i
    return len(ACTIVATION_EDGES)


def activation_style(bin_: int, color_system: str | None = "truecolor", dark: bool = True) -> str:
    """A rich/Textual style string for activation bin `bin_` ("" for the neutral middle)."""
    if color_system == "standard":
        return ACTIVATION_ANSI16[bin_]
    if color_system is None:
        return ACTIVATION_PLAIN[bin_]
    return (ACTIVATION_DARK if dark else ACTIVATION_LIGHT)[bin_]
