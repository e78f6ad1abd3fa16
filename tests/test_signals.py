"""Signals and deaths in the app: SIGTERM and SIGINT quit as ctrl+q does, a killed trainer is restarted with one key,
and a trainer whose app was killed saves and exits within seconds. The real `rnn-tui launch`, in tmux."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnn_tui.tui.app import RnnTuiApp
from tests.conftest import TINY_FLAGS, alive, wait_for
from tests.fakes import FakeSession
from tests.helpers import SIZE, STEP, Tmux, descendants, settle

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_quits_the_app_as_ctrl_q_does(sig):
    session = FakeSession()
    app = RnnTuiApp(session, handle_signals=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        os.kill(os.getpid(), sig)
        await settle(pilot)
        assert session.commands == ["stop"]  # the trainer saves first, then the app exits
    assert app.return_code == 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back on exit


def launch(tmux: Tmux, folder: Path, text_file: Path, done: Path, name: str) -> int:
    flags = [*TINY_FLAGS, "--checkpoint-every", "50", "--eval-every", "100", "--sample-every", "100"]
    command = " ".join(
        [sys.executable, "-m", "rnn_tui", "launch", "--data", str(text_file), *flags, "--run-name", name]
    )
    tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "40", "-c", str(folder), "-e", "COLORTERM=truecolor",
         f"{command}; echo $? > {done}; echo SHELL-IS-BACK; sleep 120")  # fmt: skip
    shell = int(tmux("display-message", "-p", "-t", "app", "#{pane_pid}").strip())
    children = wait_for(  # the shell may not have started it yet
        lambda: subprocess.run(["pgrep", "-P", str(shell)], capture_output=True, text=True).stdout.split(),
        "the app to start in the terminal",
        30,
    )
    return int(children[0])


def trainer_of(app_pid: int) -> int:
    for pid in descendants(app_pid):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise AssertionError("no trainer process under the app")


def shown_step(screen: str) -> int:
    found = STEP.search(screen)
    return int(found[1].replace(",", "")) if found else -1


@pytest.mark.process
def test_a_killed_trainer_restarts_with_one_key_and_sigterm_quits_cleanly(text_file, tmp_path):
    tmux, done = Tmux(tmp_path), tmp_path / "exit-code"
    run = tmp_path / "checkpoints" / "sig"
    try:
        app = launch(tmux, tmp_path, text_file, done, "sig")
        tmux.wait_for(lambda s: shown_step(s) > 60, what="training past the first checkpoint")
        saved = json.loads((run / "meta.json").read_text())["step"]
        trainer = trainer_of(app)
        os.kill(trainer, signal.SIGKILL)
        screen = tmux.wait_for(lambda s: "Press ctrl+r to restart" in s, what="the app to say the trainer died")
        assert "failed" in screen and "stopped unexpectedly" in screen
        tmux("send-keys", "-t", "app", "C-r")  # one key, from the prompt where the keyboard is
        tmux.wait_for(lambda s: "training" in s.splitlines()[0] and trainer_of(app) != trainer, what="a new trainer")
        restarted = tmux.wait_for(lambda s: shown_step(s) > saved, what="training to go on")
        assert "Traceback" not in restarted
        step = shown_step(restarted)
        os.kill(app, signal.SIGTERM)  # as `kill` or a shutdown would
        tmux.wait_for(lambda s: "SHELL-IS-BACK" in s, what="the app to quit")
        assert done.read_text().strip() == "0"
        flags = tmux("display-message", "-p", "-t", "app", "#{alternate_on} #{cursor_flag} #{mouse_any_flag}")
        assert flags.split() == ["0", "1", "0"], "the terminal is restored: main screen, cursor shown, mouse off"
        assert "Traceback" not in tmux.screen() and "leaked" not in tmux.screen()  # the dead trainer's memory too
        assert json.loads((run / "meta.json").read_text())["step"] >= step  # the trainer saved before the app exited
        assert not [pid for pid in descendants(app) if alive(pid)]
        assert "Traceback" not in (run / "train.log").read_text().split("rnn-tui trainer")[-1]
    finally:
        tmux("kill-server")


@pytest.mark.process
def test_a_trainer_whose_app_is_killed_saves_and_exits_within_seconds(text_file, tmp_path):
    tmux, done = Tmux(tmp_path), tmp_path / "exit-code"
    try:
        app = launch(tmux, tmp_path, text_file, done, "orphan")
        screen = tmux.wait_for(lambda s: shown_step(s) > 0, what="training to start")
        trainer = trainer_of(app)
        step = shown_step(tmux.wait_for(lambda s: shown_step(s) > shown_step(screen), what="more steps"))
        os.kill(app, signal.SIGKILL)
        killed = time.monotonic()
        while alive(trainer) and time.monotonic() - killed < 30:
            time.sleep(0.05)
        took = time.monotonic() - killed
        print(f"the trainer saved and exited {took:.2f} s after its app was killed")
        assert not alive(trainer), "the trainer outlived its app"
        assert took < 10, f"the trainer took {took:.1f} s to notice, save and exit"
        meta = json.loads((tmp_path / "checkpoints" / "orphan" / "meta.json").read_text())
        assert meta["step"] >= step  # it saved where it was, not at the last scheduled checkpoint
    finally:
        tmux("kill-server")
