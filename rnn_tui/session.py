"""Sessions: how the app reaches a run. Torch-free: the app process never imports PyTorch.

The app depends only on `Session`: events to drain (events.py), the newest weights, and
commands. Two kinds:

- `LocalSession` trains: it spawns a child process that runs the trainer (train/worker.py).
  Commands go in through a queue; events come out through another, in batches at most
  ten times a second, so the app drains them without ever blocking. Weights are published
  into shared memory (shm.py). The child writes its output into the run's train.log, runs
  at a low CPU priority, and stops (saving) when its parent dies. A restart spawns a new
  child.
- `FolderSession` shows a saved run: its record and its checkpoint, read once when opened.
- `WatchSession` tails a run that another process trains (`rnn-tui watch`), and never writes.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rnn_tui import checkpoint, fsutil, record
from rnn_tui.config import ModelConfig
from rnn_tui.errors import UserError
from rnn_tui.events import (
    Evaluation,
    Event,
    Finished,
    History,
    Notice,
    Progress,
    RunStarted,
    TrainerFailed,
    TrainerState,
)
from rnn_tui.priority import APP_TRAINER, Priority
from rnn_tui.runs import RunPlan, RunSpec, plan
from rnn_tui.stdio import child_output

if TYPE_CHECKING:  # NumPy comes with the first weights, after the app's first frame (tests/test_startup.py)
    import numpy as np

    from rnn_tui import shm
    from rnn_tui.text.vocab import Vocab

EVENT_INTERVAL = 0.1  # seconds between event batches (10 Hz)
WORKER = "rnn_tui.train.worker"  # the child's module: imported there, never here (it imports PyTorch)


@dataclass
class Weights:
    version: int
    step: int
    config: ModelConfig
    vocab: Vocab
    tensors: dict[str, np.ndarray] = field(repr=False)

    @classmethod
    def of(cls, ckpt: checkpoint.Checkpoint, version: int = 0) -> Weights:
        """A checkpoint's weights, with the config and vocabulary it parsed."""
        return cls(version, ckpt.step, ckpt.config, ckpt.vocab, ckpt.model)


class Session(Protocol):
    """What the app needs from a run."""

    controllable: bool  # pause, save, stop and restart mean something
    finished: bool  # the run will send nothing more

    def start(self) -> None: ...
    def poll(self) -> list[Event]: ...
    def weights(self) -> Weights | None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def save(self) -> None: ...
    def stop(self) -> None: ...
    def restart(self) -> None: ...
    def close(self) -> None: ...


def history_of(run_dir: Path, upto_step: int | None = None, meta: dict | None = None) -> list[Event]:
    """A run's past as events: its record, or for a folder from before records, what its meta.json kept
    (`meta`, where the caller has read it already)."""
    contents = record.read(run_dir, upto_step)
    events = list(contents.events)
    if contents.damaged:
        lines = ", ".join(map(str, contents.damaged[:5]))
        events.append(Notice(upto_step or 0, f"skipped damaged lines of {record.FILENAME} (line {lines})"))
    if not contents.events and (meta is not None or (run_dir / checkpoint.META).exists()):
        meta = meta if meta is not None else checkpoint.read_meta(run_dir)
        events.append(_started_from_meta(run_dir, meta))
        old = meta.get("history") or {}  # run format 1 kept a thinned curve in meta.json
        events += [Progress(int(s), 0, float(v), 0.0, 0.0, 0.0) for s, v in old.get("train", [])]
        events += [Evaluation(int(s), float(v), float(v), False, 0.0, 0.0) for s, v in old.get("val", [])]
        events.sort(key=lambda e: e.step)
    return events


def _started_from_meta(run_dir: Path, meta: dict) -> RunStarted:
    return RunStarted(
        meta["step"],
        str(run_dir),
        meta.get("corpus") or {},
        meta.get("model") or {},
        meta.get("train") or {},
        int(meta.get("params", 0)),
        str(meta.get("device", "?")),
        resumed=True,
        time=str(meta.get("updated", "")),
    )


# --------------------------------------------------------------------------- training in a child process


@dataclass
class Ready:
    """From the child: the trainer is built; where its weights are published."""

    shm_name: str
    layout: shm.Layout
    model: dict
    vocab: list[str]


