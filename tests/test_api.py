"""The Python API (rnn_tui.load): generate, stream and score, on tiny stand-ins for the shipped models."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnn_tui
from rnn_tui import checkpoint, models
from rnn_tui.errors import UserError
from rnn_tui.generation import Generator
from tests.conftest import cli_env
from tests.fakes import make_run

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The README's Python example: the first python block of its "Python API" section."""
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(shipped):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_example(), "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("<rnn_tui.Model pretrained:shakespeare: lstm 2×32, step 600, best val")
    assert len(lines) == 1 + 20 + 1 + 1  # the model, 20 streamed characters, the text's figure, one line's
    assert re.fullmatch(r"\d+\.\d\d bits/char", lines[-2])


def test_generate_is_deterministic_for_a_seed_and_matches_the_stream(shipped):
    m = rnn_tui.load("pretrained:shakespeare")
    a = m.generate("the ", length=80, temperature=1.0, seed=3)
    assert len(a) == 80
    assert a == m.generate("the ", length=80, temperature=1.0, seed=3)
    assert a != m.generate("the ", length=80, temperature=1.0, seed=4)
    tokens = list(m.stream("the ", length=80, temperature=1.0, seed=3))
    assert "".join(t.char for t in tokens) == a
    assert all(0 < t.prob <= 1 and t.generated and t.top[0][1] >= t.prob for t in tokens)
    greedy = m.generate("the ", length=30, temperature=0)
    assert greedy == m.generate("the ", length=30, temperature=0, seed=99)  # greedy ignores the seed


def test_top_k_one_is_greedy(shipped):
    m = rnn_tui.load("pretrained:python")
    assert m.generate("the c", length=40, top_k=1, seed=5) == m.generate("the c", length=40, temperature=0)


def test_score_gives_bits_per_character_per_character_and_per_line(shipped):
    m = rnn_tui.load("pretrained:shakespeare")
    text = "the cat sat on the mat.\nthe dog sat on the log.\nZ€\n"
    s = m.score(text)
    ckpt = checkpoint.load(models.folder("pretrained:shakespeare"), optimizer=False)
    expected = Generator(ckpt.config, ckpt.vocab, ckpt.model).surprise(text)
    np.testing.assert_allclose(s.per_char, expected)
    assert s.bits_per_char == pytest.approx(expected.mean())
    assert [line.line for line in s.lines] == [1, 2, 3]
    assert sum(line.bits for line in s.lines) == pytest.approx(expected.sum())
    assert int(s.unknown.sum()) == 1 and s.lines[2].unknown == 1  # € is not in its vocabulary; Z is
    assert np.isnan(s.probs[text.index("€")])
    assert s.most_surprising(1)[0].line == 3  # the line of odd characters
    assert s.bits_per_char < m.score("ZQX;;ZQX;;ZQX;;").bits_per_char  # it learned the cats, not this


def test_a_score_renders_coloured_for_jupyter_and_rich(shipped):
    from rich.console import Console
    from rich.text import Text

    s = rnn_tui.load("pretrained:shakespeare").score("the cat sat on the mat.\n")
    rendered = s.__rich__()
    assert isinstance(rendered, Text) and rendered.plain.startswith("the cat sat on the mat.")
    assert len({str(span.style) for span in rendered.spans}) > 2  # several confidence colours
    html = s._repr_html_()
    plain = re.sub(r"<[^>]+>", "", html)
    assert "color: #" in html and "the cat sat on the mat." in plain and "bits/char" in plain
    console = Console(file=io.StringIO(), color_system="truecolor", width=80)
    console.print(s)
    assert "\x1b[38;2;" in console.file.getvalue()


def test_load_takes_a_folder_a_name_latest_and_best(tmp_path, monkeypatch):
    make_run(tmp_path / "checkpoints", "older", seed=0)
    folder = make_run(tmp_path / "checkpoints", "newer", seed=1)
    monkeypatch.chdir(tmp_path)
    assert rnn_tui.load(folder).step == 600
    by_name = rnn_tui.load("newer")
    assert by_name.path == Path("checkpoints/newer")
    assert rnn_tui.load("latest").path.name == "newer"
    assert rnn_tui.load("older", checkpoint_dir=tmp_path / "checkpoints").generate("t", 20, seed=1) == rnn_tui.load(
        str(tmp_path / "checkpoints" / "older")
    ).generate("t", 20, seed=1)
    with pytest.raises(UserError, match="no best/ checkpoint yet"):
        rnn_tui.load("newer", best=True)


def test_a_shipped_model_is_half_precision_on_disk_and_float32_loaded(shipped):
    from safetensors.numpy import load_file

    on_disk = load_file(shipped / "shakespeare" / checkpoint.MODEL)
    assert {a.dtype for a in on_disk.values()} == {np.dtype(np.float16)}
    ckpt = checkpoint.load(shipped / "shakespeare", optimizer=False)
    assert {a.dtype for a in ckpt.model.values()} == {np.dtype(np.float32)}
    for name, a in on_disk.items():
        np.testing.assert_array_equal(ckpt.model[name], a.astype(np.float32))


def test_using_a_shipped_model_never_writes_there(shipped):
    os.chmod(shipped / "shakespeare", 0o555)
    try:
        before = sorted((p.name, p.stat().st_mtime_ns) for p in (shipped / "shakespeare").iterdir())
        m = rnn_tui.load("pretrained:shakespeare")
        m.generate("the", 50, seed=1)
        m.score("the cat\n")
        assert sorted((p.name, p.stat().st_mtime_ns) for p in (shipped / "shakespeare").iterdir()) == before
    finally:
        os.chmod(shipped / "shakespeare", 0o755)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: rnn_tui.load("pretrained:nope"), ["no shipped model named 'nope'", "pretrained:shakespeare"]),
        (lambda: rnn_tui.load("no-such-run"), ["no run named 'no-such-run'"]),
        (lambda: rnn_tui.load("pretrained:python").generate("a", temperature=-1), ["--temperature -1 is too small"]),
        (lambda: rnn_tui.load("pretrained:python").generate("a", length=0), ["--length 0 is too small"]),
        (lambda: rnn_tui.load("pretrained:python").generate("a", top_k=1.5), ["--top-k 1.5 is not a whole number"]),
        (lambda: rnn_tui.load("pretrained:python").generate(3), ["the prompt must be text"]),
        (lambda: rnn_tui.load("pretrained:python").score(b"bytes"), ["score takes text"]),
    ],
)
def test_mistakes_are_the_cli_s_one_line_errors(shipped, call, words):
    with pytest.raises(UserError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for w in words:
        assert w in message


def test_a_damaged_shipped_model_is_one_line(shipped):
    (shipped / "python" / checkpoint.MODEL).write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="damaged or not a safetensors file"):
        rnn_tui.load("pretrained:python")


@pytest.mark.process
def test_importing_rnn_tui_stays_cheap():
    code = "import sys, rnn_tui; assert not {'numpy', 'rnn_tui.api', 'torch'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True, env=cli_env(), timeout=60)
