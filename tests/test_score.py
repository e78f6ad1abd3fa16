"""`rnn-tui score RUN FILE`: bits per character, the oddest lines, and the coloured text saved."""

import json

import numpy as np
import pytest

from rnn_tui import scoring
from tests.conftest import TINY_FLAGS
from tests.helpers import assert_user_error, rnn_tui

JUNK = "xfbg lpyw xgfb lwpy gxbf"  # letters the training text has, in an order it never has


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny model trained a little on repetitive English."""
    tmp = tmp_path_factory.mktemp("score")
    lines = [f"the {w} sat on the mat and the {w} was happy.\n" for w in ("cat", "dog", "bird", "fox", "owl")]
    (tmp / "tiny.txt").write_text("".join(lines) * 200)
    flags = [*TINY_FLAGS, "--max-steps", "80", "--eval-every", "40", "--sample-every", "40"]
    proc = rnn_tui("train", "--data", "tiny.txt", *flags, "--run-name", "demo", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    body = ["the cat sat on the mat and the cat was happy.", "the dog sat on the mat and the dog was happy."] * 10
    body.insert(13, JUNK)
    (tmp / "planted.txt").write_text("\n".join(body) + "\n")
    return tmp


@pytest.mark.process
def test_top_1_finds_the_planted_junk_line(run_dir):
    proc = rnn_tui("score", "demo", "planted.txt", "--top", "1", cwd=run_dir)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line[:1].isdigit()]
    assert len(rows) == 1 and rows[0][0] == "14" and " ".join(rows[0][2:]) == JUNK
    chars = len((run_dir / "planted.txt").read_text())
    assert f"bits/char over {chars} characters (demo, step 80)" in proc.stdout


@pytest.mark.process
def test_json_gives_per_line_figures_and_the_files(run_dir):
    proc = rnn_tui("score", "demo", "planted.txt", "--json", cwd=run_dir)
    assert proc.returncode == 0, proc.stderr
    *lines, whole = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [x["line"] for x in lines] == list(range(1, 22)) and lines[13]["text"] == JUNK
    assert lines[13]["chars"] == len(JUNK) + 1  # its newline counts: where a line ends is predicted too
    assert max(lines, key=lambda x: x["bits_per_char"])["line"] == 14
    assert whole["chars"] == sum(x["chars"] for x in lines) and whole["unknown"] == 0
    total = sum(x["bits"] for x in lines)
    assert whole["bits_per_char"] == pytest.approx(total / whole["chars"], rel=1e-3)


@pytest.mark.process
def test_piped_output_is_the_plain_text_and_the_figure(run_dir):
    proc = rnn_tui("score", "demo", "planted.txt", cwd=run_dir)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout
    assert proc.stdout.startswith((run_dir / "planted.txt").read_text())
    assert "bits/char" in proc.stdout.splitlines()[-1]


@pytest.mark.process
def test_html_and_svg_keep_the_colours_and_the_legend(run_dir):
    proc = rnn_tui("score", "demo", "planted.txt", "--top", "2", "--html", "o.html", "--svg", "o.svg", cwd=run_dir)
    assert proc.returncode == 0, proc.stderr
    for name in ("o.html", "o.svg"):
        saved = (run_dir / name).read_text()
        assert "surprised" in saved and "bits/char" in saved.replace("&#160;", " ")
        assert "#d6409f" in saved.lower() or "#e5484d" in saved.lower()  # the surprising bins' colours


@pytest.mark.process
def test_unknown_characters_are_counted_and_charged(run_dir):
    (run_dir / "odd.txt").write_text("the cat sat ☃ on the mat\n")
    proc = rnn_tui("score", "demo", "odd.txt", "--json", cwd=run_dir)
    whole = json.loads(proc.stdout.splitlines()[-1])
    assert whole["unknown"] == 1 and np.isfinite(whole["bits_per_char"])


@pytest.mark.process
def test_mistakes_are_one_line(run_dir):
    assert_user_error(rnn_tui("score", "demo", "missing.txt", cwd=run_dir), "no such file", "missing.txt")
    assert_user_error(rnn_tui("score", "demo", ".", cwd=run_dir), "is a folder")
    assert_user_error(rnn_tui("score", "demo", "planted.txt", "--top", "0", cwd=run_dir), "--top")
    assert_user_error(rnn_tui("score", "demo", "planted.txt", "--svg", "x.png", cwd=run_dir), "ending in .svg")
    (run_dir / "bin.dat").write_bytes(b"\0\1\2binary")
    assert_user_error(rnn_tui("score", "demo", "bin.dat", cwd=run_dir), "not a text file")
    assert_user_error(rnn_tui("score", "nope", "planted.txt", cwd=run_dir), "nope")


def test_line_scores_split_at_newlines():
    text = "ab\n\ncd"
    bits = np.arange(len(text), dtype=float)
    lines = scoring.line_scores(text, bits, np.zeros(len(text), bool))
    assert [(x.line, x.start, x.end, x.bits) for x in lines] == [(1, 0, 3, 3.0), (2, 3, 4, 3.0), (3, 4, 6, 9.0)]
    assert scoring.line_scores("", np.zeros(0), np.zeros(0, bool)) == []
    assert len(scoring.line_scores("a\n", np.ones(2), np.zeros(2, bool))) == 1
    assert [x.line for x in scoring.most_surprising(lines, 2)] == [3, 2]  # 4.5 and 3 bits per character
