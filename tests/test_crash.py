"""kill -9 at random moments and inside every kind of write: the run folder stays whole and readable, --resume
works, at most one checkpoint interval is lost, and once resumed the run ends with the weights and the record of a
run that was never killed.

A few chosen kills run by default; `python -m pytest -m slow tests/test_crash.py` runs 60 random ones.
Each trial is the real `rnn-tui train` in a subprocess (tests/crashpoint.py puts the kill in from outside).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rnn_tui import checkpoint, cli, record
from rnn_tui.events import CheckpointSaved, Evaluation, Finished, RunStarted, Sample
from rnn_tui.train.loop import prepare
from tests.conftest import TINY_FLAGS, cli_env, tiny_plan

ROOT = Path(__file__).resolve().parents[1]
EVERY = 20  # steps between checkpoints: the most a kill may lose
SETTINGS = {"checkpoint_every": EVERY, "eval_every": 10, "sample_every": 25, "eval_chars": 2000}
FLAGS = [*TINY_FLAGS]
for key, value in SETTINGS.items():
    FLAGS += [f"--{key.replace('_', '-')}", str(value)]

pytestmark = pytest.mark.process  # the real `rnn-tui train`, killed


@dataclass
class Kill:
    """Where a trial dies: at the Nth operation (optionally of one kind) and phase, or `seconds` into training."""

    at: str = "0"
    phase: str = "before"
    seconds: float | None = None

    def __str__(self) -> str:
        return f"after {self.seconds:.2f} s of training" if self.seconds is not None else f"at {self.at} ({self.phase})"


class Chain:
    """One run, killed again and again, each time resumed (or, before its first checkpoint, started again)."""

    def __init__(self, data: Path, folder: Path, max_steps: int):
        self.data, self.folder, self.max_steps = data, folder, max_steps
        self.run = folder / "tiny"
        self.stepfile = folder / "step"
        self.saved = 0  # the checkpoint's step after the last trial
        self.log: list[str] = []
        self.stderr = ""

    def command(self) -> list[str]:
        if checkpoint.has_checkpoint(self.run):
            args = ["train", "--resume", "tiny", "--threads", "1"]  # threads belong to the machine: given each time
        else:
            args = ["train", "--data", str(self.data), *FLAGS, "--max-steps", str(self.max_steps)]
            args += ["--run-name", "tiny"]
        return [*args, "--checkpoint-dir", str(self.folder), "--json"]

    def trial(self, kill: Kill) -> int:
        """Run once, dying as `kill` says; check the folder as a user would find it. Returns the exit code."""
        cmd = [sys.executable, "-m", "tests.crashpoint", str(self.stepfile), kill.at, kill.phase, "--", *self.command()]
        self.stepfile.unlink(missing_ok=True)  # not the last trial's figure
        proc = subprocess.Popen(
            cmd,
            cwd=self.folder,
            env=cli_env(PYTHONPATH=str(ROOT)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if kill.seconds is not None:
            deadline = time.monotonic() + 120
            while self.step() < 0 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(kill.seconds)
            proc.kill()
        _, err = proc.communicate(timeout=180)
        self.stderr = err
        self.log.append(f"{kill}: exit {proc.returncode}, at step {self.step()}, checkpoint {self.checkpoint_step()}")
        print(f"{self.folder.name}: {self.log[-1]}", flush=True)  # progress, with -s
        assert proc.returncode in (0, -9), f"{self.log}\n{err}"
        self.check_after(killed=proc.returncode == -9)
        return proc.returncode

    def step(self) -> int:
        """How far the trial's trainer got: -1 before its first step (or before it made the file)."""
        try:
            counter = np.fromfile(self.stepfile, dtype=np.int64)
        except FileNotFoundError:
            return -1
        return int(counter[0]) if len(counter) else -1

    def checkpoint_step(self) -> int:
        return checkpoint.read_meta(self.run)["step"] if checkpoint.has_checkpoint(self.run) else 0

    def check_after(self, killed: bool) -> None:
        """The folder as a reader finds it (nothing recovered yet): whole, readable, at most one interval behind."""
        saved = 0
        if checkpoint.has_checkpoint(self.run):
            saved = checkpoint.load(self.run).step
            if checkpoint.has_checkpoint(self.run / checkpoint.BEST):
                checkpoint.load(self.run / checkpoint.BEST)
            assert [r["name"] for r in checkpoint.list_runs(self.folder)] == ["tiny"]
        contents = record.read(self.run)
        if contents.damaged:  # only the line being written when the process died
            lines = (self.run / record.FILENAME).read_text(errors="replace").split("\n")
            assert contents.damaged == [len(lines) - (lines[-1] == "")], self.log
        assert saved >= self.saved, f"the checkpoint went back: {self.log}"
        if killed and self.step() >= 0:
            assert self.step() - saved <= EVERY, f"lost more than one checkpoint interval: {self.log}"
        self.saved = saved

    def finish(self) -> None:
        """Resume to the end without a kill."""
        assert self.trial(Kill()) == 0, self.log


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    lines = [f"the {w} sat on the mat and the {w} was happy.\n" for w in ("cat", "dog", "bird", "fox", "owl")]
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text("".join(lines) * 200, encoding="utf-8")
    return path


