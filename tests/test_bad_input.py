"""Bad input everywhere, as a table: every case gets one line that names the problem and the fix, and no traceback.

The command line runs in this process (`cli.main`, as the `rnn-tui` script calls it) except where a mistake could
hang the process, which runs as a subprocess with a deadline. The app's cases run under Pilot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from textual import events

from rnn_tui import cli
from rnn_tui.train.loop import prepare
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.playground.controls import Controls
from rnn_tui.tui.widgets.playground.number_input import NumberInput
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from tests.conftest import TINY_FLAGS, cli_env, tiny_plan
from tests.fakes import FakeSession
from tests.helpers import output, settle

try:
    import torch

    CUDA, MPS = torch.cuda.is_available(), torch.backends.mps.is_available()
except ImportError:  # pragma: no cover
    CUDA = MPS = False


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A folder with the files the table names, and a trained run called demo (without a best/ folder)."""
    root = tmp_path_factory.mktemp("bad")
    lines = [f"the {w} sat on the mat and the {w} was happy.\n" for w in ("cat", "dog", "bird", "fox", "owl")]
    (root / "text.txt").write_text("".join(lines) * 200)
    (root / "empty.txt").write_text("")
    (root / "binary.bin").write_bytes(bytes(range(256)) * 40)
    (root / "latin1.txt").write_bytes("café crème brûlée, à la française\n".encode("latin-1") * 400)
    (root / "small.txt").write_text("too small")
    (root / "folder").mkdir()
    (root / "folder" / "notes.txt").write_text("some notes\n" * 300)
    (root / "empty-folder").mkdir()
    (root / "binaries").mkdir()
    (root / "binaries" / "a.bin").write_bytes(b"\0\1\2" * 1000)
    (root / "notarun").mkdir()
    os.mkfifo(root / "fifo")
    with prepare(tiny_plan(root / "text.txt", root / "checkpoints", max_steps=10, eval_every=1000)) as t:
        t.run(should_stop=lambda: t.step >= 5)  # stopped before its final evaluation: no best/ yet
    (root / "checkpoints" / "tiny").rename(root / "checkpoints" / "demo")
    shutil.copytree(root / "checkpoints" / "demo", root / "checkpoints" / "broken")
    (root / "checkpoints" / "broken" / "model.safetensors").write_bytes(b"\0" * 10)
    return root


def T(*args: str) -> list[str]:
    """`train` with a tiny model, a few steps, and the given flags."""
    return ["train", *TINY_FLAGS, "--max-steps", "3", *args]


GPU = pytest.mark.skipif(CUDA, reason="this machine has a CUDA GPU")
APPLE = pytest.mark.skipif(MPS, reason="this machine has Apple's Metal")

