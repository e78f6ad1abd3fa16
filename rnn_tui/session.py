"""Sessions: how the app reaches a run. Torch-free: the app process never imports PyTorch.

The app depends only on `Session`: events to drain (events.py), the newest weights, and
commands. Two kinds:

- `LocalSession` trains: it spawns a child process that runs the trainer (worker.py).
  Commands go in through a queue; events come out through another, in batches at most
  ten times a second, so the app drains them without ever blocking. Weights are published
  into shared memory under a sequence lock: the child bumps a counter to odd, copies, and
  bumps it to even; a reader copies only a stable, even version. The child writes its
  output into the run's train.log, runs at a low CPU priority, and stops (saving) when
  its parent dies.
- `FolderSession` opens a run folder: its record and its checkpoint. With `follow` it
  tails a run that another process trains (`rnn-tui watch`), and never writes.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import sys
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from pathlib import Path
from typing import Protocol

import numpy as np

from rnn_tui import checkpoint, record
from rnn_tui.config import ModelConfig
from rnn_tui.corpus import Vocab
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
from rnn_tui.runs import RunPlan, RunRequest, plan

EVENT_INTERVAL = 0.1  # seconds between event batches (10 Hz)
HEADER = 2  # int64s before the weights in shared memory: sequence counter, step
WORKER = "rnn_tui.worker"  # the child's module: imported there, never here (it imports PyTorch)


@dataclass
class Weights:
    version: int
    step: int
    config: ModelConfig
    vocab: Vocab
    tensors: dict[str, np.ndarray] = field(repr=False)


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


def history_of(run_dir: Path, upto_step: int | None = None) -> list[Event]:
    """A run's past as events: its record, or for a folder from before records, what its meta.json kept."""
    contents = record.read(run_dir, upto_step)
    events = list(contents.events)
    if contents.damaged:
        lines = ", ".join(map(str, contents.damaged[:5]))
        events.append(Notice(upto_step or 0, f"skipped damaged lines of {record.FILENAME} (line {lines})"))
    if not contents.events and (run_dir / checkpoint.META).exists():
        meta = checkpoint.read_meta(run_dir)
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
    layout: list[tuple[str, tuple[int, ...]]]
    model: dict
    vocab: list[str]


