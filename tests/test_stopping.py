"""When to stop: --patience, the overfitting notice, and the system figures each progress event carries."""

import json

import pytest

from rnn_tui import checkpoint, record
from rnn_tui.events import Evaluation, Finished, Notice, Progress, from_json
from rnn_tui.session import LocalSession
from rnn_tui.train import loop as training
from rnn_tui.train.loop import ValidationWatch, prepare
from tests.conftest import TINY_FLAGS, resume_plan, tiny_plan
from tests.helpers import TINY, assert_user_error, drain_until, rnn_tui


def scripted(monkeypatch, losses: list[float]) -> None:
    """The trainer's validation losses, one per evaluation, in order."""
    it = iter(losses)
    monkeypatch.setattr(training.Trainer, "evaluate", lambda self: next(it))


def test_patience_stops_after_n_evaluations_without_a_new_best(text_file, tmp_path, monkeypatch):
    scripted(monkeypatch, [3.0, 2.5, 2.6, 2.5, 2.7, 2.0])  # best at step 10; 15, 20, 25 are not new bests
    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=100, eval_every=5, patience=3), events.append) as t:
        done = t.run()
    assert (done.reason, done.step, done.best_val_loss) == ("patience", 25, 2.5)
    evals = [e for e in events if isinstance(e, Evaluation)]
    assert [e.step for e in evals] == [5, 10, 15, 20, 25]  # no final evaluation after the patience stop
    assert [e for e in events if isinstance(e, Finished)] == [done]
    told = [e.message for e in events if isinstance(e, Notice) and e.message.startswith("stopped")]
    assert told == [
        "stopped: no new best validation loss in 3 evaluations (--patience); the best weights are in best/ from step 10"
    ]
    assert checkpoint.load(tmp_path / "tiny" / checkpoint.BEST, optimizer=False).step == 10
    last = record.read(tmp_path / "tiny").events[-1]
    assert isinstance(last, Finished) and last.reason == "patience"


def test_patience_counts_across_a_resume(text_file, tmp_path, monkeypatch):
    scripted(monkeypatch, [3.0, 3.1, 3.2, 3.3])
    with prepare(tiny_plan(text_file, tmp_path, max_steps=10, eval_every=5, patience=3)) as t:
        assert t.run().reason == "max_steps"
    assert checkpoint.load(tmp_path / "tiny", optimizer=False).meta["evals_since_best"] == 1
    with prepare(resume_plan(tmp_path, max_steps=100)) as t:
        done = t.run()
    assert (done.reason, done.step) == ("patience", 20)  # one without a best before the resume; 15 and 20 make three


def test_without_patience_a_run_goes_on(text_file, tmp_path, monkeypatch):
    scripted(monkeypatch, [3.0, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7])
    with prepare(tiny_plan(text_file, tmp_path, max_steps=40, eval_every=5)) as t:
        assert t.run().reason == "max_steps"


def test_overfitting_is_told_once_per_stretch_of_rising_validation_while_training_falls():
    o = ValidationWatch(rises=3)
    said = []
    for train, val in [(3.0, 2.9), (2.8, 2.7), (2.6, 2.75), (2.5, 2.8), (2.4, 2.9), (2.3, 3.0), (2.2, 2.6)]:
        o.train(train + 0.1)
        o.train(train - 0.1)  # the mean of a window is what counts
        said.append(o.evaluated(val))
    assert said == [None, None, None, None, "overfitting", None, None]
    for train, val in [(2.1, 2.7), (2.0, 2.8), (1.9, 2.9)]:  # a new stretch of three rises: told again
        o.train(train)
        said.append(o.evaluated(val))
    assert said[-1] == "overfitting"


def test_rising_validation_while_training_also_rises_is_not_overfitting():
    o = ValidationWatch(rises=3)
    said = [o.train(t) or o.evaluated(v) for t, v in [(2.0, 2.0), (2.1, 2.1), (2.2, 2.2), (2.3, 2.3), (2.4, 2.4)]]
    assert not any(said)


