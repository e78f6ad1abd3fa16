import json
import os

import numpy as np
import pytest
import torch

from rnn_tui import checkpoint
from rnn_tui.config import ModelConfig
from rnn_tui.errors import UserError
from rnn_tui.session import Weights
from rnn_tui.text.vocab import Vocab
from rnn_tui.train.model import CharRNN
from tests.fakes import numpy_weights

VOCAB = Vocab("abc\n")


def _save(folder, seed=0, step=1):
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=len(VOCAB), hidden=8, layers=1, embedding=4)
    m = CharRNN(cfg)
    meta = {
        "model": cfg.to_dict(),
        "vocab": VOCAB.chars,
        "step": step,
        "best_val_loss": 1.5,
        "updated": f"2026-01-0{step}",
        "corpus": {"name": "demo"},
    }
    checkpoint.save(folder, numpy_weights(m), {"exp_avg.head.bias": np.ones(len(VOCAB), np.float32)}, meta)
    return m


def test_round_trip(tmp_path):
    m = _save(tmp_path / "run")
    ck = checkpoint.load(tmp_path / "run")
    assert ck.meta["format_version"] == checkpoint.FORMAT_VERSION
    assert ck.meta["step"] == 1 and ck.vocab == VOCAB
    for k, v in numpy_weights(m).items():
        np.testing.assert_array_equal(ck.model[k], v)
    np.testing.assert_array_equal(ck.optimizer["exp_avg.head.bias"], np.ones(len(VOCAB)))


def test_a_checkpoint_keeps_what_it_parsed_and_makes_the_weights(tmp_path):
    _save(tmp_path / "run", step=3)
    ck = checkpoint.load(tmp_path / "run", optimizer=False)
    assert ck.config is ck.config and ck.vocab is ck.vocab  # parsed once, when loaded
    assert ck.config == ModelConfig(vocab_size=len(VOCAB), hidden=8, layers=1, embedding=4)
    w = Weights.of(ck, version=5)
    assert (w.version, w.step, w.config, w.vocab, w.tensors) == (5, 3, ck.config, VOCAB, ck.model)
    again = checkpoint.Checkpoint.of(ck.path, ck.meta, ck.model, ck.optimizer)  # as another rank receives it
    assert again.config == ck.config and again.vocab == VOCAB


def test_weights_are_stored_as_float32(tmp_path):
    cfg = ModelConfig(vocab_size=len(VOCAB), hidden=8, layers=1, embedding=4)
    m = CharRNN(cfg).to(torch.float64)
    weights = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    checkpoint.save(tmp_path / "r", weights, {}, {"model": cfg.to_dict(), "vocab": VOCAB.chars})
    ck = checkpoint.load(tmp_path / "r")
    assert all(a.dtype == np.float32 for a in ck.model.values())


def test_refuses_non_finite_weights(tmp_path):
    cfg = ModelConfig(vocab_size=len(VOCAB), hidden=8, layers=1, embedding=4)
    m = CharRNN(cfg)
    with torch.no_grad():
        m.head.bias[0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        checkpoint.save(tmp_path / "r", numpy_weights(m), {}, {"model": cfg.to_dict(), "vocab": VOCAB.chars})
    assert not (tmp_path / "r" / "meta.json").exists()


def test_a_folder_that_is_not_ours_is_refused(tmp_path):
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError, match="not an rnn-tui run folder"):
        checkpoint.load(tmp_path / "other")
    (tmp_path / "other" / "meta.json").write_text('{"hello": 1}')
    with pytest.raises(UserError, match="not written by rnn-tui"):
        checkpoint.load(tmp_path / "other")
    (tmp_path / "other" / "meta.json").write_text("{broken")
    with pytest.raises(UserError, match="damaged"):
        checkpoint.load(tmp_path / "other")


def test_a_pickle_is_never_loaded(tmp_path):
    _save(tmp_path / "run")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "run" / "model.safetensors")  # a pickle in disguise
    with pytest.raises(UserError, match="damaged or not a safetensors file"):
        checkpoint.load(tmp_path / "run")


