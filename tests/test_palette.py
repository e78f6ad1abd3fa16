import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnn_tui import palette


@given(st.floats(0, 1), st.floats(0, 1))
def test_bins_are_monotone(a, b):
    if a <= b:
        assert palette.bin_of(a) >= palette.bin_of(b)  # more probable: nearer "sure"


def test_eight_bins_with_the_edges_where_the_legend_says():
    assert [palette.bin_of(e) for e in palette.EDGES] == list(range(8))
    assert palette.bin_of(1.0) == 0 and palette.bin_of(0.0) == 7
    assert len(palette.LABELS) == len(palette.TRUECOLOR) == len(palette.ANSI16) == 8


@pytest.mark.parametrize("system", ["truecolor", "256", "standard"])
def test_every_colour_system_keeps_the_bins_apart(system):
    styles = [palette.style_of(e, system) for e in palette.EDGES]
    assert len(set(styles)) == 8
    assert palette.style_of(None, system) == palette.UNKNOWN


def test_sixteen_colours_fall_back_to_dim_and_bold_at_the_ends():
    assert "dim" in palette.style_of(0.99, "standard") and "bold" in palette.style_of(0.001, "standard")
    assert palette.style_of(0.99, None) == "dim" and palette.style_of(0.001, None) == "bold"


def test_truecolour_bins_stay_apart_on_256_colour_terminals():
    from rich.color import Color, ColorSystem

    downgraded = {Color.parse(c).downgrade(ColorSystem.EIGHT_BIT).number for c in palette.TRUECOLOR}
    assert len(downgraded) == 8


@pytest.mark.parametrize("suffix", [".html", ".svg", ".txt"])
def test_a_view_saves_with_its_colours_and_legend(tmp_path, suffix):
    from rich.text import Text

    from rnn_tui.export import save_view

    body = Text("sure ")
    body.append("surprised [not markup]", style=palette.style_of(0.001))
    path = save_view(tmp_path / f"view{suffix}", body, legend=Text("legend: colours"), title="demo")
    out = path.read_text()
    assert "surprised [not markup]" in out.replace("&#160;", " ").replace("&nbsp;", " ") or suffix == ".svg"
    assert "legend" in out
    if suffix != ".txt":
        assert palette.TRUECOLOR[7].lower() in out.lower()  # the colour of a surprising character


def test_a_view_with_an_unknown_format_is_refused(tmp_path):
    from rich.text import Text

    from rnn_tui.errors import UserError
    from rnn_tui.export import save_view

    with pytest.raises(UserError, match=".html, .svg or .txt"):
        save_view(tmp_path / "view.pdf", Text("x"))


@pytest.mark.parametrize("system", ["truecolor", "256", "standard", None])
def test_a_bin_is_styled_as_its_probabilities_are(system):
    for b, edge in enumerate(palette.EDGES):
        assert palette.bin_style(b, system) == palette.style_of(edge, system) == palette.style_of(edge + 0.009, system)
    assert palette.bin_style(None, system) == palette.style_of(None, system) == palette.UNKNOWN
