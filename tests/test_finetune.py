"""Fine-tuning (--init-from): a new run from a trained one's weights, its vocabulary grown, resumed exactly."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch

from rnn_tui import checkpoint, finetune
from rnn_tui.config import ModelConfig, Settings, TrainConfig
from rnn_tui.errors import UserError
from rnn_tui.events import Evaluation, Notice
from rnn_tui.inference import Stepper
from rnn_tui.runs import FINE_TUNE_LR, RunSpec, plan
from rnn_tui.text.sources import SourceSpec
from rnn_tui.text.vocab import Vocab
from rnn_tui.train.loop import prepare
from tests.conftest import resume_plan, tiny_plan

NEW_TEXT = "".join(f"the {w} sat on the mát. кот сидит.\n" for w in ("cat", "dog", "bird", "fox", "owl")) * 200


@pytest.fixture
def base(text_file, tmp_path):
    """A tiny trained run to start from: checkpoints/tiny."""
    with prepare(tiny_plan(text_file, tmp_path / "checkpoints", max_steps=60)) as t:
        t.run()
    return tmp_path / "checkpoints" / "tiny"


@pytest.fixture
def new_text(tmp_path):
    path = tmp_path / "new.txt"
    path.write_text(NEW_TEXT, encoding="utf-8")
    return path


def fine_tune_spec(data, ckpt_dir, init_from, name="tuned", model=None, **train) -> RunSpec:
    settings = {"batch_size": 8, "seq_len": 16, "max_steps": 40, "eval_every": 20, "sample_every": 1000}
    settings.update({"threads": 1, "warmup_steps": 5, "eval_chars": 2000, **train})
    return RunSpec(
        source=SourceSpec(str(data)),
        model=Settings(ModelConfig, model or {}),
        train=Settings(TrainConfig, settings),
        checkpoint_dir=str(ckpt_dir),
        run_name=name,
        init_from=init_from,
    )


def test_grow_keeps_known_rows_by_character_and_makes_new_ones_neutral():
    rng = np.random.default_rng(0)
    old, new = Vocab("abc"), Vocab("abcé")  # ids move: é sorts after c here, but rows are matched by character
    arrays = {
        "embed.weight": rng.standard_normal((4, 3)).astype(np.float32),
        "head.weight": rng.standard_normal((4, 5)).astype(np.float32),
        "head.bias": rng.standard_normal(4).astype(np.float32),
        "rnn.weight_ih_l0": rng.standard_normal((8, 3)).astype(np.float32),
    }
    grown = finetune.grow(arrays, old, Vocab("é" + "cab"))
    assert grown["rnn.weight_ih_l0"] is arrays["rnn.weight_ih_l0"]
    for c in "abc":
        for name in ("embed.weight", "head.weight", "head.bias"):
            np.testing.assert_array_equal(grown[name][new.id(c)], arrays[name][old.id(c)])
    e = new.id("é")
    np.testing.assert_allclose(grown["embed.weight"][e], arrays["embed.weight"][1:].mean(axis=0))
    np.testing.assert_allclose(grown["head.weight"][e], arrays["head.weight"][1:].mean(axis=0))
    assert grown["head.bias"][e] == arrays["head.bias"][1:].min()
    np.testing.assert_array_equal(grown["embed.weight"][0], arrays["embed.weight"][0])  # "unknown" stays


def test_a_fine_tuned_run_starts_from_the_weights_with_new_characters_added(base, new_text, tmp_path):
    events = []
    run_plan = plan(fine_tune_spec(new_text, tmp_path / "checkpoints", "tiny"))
    assert run_plan.train["lr"] == FINE_TUNE_LR
    source = checkpoint.load(base, optimizer=False)
    with prepare(run_plan, events.append) as t:
        assert t.step == 0
        assert set(t.vocab.chars) == set(source.vocab.chars) | set(NEW_TEXT)
        # Before any step, a text the source knows reads as it did: the same states, and the same scores for
        # every character it knows (the new ones only join the softmax).
        known = "the cat sat on the mat.\n"
        ours = Stepper(t.model_cfg, {k: v.numpy() for k, v in t.model.state_dict().items()})
        theirs = Stepper(source.config, source.model)
        our_logits, our_states = ours.run(t.vocab.encode(known), ours.initial_state())
        their_logits, their_states = theirs.run(source.vocab.encode(known), theirs.initial_state())
        np.testing.assert_allclose(our_states, their_states, rtol=1e-5, atol=1e-6)
        same = [t.vocab.id(c) for c in source.vocab.chars]
        np.testing.assert_allclose(our_logits[:, same], their_logits[:, 1:], rtol=1e-5, atol=1e-5)
        t.run()
    notes = [e.message for e in events if isinstance(e, Notice)]
    new = sorted(set(NEW_TEXT) - set(source.vocab.chars))
    assert f"of the text's {len(set(NEW_TEXT))} characters, {len(set(NEW_TEXT)) - len(new)} are known" in notes[0]
    assert f"and {len(new)} new, added to its vocabulary: 'á'" in notes[0]
    meta = json.loads((tmp_path / "checkpoints" / "tuned" / "meta.json").read_text())
    assert meta["init_from"] == {"source": "tiny", "path": str(base.resolve()), "step": 60}
    assert meta["train"]["lr"] == FINE_TUNE_LR and meta["step"] == 40
    assert checkpoint.list_runs(tmp_path / "checkpoints")[-1]["init_from"]["source"] == "tiny"


def test_the_user_s_lr_and_dropout_count_but_the_shape_is_the_source_s(base, new_text, tmp_path):
    run_plan = plan(fine_tune_spec(new_text, tmp_path / "checkpoints", "tiny", model={"dropout": 0.0}, lr=5e-4))
    assert run_plan.train["lr"] == 5e-4
    cfg = run_plan.model_config("cpu", 40)
    assert (cfg.cell, cfg.layers, cfg.hidden, cfg.embedding, cfg.dropout) == ("lstm", 1, 32, 8, 0.0)


def test_a_fine_tuned_run_resumes_exactly(base, new_text, tmp_path):
    opts = {"max_steps": 50, "eval_every": 20}
    with prepare(plan(fine_tune_spec(new_text, tmp_path / "a", str(base), **opts))) as straight:
        straight.run()
    with prepare(plan(fine_tune_spec(new_text, tmp_path / "b", str(base), **opts))) as interrupted:
        interrupted.run(should_stop=lambda: interrupted.step >= 25)
    assert interrupted.step == 25
    torch.manual_seed(999)  # whatever happened in between must not matter
    with prepare(resume_plan(tmp_path / "b", "tuned")) as resumed:
        assert resumed.step == 25 and resumed.init_from["step"] == 60
        resumed.run()
    assert resumed.step == 50
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.best_val_loss == straight.best_val_loss
    assert json.loads((tmp_path / "b" / "tuned" / "meta.json").read_text())["init_from"]["step"] == 60


def test_a_shipped_model_is_a_source_but_never_resumed(shipped, new_text, tmp_path):
    run_plan = plan(fine_tune_spec(new_text, tmp_path, "pretrained:shakespeare"))
    assert run_plan.init_from["source"] == "pretrained:shakespeare"
    assert run_plan.model["layers"] == 2 and run_plan.model["hidden"] == 32
    with pytest.raises(UserError, match="--init-from pretrained:shakespeare --data FILE"):
        plan(RunSpec(checkpoint_dir=str(tmp_path), resume="pretrained:shakespeare"))
    with pytest.raises(UserError, match="a shipped model, which never trains in place"):
        plan(RunSpec(checkpoint_dir=str(tmp_path), resume=str(shipped / "python")))


@pytest.mark.parametrize(
    ("model", "source", "words"),
    [
        ({"cell": "gru"}, "tiny", "--model gru disagrees with --init-from tiny (cell = lstm)"),
        ({"layers": 2}, "tiny", "--layers 2 disagrees with --init-from tiny (layers = 1)"),
        ({"hidden": 64}, "tiny", "--hidden 64 disagrees"),
        ({"embedding": 16}, "tiny", "--embedding 16 disagrees"),
        ({}, "pretrained:nope", "no shipped model named 'nope'"),
        ({}, "nothing-here", "no run named 'nothing-here'"),
    ],
)
def test_a_source_that_does_not_fit_is_one_line_and_nothing_is_written(base, new_text, tmp_path, model, source, words):
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)")):
        plan(fine_tune_spec(new_text, tmp_path / "checkpoints", source, model=model))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_damaged_source_is_refused_before_anything_starts(base, new_text, tmp_path):
    (base / checkpoint.MODEL).write_bytes((base / checkpoint.MODEL).read_bytes()[:100])
    with pytest.raises(UserError, match="damaged or not a safetensors file"):
        plan(fine_tune_spec(new_text, tmp_path / "checkpoints", "tiny"))
    assert not (tmp_path / "checkpoints" / "tuned").exists()


def test_init_from_and_resume_together_are_refused(base, new_text, tmp_path):
    spec = dataclasses.replace(fine_tune_spec(new_text, tmp_path / "checkpoints", "tiny"), resume="tiny")
    with pytest.raises(UserError, match="give only one of them"):
        plan(spec)


def test_a_shipped_model_fine_tunes_on_a_named_corpus(shipped, tmp_path, monkeypatch):
    """War and Peace as the issue asks, from a stand-in in the cache (checked by size and hash like the book)."""
    from rnn_tui.text import downloads

    book = "“Well, Prince, so Genoa and Lucca are now just family estates of the Buonapartes.”\n" * 400
    body = book.encode()
    spec = dataclasses.replace(
        downloads.NAMED["war-and-peace"], size=len(body), sha256=hashlib.sha256(body).hexdigest()
    )
    monkeypatch.setitem(downloads.NAMED, "war-and-peace", spec)
    downloads.named_path(spec).parent.mkdir(parents=True, exist_ok=True)
    downloads.named_path(spec).write_bytes(body)
    events = []
    spec_ = dataclasses.replace(
        fine_tune_spec(None, tmp_path, "pretrained:shakespeare"), source=SourceSpec(corpus="war-and-peace")
    )
    with prepare(plan(spec_), events.append) as t:
        t.run()
    note = next(e.message for e in events if isinstance(e, Notice))
    assert note.startswith("fine-tuning pretrained:shakespeare (step 600)") and "'“' '”'" in note
    meta = json.loads((tmp_path / "tuned" / "meta.json").read_text())
    assert meta["source"]["corpus"] == "war-and-peace" and meta["init_from"]["source"] == "pretrained:shakespeare"
    losses = [e.val_loss for e in events if isinstance(e, Evaluation)]
    assert len(losses) == 2 and losses[1] < losses[0]  # it learns the book