def test_truncated_and_mismatched_files_are_refused(tmp_path):
    _save(tmp_path / "run")
    path = tmp_path / "run" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="damaged"):
        checkpoint.load(tmp_path / "run")
    _save(tmp_path / "a")
    _save(tmp_path / "b")
    os.replace(tmp_path / "b" / "model.safetensors", tmp_path / "a" / "model.safetensors")
    with pytest.raises(UserError, match="different checkpoint"):
        checkpoint.load(tmp_path / "a")


def test_shapes_are_checked_against_the_config(tmp_path):
    _save(tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    meta["model"]["hidden"] = 16
    (tmp_path / "run" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="does not match its meta.json"):
        checkpoint.load(tmp_path / "run")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"vocab": ["a", "a", "b", "\n"]}, "repeats a character"),
        ({"vocab": ["ab", "c", "\n", "d"]}, "single characters"),
        ({"vocab": "abc\n"}, "single characters"),
        ({"model": {"hidden": "big"}}, "no valid model config"),
        ({"model": {"hidden": -3, "vocab_size": 5}}, "too small"),
        ({"model": "lstm"}, "no valid model config"),
        ({"step": "many"}, "not a whole number"),
        ({"format_version": "2"}, "format_version"),
    ],
)
def test_a_damaged_meta_json_is_refused(tmp_path, change, words):
    _save(tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    for key, value in change.items():
        meta[key] = {**meta[key], **value} if isinstance(value, dict) and isinstance(meta[key], dict) else value
    (tmp_path / "run" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=words):
        checkpoint.load(tmp_path / "run")


def test_a_run_name_is_a_plain_folder_name():
    assert checkpoint.check_name("my-run.2") == "my-run.2"
    for bad in ("../escape", "/etc", "a/b", "..", ".hidden", ""):
        with pytest.raises(UserError, match="not a plain folder name"):
            checkpoint.check_name(bad)


def test_a_newer_format_asks_for_an_upgrade(tmp_path):
    _save(tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "run" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="upgrade rnn-tui"):
        checkpoint.load(tmp_path / "run")


def test_a_crash_before_the_commit_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    _save(tmp_path / "run", seed=0, step=1)
    real_replace = os.replace

    def crash(src, dst):
        if str(src).endswith(".pending"):
            raise OSError("power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(OSError):
        _save(tmp_path / "run", seed=1, step=2)
    monkeypatch.undo()
    assert checkpoint.load(tmp_path / "run").meta["step"] == 1
    _save(tmp_path / "run", seed=1, step=3)  # the next writer clears the leftovers
    assert checkpoint.load(tmp_path / "run").meta["step"] == 3
    assert not (tmp_path / "run" / ".pending").exists()


def test_a_crash_after_the_commit_rolls_forward(tmp_path, monkeypatch):
    _save(tmp_path / "run", seed=0, step=1)
    real_replace = os.replace
    moved = []

    def crash(src, dst):
        if ".commit" in str(src) and moved:
            raise OSError("power cut")
        moved.append(src)
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(OSError):
        _save(tmp_path / "run", seed=1, step=2)
    monkeypatch.undo()
    assert (tmp_path / "run" / ".commit").is_dir()  # half moved: optimizer new, model and meta old
    assert checkpoint.load(tmp_path / "run").meta["step"] == 2  # readers see the committed files
    checkpoint.recover(tmp_path / "run")  # the next writer moves them into place
    assert not (tmp_path / "run" / ".commit").exists()
    assert checkpoint.load(tmp_path / "run").meta["step"] == 2


def test_resolve_and_list_runs(tmp_path):
    _save(tmp_path / "one", step=1)
    _save(tmp_path / "two", step=2)
    (tmp_path / "junk").mkdir()
    assert checkpoint.resolve("one", tmp_path) == tmp_path / "one"
    assert checkpoint.resolve(str(tmp_path / "two"), "elsewhere") == tmp_path / "two"
    assert checkpoint.resolve("latest", tmp_path) == tmp_path / "two"
    assert [r["name"] for r in checkpoint.list_runs(tmp_path)] == ["one", "two"]
    with pytest.raises(UserError, match="no run named 'three'"):
        checkpoint.resolve("three", tmp_path)
    with pytest.raises(UserError, match="not an rnn-tui run folder"):
        checkpoint.resolve("junk", tmp_path)