class LocalSession:
    """Trains `plan` in a spawned child process."""

    controllable = True

    def __init__(self, plan: RunPlan, log_path: Path | None = None, priority: Priority = APP_TRAINER):
        self.plan = plan
        self.log_path = log_path
        self.priority = priority
        self.finished = False
        self.ready: Ready | None = None
        self._ctx = mp.get_context("spawn")
        self._commands = self._events = self._process = None
        self._shm: shared_memory.SharedMemory | None = None
        self._header: np.ndarray | None = None
        self._seen_version = 0
        self._model: tuple[ModelConfig, Vocab] | None = None
        self._inbox: list[Event] = []

    def start(self) -> None:
        """Spawn the trainer. Once: a second call would orphan the first child's queues mid-start."""
        if self._process is not None:
            return
        if self.plan.resumed:
            self._inbox.append(History(history_of(self.plan.run_dir, self.plan.resume_step)))
        # Textual swaps sys.stderr for an object without a file descriptor, which multiprocessing
        # cannot hand to a child ("bad value(s) in fds_to_keep", Textual issue 3593).
        with _real_std_streams():
            self._commands = self._ctx.Queue()
            self._events = self._ctx.Queue()
            log = str(self.log_path) if self.log_path else None
            self._process = self._ctx.Process(
                target=_run_worker,
                name="rnn-tui-trainer",
                daemon=True,
                args=(WORKER, self.priority.environment(), self.plan, self._commands, self._events, log, self.priority),
            )
            self._process.start()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def poll(self) -> list[Event]:
        """Everything the child has sent since the last call. Never blocks."""
        out, self._inbox = self._inbox, []
        while self._events is not None:
            try:
                batch = self._events.get_nowait()
            except (queue.Empty, EOFError, OSError):
                break
            for msg in batch:
                if isinstance(msg, Ready):
                    self._attach(msg)
                else:
                    out.append(msg)
        if any(isinstance(m, Finished | TrainerFailed) for m in out):
            self.finished = True
        if not out and not self.finished and self._process is not None and not self._process.is_alive():
            self.finished = True
            out.append(
                TrainerFailed(
                    f"the trainer stopped unexpectedly (exit code {self._process.exitcode}); "
                    f"see {self.log_path or 'train.log'}",
                    restartable=(self.plan.run_dir / checkpoint.META).exists(),
                )
            )
        return out

    def _attach(self, ready: Ready) -> None:
        self.ready = ready
        self._model = (ModelConfig.from_dict(ready.model), Vocab(ready.vocab))
        try:  # the child owns the segment and unlinks it; we share its resource tracker
            self._shm = shared_memory.SharedMemory(name=ready.shm_name)
        except FileNotFoundError:
            return
        self._header = np.ndarray((HEADER,), dtype=np.int64, buffer=self._shm.buf)

    def weights(self) -> Weights | None:
        """A copy of the newest published weights, if they changed since the last call."""
        if self._header is None or self.ready is None:
            return None
        version = int(self._header[0])
        if version == self._seen_version or version % 2:
            return None
        step = int(self._header[1])
        size = sum(int(np.prod(shape)) for _, shape in self.ready.layout)
        flat = np.ndarray((size,), dtype=np.float32, buffer=self._shm.buf, offset=HEADER * 8).copy()
        if int(self._header[0]) != version:
            return None  # the child wrote while we copied: take the next one
        self._seen_version = version
        tensors, pos = {}, 0
        for name, shape in self.ready.layout:
            n = int(np.prod(shape))
            tensors[name] = flat[pos : pos + n].reshape(shape)
            pos += n
        return Weights(version, step, *self._model, tensors)

    def _send(self, command: str) -> None:
        if self.alive:
            with contextlib.suppress(OSError, ValueError):
                self._commands.put(command)

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def save(self) -> None:
        self._send("save")

    def stop(self) -> None:
        self._send("stop")

    def restart(self) -> None:
        """Start training again from the run's last checkpoint (after the trainer died)."""
        self.close()
        request = RunRequest(resume=str(self.plan.run_dir), train=self.plan.train)
        self.__init__(plan(request), self.log_path, self.priority)
        self.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the child (it saves first) and wait for it; kill it if it does not go."""
        if self._process is None:
            return
        self.stop()
        self._process.join(timeout)
        for end in (self._process.terminate, self._process.kill):
            if self._process.is_alive():
                end()
                self._process.join(3)
        if self._shm is not None:
            self._header = None
            with contextlib.suppress(Exception):
                self._shm.close()
            with contextlib.suppress(FileNotFoundError):  # a killed child could not unlink its weights' segment
                self._shm.unlink()
            self._shm = None
        for q in (self._commands, self._events):
            with contextlib.suppress(Exception):
                q.cancel_join_thread()
                q.close()


def _run_worker(module: str, environment: dict[str, str], *args: object) -> None:
    """The child's entry point: import the worker there (it imports PyTorch), never in the app."""
    import importlib

    os.environ.update(environment)  # before PyTorch loads
    importlib.import_module(module).main(*args)


@contextlib.contextmanager
def _real_std_streams():
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.__stdout__ if sys.__stdout__ is not None else open(os.devnull, "w")  # noqa: SIM115
    sys.stderr = sys.__stderr__ if sys.__stderr__ is not None else open(os.devnull, "w")  # noqa: SIM115
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


# --------------------------------------------------------------------------- a run folder


class FolderSession:
    """A saved run, not training: its history from the record and its weights from the checkpoint."""

    controllable = False
    finished = True

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._inbox: list[Event] = []
        self._sent_weights = False

    def start(self) -> None:
        self._inbox += [History(history_of(self.run_dir)), TrainerState("not training")]

    def poll(self) -> list[Event]:
        out, self._inbox = self._inbox, []
        return out

    def weights(self) -> Weights | None:
        if self._sent_weights:
            return None
        ckpt = checkpoint.load(self.run_dir, optimizer=False)
        self._sent_weights = True
        return Weights(1, ckpt.step, ckpt.config, ckpt.vocab, ckpt.model)

    def pause(self) -> None:
        """Nothing trains here: the app does not offer it."""

    resume = save = stop = restart = close = pause
