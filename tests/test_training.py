import itertools
import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from rnn_tui import checkpoint, record
from rnn_tui.config import ModelConfig, Settings
from rnn_tui.errors import UserError
from rnn_tui.events import CheckpointSaved, Evaluation, Finished, Notice, Progress, RunStarted, Sample
from rnn_tui.runs import RunSpec, plan
from rnn_tui.train import loop as training
from rnn_tui.train.devices import cpu_has_native_bf16
from rnn_tui.train.loop import prepare
from tests.conftest import cli_env, resume_plan, tiny_plan

BF16 = pytest.param("bf16", marks=pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16"))


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("precision", ["fp32", BF16])
@pytest.mark.parametrize("batching", ["tbptt", "random"])
def test_resume_continues_as_if_it_never_stopped(text_file, tmp_path, precision, batching):
    opts = {"max_steps": 60, "precision": precision, "batching": batching, "eval_every": 25, "sample_every": 1000}
    with prepare(tiny_plan(text_file, tmp_path / "a", **opts)) as straight:
        straight.run()
    with prepare(tiny_plan(text_file, tmp_path / "b", **opts)) as interrupted:
        interrupted.run(should_stop=lambda: interrupted.step >= 30)
    assert interrupted.step == 30
    torch.manual_seed(999)  # whatever happened in between must not matter
    with prepare(resume_plan(tmp_path / "b", precision=precision)) as resumed:
        assert resumed.step == 30
        resumed.run()
    assert resumed.step == 60
    a, b = _weights(straight), _weights(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.best_val_loss == straight.best_val_loss


@pytest.mark.parametrize("floor", [0.0, 0.1])
def test_the_learning_rate_warms_up_then_falls_along_a_cosine_to_its_floor(text_file, tmp_path, floor):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=100, warmup_steps=10, lr=1e-2, min_lr_frac=floor)) as t:
        rates = {}
        for step in (0, 9, 10, 50, 100):
            t.step = step
            rates[step] = t.lr()
    assert rates[0] == pytest.approx(1e-3) and rates[9] == pytest.approx(1e-2)  # linear warm-up to the peak
    assert rates[10] == pytest.approx(1e-2 * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * 0.1))))
    assert rates[50] == pytest.approx(1e-2 * (floor + (1 - floor) / 2))  # the cosine spans the budget: half way
    assert rates[100] == pytest.approx(1e-2 * floor)


def test_events_and_files(text_file, tmp_path):
    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=40), events.append) as t:
        done = t.run()
    kinds = {type(e) for e in events}
    assert {RunStarted, Progress, Evaluation, Sample, CheckpointSaved, Finished} <= kinds
    assert isinstance(events[0], RunStarted) and not events[0].resumed
    assert isinstance(events[-1], Finished) and events[-1].reason == "max_steps" and done.step == 40
    progress = [e for e in events if isinstance(e, Progress)]
    assert all(p.chars_per_s > 0 and p.lr > 0 for p in progress)
    evals = [e for e in events if isinstance(e, Evaluation)]
    assert [e.step for e in evals] == [20, 40]
    assert evals[-1].val_loss < math.log(len(t.vocab))  # it learned something
    run = tmp_path / "tiny"
    for f in ("meta.json", "model.safetensors", "optimizer.safetensors"):
        assert (run / f).exists() and (run / "best" / f).exists()
    meta = checkpoint.load(run).meta
    assert meta["step"] == 40 and meta["corpus"]["chars"] == len(t.corpus)
    assert "history" not in meta and "rng" not in meta  # the history is the record; the RNG state a tensor
    assert "rng.torch" in checkpoint.load(run).optimizer


def test_samples_share_their_prompt_and_seed(text_file, tmp_path):
    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=40, sample_prompt="the "), events.append) as t:
        t.run()
    samples = [e for e in events if isinstance(e, Sample)]
    assert [s.step for s in samples] == [20, 40]
    assert {(s.prompt, s.seed, s.temperature) for s in samples} == {("the ", t.cfg.seed, t.cfg.sample_temperature)}


def test_the_record_holds_the_history(text_file, tmp_path):
    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=40), events.append) as t:
        t.run()
    recorded = record.read(tmp_path / "tiny").events
    keep = (RunStarted, Evaluation, Sample, CheckpointSaved, Finished)
    assert [e for e in recorded if isinstance(e, keep)] == [e for e in events if isinstance(e, keep)]
    progress = [e for e in recorded if isinstance(e, Progress)]
    assert progress and all(p in events for p in progress)


def test_learns_a_small_text(text_file, tmp_path):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=300, eval_every=300, sample_every=1000, lr=1e-2)) as t:
        t.run()
    assert t.best_val_loss < 1.0  # from log(vocab) ~ 3 nats


def test_time_budget_includes_the_final_evaluation(text_file, tmp_path):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=None, max_minutes=0.03, eval_every=10_000)) as t:
        done = t.run()
    assert done.reason == "max_minutes"
    assert 0.5 < done.elapsed <= 0.03 * 60 + 0.5


def test_non_finite_steps_are_skipped_then_rolled_back(text_file, tmp_path, monkeypatch):
    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=40, eval_every=1000), events.append) as t:
        forward = t.model.forward
        bad_steps = {12, 20, 21, 22}

        def poisoned(ids, state=None):
            logits, state = forward(ids, state)
            if t.step in bad_steps:
                logits = logits * float("nan")
            return logits, state

        monkeypatch.setattr(t.model, "forward", poisoned)
        t.run()
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert sum("skipped" in w for w in notices) == 3
    assert sum("rolled back" in w for w in notices) == 1
    assert t.lr_scale == 0.5 and t.skipped_steps == 4
    assert all(torch.isfinite(v).all() for v in t.model.state_dict().values())
    assert checkpoint.load(tmp_path / "tiny").meta["step"] == 40


