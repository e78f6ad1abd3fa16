"""`rnn-tui lesson`, headless, as a user runs it: through a subprocess."""

import json
import subprocess
import sys

import pytest

from tests.conftest import cli_env
from tests.helpers import assert_user_error, rnn_tui

pytestmark = pytest.mark.process  # the CLI in a subprocess


def figure(*args, cwd):
    proc = rnn_tui("lesson", *args, "--json", cwd=cwd, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def winners(out: dict) -> list[str]:
    return [out["vocab"][max(range(len(s["scores"])), key=s["scores"].__getitem__)] for s in out["steps"]]


def test_after_enough_updates_every_target_wins(tmp_path):
    out = figure("hello", "--steps", "300", cwd=tmp_path)
    assert out["vocab"] == ["h", "e", "l", "o"]
    assert [s["input"] for s in out["steps"]] == list("hell")
    assert [s["target"] for s in out["steps"]] == list("ello")
    assert winners(out) == list("ello")
    assert out["loss"] < 0.1
    first_l, second_l = out["steps"][2]["hidden"], out["steps"][3]["hidden"]
    assert max(abs(a - b) for a, b in zip(first_l, second_l, strict=True)) > 0.1
    assert all(len(s["hidden"]) == 3 and len(s["scores"]) == 4 for s in out["steps"])


def test_untrained_it_is_a_guess(tmp_path):
    out = figure(cwd=tmp_path)  # the default word
    assert out["vocab"] == ["h", "e", "l", "o"] and out["updates"] == 0
    assert out["loss"] > 1.0  # about log 4: no better than a uniform guess
    assert winners(out) != list("ello")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_cells_show_their_gates(cell, tmp_path):
    out = figure("こんにちは", "--cell", cell, "--hidden", "4", "--steps", "300", "--seed", "3", cwd=tmp_path)
    assert out["vocab"] == list("こんにちは") and out["cell"] == cell
    assert winners(out) == list("んにちは")
    gates = out["steps"][0]["gates"]
    assert set(gates) == ({"i", "f", "g", "o"} if cell == "lstm" else {"r", "z", "n"})
    assert all(len(v) == 4 for v in gates.values())


def test_the_flags_change_the_numbers(tmp_path):
    base = figure("banana", "--steps", "5", cwd=tmp_path)
    assert figure("banana", "--steps", "5", cwd=tmp_path) == base
    assert figure("banana", "--steps", "5", "--seed", "1", cwd=tmp_path)["steps"] != base["steps"]
    assert figure("banana", "--steps", "5", "--lr", "0.01", cwd=tmp_path)["loss"] > base["loss"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["", "--json"], ["empty"]),
        (["x", "--json"], ["one character"]),
        (["a" * 65, "--json"], ["at most 64"]),
        (["hello", "--hidden", "500", "--json"], ["--hidden"]),
        (["hello", "--steps", "-1", "--json"], ["--steps"]),
        (["hello", "--cell", "tree", "--json"], ["--cell"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, words, tmp_path):
    assert_user_error(rnn_tui("lesson", *args, cwd=tmp_path, timeout=60), *words)


def test_the_lesson_never_imports_torch(tmp_path):
    code = (
        "import sys; from rnn_tui import cli; import rnn_tui.tui.screens.lesson; "
        "cli.main(['lesson', '--steps', '3', '--json']); print('torch' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False"
