"""The headless CLI, driven as a user drives it: through a subprocess."""

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import cli_env
from tests.helpers import TINY, LineReader, assert_user_error, rnn_tui

pytestmark = pytest.mark.process


@pytest.fixture
def trained(text_file, tmp_path):
    proc = rnn_tui("train", "--data", text_file, *TINY, "--max-steps", "40", "--run-name", "demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path


def test_train_json_events(text_file, tmp_path):
    proc = rnn_tui("train", "--data", text_file, *TINY, "--max-steps", "40", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = {e["event"] for e in events}
    assert {"progress", "eval", "sample", "checkpoint", "done"} <= kinds
    assert kinds <= {"start", "progress", "eval", "sample", "checkpoint", "notice", "done"}
    p = next(e for e in events if e["event"] == "progress")
    assert {"step", "loss", "lr", "chars_per_s"} <= p.keys()
    e = next(e for e in events if e["event"] == "eval")
    assert {"step", "val_loss"} <= e.keys()
    runs = list((tmp_path / "checkpoints").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("tiny-")  # corpus name plus date and time


def test_piped_train_prints_plain_lines(text_file, tmp_path):
    proc = rnn_tui("train", "--data", text_file, *TINY, "--max-steps", "40", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout
    assert "eval  step 40: val loss" in proc.stdout
    assert "done (max_steps) at step 40" in proc.stderr


def test_sample_streams_the_same_text_for_the_same_seed(trained):
    a = rnn_tui("sample", "demo", "--prime", "the ", "--length", "60", "--seed", "5", cwd=trained)
    b = rnn_tui("sample", "demo", "--prime", "the ", "--length", "60", "--seed", "5", cwd=trained)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    assert a.stdout.startswith("the ") and len(a.stdout) == len("the ") + 60 + 1
    assert "\x1b[" not in a.stdout  # piped output is plain


def test_sample_handles_unknown_prime_characters_and_best(trained):
    proc = rnn_tui(
        "sample",
        "checkpoints/demo",
        "--best",
        "--prime",
        "Zебра 🙂 [x]",
        "--length",
        "20",
        "--seed",
        "1",
        "--temperature",
        "0",
        cwd=trained,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Zебра 🙂 [x]")


def test_runs_lists_the_run(trained):
    proc = rnn_tui("runs", cwd=trained)
    assert proc.returncode == 0
    assert "demo" in proc.stdout and "tiny" in proc.stdout and "40" in proc.stdout


def test_resume_continues_to_the_new_total(trained):
    proc = rnn_tui("train", "--resume", "demo", "--max-steps", "50", "--json", cwd=trained)
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["step"] == 50


def test_a_gpu_run_moved_to_another_folder_resumes_on_the_cpu(trained, text_file, tmp_path_factory):
    meta_path = trained / "checkpoints" / "demo" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["train"]["device"] = "cuda"  # as written by a run on a GPU machine
    meta_path.write_text(json.dumps(meta))
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    proc = rnn_tui("train", "--resume", trained / "checkpoints" / "demo", "--max-steps", "45", "--json", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["step"] == 45
    meta = json.loads(meta_path.read_text())
    meta["source"]["data"] = str(elsewhere / "gone.txt")
    meta_path.write_text(json.dumps(meta))
    proc = rnn_tui("train", "--resume", "demo", "--max-steps", "50", cwd=trained)
    assert_user_error(proc, "gone.txt", "not there", "--data")
    proc = rnn_tui("train", "--resume", "demo", "--max-steps", "50", "--data", text_file, "--json", cwd=trained)
    assert proc.returncode == 0, proc.stderr


def test_user_mistakes_are_one_line_with_exit_code_2(text_file, tmp_path, trained):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "notarun").mkdir()
    cases = [
        (["train", "--data", tmp_path / "missing.txt"], ["no such file", "--data"]),
        (["train", "--data", tmp_path / "empty.txt"], ["empty"]),
        (["train", "--data", text_file, "--lr", "fast"], ["--lr", "not a number"]),
        (["train", "--data", text_file, "--batch-size", "0"], ["--batch-size", "too small"]),
        (["train", "--data", text_file, "--val-frac", "0.9"], ["--val-frac", "too large"]),
        (["train", "--data", text_file, "--resume", "ghost"], ["no run named 'ghost'"]),
        (["train", "--resume", "demo", "--hidden", "99"], ["--hidden 99 disagrees"]),
        (["sample", "ghost"], ["no run named 'ghost'", "rnn-tui runs"]),
        (["sample", tmp_path / "notarun"], ["not an rnn-tui run folder"]),
        (["train", "--corpus", "nonsense"], ["unknown corpus", "shakespeare"]),
        (["launch", "--no-train"], ["--resume"]),
        (["launch", "--data", tmp_path / "missing.txt"], ["no such file"]),
        (["frobnicate"], ["invalid choice"]),
    ]
    for args, words in cases:
        assert_user_error(rnn_tui(*args, cwd=trained), *words)


def test_offline_named_corpus_suggests_data(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_tui", "train", "--corpus", "shakespeare"],
        cwd=tmp_path,
        env=cli_env(RNN_TUI_MIRROR="http://127.0.0.1:9"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_user_error(proc, "could not download", "--data")


def test_ctrl_c_saves_and_exits_cleanly(text_file, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", "train", "--data", str(text_file), *TINY, "--json", "--run-name", "stopme"],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = LineReader(proc.stdout)
        lines.wait_for(lambda line: '"progress"' in line, "training to start")
        proc.send_signal(signal.SIGINT)
        out = lines.rest(timeout=60)
        assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        proc.kill()
    assert '"reason": "stopped"' in out
    assert (tmp_path / "checkpoints" / "stopme" / "meta.json").exists()


def test_corpora_lists_the_built_in_one(tmp_path):
    proc = rnn_tui("corpora", cwd=tmp_path)
    assert proc.returncode == 0
    assert "stdlib" in proc.stdout and "built in" in proc.stdout and "shakespeare" in proc.stdout


def test_train_on_the_built_in_corpus_starts_offline(tmp_path):
    start = time.monotonic()
    proc = rnn_tui("train", *TINY, "--max-steps", "3", "--eval-chars", "5000", "--json", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["step"] == 3
    assert time.monotonic() - start < 60


@pytest.fixture
def fluent(text_file, tmp_path):
    """A tiny run trained long enough to write its text's sentences back."""
    flags = [*TINY, "--max-steps", "400", "--lr", "0.01", "--run-name", "fluent"]
    proc = rnn_tui("train", "--data", text_file, *flags, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path


def test_sample_count_until_json_ranks_by_bits_per_char_and_marks_copies(fluent, text_file):
    args = ["sample", "fluent", "--count", "5", "--until", ".", "--length", "120", "--seed", "3", "--json"]
    proc = rnn_tui(*args, "--temperature", "0.3", cwd=fluent)
    assert proc.returncode == 0, proc.stderr
    samples = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [s["rank"] for s in samples] == [1, 2, 3, 4, 5] and sorted(s["seed"] for s in samples) == [3, 4, 5, 6, 7]
    bits = [s["bits_per_char"] for s in samples]
    assert bits == sorted(bits)
    corpus = text_file.read_text()
    train = corpus[: len(corpus) - int(len(corpus) * 0.1)]
    for s in samples:
        text = s["text"]
        assert set(s) == {"text", "rank", "seed", "bits_per_char", "novel", "copied"}
        assert text.endswith(".") or len(text) == 120
        covered = set()  # the characters of every 20 that occur in the training text: exactly what is marked
        for i in range(len(text) - 19):
            if text[i : i + 20] in train:
                covered |= set(range(i, i + 20))
        marked = {i for a, b in s["copied"] for i in range(a, b)}
        assert marked == covered and all(b - a >= 20 for a, b in s["copied"])
        assert s["novel"] == pytest.approx(1 - len(covered) / len(text), abs=1e-6)
    assert any(s["novel"] == 0 for s in samples)  # it writes its training sentences back
    again = rnn_tui(*args, "--temperature", "0.3", cwd=fluent)
    assert again.stdout == proc.stdout  # deterministic for a seed


def test_sample_says_how_much_is_novel_and_the_options_change_the_text(trained):
    base = ["sample", "demo", "--length", "80", "--seed", "9"]
    plain = rnn_tui(*base, cwd=trained)
    assert plain.returncode == 0, plain.stderr
    assert "novel" in plain.stderr and "copied from the training text" in plain.stderr
    for flags in (["--top-p", "0.3"], ["--repetition-penalty", "3"], ["--draw", "word-start"]):
        other = rnn_tui(*base, *flags, cwd=trained)
        assert other.returncode == 0, other.stderr
        assert other.stdout != plain.stdout, flags
