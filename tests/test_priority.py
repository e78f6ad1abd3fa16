"""How the app's trainer is scheduled: the priority's text form, and SharedCpu's choice of threads."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnn_tui import priority
from rnn_tui.errors import UserError
from rnn_tui.priority import APP_TRAINER, Priority, SharedCpu


@pytest.mark.parametrize("text", ["nice=19", "nice=10,threads=1", "nice=5,batch,passive", "nice=19,adaptive"])
def test_a_priority_reads_back_from_its_text(text):
    assert str(Priority.parse(text)) == text
    assert Priority.parse(str(Priority.parse(text))) == Priority.parse(text)


def test_default_is_the_apps_choice_and_a_mistake_is_one_line():
    assert Priority.parse("default") == APP_TRAINER
    with pytest.raises(UserError, match="adaptive"):
        Priority.parse("nice=25")


class Machine:
    """A stand-in for /proc/stat, the clock and this process's CPU time."""

    def __init__(self, tmp_path: Path, monkeypatch):
        self.stat = tmp_path / "stat"
        self.now, self.busy, self.own = 0.0, 0.0, 0.0
        self.hz = os.sysconf("SC_CLK_TCK")
        monkeypatch.setattr(priority.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(priority.os, "times", lambda: os.times_result((self.own, 0.0, 0.0, 0.0, 0.0)))
        self.write()

    def write(self) -> None:
        busy = round(self.busy * self.hz)
        self.stat.write_text(f"cpu  {busy} 0 0 1000000 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n")

    def run(self, seconds: float, ours: float, others: float) -> None:
        """`seconds` pass while we use `ours` cores and other programs `others`."""
        self.now += seconds
        self.own += ours * seconds
        self.busy += (ours + others) * seconds
        self.write()


def test_one_thread_while_another_program_wants_a_core_and_all_again_when_it_stops(tmp_path, monkeypatch):
    m = Machine(tmp_path, monkeypatch)
    cpu = SharedCpu(2, interval=2.0, stat=m.stat)
    m.run(1.0, ours=2.0, others=0.0)
    assert cpu.threads() is None  # not yet an interval
    m.run(1.0, ours=2.0, others=0.1)
    assert cpu.threads() is None and cpu.current == 2  # the screen typing a little: keep both
    m.run(2.0, ours=1.0, others=1.0)  # a build starts
    assert cpu.threads() == 1 and cpu.others == pytest.approx(1.0, abs=0.01)
    m.run(2.0, ours=1.0, others=0.9)
    assert cpu.threads() is None  # still busy: stays at one
    m.run(2.0, ours=1.0, others=0.0)  # the build ends: one calm reading is not enough
    assert cpu.threads() is None and cpu.current == 1
    m.run(2.0, ours=1.0, others=0.3)  # neither busy nor calm: the calm readings start again
    assert cpu.threads() is None and cpu.current == 1
    m.run(2.0, ours=1.0, others=0.0)
    assert cpu.threads() is None
    m.run(2.0, ours=1.0, others=0.0)  # two calm readings in a row
    assert cpu.threads() == 2


def test_nothing_changes_where_the_load_cannot_be_read_or_there_is_one_core(tmp_path, monkeypatch):
    m = Machine(tmp_path, monkeypatch)
    missing = SharedCpu(2, stat=tmp_path / "nowhere")
    single = SharedCpu(1, stat=m.stat)
    m.run(10.0, ours=0.5, others=1.0)
    assert missing.threads() is None and single.threads() is None


@pytest.mark.process
@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux's /proc/stat")
def test_a_real_busy_program_is_seen():
    cpu = SharedCpu(2, interval=0.5)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        deadline = time.monotonic() + 20
        while cpu.current != 1:
            assert time.monotonic() < deadline, f"a busy loop went unseen (others: {cpu.others:.2f} cores)"
            cpu.threads()
            time.sleep(0.1)
    finally:
        busy.kill()
        busy.wait()
    assert cpu.others >= 0.5
