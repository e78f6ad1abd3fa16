"""Run folders and files from someone else: nothing is ever unpickled, and every broken one is refused with one line.

Each case damages a real run folder the way a bad download, a full disk or a hostile sender would, then asks the
command line for it as a user would (`sample`, `train --resume`, `runs`): exit code 2, one line, no traceback.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnn_tui import checkpoint, cli
from rnn_tui.train.loop import prepare
from tests.conftest import cli_env, tiny_plan


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    """A small trained run, copied for each test that damages it."""
    root = tmp_path_factory.mktemp("saved")
    lines = [f"the {w} sat on the mat and the {w} was happy.\n" for w in ("cat", "dog", "bird", "fox", "owl")]
    (root / "tiny.txt").write_text("".join(lines) * 200)
    with prepare(tiny_plan(root / "tiny.txt", root, max_steps=20, eval_every=10, checkpoint_every=10)) as t:
        t.run()
    return root / "tiny"


@pytest.fixture
def run(saved_run, tmp_path) -> Path:
    folder = tmp_path / "checkpoints" / "tiny"
    shutil.copytree(saved_run, folder)
    return folder


def user_error(capsys, *args) -> str:
    """Run the CLI in this process; assert exit code 2 and one line on stderr, and return that line."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def refused_everywhere(capsys, run: Path, *words: str, sample: bool = True) -> None:
    """`sample` and `train --resume` refuse the run with one line naming the problem; `runs` still works.

    `sample`: False where only the optimizer's file is damaged, which sampling never reads.
    """
    ckdir = run.parent
    commands = [["train", "--resume", "tiny", "--max-steps", "30"]]
    if sample:
        commands.append(["sample", "tiny", "--length", "5"])
    for args in commands:
        line = user_error(capsys, *args, "--checkpoint-dir", ckdir)
        for w in words:
            assert w in line, line
    assert cli.main(["runs", "--checkpoint-dir", str(ckdir)]) == 0  # a damaged run never breaks the list
    capsys.readouterr()