class _Child:
    """One trainer process: spawned on creation, its queues, and the weights it publishes. It is not started
    again: a restart makes a new one."""

    def __init__(self, ctx: BaseContext, plan: RunPlan, log_path: Path | None, priority: Priority):
        # The child's fds 1 and 2 are its log from its first instruction: nothing it says can reach the
        # screen, or textual-serve's protocol on the app's stdout.
        with child_output(log_path):
            self.commands = ctx.Queue()
            self.events = ctx.Queue()
            log = str(log_path) if log_path else None
            self.process = ctx.Process(
                target=_run_worker,
                name="rnn-tui-trainer",
                daemon=True,
                args=(WORKER, priority.environment(), plan, self.commands, self.events, log, priority),
            )
            self.process.start()
        self.reader: shm.Reader | None = None
        self.model: tuple[ModelConfig, Vocab] | None = None

    def attach(self, ready: Ready) -> None:
        """Take the child's word that its trainer is built: its model, and where its weights are."""
        from rnn_tui import shm
        from rnn_tui.text.vocab import Vocab

        self.model = (ModelConfig.from_dict(ready.model), Vocab(ready.vocab))
        try:  # the child owns the segment and unlinks it; we share its resource tracker
            self.reader = shm.Reader(ready.shm_name, ready.layout)
        except FileNotFoundError:
            self.reader = None

    def send(self, command: str) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self.commands.put(command)

    def close(self, timeout: float) -> None:
        """Stop the process (it saves first) and wait for it; kill it if it does not go."""
        self.send("stop")
        self.process.join(timeout)
        for end in (self.process.terminate, self.process.kill):
            if self.process.is_alive():
                end()
                self.process.join(3)
        if self.reader is not None:  # a killed child could not unlink its weights' segment
            self.reader.close(unlink=True)
            self.reader = None
        for q in (self.commands, self.events):
            with contextlib.suppress(Exception):
                q.cancel_join_thread()
                q.close()


class LocalSession:
    """Trains `plan` in a spawned child process; a restart trains the run on in a new one."""

    controllable = True

    def __init__(self, plan: RunPlan, log_path: Path | None = None, priority: Priority = APP_TRAINER):
        self.plan = plan
        self.log_path = log_path
        self.priority = priority
        self.finished = False
        self._ctx = mp.get_context("spawn")
        self._child: _Child | None = None
        self._inbox: list[Event] = []

    def start(self) -> None:
        """Spawn the trainer (once: the app starts it right after its first frame, before the panels load)."""
        if self._child is not None:
            return
        if self.plan.resumed:
            self._inbox.append(History(history_of(self.plan.run_dir, self.plan.resume_step)))
        self._child = _Child(self._ctx, self.plan, self.log_path, self.priority)

    @property
    def alive(self) -> bool:
        return self._child is not None and self._child.process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._child.process.pid if self._child else None

    def poll(self) -> list[Event]:
        """Everything the child has sent since the last call. Never blocks."""
        out, self._inbox = self._inbox, []
        child = self._child
        while child is not None:
            try:
                batch = child.events.get_nowait()
            except (queue.Empty, EOFError, OSError):
                break
            for msg in batch:
                if isinstance(msg, Ready):
                    child.attach(msg)
                else:
                    out.append(msg)
        if any(isinstance(m, Finished | TrainerFailed) for m in out):
            self.finished = True
        if not out and not self.finished and child is not None and not child.process.is_alive():
            self.finished = True
            out.append(
                TrainerFailed(
                    f"the trainer stopped unexpectedly (exit code {child.process.exitcode}); "
                    f"see {self.log_path or 'train.log'}",
                    restartable=(self.plan.run_dir / checkpoint.META).exists(),
                )
            )
        return out

    def weights(self) -> Weights | None:
        """A copy of the newest published weights, if they changed since the last call."""
        child = self._child
        if child is None or child.reader is None:
            return None
        got = child.reader.read()
        if got is None:
            return None
        version, step, tensors = got
        return Weights(version, step, *child.model, tensors)

    def _send(self, command: str) -> None:
        if self._child is not None:
            self._child.send(command)

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def save(self) -> None:
        self._send("save")

    def stop(self) -> None:
        self._send("stop")

    def restart(self) -> None:
        """Train the run on from its last checkpoint, in a new child (after the trainer died).

        A run that cannot be resumed (its text is gone, another process took it) is a UserError, and
        the user may try again.
        """
        self.close()
        self.plan = plan(RunSpec(resume=str(self.plan.run_dir), train=self.plan.train))
        self.finished, self._child = False, None
        self.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the child (it saves first) and wait for it; kill it if it does not go."""
        if self._child is not None:
            self._child.close(timeout)


def _run_worker(module: str, environment: dict[str, str], *args: object) -> None:
    """The child's entry point: import the worker there (it imports PyTorch), never in the app."""
    import importlib

    os.environ.update(environment)  # before PyTorch loads
    importlib.import_module(module).main(*args)


