"""`rnn-tui watch`: the app on a run that another process trains, through a WatchSession that never writes."""

import builtins
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnn_tui import checkpoint, fsutil, record
from rnn_tui.config import param_shapes
from rnn_tui.events import Evaluation, Finished, History, Notice, Progress, TrainerState
from rnn_tui.session import WatchSession, watched_folder
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.playground import playground as playground_module
from rnn_tui.tui.widgets.playground.controls import Controls
from rnn_tui.tui.widgets.playground.playground import Playground
from rnn_tui.tui.widgets.run_header import RunHeader
from rnn_tui.tui.widgets.training.loss_chart import LossChart
from rnn_tui.tui.widgets.training.stats import TrainingStats
from tests.conftest import TINY_FLAGS, cli_env, until, wait_for
from tests.fakes import make_run, scripted_run, tiny_weights
from tests.helpers import SIZE, Shown, assert_user_error, drain_until, rnn_tui


@contextlib.contextmanager
def headless_trainer(text_file: Path, cwd: Path, *flags: str):
    """`rnn-tui train` in its own process, as a user would start it in another terminal."""
    command = [sys.executable, "-m", "rnn_tui", "train", "--data", str(text_file), *TINY_FLAGS, "--run-name", "live"]
    proc = subprocess.Popen(
        [*command, *flags], cwd=cwd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


LIVE = ("--eval-every", "25", "--sample-every", "50", "--checkpoint-every", "25", "--eval-chars", "500")


def states(events) -> list[str]:
    return [e.state for e in events if isinstance(e, TrainerState)]


@contextlib.contextmanager
def no_writes_under(folder: Path, monkeypatch):
    """Fail on any open of a file under `folder` for writing, by this process (the watcher's thread included)."""
    inside = str(folder.resolve())
    writes: list[str] = []
    real_os_open, real_open = os.open, io.open

    def check(path, writing: bool) -> None:
        if writing and os.path.abspath(os.fspath(path)).startswith(inside):
            writes.append(os.fspath(path))

    def os_open(path, flags, *args, **kwargs):
        check(path, flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if not isinstance(file, int):
            check(file, any(c in mode for c in "wax+"))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(builtins, "open", open_)
    yield writes
    monkeypatch.undo()
    assert not writes, f"the watcher wrote into the run folder: {writes}"


def files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


# --------------------------------------------------------------------------- the session on its own


@pytest.mark.process
def test_watching_a_headless_trainer(text_file, tmp_path, monkeypatch):
    with headless_trainer(text_file, tmp_path, *LIVE) as proc:
        run = tmp_path / "checkpoints" / "live"
        wait_for(lambda: (run / record.FILENAME).exists(), what="the run record")
        session = WatchSession(run, interval=0.05)
        with no_writes_under(run, monkeypatch):
            session.start()
            try:
                seen = drain_until(session, lambda m: isinstance(m, Evaluation) and m.step >= 50)
                assert isinstance(seen[0], History)  # what the record held when we looked, at once
                assert "watching" in states(seen) and not session.finished
                assert any(isinstance(m, Progress) for m in seen)
                first = wait_for(session.weights, what="the first checkpoint")
                assert {k: v.shape for k, v in first.tensors.items()} == param_shapes(first.config)
                newer = wait_for(lambda: (w := session.weights()) and w.step > first.step and w, what="a newer one")
                assert newer.version > first.version
                proc.send_signal(signal.SIGINT)  # it saves and writes `done`
                seen = drain_until(session, lambda m: isinstance(m, TrainerState) and m.state == "done")
                assert any(isinstance(m, Finished) and m.reason == "stopped" for m in seen)
                assert session.finished
                assert proc.wait(30) == 0
            finally:
                session.close()


@pytest.mark.process
def test_a_killed_trainer_is_shown_as_gone(text_file, tmp_path):
    with headless_trainer(text_file, tmp_path, *LIVE) as proc:
        run = tmp_path / "checkpoints" / "live"
        wait_for(lambda: (run / checkpoint.META).exists(), what="a checkpoint")
        session = WatchSession(run, interval=0.05)
        session.start()
        try:
            drain_until(session, lambda m: isinstance(m, TrainerState) and m.state == "watching")
            proc.kill()
            seen = drain_until(session, lambda m: isinstance(m, TrainerState) and m.state == "trainer gone")
            assert any(isinstance(m, Notice) and "stopped without finishing" in m.message for m in seen)
            assert session.finished
        finally:
            session.close()


def test_a_saved_run_is_read_without_a_single_write(tmp_path, monkeypatch):
    run = make_run(tmp_path, "old", steps=300)
    before = files(run)
    session = WatchSession(run)
    with no_writes_under(run, monkeypatch):
        for _ in range(3):
            session.look(time.monotonic())
    assert files(run) == before
    seen = session.poll()
    assert isinstance(seen[0], History) and seen[0].events[-1].step == 300
    assert states(seen) == ["trainer gone"]  # a lock on this machine that nobody holds: nobody trains it
    assert session.weights().step == 300 and session.weights() is None  # once, until a newer checkpoint
    (run / checkpoint.LOCK).unlink()  # no lock to ask: the record's age decides
    with no_writes_under(run, monkeypatch):
        fresh, stale = WatchSession(run), WatchSession(run, quiet_after=0.0)
        fresh.look(time.monotonic())
        stale.look(time.monotonic())
    assert not (run / checkpoint.LOCK).exists()
    assert states(fresh.poll()) == ["watching"] and states(stale.poll()) == ["quiet for 0 min"]


def test_a_deleted_folder_is_shown_and_a_restored_one_is_read_again(tmp_path):
    run = make_run(tmp_path, "doomed", steps=200)
    backup = shutil.copytree(run, tmp_path / "backup")
    session = WatchSession(run)
    session.look(time.monotonic())
    session.poll()
    assert session.weights().step == 200
    shutil.rmtree(run)
    session.look(time.monotonic())
    seen = session.poll()
    assert states(seen) == ["folder gone"] and session.finished
    assert any(isinstance(m, Notice) and m.level == "error" and "is gone" in m.message for m in seen)
    session.look(time.monotonic())  # and again: nothing new, nothing raised
    assert session.poll() == [] and session.weights() is None
    shutil.copytree(backup, run)
    session.look(time.monotonic())
    seen = session.poll()
    assert any(isinstance(m, History) and m.events for m in seen)
    assert states(seen) == ["trainer gone"]
    assert session.weights() is None  # the same checkpoint as before


def test_a_record_that_comes_back_is_read_whole(tmp_path):
    run = make_run(tmp_path, "back", steps=200)
    tail = record.Tail(run)
    first, _ = tail.poll()
    data = (run / record.FILENAME).read_bytes()
    (run / record.FILENAME).unlink()
    assert tail.poll() == (record.Contents(), False) and tail.gone
    (run / record.FILENAME).write_bytes(data)  # the same size, and perhaps the same inode
    again, reset = tail.poll()
    assert reset and again.events == first.events and not tail.gone


def test_a_record_rewritten_by_a_resume_arrives_whole(tmp_path):
    run = make_run(tmp_path, "resumed", steps=500)
    session = WatchSession(run)
    session.look(time.monotonic())
    assert session.poll()[0].events[-1].step == 500
    record.cut(run, 300)  # what a trainer resuming from the checkpoint at step 300 does first
    writer = record.Writer(run, resume_step=300)
    for event in scripted_run(310, 350):
        writer(event)
    writer.close()
    session.look(time.monotonic())
    history = [m for m in session.poll() if isinstance(m, History)]
    assert len(history) == 1
    steps = [e.step for e in history[0].events if isinstance(e, Progress)]
    assert steps == sorted(steps) and steps[-1] == 350 and 490 not in steps


def test_a_checkpoint_caught_mid_write_is_read_later(tmp_path, monkeypatch):
    run = make_run(tmp_path, "torn", steps=200)
    session = WatchSession(run)
    session.look(time.monotonic())
    assert session.weights().step == 200
    # A trainer has committed a new checkpoint and moved its meta.json into place before its weights
    # (as a reader can catch it between two renames): the ids differ, so it is torn.
    meta = checkpoint.read_meta(run)
    torn = {**meta, "step": 400, "checkpoint_id": "0123456789abcdef"}
    (run / checkpoint.META).write_text(json.dumps(torn))
    monkeypatch.setattr(checkpoint.time, "sleep", lambda s: None)  # load's own retries, at once
    session.look(time.monotonic())
    assert session.weights() is None  # never shown half-written
    checkpoint.save(run, tiny_weights(1)[1], {}, {**meta, "step": 400})  # the trainer finishes its write
    session.look(time.monotonic())
    weights = session.weights()
    assert weights.step == 400 and all((weights.tensors[k] == v).all() for k, v in tiny_weights(1)[1].items())


def test_the_lock_probe_reads_and_never_creates(tmp_path):
    path = tmp_path / ".lock"
    assert fsutil.lock_held(path) is None and not path.exists()
    lock = fsutil.Lock(path)
    assert lock.acquire()
    try:
        assert fsutil.lock_held(path) is True
    finally:
        lock.release()
    assert fsutil.lock_held(path) is False


def test_where_the_lock_cannot_tell_news_decides(tmp_path, monkeypatch):
    """A trainer on another machine, its folder mounted here: its lock does not show, its record grows."""
    run = make_run(tmp_path, "remote", steps=200)
    monkeypatch.setattr(fsutil, "on_network_filesystem", lambda path: True)
    session = WatchSession(run, quiet_after=60.0)
    session.look(1000.0)
    assert states(session.poll()) == ["watching"]  # the record changed moments ago
    session.look(1000.0 + 61.0)
    assert states(session.poll()) == ["quiet for 1 min"]
    writer = record.Writer(run, resume_step=200)
    writer(scripted_run(210, 210)[0])
    writer.close()
    session.look(1000.0 + 62.0)
    assert "watching" in states(session.poll())


def test_watch_finds_a_run_before_its_first_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    make_run(root, "older", steps=100)
    young = root / "young"
    writer = record.Writer(young)
    writer.close()
    os.utime(root / "older" / checkpoint.META, (1, 1))
    os.utime(root / "older" / record.FILENAME, (1, 1))
    assert watched_folder("young", root) == young
    assert watched_folder("latest", root) == young
    assert watched_folder(str(root / "older"), root) == root / "older"


# --------------------------------------------------------------------------- the app


@pytest.mark.process
async def test_the_app_watches_a_headless_trainer(text_file, tmp_path, monkeypatch):
    monkeypatch.setattr(playground_module, "FOLLOW_INTERVAL", 0.0)
    with headless_trainer(text_file, tmp_path, *LIVE) as proc:
        run = tmp_path / "checkpoints" / "live"
        wait_for(lambda: (run / record.FILENAME).exists(), what="the run record")
        app = RnnTuiApp(WatchSession(run, interval=0.1), checkpoint_dir=run.parent)
        async with app.run_test(size=SIZE) as pilot:
            header, stats = app.query_one(RunHeader), app.query_one(TrainingStats)
            controls = app.query_one(Playground).controls
            await until(pilot, lambda: header.state == "watching" and (header.step or 0) > 0, "steps")
            await until(pilot, lambda: stats.val is not None, "an evaluation")
            assert "live" in header.info and "lstm 1×32" in header.info
            await until(pilot, lambda: controls.weights_step is not None, "the first weights")
            first = controls.weights_step
            await until(pilot, lambda: controls.weights_step > first, "newer weights")
            status = str(app.query_one("#follow").render())
            assert status == f"following step {controls.weights_step:,}"
            assert app.query_one(Playground).weights.step == controls.weights_step
            for action in ("toggle_pause", "save", "restart"):
                assert app.check_action(action, ()) is False  # not offered: someone else trains this run
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Pause / resume training" not in titles and "Save checkpoint" not in titles
            proc.send_signal(signal.SIGINT)
            await until(pilot, lambda: header.state == "done", "the run to finish")
            await pilot.press("ctrl+q")  # quits at once: the trainer is not ours to stop
        assert proc.wait(30) == 0


async def test_the_app_shows_a_deleted_folder_and_a_rewritten_record(tmp_path):
    run = make_run(tmp_path, "watched", steps=500)
    backup = shutil.copytree(run, tmp_path / "backup")
    app = RnnTuiApp(WatchSession(run, interval=0.05), checkpoint_dir=tmp_path)
    shown = Shown()
    async with app.run_test(size=SIZE, notifications=True, message_hook=shown) as pilot:
        header, chart = app.query_one(RunHeader), app.query_one(LossChart)
        await until(pilot, lambda: chart.train and chart.train[-1][0] == 500, "the record")
        await until(pilot, lambda: app.query_one(Controls).weights_step == 500, "the weights")
        record.cut(run, 300)
        writer = record.Writer(run, resume_step=300)
        for event in scripted_run(310, 330):
            writer(event)
        writer.close()
        await until(pilot, lambda: chart.train[-1][0] == 330, "the rewritten record")
        steps = [s for s, _ in chart.train]
        assert steps == sorted(steps) and 500 not in steps  # the cut-back curve replaced the old one
        shutil.rmtree(run)
        await until(pilot, lambda: header.state == "folder gone", "the folder to be missed")
        await until(pilot, lambda: any("is gone" in n.message for n in shown), "the notice")
        await pilot.press(*"the ")
        out = app.query_one(ConfidenceText)  # the playground carries on: typing there still continues the prompt
        await until(pilot, lambda: out.n_prompt == 4 and len(out.tokens) == 4 + 300, "a continuation of the prompt")
        assert "".join(t.char for t in out.tokens[:4]) == "the "
        shutil.copytree(backup, run)
        await until(pilot, lambda: header.state == "trainer gone" and chart.train[-1][0] == 500, "the folder back")


@pytest.mark.process
def test_watch_on_the_command_line_refuses_a_folder_that_is_not_a_run(tmp_path):
    assert_user_error(rnn_tui("watch", "nothing-here", cwd=tmp_path), "no run named 'nothing-here'")