# (arguments, words the one line must hold: the problem, and where there is one, the fix)
CLI_CASES = [
    # files
    (T("--data", "{p}/missing.txt"), ["no such file", "--data"]),
    (T("--data", "{p}/empty.txt"), ["is empty", "--data"]),
    (T("--data", "{p}/binary.bin"), ["not a text file", "NUL"]),
    (T("--data", "{p}/latin1.txt"), ["not valid utf-8", "--encoding latin-1"]),
    (T("--data", "{p}/latin1.txt", "--encoding", "klingon"), ["unknown encoding", "latin-1"]),
    (T("--data", "{p}/small.txt"), ["too small", "--batch-size"]),
    (T("--data", "{p}/folder", "--glob", "*.c"), ["no files matching *.c", "--glob"]),
    (T("--data", "{p}/empty-folder"), ["has no files", "--data"]),
    (T("--data", "{p}/binaries"), ["none of the 1 files", "--glob"]),
    (T("--data", "{p}/text.txt", "--glob", "*.txt"), ["--glob only applies", "folder"]),
    (T("--data", "/dev/zero"), ["is a device", "save the text to a file"]),
    (T("--data", "{p}/text.txt", "--corpus", "shakespeare"), ["either --data or --corpus"]),
    # numbers: negative, zero, absurd, not numbers, not finite
    (T("--data", "{p}/text.txt", "--hidden", "0"), ["--hidden 0", "too small", "at least 1"]),
    (T("--data", "{p}/text.txt", "--hidden", "-5"), ["--hidden -5", "too small"]),
    (T("--data", "{p}/text.txt", "--hidden", "100000"), ["--hidden 100000", "too large", "at most"]),
    (T("--data", "{p}/text.txt", "--hidden", "1e3"), ["--hidden", "not a whole number"]),
    (T("--data", "{p}/text.txt", "--layers", "1000"), ["--layers 1000", "too large"]),
    (T("--data", "{p}/text.txt", "--layers", "64", "--hidden", "16384"), ["GiB of memory", "lower --hidden"]),
    (T("--data", "{p}/text.txt", "--batch-size", "65536", "--seq-len", "65536"), ["GiB of memory", "--batch-size"]),
    (T("--data", "{p}/text.txt", "--batch-size", "0"), ["--batch-size 0", "too small"]),
    (T("--data", "{p}/text.txt", "--seq-len", "-1"), ["--seq-len -1", "too small"]),
    (T("--data", "{p}/text.txt", "--lr", "0"), ["--lr 0", "greater than 0"]),
    (T("--data", "{p}/text.txt", "--lr", "-0.1"), ["--lr -0.1", "too small"]),
    (T("--data", "{p}/text.txt", "--lr", "1e9"), ["--lr 1e+09", "too large"]),
    (T("--data", "{p}/text.txt", "--lr", "nan"), ["--lr nan", "not a finite number"]),
    (T("--data", "{p}/text.txt", "--lr", "inf"), ["--lr inf", "not a finite number"]),
    (T("--data", "{p}/text.txt", "--lr=-inf"), ["--lr -inf", "not a finite number"]),
    (T("--data", "{p}/text.txt", "--lr", "fast"), ["--lr 'fast'", "not a number"]),
    (T("--data", "{p}/text.txt", "--dropout", "1.5"), ["--dropout 1.5", "too large"]),
    (T("--data", "{p}/text.txt", "--max-steps", "0"), ["--max-steps 0", "too small"]),
    (T("--data", "{p}/text.txt", "--max-minutes", "nan"), ["--max-minutes nan", "not a finite number"]),
    (T("--data", "{p}/text.txt", "--max-minutes", "-1"), ["--max-minutes -1", "too small"]),
    (T("--data", "{p}/text.txt", "--val-frac", "0"), ["--val-frac 0", "greater than 0"]),
    (T("--data", "{p}/text.txt", "--eval-every", "0"), ["--eval-every 0", "too small"]),
    (T("--data", "{p}/text.txt", "--threads", "0"), ["--threads 0", "too small"]),
    (T("--data", "{p}/text.txt", "--sample-temperature", "9"), ["--sample-temperature 9", "too large"]),
    (["sample", "demo", "--temperature", "-1"], ["--temperature -1", "too small"]),
    (["sample", "demo", "--temperature", "nan"], ["--temperature nan", "not a finite number"]),
    (["sample", "demo", "--temperature", "inf"], ["--temperature inf", "not a finite number"]),
    (["sample", "demo", "--length", "0"], ["--length 0", "too small"]),
    (["sample", "demo", "--length", "1000000000000"], ["--length 1000000000000", "too large", "at most 100000"]),
    (["sample", "demo", "--top-k", "-1"], ["--top-k -1", "too small"]),
    (["sample", "demo", "--seed", "-1"], ["--seed -1", "too small"]),
    (["sample", "demo", "--seed", "1.5"], ["--seed", "not a whole number"]),
    (["sample", "demo", "--top-p", "0"], ["--top-p 0", "too small", "greater than 0"]),
    (["sample", "demo", "--top-p", "1.01"], ["--top-p 1.01", "too large", "at most 1"]),
    (["sample", "demo", "--repetition-penalty", "0"], ["--repetition-penalty 0", "greater than 0"]),
    (["sample", "demo", "--repetition-penalty", "-2"], ["--repetition-penalty -2", "too small"]),
    (["sample", "demo", "--repetition-window", "0"], ["--repetition-window 0", "too small"]),
    (["sample", "demo", "--count", "0"], ["--count 0", "too small", "at least 1"]),
    (["sample", "demo", "--draw", "sometimes"], ["--draw sometimes", "choose one of every, word-start"]),
    (["sample", "demo", "--copied-min", "33"], ["--copied-min 33", "too large", "at most 32"]),
    # devices
    (T("--data", "{p}/text.txt", "--device", "tpu"), ["--device tpu", "choose one of"]),
    pytest.param(T("--data", "{p}/text.txt", "--device", "cuda"), ["no CUDA GPU", "--device cpu"], marks=GPU),
    pytest.param(T("--data", "{p}/text.txt", "--device", "mps"), ["Metal", "--device cpu"], marks=APPLE),
    (T("--data", "{p}/text.txt", "--precision", "fp8"), ["--precision fp8", "choose one of"]),
    # names
    (T("--resume", "ghost"), ["no run named 'ghost'", "rnn-tui runs"]),
    (["sample", "ghost"], ["no run named 'ghost'", "rnn-tui runs"]),
    (["sample", "{p}/notarun"], ["not an rnn-tui run folder", "rnn-tui train"]),
    (["sample", "demo", "--best"], ["no best/ checkpoint", "drop --best"]),
    (T("--corpus", "nonsense"), ["unknown corpus 'nonsense'", "shakespeare"]),
    (["launch", "--no-train"], ["--no-train needs a trained run", "--resume"]),
    (T("--data", "{p}/text.txt", "--run-name", "demo"), ["already exists", "--resume demo"]),
    # conflicts with a resumed run
    (["train", "--resume", "demo", "--hidden", "99"], ["--hidden 99 disagrees", "drop the flag"]),
    (["train", "--resume", "demo", "--model", "gru"], ["--model gru disagrees", "drop the flag"]),
    (["launch", "--resume", "demo", "--layers", "3"], ["--layers 3 disagrees", "without --resume"]),
    # fine-tuning from a run or a shipped model that does not fit
    (T("--data", "{p}/text.txt", "--init-from", "ghost"), ["no run named 'ghost'", "rnn-tui runs"]),
    (T("--data", "{p}/text.txt", "--init-from", "pretrained:nope"), ["no shipped model named", "rnn-tui models"]),
    (T("--data", "{p}/text.txt", "--init-from", "broken"), ["damaged or not a safetensors file", "another run"]),
    (T("--data", "{p}/text.txt", "--init-from", "{p}/notarun"), ["not an rnn-tui run folder", "rnn-tui train"]),
    (T("--data", "{p}/text.txt", "--init-from", "demo", "--model", "gru"), ["--model gru disagrees with --init-from"]),
    (T("--data", "{p}/text.txt", "--init-from", "demo", "--layers", "2"), ["--layers 2 disagrees", "drop the flag"]),
    (T("--data", "{p}/text.txt", "--init-from", "demo", "--hidden", "99"), ["--hidden 99 disagrees", "drop the flag"]),
    (T("--init-from", "demo", "--resume", "demo"), ["--init-from starts a new run", "only one of them"]),
    (["launch", "--pretrained", "nope"], ["no shipped model named 'nope'", "rnn-tui models"]),
    (["launch", "--pretrained", "x", "--resume", "demo"], ["--pretrained NAME plays", "--init-from pretrained:NAME"]),
    (["sample", "pretrained:nope"], ["no shipped model named 'nope'", "rnn-tui models"]),
    (["watch", "pretrained:shakespeare"], ["a shipped model: nothing trains it", "launch --pretrained shakespeare"]),
    # the command line itself
    (["train", "--hiden", "5"], ["unrecognized arguments: --hiden", "--help"]),
    (["train", "--hidden"], ["expected one argument", "--help"]),
    (["frobnicate"], ["invalid choice", "--help"]),
]