# --------------------------------------------------------------------------- a run folder


class FolderSession:
    """A saved run, not training: its history from the record and its weights from the checkpoint."""

    controllable = False
    finished = True

    def __init__(self, run_dir: Path, ckpt: checkpoint.Checkpoint, history: list[Event]):
        self.run_dir = Path(run_dir)
        self._inbox: list[Event] = []
        self._history = history
        self._weights: Weights | None = Weights.of(ckpt, version=1)

    @classmethod
    def open(cls, run_dir: Path | str) -> FolderSession:
        """Read a run folder once: its checkpoint and its record (a damaged one is a UserError here, not in the app)."""
        run_dir = Path(run_dir)
        ckpt = checkpoint.load(run_dir, optimizer=False)
        return cls(run_dir, ckpt, history_of(run_dir, meta=ckpt.meta))

    def start(self) -> None:
        self._inbox += [History(self._history), TrainerState("not training")]

    def poll(self) -> list[Event]:
        out, self._inbox = self._inbox, []
        return out

    def weights(self) -> Weights | None:
        weights, self._weights = self._weights, None
        return weights

    def pause(self) -> None:
        """Nothing trains here: the app does not offer it."""

    resume = save = stop = restart = close = pause


# --------------------------------------------------------------------------- a run another process trains

WATCH_INTERVAL = 0.5  # seconds between looks at the folder
LOCK_INTERVAL = 2.0  # seconds between probes of the trainer's lock
QUIET_AFTER = 300.0  # seconds without news after which a run whose lock cannot be read is called quiet
CHECKPOINT_PATIENCE = 20  # failed reads of a changed checkpoint before the user is told (it is retried anyway)
ENDED = ("done", "diverged", "trainer gone", "folder gone")


