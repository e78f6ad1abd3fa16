"""The shipped models from the command line: `pretrained:NAME` wherever a run is taken, `rnn-tui models`, and the
models in the package itself (when they are there: scripts/train_pretrained.py puts them there)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import rnn_tui
from rnn_tui import checkpoint, models
from rnn_tui.events import CheckpointSaved, RunStarted
from rnn_tui.session import FolderSession
from tests.helpers import assert_user_error
from tests.helpers import rnn_tui as run_cli

pytestmark = pytest.mark.process

TEXT = "the cat sat on the mat.\nthe dog sat on the log.\n" * 20


def test_models_lists_name_model_corpus_validation_loss_and_size(shipped, tmp_path):
    out = run_cli("models", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["name", "model", "corpus", "val", "loss", "steps", "size"]
    assert lines[1].split()[:5] == ["pretrained:python", "lstm", "2×32", "demo", "1.3091"]
    assert lines[2].split()[0] == "pretrained:shakespeare"
    listed = [json.loads(line) for line in run_cli("models", "--json", cwd=tmp_path).stdout.splitlines()]
    assert [r["name"] for r in listed] == ["pretrained:python", "pretrained:shakespeare"]
    assert listed[1]["bytes"] == sum(f.stat().st_size for f in (shipped / "shakespeare").iterdir())
    assert listed[1]["val_loss"] == pytest.approx(1.3091, abs=1e-4)


def test_sample_score_and_cells_take_pretrained_names(shipped, tmp_path):
    out = run_cli("sample", "pretrained:shakespeare", "--prime", "the", "--seed", "1", "--length", "60", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "the" + rnn_tui.load("pretrained:shakespeare").generate("the", 60, seed=1) + "\n"
    (tmp_path / "t.txt").write_text(TEXT)
    out = run_cli("score", "pretrained:python", tmp_path / "t.txt", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    whole = json.loads(out.stdout.splitlines()[-1])
    assert whole["bits_per_char"] == pytest.approx(rnn_tui.load("pretrained:python").score(TEXT).bits_per_char, 1e-3)
    out = run_cli("cells", "pretrained:python", "--text", tmp_path / "t.txt", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["features"]


def test_a_shipped_model_is_fine_tuned_in_a_new_run_and_never_resumed(shipped, tmp_path):
    (tmp_path / "new.txt").write_text("the cät sat on the mät. кот.\n" * 300)
    out = run_cli("train", "--resume", "pretrained:shakespeare", cwd=tmp_path)
    assert_user_error(out, "never trains in place", "--init-from pretrained:shakespeare --data FILE")
    flags = ["--batch-size", "8", "--seq-len", "16", "--threads", "1", "--warmup-steps", "1"]
    out = run_cli(
        "train", "--init-from", "pretrained:shakespeare", "--data", "new.txt", "--max-steps", "3", *flags, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "fine-tuning pretrained:shakespeare (step 600): of the text's 16 characters, 12 are known" in out.stdout
    assert "4 new, added to its vocabulary: 'ä' 'к' 'о' 'т'" in out.stdout
    listed = [json.loads(line) for line in run_cli("runs", "--json", cwd=tmp_path).stdout.splitlines()]
    assert listed[0]["init_from"]["source"] == "pretrained:shakespeare" and listed[0]["init_from"]["step"] == 600
    assert "pretrained:shakespeare at step 600" in run_cli("runs", cwd=tmp_path).stdout
    assert sorted(os.listdir(shipped / "shakespeare")) == ["events.jsonl", "meta.json", "model.safetensors"]


def test_a_shipped_record_names_no_folder_of_the_machine_that_trained_it(shipped):
    """The package carries no trainer's paths; read back, the record names the shipped folder, so the app's
    copies check (ctrl+n) finds the model's corpus on any machine."""
    raw = (shipped / "python" / "events.jsonl").read_text()
    assert "-build" not in raw and str(shipped.parent) not in raw  # ship_tiny trains in MODELS-build/
    session = FolderSession.open(models.folder("pretrained:python"))
    session.start()
    history = session.poll()[0].events
    assert [e.run_dir for e in history if isinstance(e, RunStarted)] == [str(shipped / "python")]
    assert {e.path for e in history if isinstance(e, CheckpointSaved)} <= {"best", "."}


@pytest.mark.skipif(not models.names(), reason="no shipped models in the package yet (scripts/train_pretrained.py)")
def test_the_models_in_the_package_are_valid_small_and_honest(monkeypatch):
    monkeypatch.delenv("RNN_TUI_MODELS")
    assert {"shakespeare", "python"} <= set(models.names())
    for name in models.names():
        folder = models.folder(name)
        ckpt = checkpoint.load(folder, optimizer=False)
        assert sum(f.stat().st_size for f in folder.iterdir()) <= 8_000_000
        assert all(a.dtype == np.float32 for a in ckpt.model.values())
        shipped = ckpt.meta["shipped"]
        assert shipped["val_loss"] == ckpt.meta["best_val_loss"] and ckpt.meta["train"]["val_frac"] is None
        raw = (folder / "events.jsonl").read_text()
        assert "/work/" not in raw and "/tmp/" not in raw and "/home/" not in raw  # no trainer's folders
    sample = rnn_tui.load("pretrained:shakespeare").generate("ROMEO:", 200, seed=1)
    assert sample.count(" ") > 20  # words, not noise