@pytest.mark.parametrize(("args", "words"), CLI_CASES)
def test_a_bad_command_line_gets_one_line_and_exit_code_2(place, capsys, monkeypatch, args, words):
    monkeypatch.chdir(place)
    args = [a.replace("{p}", str(place)) for a in args]
    if args[0] in ("train", "launch", "sample") and "--checkpoint-dir" not in args:
        args += ["--checkpoint-dir", str(place / "checkpoints")]
    try:
        code = cli.main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_the_table_is_big_enough():
    assert len(CLI_CASES) + len(PROMPTS) + len(FIELD_CASES) >= 40


@pytest.mark.process
@pytest.mark.parametrize("command", ["train", "launch"])
def test_a_fifo_as_data_does_not_hang(place, command):
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_tui", command, "--data", str(place / "fifo"), *TINY_FLAGS],
        cwd=place,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,  # a reader that opened the pipe would wait here for ever
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "is a pipe" in proc.stderr and "give --data that file" in proc.stderr


# --------------------------------------------------------------------------- the app

PROMPTS = {
    "control characters": "\x00\x01\x07\x08\x1b[31mred\x1b[0m\x7f\x9b",
    "emoji": "🙂👍🏽🇫🇷👨‍👩‍👧 🐍",
    "combining marks": "e\u0301 a\u0308\u0324 Z̴̡̪͑a̷̛̟͂l̶̢̇g̵̣̊o̵͙̔",
    "right-to-left": "שלום עולם مرحبا بالعالم \u202eevil\u202c",
    "zero width and odd spaces": "a\u200bb\u200dc\ufeffd\u00a0e\u2028f\u3000g",
    "a lone surrogate": "a\ud800b",
    "a long line": "x" * 5000,
    "markup": "[bold]not bold[/bold] [link=http://x]y[/link] [/]",
}


