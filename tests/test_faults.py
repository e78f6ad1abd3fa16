"""Faults from outside: a disk that fills up mid-write, folders that cannot be written, a run record that cannot be
written, two processes on one run, and readers while a trainer saves."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from rnn_tui import checkpoint, cli, record
from rnn_tui.errors import UserError
from rnn_tui.events import CheckpointSaved, Notice
from rnn_tui.runs import plan
from rnn_tui.train.loop import prepare
from tests.conftest import TINY_FLAGS, cli_env, resume_plan, tiny_plan, tiny_request, until, wait_for

# --------------------------------------------------------------------------- a disk that fills up


class FullDisk:
    """Stands in for `open` inside checkpoint.py: while `full`, writes stop with ENOSPC after `budget` bytes."""

    def __init__(self, budget: int):
        self.budget, self.full, self.written = budget, False, 0

    def __call__(self, path, mode="r", *args, **kwargs):
        fh = open(path, mode, *args, **kwargs)  # noqa: SIM115 - handed back to the caller's `with`
        disk = self

        class File:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                fh.close()

            def write(self, data):
                if disk.full and disk.written + len(data) > disk.budget:
                    fh.write(data[: max(0, disk.budget - disk.written)])  # part of it lands, as on a real disk
                    fh.flush()
                    disk.written = disk.budget
                    raise OSError(errno.ENOSPC, "No space left on device")
                disk.written += len(data)
                return fh.write(data)

            def __getattr__(self, name):
                return getattr(fh, name)

        return File()


def checkpoint_bytes(run: Path) -> int:
    return sum((run / name).stat().st_size for name in (checkpoint.MODEL, checkpoint.OPTIMIZER, checkpoint.META))


@pytest.mark.parametrize("where", [0.0, 0.1, 0.5, 0.9, 0.99])  # how far into the checkpoint's bytes the disk fills
def test_a_checkpoint_that_fills_the_disk_leaves_the_last_one_whole(text_file, tmp_path, monkeypatch, where):
    events, checks = [], []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=30, checkpoint_every=10, eval_every=1000)) as t:
        run = t.run_dir
        disk = FullDisk(0)
        monkeypatch.setattr(checkpoint, "open", disk, raising=False)

        def on_event(event):
            events.append(event)
            if isinstance(event, CheckpointSaved) and event.step == 10:  # the next save fills the disk
                disk.budget, disk.written, disk.full = int(where * checkpoint_bytes(run)), 0, True
            if isinstance(event, Notice) and event.level == "error":  # what a reader finds right after the failure
                disk.full = False
                checks.append((checkpoint.load(run).step, sorted(p.name for p in run.iterdir())))

        t._on_event = on_event
        assert t.run().step == 30  # training went on
    failures = [e for e in events if isinstance(e, Notice) and e.level == "error"]
    assert len(failures) == 1 and failures[0].step == 20
    assert "No space left on device" in failures[0].message and "previous one is whole" in failures[0].message
    assert "free some space" in failures[0].message
    (step_then, files_then), *_ = checks
    assert step_then == 10  # the previous checkpoint, whole and readable
    assert ".pending" not in files_then and ".commit" not in files_then  # the partial files gave their space back
    assert sorted({e.step for e in events if isinstance(e, CheckpointSaved) and not e.best}) == [10, 30]
    assert checkpoint.load(run).step == 30


def test_a_failing_fsync_or_rename_keeps_the_last_checkpoint(text_file, tmp_path, monkeypatch):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=10, eval_every=1000)) as t:
        t.run()
        real_fsync, real_replace = os.fsync, os.replace
        for target, error in ((os, "fsync"), (os, "replace")):

            def failing(*args, _name=error, **kwargs):
                raise OSError(errno.EIO, "Input/output error")

            monkeypatch.setattr(target, error, failing)
            with pytest.raises(OSError):
                checkpoint.save(t.run_dir, {}, {}, {})
            monkeypatch.setattr(os, "fsync", real_fsync)
            monkeypatch.setattr(os, "replace", real_replace)
            assert checkpoint.load(t.run_dir).step == 10
            assert not (t.run_dir / ".pending").exists()


async def test_the_app_says_that_saving_failed(text_file, tmp_path, monkeypatch, settled):
    """The trainer's own notice, shown by the app as an error."""
    from rnn_tui.tui.app import RnnTuiApp
    from tests.fakes import FakeSession
    from tests.helpers import Shown, settle

    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=10, eval_every=1000), events.append) as t:
        monkeypatch.setattr(checkpoint, "open", FullDisk(0), raising=False)
        checkpoint.open.full = True
        t.run()
    notice = next(e for e in events if isinstance(e, Notice) and e.level == "error")
    session = FakeSession()
    app = RnnTuiApp(session)
    shown = Shown()
    async with settled(app, notifications=True, message_hook=shown) as pilot:
        session.inbox.append(notice)
        await settle(pilot)
        failed = [n for n in shown if "saving the checkpoint failed" in n.message]
        assert failed and failed[0].severity == "error"


