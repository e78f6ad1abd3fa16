"""The real `rnn-tui launch` in a real terminal (tmux): it trains, it colours what you type, it quits cleanly."""

import os
import re
import shutil
import sys
import time

import pytest

from tests.conftest import TINY_FLAGS, alive, wait_for
from tests.helpers import STEP, Tmux, descendants

pytestmark = [pytest.mark.process, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


def test_launch_trains_colours_and_quits_cleanly(text_file, tmp_path):
    tmux = Tmux(tmp_path)
    done = tmp_path / "exit-code"
    flags = [*TINY_FLAGS, "--eval-every", "50", "--sample-every", "50", "--run-name", "smoke"]
    command = " ".join([sys.executable, "-m", "rnn_tui", "launch", "--data", str(text_file), *flags])
    tmux(
        "new-session",
        "-d",
        "-s",
        "app",
        "-x",
        "120",
        "-y",
        "40",
        "-c",
        str(tmp_path),
        "-e",
        "COLORTERM=truecolor",
        f"{command}; echo $? > {done}",
    )
    try:
        app_pid = int(tmux("display-message", "-p", "-t", "app", "#{pane_pid}").strip())
        first = tmux.wait_for(
            lambda s: STEP.search(s) and int(STEP.search(s)[1].replace(",", "")) > 0, what="training to start"
        )
        step0 = int(STEP.search(first)[1].replace(",", ""))
        tmux.wait_for(lambda s: int(STEP.search(s)[1].replace(",", "")) > step0, what="the step counter to rise")

        tmux("send-keys", "-t", "app", "-l", "the cat sat")
        screen = tmux.wait_for(lambda s: s.count("the cat sat") >= 2, what="the prompt to be continued")
        coloured = tmux.screen(colours=True)
        plain = [re.sub(r"\x1b\[[\d;]*m", "", line) for line in coloured.splitlines()]
        out_line = next(c for c, p in zip(coloured.splitlines(), plain, strict=True) if "38;2;" in c and "sat" in p)
        assert len(set(re.findall(r"38;2;\d+;\d+;\d+", out_line))) >= 2, "the output should carry several colours"
        assert "following step" in screen

        trainer = descendants(app_pid)
        assert trainer, "the trainer's process should be running"
        tmux("send-keys", "-t", "app", "C-q")
        deadline = time.monotonic() + 60
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.25)
        assert done.exists(), tmux.screen()
        assert done.read_text().strip() == "0"
        wait_for(lambda: not [pid for pid in trainer if alive(pid)], "the trainer's processes to end with the app", 5)
        assert (tmp_path / "checkpoints" / "smoke" / "meta.json").exists()  # quitting saved
    finally:
        tmux("kill-server")


def test_launch_pretrained_plays_at_once(shipped, tmp_path):
    tmux = Tmux(tmp_path)
    done = tmp_path / "exit-code"
    command = f"{sys.executable} -m rnn_tui launch --pretrained shakespeare; echo $? > {done}"
    env = ["-e", "COLORTERM=truecolor", "-e", f"RNN_TUI_MODELS={shipped}"]
    tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "40", "-c", str(tmp_path), *env, command)
    try:
        screen = tmux.wait_for(lambda s: "not training" in s, what="the shipped model to open")
        assert "step 600" in screen and "lstm 2×32" in screen
        tmux("send-keys", "-t", "app", "-l", "the cat")
        tmux.wait_for(lambda s: s.count("the cat") >= 2, what="the prompt to be continued")
        tmux("send-keys", "-t", "app", "C-q")
        wait_for(done.exists, "the app to quit", 30)
        assert done.read_text().strip() == "0"
        assert sorted(os.listdir(tmp_path)) == ["exit-code"]  # no run folder: nothing trained or written
    finally:
        tmux("kill-server")
