"""`rnn-tui cells`: the cells that follow each feature, headless, as a table or JSON."""

import json

import pytest

from rnn_tui.neurons import FEATURES
from tests.helpers import TINY, assert_user_error, rnn_tui

pytestmark = pytest.mark.process  # the real `rnn-tui cells`

LINES = [f"the {w} sat on the mat and the {w} was happy.\n" for w in ("cat", "dog", "bird", "fox", "owl")]
TEXT = "".join(LINES) * 200


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run, trained once for these tests."""
    folder = tmp_path_factory.mktemp("cells")
    (folder / "tiny.txt").write_text(TEXT)
    proc = rnn_tui("train", "--data", "tiny.txt", *TINY, "--max-steps", "40", "--run-name", "demo", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return folder


def test_cells_json_lists_each_features_cells(trained):
    proc = rnn_tui("cells", "demo", "--json", "--top", "3", cwd=trained)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    val = int(len(TEXT) * 0.1)  # the validation text: the last 10 %
    assert out["step"] == 40 and out["chars"] == val
    assert list(out["features"]) == [f.name for f in FEATURES]
    present = set()
    for name, feature in out["features"].items():
        cells = feature["cells"]
        assert len(cells) in (0, 3), name
        for c in cells:
            assert set(c) == {"layer", "cell", "r"} and c["layer"] == 0 and 0 <= c["cell"] < 32 and -1 <= c["r"] <= 1
        assert [abs(c["r"]) for c in cells] == sorted((abs(c["r"]) for c in cells), reverse=True)
        if cells:
            present.add(name)
            effect = feature["ablation"]
            assert (effect["layer"], effect["cell"]) == (cells[0]["layer"], cells[0]["cell"])
            assert effect["chars_holds"] + effect["chars_elsewhere"] == val
        else:
            assert feature["ablation"] is None
    assert present == {"line_start", "line_end", "word"}  # the text has lines and words, no brackets or quotes


def test_cells_reads_a_given_text_and_prints_a_table(trained):
    (trained / "talk.txt").write_text('the cat said "the dog (sat) on the mat."\n' * 30)
    proc = rnn_tui("cells", "demo", "--text", "talk.txt", "--top", "2", cwd=trained)
    assert proc.returncode == 0, proc.stderr
    assert "on 1,230 characters of talk.txt" in proc.stdout
    for f in FEATURES:
        assert f.label in proc.stdout
    table = proc.stdout.splitlines()
    quotes = next(line for line in table if line.lstrip().startswith("in quotes"))
    assert "absent" not in quotes and "> 0" in quotes  # ranked, with its top cell's ablation
    assert "absent" in next(line for line in table if line.lstrip().startswith("speaker line"))


def test_cells_mistakes_are_one_line(trained):
    assert_user_error(rnn_tui("cells", "nope", cwd=trained), "no run named 'nope'")
    assert_user_error(rnn_tui("cells", "demo", "--top", "0", cwd=trained), "--top 0 is too small")
    assert_user_error(rnn_tui("cells", "demo", "--text", "missing.txt", cwd=trained), "--text")
    (trained / "empty.txt").write_text("")
    assert_user_error(rnn_tui("cells", "demo", "--text", "empty.txt", cwd=trained), "no text")