# --------------------------------------------------------------------------- folders that cannot be written


def _without_root_powers() -> None:
    """In a child before exec: drop CAP_DAC_OVERRIDE, so that even root respects a folder's permissions."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(24, 1, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, CAP_DAC_OVERRIDE
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@contextlib.contextmanager
def read_only_folder():
    """A read-only folder, and the subprocess arguments under which it really is one (root writes anywhere)."""
    top = Path(tempfile.mkdtemp(prefix="rnn-tui-ro-"))
    folder = top / "ro"
    try:
        folder.mkdir()
        (folder / "text.txt").write_text("the cat sat on the mat.\n" * 400)
        folder.chmod(0o555)
        unprivileged = {}
        if os.geteuid() == 0:
            unprivileged = {"preexec_fn": _without_root_powers}
            try:
                subprocess.run(["true"], check=True, **unprivileged)
            except (OSError, subprocess.SubprocessError):
                pytest.skip("running as root, and root's powers cannot be dropped here")
        yield folder, unprivileged
    finally:
        with contextlib.suppress(OSError):
            folder.chmod(0o755)
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.process
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_read_only_checkpoint_folder_is_refused_before_training(text_file):
    with read_only_folder() as (folder, unprivileged):
        for command in ("train", "launch"):
            start = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "rnn_tui", command, "--data", str(folder / "text.txt"), *TINY_FLAGS],
                cwd=folder,  # the default ./checkpoints is in the read-only folder
                env=cli_env(),
                capture_output=True,
                text=True,
                timeout=120,
                **unprivileged,
            )
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
            assert "not writable" in proc.stderr and "--checkpoint-dir" in proc.stderr
            assert time.monotonic() - start < 60  # at once, not after training
        assert not (folder / "checkpoints").exists()


def test_a_checkpoint_dir_that_is_a_file_is_refused(text_file, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert cli.main(["train", "--data", str(text_file), "--checkpoint-dir", str(tmp_path / "file" / "runs")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_resume_in_a_read_only_folder_is_refused(text_file, tmp_path, monkeypatch):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=5)) as t:
        t.run()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(checkpoint.tempfile, "TemporaryFile", read_only)
    with pytest.raises(UserError, match="not writable.*Read-only file system"):
        resume_plan(tmp_path)


# --------------------------------------------------------------------------- the run record


def test_a_run_record_that_cannot_be_written_is_reported_and_training_goes_on(text_file, tmp_path, monkeypatch):
    events = []
    with prepare(tiny_plan(text_file, tmp_path, max_steps=40, checkpoint_every=10), events.append) as t:
        write = record.Writer._write

        def disk_full(self, event):
            if t.step >= 15:
                raise OSError(errno.ENOSPC, "No space left on device")
            write(self, event)

        monkeypatch.setattr(record.Writer, "_write", disk_full)
        assert t.run().step == 40
    errors = [e.message for e in events if isinstance(e, Notice) and e.level == "error"]
    assert len(errors) == 1 and "cannot write the run record (No space left on device)" in errors[0]
    assert checkpoint.load(tmp_path / "tiny").step == 40  # checkpoints went on
    monkeypatch.undo()
    kept = record.read(tmp_path / "tiny").events
    assert kept and max(e.step for e in kept) < 15
    with prepare(resume_plan(tmp_path, max_steps=45)) as t:  # and the run resumes
        assert t.run().step == 45


def test_a_run_record_in_the_way_is_one_line(text_file, tmp_path, capsys):
    with prepare(tiny_plan(text_file, tmp_path, max_steps=5)) as t:
        t.run()
    (tmp_path / "tiny" / record.FILENAME).unlink()
    (tmp_path / "tiny" / record.FILENAME).mkdir()
    assert cli.main(["train", "--resume", "tiny", "--checkpoint-dir", str(tmp_path), "--max-steps", "8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "events.jsonl" in err


# --------------------------------------------------------------------------- two processes on one run


def start_trainer(text_file: Path, folder: Path, *flags: str) -> subprocess.Popen:
    args = ["train", "--data", str(text_file), *TINY_FLAGS, "--run-name", "tiny", "--checkpoint-dir", str(folder)]
    return subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", *args, "--eval-every", "100000", "--sample-every", "100000", *flags],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.process
def test_a_second_train_or_launch_is_refused_and_a_crash_frees_the_run(text_file, tmp_path, capsys):
    trainer = start_trainer(text_file, tmp_path, "--checkpoint-every", "5")
    try:
        wait_for(lambda: checkpoint.has_checkpoint(tmp_path / "tiny"), what="the first checkpoint")
        for command in ("train", "launch"):
            assert cli.main([command, "--resume", "tiny", "--checkpoint-dir", str(tmp_path)]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"being trained by another process (pid {trainer.pid})" in err
            assert (
                cli.main([command, "--data", str(text_file), "--run-name", "tiny", "--checkpoint-dir", str(tmp_path)])
                == 2
            )
            assert "already exists" in capsys.readouterr().err
    finally:
        trainer.kill()
        trainer.wait()
    step = checkpoint.load(tmp_path / "tiny").step
    run_plan = resume_plan(tmp_path, max_steps=step + 5)  # free at once: the lock died with its process
    with prepare(run_plan) as t:
        assert t.run().step == step + 5


def test_a_new_run_that_has_not_saved_yet_is_still_locked(text_file, tmp_path):
    with prepare(tiny_plan(text_file, tmp_path)), pytest.raises(UserError, match="being trained by another process"):
        plan(tiny_request(text_file, tmp_path))


@pytest.mark.process
def test_readers_never_see_a_half_written_checkpoint(text_file, tmp_path, capsys):
    """`sample` and the checkpoint reader in a loop, while a trainer saves after every step; then SIGTERM saves."""
    trainer = start_trainer(text_file, tmp_path, "--checkpoint-every", "1")
    run = tmp_path / "tiny"
    try:
        wait_for(lambda: checkpoint.has_checkpoint(run), what="the first checkpoint")
        steps = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            ckpt = checkpoint.load(run)
            assert all(np.isfinite(a).all() for a in ckpt.model.values())
            assert ckpt.meta["checkpoint_id"] and ckpt.optimizer
            steps.append(ckpt.step)
        for seed in range(3):
            assert cli.main(["sample", "tiny", "--checkpoint-dir", str(tmp_path), "--length", "20"]) == 0
            assert cli.main(["sample", "tiny", "--checkpoint-dir", str(tmp_path), "--seed", str(seed)]) == 0
        capsys.readouterr()
        print(f"{len(steps)} loads of {len(set(steps))} checkpoints while the trainer saved after every step")
        assert len(set(steps)) >= 5, "the trainer should have saved many times while we read"
        assert steps == sorted(steps)
        assert trainer.poll() is None
        trainer.send_signal(signal.SIGTERM)
        _, err = trainer.communicate(timeout=60)
    finally:
        trainer.kill()
    assert trainer.returncode == 0, err
    assert "stopping after this step and saving" in err and "Traceback" not in err
    meta = json.loads((run / checkpoint.META).read_text())
    assert meta["step"] >= steps[-1]


async def test_a_restart_that_is_refused_is_shown_and_can_be_tried_again(settled):
    from rnn_tui.tui.app import RnnTuiApp
    from tests.fakes import FakeSession
    from tests.helpers import Shown, settle

    class Taken(FakeSession):
        def restart(self):
            self.commands.append("restart")
            raise UserError("run 'demo' is being trained by another process (pid 4242); wait for it to finish")

    session = Taken()
    app = RnnTuiApp(session)
    shown = Shown()
    async with settled(app, notifications=True, message_hook=shown) as pilot:
        session.die()
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.state == "failed" and app.is_running
        await until(pilot, lambda: any("pid 4242" in n.message and n.severity == "error" for n in shown), "why")
        await pilot.press("ctrl+r")  # still offered
        await settle(pilot)
        assert session.commands == ["restart", "restart"]


async def test_a_session_that_cannot_start_is_shown_not_raised():
    from rnn_tui.tui.app import RnnTuiApp
    from tests.fakes import FakeSession
    from tests.helpers import SIZE, Shown

    class Newer(FakeSession):
        def start(self):
            raise UserError("events.jsonl is run-record format 9, newer than this rnn-tui reads (1); upgrade")

    app = RnnTuiApp(Newer())
    shown = Shown()
    async with app.run_test(size=SIZE, notifications=True, message_hook=shown) as pilot:
        # The notice is a message: wait for it, not for a fixed time.
        await until(pilot, lambda: any("upgrade" in n.message for n in shown), "the failed start", 15)
        assert app.state == "failed" and app.is_running