def test_a_jump_in_validation_while_training_holds_is_told_as_a_jump_not_overfitting():
    """The run of 12-07 (lr 6e-3, dropout 0.1): validation jumped from 1.453 to 2.035 at a training loss of 1.19,
    rose once more, then came back. Told once, as a jump; its rises are no stretch of overfitting."""
    o = ValidationWatch(rises=3)
    history = [(1.276, 1.461), (1.274, 1.475), (1.221, 1.473), (1.23, 1.445), (1.236, 1.441), (1.206, 1.453)]
    history += [(1.199, 2.035), (1.187, 2.059), (1.185, 1.431), (1.186, 1.44), (1.168, 1.435)]
    said = [o.train(t) or o.evaluated(v) for t, v in history]
    assert said == [None] * 6 + ["jump"] + [None] * 4
    assert o.before == 1.453


def test_a_jump_in_both_losses_is_no_jump_of_validation_alone():
    o = ValidationWatch(rises=3)
    said = [o.train(t) or o.evaluated(v) for t, v in [(1.2, 1.45), (1.21, 1.44), (1.9, 2.0)]]
    assert not any(said)


def test_the_trainer_warns_of_overfitting_naming_the_best_step(text_file, tmp_path, monkeypatch):
    scripted(monkeypatch, [3.0, 2.5, 2.6, 2.7, 2.8, 2.9])
    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=30, eval_every=5, lr=3e-3), events.append) as t:
        t.run()
    notices = [e for e in events if isinstance(e, Notice) and e.message.startswith("overfitting")]
    # A tiny model's training loss falls over its first 30 steps: the notice comes with the third rise.
    assert [n.step for n in notices] == [25]
    assert "the best weights are kept in best/ from step 10" in notices[0].message


def test_progress_carries_the_trainers_system_figures_and_chars(text_file, tmp_path):
    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=40), events.append) as t:
        t.run()
    progress = [e for e in events if isinstance(e, Progress)]
    last = progress[-1]
    assert last.chars == last.step * 8 * 16  # batch 8 × 16 characters a step
    assert last.threads >= 1 and 10 < last.rss_mb < 100_000
    assert last.gpu_percent is None and last.gpu_mem_mb is None  # on the CPU
    kept = [e for e in record.read(tmp_path / "tiny").events if isinstance(e, Progress)]
    assert kept and all(p.rss_mb is not None for p in kept)  # in the record too, for watch


def test_an_old_records_progress_without_system_figures_still_loads():
    old = {"event": "progress", "step": 5, "epoch": 0, "loss": 2.5, "lr": 0.001, "chars_per_s": 1000.0, "elapsed": 1.0}
    p = from_json(json.loads(json.dumps(old)))
    assert isinstance(p, Progress) and p.cpu_percent is p.rss_mb is p.gpu_percent is p.chars is None


def test_cpu_percent_is_the_share_of_a_core_since_the_last_sample(monkeypatch):
    from rnn_tui import sysinfo

    clock = iter([100.0, 102.0])
    stats = iter([(10.0, 3, 50.0), (13.0, 4, 60.0)])  # 3 CPU seconds in 2 s: 150 %
    monkeypatch.setattr(sysinfo.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(sysinfo, "_stat", lambda pid: next(stats))
    usage = sysinfo.ProcessUsage()
    assert usage.sample() == sysinfo.Usage(None, 3, 50.0)
    assert usage.sample() == sysinfo.Usage(150.0, 4, 60.0)


@pytest.mark.process
def test_patience_below_one_is_a_user_error(text_file, tmp_path):
    proc = rnn_tui("train", "--data", text_file, *TINY, "--patience", "0", cwd=tmp_path)
    assert_user_error(proc, "--patience")


# A learning rate far below fp32's resolution leaves the weights as they are: every evaluation after the first
# gives the same loss, never a new best.
FROZEN = {"lr": 1e-12, "eval_every": 10, "patience": 2, "max_steps": 1000}


@pytest.mark.process
def test_patience_in_the_apps_trainer_process(text_file, tmp_path):
    session = LocalSession(tiny_plan(text_file, tmp_path, **FROZEN))
    session.start()
    try:
        seen = drain_until(session, lambda m: isinstance(m, Finished))
    finally:
        session.close()
    done = next(m for m in seen if isinstance(m, Finished))
    assert (done.reason, done.step) == ("patience", 30)


@pytest.mark.process
def test_patience_headless_in_json(text_file, tmp_path):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in FROZEN.items()]
    proc = rnn_tui("train", "--data", text_file, *TINY_FLAGS, *flags, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout.splitlines()[-1])
    assert (done["event"], done["reason"], done["step"]) == ("done", "patience", 30)
    assert "done (patience) at step 30" in proc.stderr