def test_a_run_that_keeps_diverging_stops_as_diverged(text_file, tmp_path, monkeypatch):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=200, eval_every=1000)) as t:
        forward = t.model.forward

        def poisoned(ids, state=None):
            logits, state = forward(ids, state)
            return (logits * float("nan") if t.step > 10 else logits), state

        monkeypatch.setattr(t.model, "forward", poisoned)
        done = t.run()
    assert done.reason == "diverged" and t.rollbacks == training.MAX_ROLLBACKS
    assert checkpoint.load(tmp_path / "tiny").meta["step"] == done.step  # the good weights were saved


def test_resume_flags_override_training_but_not_the_model(text_file, tmp_path):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=10)) as t:
        t.run()
    with prepare(resume_plan(tmp_path, max_steps=15, lr=5e-3)) as t:
        assert t.cfg.max_steps == 15 and t.cfg.lr == 5e-3 and t.cfg.batch_size == 8
        assert t.run().step == 15
    req = RunSpec(checkpoint_dir=str(tmp_path), resume="tiny", model=Settings(ModelConfig, {"hidden": 64}))
    with pytest.raises(UserError, match="--hidden 64 disagrees"):
        plan(req)


def test_resume_finds_the_corpus_by_itself(text_file, tmp_path):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=5)) as t:
        t.run()
    with prepare(resume_plan(tmp_path, max_steps=8)) as t:
        assert t.run().step == 8


def test_an_existing_run_name_is_not_overwritten(text_file, tmp_path):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=5)) as t:
        t.run()
    with pytest.raises(UserError, match="already exists.*--resume tiny"):
        tiny_plan(text_file, tmp_path)


def test_a_second_trainer_on_the_same_run_is_refused(text_file, tmp_path):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=5)) as t:
        t.run()
        with pytest.raises(UserError, match="being trained by another process"):
            prepare(resume_plan(tmp_path, max_steps=8))
    with prepare(resume_plan(tmp_path, max_steps=8)) as t:  # free again once the first let go
        assert t.run().step == 8


def test_too_small_a_corpus_is_a_user_error(tmp_path):
    (tmp_path / "small.txt").write_text("tiny text")
    with pytest.raises(UserError, match="too small"):
        prepare(tiny_plan(tmp_path / "small.txt", tmp_path))


def test_a_failed_save_is_reported_and_training_goes_on(text_file, tmp_path, monkeypatch):
    events = []
    with prepare(
        tiny_plan(text_file, tmp_path, max_steps=30, checkpoint_every=10, eval_every=1000), events.append
    ) as t:
        real_save = checkpoint.save

        def disk_full(folder, *args):
            if t.step == 20:
                raise OSError(28, "No space left on device")
            return real_save(folder, *args)

        monkeypatch.setattr(checkpoint, "save", disk_full)
        assert t.run().step == 30
    errors = [e for e in events if isinstance(e, Notice) and e.level == "error"]
    assert len(errors) == 1 and "No space left" in errors[0].message and errors[0].step == 20
    assert checkpoint.load(tmp_path / "tiny").step == 30


KILLED = textwrap.dedent("""
    import os, signal, sys
    from rnn_tui.events import Evaluation
    from rnn_tui.train.loop import prepare
    from tests.conftest import tiny_plan, resume_plan
    data, folder, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "resume"
    plan = resume_plan(folder, max_steps=None) if resume else tiny_plan(data, folder, max_steps=None, eval_every=10,
                                                                          checkpoint_every=25, sample_every=10)
    def on_event(e):
        if isinstance(e, Evaluation) and e.step == (70 if not resume else 110):
            os.kill(os.getpid(), signal.SIGKILL)  # mid-run, after a checkpoint and between two others
    prepare(plan, on_event).run()
""")


@pytest.mark.process
def test_a_killed_run_resumes_with_a_history_that_matches_its_weights(text_file, tmp_path):
    root = os.path.dirname(os.path.dirname(__file__))
    for mode in ("new", "resume"):
        proc = subprocess.run(
            [sys.executable, "-c", KILLED, str(text_file), str(tmp_path), mode], cwd=root, env=cli_env(), timeout=120
        )
        assert proc.returncode == -signal.SIGKILL
    # killed at 70 (checkpoint at 50), resumed from 50 and killed at 110 (checkpoint at 100)
    step = checkpoint.read_meta(tmp_path / "tiny")["step"]
    assert step == 100
    with prepare(resume_plan(tmp_path, max_steps=120, eval_every=10)) as t:
        t.run()
    events = record.read(tmp_path / "tiny").events
    evals = [e.step for e in events if isinstance(e, Evaluation)]
    assert evals == list(range(10, 121, 10))  # none missing, none twice
    starts = [e for e in events if isinstance(e, RunStarted)]
    assert [(s.step, s.resumed) for s in starts] == [(0, False), (50, True), (100, True)]
    steps = [e.step for e in events]
    assert all(a <= b for a, b in itertools.pairwise(steps))  # the history runs forward
    assert np.isfinite([e.val_loss for e in events if isinstance(e, Evaluation)]).all()
