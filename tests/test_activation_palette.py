"""The neuron view's scale: blue below zero, red above, readable on dark and light themes and in 16 colours."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.color import Color, ColorSystem
from rich.style import Style

from rnn_tui import palette

BINS = range(len(palette.ACTIVATION_EDGES) + 1)


@given(st.floats(-1, 1), st.floats(-1, 1))
def test_activation_bins_are_monotone_and_symmetric(a, b):
    if a <= b:
        assert palette.activation_bin(a) <= palette.activation_bin(b)
    if abs(a) not in {abs(e) for e in palette.ACTIVATION_EDGES}:  # away from the edges, -x mirrors x
        assert palette.activation_bin(-a) == len(BINS) - 1 - palette.activation_bin(a)


def test_the_middle_is_unstyled_and_the_ends_are_blue_and_red():
    assert palette.activation_bin(0.0) == 4 and palette.activation_bin(-1.0) == 0 and palette.activation_bin(1.0) == 8
    for system in ("truecolor", "256", "standard"):
        for dark in (True, False):
            assert palette.activation_style(4, system, dark) == ""
    for dark in (True, False):
        lo, hi = (Style.parse(palette.activation_style(b, "truecolor", dark)).bgcolor.triplet for b in (0, 8))
        assert lo.blue > lo.red and hi.red > hi.blue
    assert "blue" in palette.ACTIVATION_ANSI16[0] and "red" in palette.ACTIVATION_ANSI16[8]


@pytest.mark.parametrize("system", ["truecolor", "256", "standard", None])
@pytest.mark.parametrize("dark", [True, False])
def test_every_bin_looks_different(system, dark):
    styles = [palette.activation_style(b, system, dark) for b in BINS]
    if system is None:  # no colour at all: only the two ends are marked
        assert styles[0] != styles[8] and all(styles[0] and styles[8] for _ in styles)
        return
    assert len(set(styles)) == len(BINS)


@pytest.mark.parametrize("dark", [True, False])
def test_truecolour_bins_stay_apart_on_256_colour_terminals(dark):
    backgrounds = [Style.parse(palette.activation_style(b, "truecolor", dark)).bgcolor for b in BINS if b != 4]
    assert len({c.downgrade(ColorSystem.EIGHT_BIT).number for c in backgrounds}) == len(backgrounds)


def _luminance(color: Color) -> float:
    def channel(c: int) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = color.triplet
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


@pytest.mark.parametrize("dark", [True, False])
def test_text_on_every_colour_is_readable(dark):
    """WCAG's contrast ratio of each bin's text on its background is at least 4.5 (AA for body text)."""
    for b in BINS:
        style = Style.parse(palette.activation_style(b, "truecolor", dark) or "none")
        if style.bgcolor is None:
            continue
        lighter, darker = sorted((_luminance(style.color), _luminance(style.bgcolor)), reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 4.5, (b, style)