class WatchSession:
    """Follows a run folder that another process trains (`rnn-tui watch`), and never writes into it.

    A thread looks at the folder every half second: new lines of the record become events (a
    rewritten record, after a resume, arrives whole as `History`), a new checkpoint becomes the
    newest weights (a checkpoint caught mid-write is read again later), and the trainer's state
    comes from its lock: held means training; free, after it was held, means the trainer is
    gone. Where the lock cannot tell (no lock file, no flock, a network mount where another
    machine's lock does not show), a run whose record has not grown for five minutes is "quiet".
    """

    controllable = False

    def __init__(self, run_dir: Path, *, interval: float = WATCH_INTERVAL, quiet_after: float = QUIET_AFTER):
        self.run_dir = Path(run_dir)
        self.interval = interval
        self.quiet_after = quiet_after
        self.finished = False
        self.state = ""
        self._tail = record.Tail(self.run_dir)
        self._mutex = threading.Lock()
        self._inbox: list[Event] = []
        self._newest: Weights | None = None  # weights not yet taken by the app
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loaded = False  # the record has been delivered once
        self._ended: str | None = None  # "done" or "diverged" if the record's last word is a `done` event
        self._last_news: float | None = None
        self._held_once = False
        self._held: bool | None = None
        self._last_probe = -math.inf
        self._network: bool | None = None
        self._looked = False
        self._checkpoint_seen: tuple | None = None
        self._checkpoint_id: str | None = None
        self._checkpoint_failures = 0
        self._version = 0
        self._told: set[str] = set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="rnn-tui-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.look(time.monotonic())
            except Exception as exc:  # a folder that misbehaves is reported, and looked at again
                self._tell(f"cannot read {self.run_dir}: {exc}", "error")
            self._stop.wait(self.interval)

    def look(self, now: float) -> None:
        """One look at the folder: new events, the trainer's state, a new checkpoint."""
        events = self._read_record(now)
        state = self._state(now)
        if state != self.state:
            self.state = state
            self.finished = state in ENDED
            events.append(TrainerState(state))
            if state == "trainer gone":
                events.append(Notice(0, f"the trainer of {self.run_dir.name} stopped without finishing the run"))
            elif state == "folder gone":
                events.append(Notice(0, f"{self.run_dir} is gone (deleted or unmounted)", "error"))
        weights = self._read_checkpoint() if state != "folder gone" else None
        with self._mutex:
            self._inbox += events
            if weights is not None:
                self._newest = weights

    def _read_record(self, now: float) -> list[Event]:
        try:
            contents, reset = self._tail.poll()
        except (OSError, UserError) as exc:
            self._tell(str(exc), "error")
            return []
        if not contents.events and not contents.damaged and not reset:
            return []
        if self._last_news is None and not self._loaded:  # the first look: how old is the news?
            with contextlib.suppress(OSError):
                age = max(0.0, time.time() - (self.run_dir / record.FILENAME).stat().st_mtime)
                self._last_news = now - age
        else:
            self._last_news = now
        out: list[Event] = []
        if contents.damaged:
            lines = ", ".join(map(str, contents.damaged[:5]))
            out.append(Notice(0, f"skipped damaged lines of {record.FILENAME} (line {lines})"))
        if reset or not self._loaded:
            self._loaded = True
            self._ended = None
            out.insert(0, History(contents.events))
        else:
            out[:0] = contents.events
        for event in contents.events:
            if isinstance(event, RunStarted):
                self._ended = None
            elif isinstance(event, Finished):
                self._ended = "diverged" if event.reason == "diverged" else "done"
        return out

    def _state(self, now: float) -> str:
        if not self.run_dir.is_dir():
            return "folder gone"
        if not self._looked:  # in the watcher's thread: a hung mount must not hang the app
            self._looked = True
            self._network = fsutil.on_network_filesystem(self.run_dir)
        if now - self._last_probe >= LOCK_INTERVAL:
            self._last_probe = now
            self._held = fsutil.lock_held(self.run_dir / checkpoint.LOCK)
            self._held_once = self._held_once or bool(self._held)
        if self._held:
            return "watching"
        if self._ended:
            return self._ended
        lock_tells = self._held is False and (self._held_once or not self._network)
        if lock_tells:
            return "trainer gone"
        quiet = None if self._last_news is None else now - self._last_news
        if quiet is not None and quiet < self.quiet_after:
            return "watching"
        return "quiet" if quiet is None else f"quiet for {int(quiet // 60)} min"

    def _read_checkpoint(self) -> Weights | None:
        """The newest checkpoint's weights, if it changed and is whole; a torn one is read again later."""
        seen = []
        for name in (f".commit/{checkpoint.META}", checkpoint.META):
            try:
                st = (self.run_dir / name).stat()
            except OSError:
                continue
            seen.append((name, st.st_ino, st.st_mtime_ns, st.st_size))
        if not seen or tuple(seen) == self._checkpoint_seen:
            return None
        try:
            ckpt = checkpoint.load(self.run_dir, optimizer=False)
        except (UserError, OSError) as exc:
            self._checkpoint_failures += 1
            if self._checkpoint_failures == CHECKPOINT_PATIENCE:
                self._tell(f"cannot read the newest checkpoint yet ({exc}); trying again", "warning")
            return None
        self._checkpoint_seen, self._checkpoint_failures = tuple(seen), 0
        if ckpt.meta.get("checkpoint_id") == self._checkpoint_id:
            return None
        self._checkpoint_id = ckpt.meta.get("checkpoint_id")
        self._version += 1
        return Weights.of(ckpt, version=self._version)

    def _tell(self, message: str, level: str) -> None:
        """A notice, once per message."""
        if message not in self._told:
            self._told.add(message)
            with self._mutex:
                self._inbox.append(Notice(0, message, level))

    def poll(self) -> list[Event]:
        with self._mutex:
            out, self._inbox = self._inbox, []
        return out

    def weights(self) -> Weights | None:
        with self._mutex:
            newest, self._newest = self._newest, None
        return newest

    def pause(self) -> None:
        """Someone else trains this run: the app does not offer it."""

    resume = save = stop = restart = pause

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)  # a hung network mount keeps its daemon thread, not the app


def watched_folder(run: str, checkpoint_dir: Path | str = checkpoint.CHECKPOINT_DIR) -> Path:
    """The folder `rnn-tui watch RUN` follows: a run folder or name (one whose first checkpoint is still
    to come counts, by its record), or `latest`, the run whose record or checkpoint changed last."""
    root = Path(checkpoint_dir)
    if run == "latest" and root.is_dir():
        changed = [
            (max(f.stat().st_mtime for f in files), folder)
            for folder in root.iterdir()
            if (files := [f for f in (folder / record.FILENAME, folder / checkpoint.META) if f.is_file()])
        ]
        if changed:
            return max(changed)[1]
    for candidate in (Path(run), root / run):
        if (candidate / record.FILENAME).is_file():
            return candidate
    return checkpoint.resolve(run, root)