async def test_any_prompt_is_continued(settled):
    app = RnnTuiApp(FakeSession())
    async with settled(app) as pilot:
        prompt = app.query_one(PromptArea)
        for name, text in PROMPTS.items():
            prompt.clear()
            prompt.insert(text)
            await settle(pilot)
            out = output(app)
            n = len(prompt.text)
            assert out.n_prompt == n > 0, name
            assert len(out.tokens) == n + 300, name
            assert all(t.prob is None or 0 <= t.prob <= 1 for t in out.tokens), name
            for line in range(3):
                out.render_line(line)  # draws without error
            await pilot.press("x")  # and it still takes keys
            await settle(pilot)
            assert len(output(app).tokens) == n + 1 + 300, name


# (field, what is typed into it key by key, words of the message the controls show; None: the keys are refused).
# A value in PASTED arrives in one piece, as a paste does (typed, its prefixes would each be a valid length).
FIELD_CASES = [
    ("temperature", "", ["--temperature", "not a number"]),
    ("temperature", "-", ["--temperature '-'", "not a number"]),
    ("temperature", "-1", ["--temperature -1", "too small", "at least 0"]),
    ("temperature", "9", ["--temperature 9", "too large", "at most 5"]),
    ("temperature", "1e999", ["--temperature inf", "not a finite number"]),
    ("temperature", "1e", ["--temperature '1e'", "not a number"]),
    ("temperature", "abc", None),
    ("temperature", "nan", None),
    ("seed", "-3", ["--seed -3", "too small"]),
    ("seed", "99999999999", ["--seed 99999999999", "too large"]),
    ("seed", "1.5", None),  # the point is dropped: seed 15
    ("seed", "", ["--seed", "not a whole number"]),
    ("length", "0", ["--length 0", "too small"]),
    ("length", "10000000", ["--length 10000000", "too large"]),
    ("top_k", "-1", ["--top-k -1", "too small"]),
    ("top_k", "k", None),
    ("top_k", "🙂", None),
]
PASTED = {"10000000"}


async def test_garbage_in_a_field_is_named_and_generation_waits(settled):
    app = RnnTuiApp(FakeSession())
    async with settled(app) as pilot:
        await pilot.press(*"ab")
        await settle(pilot)
        controls = app.query_one(Controls)
        for field, typed, words in FIELD_CASES:
            box = controls.query_one(f"#{field}", NumberInput)
            good = box.value
            app.query_one(PromptArea).focus()
            await pilot.pause()
            box.focus()  # selects what is there, as a click does
            await pilot.pause()
            if typed in PASTED:
                box.post_message(events.Paste(typed))
            else:
                await pilot.press(*(typed or ["backspace"]))  # typed as a user does, key by key
            await settle(pilot)
            shown = str(controls.query_one("#follow").render())
            if words is None:  # keys the field does not take are dropped; what it took is a valid value
                assert set(box.value) <= set("0123456789.") and not box.has_class("-invalid"), (field, typed, box.value)
                box.value = good
                await settle(pilot)
                continue
            for word in words:
                assert word in shown, (field, typed, shown)
            assert box.has_class("-invalid") and controls.settings is None
            out = output(app)
            assert out.n_prompt == 2 and len(out.tokens) > 2  # the last good output stays
            box.value = good  # fixed: the message goes, and generation goes on
            await settle(pilot)
            assert "step" in str(controls.query_one("#follow").render()) and not box.has_class("-invalid")
