"""The trainer's process, for real: spawned, driven through its queue, and read through shared memory."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rnn_tui.session import Failed, Ready, Status, TrainingSession
from rnn_tui.training import Checkpoint, Done, Progress
from tests.conftest import alive, cli_env, tiny_request


def drain_until(session, predicate, timeout=60.0):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = session.poll()
        seen.extend(msgs)
        if any(predicate(m) for m in msgs):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"timed out; saw {[type(m).__name__ for m in seen]}")


def test_session_trains_pauses_saves_and_stops(text_file, tmp_path):
    req = tiny_request(text_file, tmp_path, max_steps=None, eval_every=40, sample_every=40)
    session = TrainingSession(req, log_path=tmp_path / "tiny" / "train.log")
    session.start()
    try:
        seen = drain_until(session, lambda m: isinstance(m, Progress) and m.step >= 5)
        ready = next(m for m in seen if isinstance(m, Ready))
        assert ready.model["hidden"] == 32 and ready.vocab
        w = session.weights()
        assert w is not None and set(w.tensors) == {name for name, _ in ready.layout}
        session.pause()
        drain_until(session, lambda m: isinstance(m, Status) and m.state == "paused")
        session.save()
        seen = drain_until(session, lambda m: isinstance(m, Checkpoint))
        paused_at = next(m for m in seen if isinstance(m, Checkpoint)).step
        time.sleep(0.5)
        assert not [m for m in session.poll() if isinstance(m, Progress)]  # paused means paused
        session.resume()
        drain_until(session, lambda m: isinstance(m, Progress) and m.step > paused_at)
        session.stop()
        seen = drain_until(session, lambda m: isinstance(m, Done))
        assert next(m for m in seen if isinstance(m, Done)).reason == "stopped"
    finally:
        session.close()
    assert not session.alive
    log = (tmp_path / "tiny" / "train.log").read_text()
    assert "rnn-tui trainer" in log  # the child's output went to the log, not the screen


def test_a_bad_corpus_is_reported_not_raised(tmp_path):
    (tmp_path / "small.txt").write_text("too small")
    session = TrainingSession(tiny_request(tmp_path / "small.txt", tmp_path))
    session.start()
    try:
        seen = drain_until(session, lambda m: isinstance(m, Failed))
        assert "too small" in next(m for m in seen if isinstance(m, Failed)).message
    finally:
        session.close()


def test_a_killed_trainer_is_noticed(text_file, tmp_path):
    session = TrainingSession(tiny_request(text_file, tmp_path, max_steps=None))
    session.start()
    try:
        drain_until(session, lambda m: isinstance(m, Progress))
        os.kill(session.pid, signal.SIGKILL)
        seen = drain_until(session, lambda m: isinstance(m, Failed))
        assert "stopped unexpectedly" in next(m for m in seen if isinstance(m, Failed)).message
        assert session.finished
    finally:
        session.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_trainer_saves_and_exits_when_its_parent_dies(text_file, tmp_path):
    parent = textwrap.dedent(f"""
        import time
        from rnn_tui.session import TrainingSession
        from tests.conftest import tiny_request
        s = TrainingSession(tiny_request({str(text_file)!r}, {str(tmp_path)!r}, max_steps=None))
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
    child = int(proc.stdout.readline())
    while proc.stdout.readline().strip() != "training":  # the child without a log shares our stdout
        pass
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not alive(child):
            break
        time.sleep(0.2)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the trainer outlived its parent")
    assert (tmp_path / "tiny" / "meta.json").exists()
