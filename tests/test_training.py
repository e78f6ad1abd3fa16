import math
from dataclasses import replace

import pytest
import torch

from rnn_tui import checkpoint, training
from rnn_tui.errors import UserError
from rnn_tui.training import Checkpoint, Done, Eval, Progress, Sample, Warning, prepare
from tests.conftest import tiny_request


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("batching", ["tbptt", "random"])
def test_resume_continues_as_if_it_never_stopped(text_file, tmp_path, precision, batching):
    opts = {"max_steps": 60, "precision": precision, "batching": batching, "eval_every": 25, "sample_every": 1000}
    straight = prepare(tiny_request(text_file, tmp_path / "a", **opts))
    straight.run()

    interrupted = prepare(tiny_request(text_file, tmp_path / "b", **opts))
    interrupted.run(should_stop=lambda: interrupted.step >= 30)
    assert interrupted.step == 30
    torch.manual_seed(999)  # whatever happened in between must not matter
    req = replace(tiny_request(text_file, tmp_path / "b", **opts), resume="tiny", run_name=None)
    resumed = prepare(req)
    assert resumed.step == 30
    resumed.run()
    assert resumed.step == 60
    a, b = _weights(straight), _weights(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.best_val_loss == straight.best_val_loss


def test_events_and_files(text_file, tmp_path):
    events = []
    t = prepare(tiny_request(text_file, tmp_path, max_steps=40), events.append)
    done = t.run()
    kinds = {type(e) for e in events}
    assert {Progress, Eval, Sample, Checkpoint, Done} <= kinds
    assert isinstance(events[-1], Done) and events[-1].reason == "max_steps" and done.step == 40
    progress = [e for e in events if isinstance(e, Progress)]
    assert all(p.chars_per_s > 0 and p.lr > 0 for p in progress)
    evals = [e for e in events if isinstance(e, Eval)]
    assert [e.step for e in evals] == [20, 40]
    assert evals[-1].val_loss < math.log(len(t.vocab))  # it learned something
    run = tmp_path / "tiny"
    for f in ("meta.json", "model.safetensors", "optimizer.safetensors"):
        assert (run / f).exists() and (run / "best" / f).exists()
    meta = checkpoint.load(run).meta
    assert meta["step"] == 40 and meta["corpus"]["chars"] == len(t.corpus)
    assert meta["history"]["val"][-1][0] == 40


def test_learns_a_small_text(text_file, tmp_path):
    t = prepare(tiny_request(text_file, tmp_path, max_steps=300, eval_every=300, sample_every=1000, lr=1e-2))
    t.run()
    assert t.best_val_loss < 1.0  # from log(vocab) ~ 3 nats


def test_time_budget_includes_the_final_evaluation(text_file, tmp_path):
    t = prepare(tiny_request(text_file, tmp_path, max_steps=None, max_minutes=0.03, eval_every=10_000))
    done = t.run()
    assert done.reason == "max_minutes"
    assert 0.5 < done.elapsed <= 0.03 * 60 + 0.5


def test_non_finite_steps_are_skipped_then_rolled_back(text_file, tmp_path, monkeypatch):
    events = []
    t = prepare(tiny_request(text_file, tmp_path, max_steps=40, eval_every=1000), events.append)
    forward = t.model.forward
    bad_steps = {12, 20, 21, 22}

    def poisoned(ids, state=None):
        logits, state = forward(ids, state)
        if t.step in bad_steps:
            logits = logits * float("nan")
        return logits, state

    monkeypatch.setattr(t.model, "forward", poisoned)
    t.run()
    warnings = [e.message for e in events if isinstance(e, Warning)]
    assert sum("skipped" in w for w in warnings) == 3
    assert sum("rolled back" in w for w in warnings) == 1
    assert t.lr_scale == 0.5 and t.skipped_steps == 4
    assert all(torch.isfinite(v).all() for v in t.model.state_dict().values())
    assert checkpoint.load(tmp_path / "tiny").meta["step"] == 40


def test_a_run_that_keeps_diverging_stops_as_diverged(text_file, tmp_path, monkeypatch):
    t = prepare(tiny_request(text_file, tmp_path, max_steps=200, eval_every=1000))
    forward = t.model.forward

    def poisoned(ids, state=None):
        logits, state = forward(ids, state)
        return (logits * float("nan") if t.step > 10 else logits), state

    monkeypatch.setattr(t.model, "forward", poisoned)
    done = t.run()
    assert done.reason == "diverged" and t.rollbacks == training.MAX_ROLLBACKS
    assert checkpoint.load(tmp_path / "tiny").meta["step"] == done.step  # the good weights were saved


def test_resume_flags_override_training_but_not_the_model(text_file, tmp_path):
    prepare(tiny_request(text_file, tmp_path, max_steps=10)).run()
    req = replace(tiny_request(text_file, tmp_path), resume="tiny", train={"max_steps": 15, "lr": 5e-3})
    t = prepare(req)
    assert t.cfg.max_steps == 15 and t.cfg.lr == 5e-3 and t.cfg.batch_size == 8
    assert t.run().step == 15
    with pytest.raises(UserError, match="--hidden 64 disagrees"):
        prepare(replace(req, model={"hidden": 64}))


def test_resume_finds_the_corpus_by_itself(text_file, tmp_path):
    prepare(tiny_request(text_file, tmp_path, max_steps=5)).run()
    req = training.RunRequest(checkpoint_dir=str(tmp_path), resume="tiny", train={"max_steps": 8})
    assert prepare(req).run().step == 8


def test_an_existing_run_name_is_not_overwritten(text_file, tmp_path):
    prepare(tiny_request(text_file, tmp_path, max_steps=5)).run()
    with pytest.raises(UserError, match="already exists.*--resume tiny"):
        prepare(tiny_request(text_file, tmp_path))


def test_too_small_a_corpus_is_a_user_error(tmp_path):
    (tmp_path / "small.txt").write_text("tiny text")
    with pytest.raises(UserError, match="too small"):
        prepare(tiny_request(tmp_path / "small.txt", tmp_path))