class Marker:
    """A pickle that creates a file when unpickled: the kind of payload a hostile checkpoint carries."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_pickle_trap_is_never_sprung(run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"weights": Marker(marker)})
    pickle.loads(payload)  # the trap is live: unpickling it does create the marker
    assert marker.exists()
    marker.unlink()
    import torch

    for name in (checkpoint.MODEL, checkpoint.OPTIMIZER):
        original = (run / name).read_bytes()
        for form in ("raw", "torch"):
            if form == "raw":
                (run / name).write_bytes(payload)
            else:  # the zip that torch.save writes, with the payload inside
                torch.save({"weights": Marker(marker)}, run / name)
            refused_everywhere(capsys, run, "damaged or not a safetensors file", sample=name == checkpoint.MODEL)
            assert not marker.exists()
        (run / name).write_bytes(original)
    (run / checkpoint.META).write_bytes(payload)
    refused_everywhere(capsys, run, "not valid JSON")
    assert not marker.exists()


@pytest.mark.process
@pytest.mark.parametrize("command", [["sample", "{run}"], ["launch", "--resume", "{run}", "--no-train"]])
def test_a_pickle_trap_is_refused_by_the_real_command(run, tmp_path, command):
    """As a user runs it; the app opens a saved run only after checking it, so this is one line, not a crash."""
    marker = tmp_path / "pwned"
    (run / checkpoint.MODEL).write_bytes(pickle.dumps(Marker(marker)))
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_tui", *(a.replace("{run}", str(run)) for a in command)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert "damaged or not a safetensors file" in proc.stderr
    assert not marker.exists()


def edit_meta(run: Path, **changes) -> None:
    meta = json.loads((run / checkpoint.META).read_text())
    meta.update(changes)
    (run / checkpoint.META).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"format_version": 3}, ["newer", "upgrade rnn-tui"]),
        ({"format_version": "2"}, ["format_version", "damaged"]),
        ({"step": "many"}, ["step", "not a whole number"]),
        ({"step": -5}, ["step", "not a whole number"]),
        ({"epoch": 1.5}, ["epoch", "not a whole number"]),
        ({"batch_index": None}, ["batch_index"]),
        ({"train_seconds": "long"}, ["train_seconds"]),
        ({"lr_scale": 0}, ["lr_scale", "positive"]),
        ({"best_val_loss": "low"}, ["best_val_loss"]),
        ({"source": ["data.txt"]}, ["source"]),
        ({"source": {"data": 7}}, ["source"]),
        ({"corpus": "tiny"}, ["corpus"]),
        ({"train": [1, 2]}, ["train", "not an object"]),
        ({"model": {"cell": "lstm", "hidden": "big"}}, ["no valid model config"]),
        ({"model": "lstm"}, ["no valid model config"]),
        ({"vocab": ["a", "a", "b"]}, ["repeats a character"]),
        ({"vocab": ["ab", "c"]}, ["single characters"]),
        ({"vocab": "abc"}, ["single characters"]),
        ({"format": "pytorch"}, ["not written by rnn-tui"]),
    ],
)
def test_a_damaged_meta_json_is_one_line(run, capsys, changes, words):
    edit_meta(run, **changes)
    refused_everywhere(capsys, run, *words)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", ["not valid JSON"]),
        ("", ["not valid JSON"]),
        ("[1, 2, 3]", ["not written by rnn-tui"]),
        ("[" * 100_000 + "]" * 100_000, ["not valid JSON"]),  # deep enough to overflow a naive parser
        ("\udcff", ["not valid JSON"]),  # not UTF-8
    ],
)
def test_a_meta_json_that_is_not_json_is_one_line(run, capsys, text, words):
    (run / checkpoint.META).write_bytes(text.encode("utf-8", "surrogateescape"))
    refused_everywhere(capsys, run, *words)


def _safetensors(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize("name", [checkpoint.MODEL, checkpoint.OPTIMIZER])
@pytest.mark.parametrize(
    "damage",
    [
        "zero-length",
        "truncated",
        "header only",
        "header length huge",
        "tensor size huge",
        "offsets past the end",
        "garbage",
    ],
)
def test_a_broken_safetensors_file_is_one_line(run, capsys, name, damage):
    path = run / name
    good = path.read_bytes()
    header = json.loads(good[8 : 8 + int.from_bytes(good[:8], "little")])
    key = next(k for k in header if k != "__metadata__")
    if damage == "zero-length":
        bad = b""
    elif damage == "truncated":
        bad = good[: len(good) // 2]
    elif damage == "header only":
        bad = good[: 8 + int.from_bytes(good[:8], "little")]
    elif damage == "header length huge":
        bad = struct.pack("<Q", 2**62) + good[8:]
    elif damage == "tensor size huge":
        header[key] = {"dtype": "F32", "shape": [2**31, 2**31], "data_offsets": [0, 2**64 - 8]}
        bad = _safetensors(header, good[8 + int.from_bytes(good[:8], "little") :])
    elif damage == "offsets past the end":
        header[key] = {**header[key], "data_offsets": [0, 2**40]}
        bad = _safetensors(header, good[8 + int.from_bytes(good[:8], "little") :])
    else:
        bad = os.urandom(4096)
    path.write_bytes(bad)
    refused_everywhere(capsys, run, str(path.name), sample=name == checkpoint.MODEL)


@pytest.mark.parametrize(
    ("key", "array", "words"),
    [
        ("exp_avg.head.bias", np.zeros(3, np.float32), ["exp_avg.head.bias"]),
        ("exp_avg.head.bias", None, ["exp_avg.head.bias", "float32"]),  # the right shape, float64
        ("exp_avg.not.a.weight", np.zeros(3, np.float32), ["exp_avg.not.a.weight"]),
        ("rng.torch", np.zeros((2, 2), np.float32), ["rng.torch"]),
        ("carried.state.0", np.zeros((5, 8, 32), np.float32), ["carried.state.0"]),
        ("step.head.bias", np.array([np.nan], np.float32), ["step.head.bias"]),
    ],
)
def test_optimizer_arrays_that_disagree_with_the_model_are_one_line(run, capsys, key, array, words):
    from safetensors.numpy import load, save

    path = run / checkpoint.OPTIMIZER
    data = path.read_bytes()
    arrays = load(data)
    meta = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]
    arrays[key] = arrays[key].astype(np.float64) if array is None else array
    path.write_bytes(save(arrays, metadata=meta))
    line = user_error(capsys, "train", "--resume", "tiny", "--checkpoint-dir", run.parent)
    assert all(w in line for w in words), line


def test_training_settings_of_the_wrong_type_are_one_line(run, capsys):
    edit_meta(run, train={"lr": "fast"})
    refused_everywhere(capsys, run, "--lr", sample=False)  # sampling does not need them


def test_weights_whose_shapes_disagree_with_the_config_are_one_line(run, capsys):
    edit_meta(run, model={**json.loads((run / checkpoint.META).read_text())["model"], "hidden": 48})
    refused_everywhere(capsys, run, "does not match its meta.json")


def test_files_from_two_checkpoints_are_one_line(run, saved_run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(saved_run, other)
    edit_meta(other, checkpoint_id="another")
    shutil.copy(other / checkpoint.META, run / checkpoint.META)
    refused_everywhere(capsys, run, "different checkpoints")


@pytest.mark.parametrize("name", ["../escape", "/etc", "a/b", "..", ".hidden", "x\\y"])
def test_a_run_name_must_be_a_plain_name(tmp_path, capsys, name):
    (tmp_path / "t.txt").write_text("some text\n" * 500)
    for command in ("train", "launch"):
        line = user_error(capsys, command, "--data", tmp_path / "t.txt", "--run-name", name)
        assert "not a plain folder name" in line
    assert not (tmp_path / "escape").exists()


def test_a_symlink_loop_in_a_data_folder_neither_hangs_nor_repeats(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("the cat sat on the mat.\n" * 400)
    os.symlink(folder, folder / "again")  # data/again/again/again/...
    os.symlink(folder / "self", folder / "self")  # a link to itself
    from rnn_tui.text.corpus import load_corpus
    from rnn_tui.text.sources import file_source

    corpus = load_corpus(file_source(folder))
    assert len(corpus) == len("the cat sat on the mat.\n") * 400  # read once, loops ignored
    (folder / "a.txt").unlink()
    assert "has no files" in user_error(capsys, "train", "--data", folder)
    assert "symbolic links" in user_error(capsys, "train", "--data", folder / "self")


def test_a_vocabulary_with_duplicates_or_long_entries_is_one_line(run, capsys):
    chars = json.loads((run / checkpoint.META).read_text())["vocab"]
    edit_meta(run, vocab=[chars[0], *chars[:-1]])
    refused_everywhere(capsys, run, "repeats a character")
    edit_meta(run, vocab=["ab", *chars[1:]])
    refused_everywhere(capsys, run, "single characters")