def never_killed(corpus: Path, folder: Path, max_steps: int):
    """The same run straight through, in this process: the weights and record every killed run must end with."""
    with prepare(tiny_plan(corpus, folder, max_steps=max_steps, **SETTINGS)) as t:
        t.run()
    return checkpoint.load(folder / "tiny"), record.read(folder / "tiny").events


def assert_same_run(chain: Chain, reference) -> None:
    """Same weights, bit for bit; the record holds each evaluation and sample once, with the same figures."""
    ckpt_ref, events_ref = reference
    ckpt = checkpoint.load(chain.run)
    assert ckpt.step == ckpt_ref.step == chain.max_steps
    for name, weights in ckpt_ref.model.items():
        np.testing.assert_array_equal(ckpt.model[name], weights, err_msg=f"{name}: {chain.log}")
    contents = record.read(chain.run)
    assert not contents.damaged, chain.log
    events = contents.events
    steps = [e.step for e in events]
    assert steps == sorted(steps), f"the record runs backwards: {chain.log}"

    def figures(evs, kind):
        return [(e.step, e.val_loss) if kind is Evaluation else (e.step, e.text) for e in evs if isinstance(e, kind)]

    for kind in (Evaluation, Sample):
        assert figures(events, kind) == figures(events_ref, kind), f"{kind.__name__}: {chain.log}"
    finished = [e.step for e in events if isinstance(e, Finished)]  # twice if killed after it was done
    assert finished and set(finished) == {chain.max_steps} and isinstance(events[-1], Finished), chain.log
    starts = [e for e in events if isinstance(e, RunStarted)]
    assert not starts[0].resumed and all(s.resumed for s in starts[1:])
    saves = {e.step for e in events if isinstance(e, CheckpointSaved) and not e.best}
    assert {s.step for s in starts[1:]} <= saves | {0}, "a resume starts from a checkpoint"
    assert ckpt.meta["best_val_loss"] == ckpt_ref.meta["best_val_loss"]
    assert not any(p.name.endswith(".tmp") or p.name in (".pending", ".commit") for p in chain.run.iterdir())


def test_kills_inside_each_kind_of_write_lose_at_most_one_interval(corpus, tmp_path, capsys):
    """Half-way through a checkpoint file, at the commit, mid-move, mid record line, and at a random moment."""
    chain = Chain(corpus, tmp_path, max_steps=100)
    assert chain.trial(Kill("write:1", "mid")) == -9  # the very first checkpoint, half written: nothing to resume
    assert not checkpoint.has_checkpoint(chain.run) and 0 <= chain.step() <= EVERY
    assert cli.main(["train", "--resume", "tiny", "--checkpoint-dir", str(tmp_path)]) == 2
    assert "no meta.json" in capsys.readouterr().err
    kills = [
        Kill("write:8", "mid"),  # a checkpoint's second file, half written
        Kill(seconds=0.1),  # a moment into training
        Kill("replace:5", "after"),  # a few renames in: committed, partly moved into place
        Kill("record:12", "mid"),  # half a line of the run record
    ]
    for kill in kills:
        chain.trial(kill)
    chain.finish()
    assert sum("exit -9" in line for line in chain.log) >= 4, chain.log
    assert_same_run(chain, never_killed(corpus, tmp_path / "straight", 100))


@pytest.mark.slow
def test_sixty_random_kills(corpus, tmp_path):
    """Random kills: at any operation of any write (before, half-way, after), or at a random moment of training."""
    rng = random.Random(int(os.environ.get("RNN_TUI_CRASH_SEED", "12")))
    max_steps = 200
    reference = never_killed(corpus, tmp_path / "straight", max_steps)
    probe = Chain(corpus, tmp_path / "probe", max_steps)
    probe.folder.mkdir()
    probe.finish()
    ops = int(re.search(r"crashpoint: (\d+) operations", probe.stderr)[1])  # in a whole run
    kills = finished = 0
    chain_number = 0
    outcomes: list[str] = []
    while kills < 60:
        chain_number += 1
        folder = tmp_path / f"chain{chain_number}"
        folder.mkdir()
        chain = Chain(corpus, folder, max_steps)
        for _ in range(8):  # a few kills per run, then it must finish
            left = max(20, int(ops * (1 - chain.saved / max_steps)))
            if rng.random() < 0.3:
                kill = Kill(seconds=rng.uniform(0, 2.5))
            else:
                kill = Kill(str(rng.randint(1, left)), rng.choice(["before", "mid", "after"]))
            if chain.trial(kill) == -9:
                kills += 1
            else:
                break  # it finished before the kill
        else:  # the last trial was killed, perhaps while resuming a run already done: the user resumes it once more
            chain.finish()
        finished += 1
        assert_same_run(chain, reference)
        outcomes += chain.log
    print(f"{kills} kills in {finished} runs, each resumed to the straight run's weights", *outcomes, sep="\n")
