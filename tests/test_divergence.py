"""Divergence is survived: a non-finite loss or a learning rate of 100 rolls the run back and cuts the rate until it
trains, the app says so, and no checkpoint ever holds a non-finite weight."""

from __future__ import annotations

import math

import numpy as np
import torch

from rnn_tui import checkpoint, record
from rnn_tui.events import CheckpointSaved, Evaluation, Notice, Progress
from rnn_tui.train.loop import prepare
from tests.conftest import tiny_plan


def all_finite(folder) -> bool:
    return all(np.isfinite(a).all() for a in checkpoint.load(folder).model.values())


def test_a_learning_rate_of_100_is_survived_and_the_loss_falls(text_file, tmp_path):
    events = []
    plan = tiny_plan(text_file, tmp_path, max_steps=400, lr=100.0, eval_every=100, checkpoint_every=50)
    with prepare(plan, events.append) as t:
        done = t.run()
        ceiling = t.loss_ceiling
    assert done.reason == "max_steps" and t.rollbacks >= 1
    assert t.lr_scale < 1e-3  # cut until the rate trains
    losses = [e.loss for e in events if isinstance(e, Progress)]
    assert all(math.isfinite(x) for x in losses)
    assert max(losses) <= ceiling  # what training used was never a diverged step
    assert losses[-1] < losses[0] - 1  # and it learned: from a uniform guess to well below it
    vals = [e.val_loss for e in events if isinstance(e, Evaluation)]
    assert all(math.isfinite(v) for v in vals) and vals[-1] < math.log(len(t.vocab))
    rollbacks = [e for e in events if isinstance(e, Notice) and "rolled back" in e.message]
    assert len(rollbacks) == t.rollbacks and "cut the learning rate" in rollbacks[0].message
    assert all_finite(tmp_path / "tiny") and all_finite(tmp_path / "tiny" / checkpoint.BEST)


def test_an_injected_non_finite_loss_rolls_back_and_carries_on(text_file, tmp_path, monkeypatch):
    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=120, eval_every=40, checkpoint_every=20), events.append) as t:
        forward = t.model.forward

        def poisoned(ids, state=None):
            logits, state = forward(ids, state)
            return (logits * float("inf") if 50 <= t.step < 53 else logits), state  # inf * 0 is NaN too

        monkeypatch.setattr(t.model, "forward", poisoned)
        done = t.run()
    assert done.reason == "max_steps" and done.step == 120
    assert t.rollbacks == 1 and t.lr_scale == 0.5
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("non-finite" in m and "rolled back" in m for m in notices)
    losses = [e.loss for e in events if isinstance(e, Progress) and e.step > 60]
    assert losses and all(math.isfinite(x) for x in losses)  # it carried on
    assert all(torch.isfinite(v).all() for v in t.model.state_dict().values())
    assert all_finite(tmp_path / "tiny")


def test_non_finite_weights_are_never_saved(text_file, tmp_path, monkeypatch):
    """Weights gone bad just before a checkpoint: the save is refused, the old checkpoint stays, and the rollback
    that follows brings back weights that are saved at the next checkpoint."""
    events = []
    with prepare(
        tiny_plan(text_file, tmp_path, max_steps=60, eval_every=1000, checkpoint_every=20), events.append
    ) as t:
        save = t.save

        def poisoning_save(best=False):
            if t.step == 40 and not best:
                with torch.no_grad():
                    t.model.head.bias[0] = float("nan")
            return save(best)

        monkeypatch.setattr(t, "save", poisoning_save)
        t.run()
    refused = [e for e in events if isinstance(e, Notice) and e.level == "error"]
    assert len(refused) == 1 and refused[0].step == 40 and "non-finite" in refused[0].message
    saved = sorted({e.step for e in events if isinstance(e, CheckpointSaved) and not e.best})
    assert saved == [20, 60]
    assert t.rollbacks == 1 and all_finite(tmp_path / "tiny")
    assert checkpoint.load(tmp_path / "tiny").step == 60
    assert any("rolled back" in e.message for e in record.read(tmp_path / "tiny").events if isinstance(e, Notice))


async def test_the_app_shows_a_rollback(text_file, tmp_path, settled):
    from rnn_tui.tui.app import RnnTuiApp
    from tests.fakes import FakeSession
    from tests.helpers import Shown, settle

    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=30, lr=100.0, eval_every=1000), events.append) as t:
        t.run()
    rollback = next(e for e in events if isinstance(e, Notice) and "rolled back" in e.message)
    session = FakeSession()
    app = RnnTuiApp(session)
    shown = Shown()
    async with settled(app, notifications=True, message_hook=shown) as pilot:
        session.inbox.append(rollback)
        await settle(pilot)
        rollbacks = [n for n in shown if "rolled back" in n.message]
        assert rollbacks and rollbacks[0].severity == "warning" and rollbacks[0].title == "Training"
        assert app.state == "training"  # it carries on
