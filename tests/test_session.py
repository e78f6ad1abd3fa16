"""The trainer's process, for real: spawned, driven through its queue, and read through shared memory."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from rnn_tui import checkpoint, record
from rnn_tui.cli import main
from rnn_tui.config import param_shapes
from rnn_tui.events import CheckpointSaved, Finished, History, Progress, RunStarted, TrainerFailed, TrainerState
from rnn_tui.session import FolderSession, LocalSession
from rnn_tui.train.loop import prepare
from tests.conftest import alive, cli_env, resume_plan, tiny_plan, wait_for
from tests.helpers import LineReader, drain_until


@pytest.mark.process
def test_session_trains_pauses_saves_and_stops(text_file, tmp_path):
    plan = tiny_plan(text_file, tmp_path, max_steps=None, eval_every=40, sample_every=40)
    session = LocalSession(plan, log_path=tmp_path / "tiny" / "train.log")
    session.start()
    try:
        seen = drain_until(session, lambda m: isinstance(m, Progress) and m.step >= 5)
        started = next(m for m in seen if isinstance(m, RunStarted))
        assert started.model["hidden"] == 32 and not started.resumed
        assert not any(isinstance(m, History) for m in seen)  # a new run has no past
        w = session.weights()
        assert w is not None and w.config.hidden == 32 and w.vocab.chars
        assert {k: v.shape for k, v in w.tensors.items()} == param_shapes(w.config)
        session.pause()
        drain_until(session, lambda m: isinstance(m, TrainerState) and m.state == "paused")
        session.save()
        seen = drain_until(session, lambda m: isinstance(m, CheckpointSaved))
        paused_at = next(m for m in seen if isinstance(m, CheckpointSaved)).step
        session.save()  # again: a paused trainer answers from its pause, at the same step
        after: list = []  # from the second checkpoint to the state the trainer reports next

        def answered(m) -> bool:
            if after or isinstance(m, CheckpointSaved):
                after.append(m)
            return len(after) > 1 and isinstance(m, TrainerState)

        seen = drain_until(session, answered)
        assert after[0].step == paused_at and after[-1].state == "paused"
        assert not [m for m in seen if isinstance(m, Progress)]  # paused means paused
        session.resume()
        drain_until(session, lambda m: isinstance(m, Progress) and m.step > paused_at)
        session.stop()
        seen = drain_until(session, lambda m: isinstance(m, Finished))
        assert next(m for m in seen if isinstance(m, Finished)).reason == "stopped"
    finally:
        session.close()
    assert not session.alive
    log = (tmp_path / "tiny" / "train.log").read_text()
    assert "rnn-tui trainer" in log  # the child's output went to the log, not the screen


@pytest.mark.process
def test_a_bad_corpus_is_reported_not_raised(tmp_path):
    (tmp_path / "small.txt").write_text("too small")
    session = LocalSession(tiny_plan(tmp_path / "small.txt", tmp_path))
    session.start()
    try:
        seen = drain_until(session, lambda m: isinstance(m, TrainerFailed))
        assert "too small" in next(m for m in seen if isinstance(m, TrainerFailed)).message
    finally:
        session.close()


@pytest.mark.process
def test_a_killed_trainer_is_noticed(text_file, tmp_path):
    session = LocalSession(tiny_plan(text_file, tmp_path, max_steps=None, checkpoint_every=10))
    session.start()
    try:
        drain_until(session, lambda m: isinstance(m, CheckpointSaved) and not m.best)
        os.kill(session.pid, signal.SIGKILL)
        seen = drain_until(session, lambda m: isinstance(m, TrainerFailed))
        failed = next(m for m in seen if isinstance(m, TrainerFailed))
        assert "stopped unexpectedly" in failed.message and failed.restartable
        assert session.finished
        killed = session.pid
        session.restart()  # from the last checkpoint, in a new child
        assert session.pid != killed and not alive(killed) and not session.finished
        seen = drain_until(session, lambda m: isinstance(m, Progress))
        assert next(m for m in seen if isinstance(m, RunStarted)).resumed
        assert any(isinstance(m, History) and m.events for m in seen)
        assert wait_for(session.weights, what="the new child's weights").step >= 10
    finally:
        session.close()


@pytest.mark.process
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_trainer_saves_and_exits_when_its_parent_dies(text_file, tmp_path):
    parent = textwrap.dedent(f"""
        import time
        from rnn_tui.session import LocalSession
        from tests.conftest import tiny_plan
        s = LocalSession(tiny_plan({str(text_file)!r}, {str(tmp_path)!r}, max_steps=None))
        s.start()
        print(s.pid, flush=True)
        while True:
            for m in s.poll():
                if type(m).__name__ == "Progress":
                    print("training", flush=True)
            time.sleep(0.05)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", parent],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    try:
        out = LineReader(proc.stdout)  # the child without a log shares our stdout
        child = int(out.wait_for(lambda line: True, "the trainer's pid"))
        out.wait_for(lambda line: line.strip() == "training", "training to start")
        proc.kill()
        proc.wait()
        wait_for(lambda: not alive(child), timeout=30, what="the trainer to exit after its parent died")
    finally:
        proc.kill()
        with contextlib.suppress(NameError, ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    assert (tmp_path / "tiny" / "meta.json").exists()


@pytest.mark.process
def test_a_resumed_session_starts_with_its_history(text_file, tmp_path):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=40, eval_every=10)) as t:
        t.run()
    session = LocalSession(resume_plan(tmp_path, max_steps=60))
    session.start()
    try:
        seen = drain_until(session, lambda m: isinstance(m, Finished))
    finally:
        session.close()
    assert isinstance(seen[0], History)
    past = [e.step for e in seen[0].events if type(e).__name__ == "Evaluation"]
    assert past == [10, 20, 30, 40]
    assert next(m for m in seen if isinstance(m, RunStarted)).step == 40


def test_a_folder_session_shows_a_saved_run(text_file, tmp_path):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=20, eval_every=10)) as t:
        t.run()
    session = FolderSession.open(tmp_path / "tiny")
    session.start()
    events = session.poll()
    assert isinstance(events[0], History) and any(isinstance(e, RunStarted) for e in events[0].events)
    w = session.weights()
    assert w.step == 20 and session.weights() is None  # once
    assert not session.controllable and session.finished


def test_launch_no_train_opens_the_run_once(text_file, tmp_path, monkeypatch):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=20, eval_every=10)) as t:
        t.run()
    reads = []
    for module, name in ((checkpoint, "load"), (record, "read")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: reads.append(_name) or _real(*a, **k))
    shown = []

    def run_app(session, checkpoint_dir):  # the app, as far as the session goes
        session.start()
        shown.extend([*session.poll(), session.weights(), session.weights()])
        return 0

    monkeypatch.setattr("rnn_tui.tui.app.run_app", run_app)
    assert main(["launch", "--resume", "tiny", "--no-train", "--checkpoint-dir", str(tmp_path)]) == 0
    assert reads.count("load") == 1 and reads.count("read") == 1
    assert isinstance(shown[0], History) and shown[-2].step == 20 and shown[-1] is None
