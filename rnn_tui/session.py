"""A training run in its own process, for the app.

`TrainingSession` spawns a child that runs a `Trainer`. Commands go in through a queue
(pause, resume, save, stop). Events come out through another, in batches at most ten
times a second, so the UI can drain them without ever blocking. Weights are published
into shared memory under a sequence lock: the child bumps a counter to odd, copies, and
bumps it to even; a reader copies only a stable, even version.

The child writes its stdout and stderr into the run's train.log, runs at the lowest CPU
priority (so the UI gets a core the moment it needs one), keeps every core otherwise, and
stops (saving a checkpoint) when its parent dies.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from rnn_tui.errors import UserError

EVENT_INTERVAL = 0.1  # seconds between event batches (10 Hz)
PUBLISH_INTERVAL = 1.0  # seconds between weight publications
TRAINER_NICENESS = 19  # the UI gets the CPU first when it needs it
HEADER = 2  # int64s before the weights: sequence counter, step


@dataclass
class Ready:
    """The child has built the trainer: what the UI shows in its header, and where the weights are."""

    run_dir: str
    corpus: dict
    model: dict
    vocab: list[str]
    params: int
    device: str
    step: int
    history: dict
    train: dict
    shm_name: str
    layout: list[tuple[str, tuple[int, ...]]]


@dataclass
class Status:
    state: str  # training | paused | saving


@dataclass
class Failed:
    message: str


@dataclass
class Weights:
    version: int
    step: int
    tensors: dict[str, np.ndarray] = field(repr=False)


# --------------------------------------------------------------------------- the parent side


class TrainingSession:
    """Runs `training.prepare(request).run()` in a spawned child process."""

    def __init__(self, request, log_path: Path | None = None):  # request: training.RunRequest
        self.request = request
        self.log_path = log_path
        self.ready: Ready | None = None
        self.finished = False  # Done or Failed has been seen
        self._ctx = mp.get_context("spawn")
        self._commands = None
        self._events = None
        self._process = None
        self._shm: shared_memory.SharedMemory | None = None
        self._header: np.ndarray | None = None
        self._seen_version = 0

    def start(self) -> None:
        # Textual swaps sys.stderr for an object without a file descriptor, which multiprocessing
        # cannot hand to a child ("bad value(s) in fds_to_keep", Textual issue 3593).
        with _real_std_streams():
            self._commands = self._ctx.Queue()
            self._events = self._ctx.Queue()
            self._process = self._ctx.Process(
                target=_child_main,
                name="rnn-tui-trainer",
                daemon=True,
                args=(self.request, self._commands, self._events, str(self.log_path) if self.log_path else None),
            )
            self._process.start()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def poll(self) -> list:
        """Everything the child has sent since the last call. Never blocks."""
        out: list = []
        while True:
            try:
                batch = self._events.get_nowait()
            except queue.Empty:
                break
            except (EOFError, OSError):
                break
            out.extend(batch)
        for msg in out:
            if isinstance(msg, Ready):
                self.ready = msg
                self._attach(msg.shm_name)
            elif isinstance(msg, Failed) or type(msg).__name__ == "Done":
                self.finished = True
        if not out and not self.finished and self._process is not None and not self._process.is_alive():
            self.finished = True
            out.append(
                Failed(
                    f"the trainer stopped unexpectedly (exit code {self._process.exitcode}); "
                    f"see {self.log_path or 'train.log'}"
                )
            )
        return out

    def _attach(self, name: str) -> None:
        try:  # the child owns the segment and unlinks it; we share its resource tracker
            self._shm = shared_memory.SharedMemory(name=name)
        except FileNotFoundError:
            return
        self._header = np.ndarray((HEADER,), dtype=np.int64, buffer=self._shm.buf)

    def weights(self) -> Weights | None:
        """A copy of the newest published weights, if they changed since the last call."""
        if self._shm is None or self.ready is None:
            return None
        version = int(self._header[0])
        if version == self._seen_version or version % 2:
            return None
        step = int(self._header[1])
        flat = np.ndarray((_size(self.ready.layout),), dtype=np.float32, buffer=self._shm.buf, offset=HEADER * 8).copy()
        if int(self._header[0]) != version:
            return None  # the child wrote while we copied: take the next one
        self._seen_version = version
        return Weights(version, step, _unflatten(flat, self.ready.layout))

    def send(self, command: str) -> None:
        if self.alive:
            with contextlib.suppress(OSError, ValueError):
                self._commands.put(command)

    def pause(self) -> None:
        self.send("pause")

    def resume(self) -> None:
        self.send("resume")

    def save(self) -> None:
        self.send("save")

    def stop(self) -> None:
        self.send("stop")

    def close(self, timeout: float = 30.0) -> None:
        """Stop the child (it saves first) and wait for it; kill it if it does not go."""
        if self._process is None:
            return
        self.stop()
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(3)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(3)
        if self._shm is not None:
            self._header = None
            with contextlib.suppress(Exception):
                self._shm.close()
            self._shm = None
        for q in (self._commands, self._events):
            with contextlib.suppress(Exception):
                q.cancel_join_thread()
                q.close()


@contextlib.contextmanager
def _real_std_streams():
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.__stdout__ if sys.__stdout__ is not None else open(os.devnull, "w")  # noqa: SIM115
    sys.stderr = sys.__stderr__ if sys.__stderr__ is not None else open(os.devnull, "w")  # noqa: SIM115
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _size(layout: list[tuple[str, tuple[int, ...]]]) -> int:
    return sum(int(np.prod(shape)) for _, shape in layout)


def _unflatten(flat: np.ndarray, layout: list[tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    out, pos = {}, 0
    for name, shape in layout:
        n = int(np.prod(shape))
        out[name] = flat[pos : pos + n].reshape(shape)
        pos += n
    return out


# --------------------------------------------------------------------------- the child side


class _Child:
    """Runs in the trainer process: sends batched events, takes commands, publishes weights."""

    def __init__(self, commands, events):
        self.commands, self.events = commands, events
        self.buffer: list = []
        self.last_flush = 0.0
        self.last_publish = 0.0
        self.stop_requested = False
        self.parent_gone = False
        self.shm: shared_memory.SharedMemory | None = None
        self.flat: np.ndarray | None = None
        self.header: np.ndarray | None = None

    def emit(self, msg: object) -> None:
        self.buffer.append(msg)
        if time.monotonic() - self.last_flush >= EVENT_INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.events.put(self.buffer)
            self.buffer = []
        self.last_flush = time.monotonic()

    def share(self, trainer) -> Ready:
        state = trainer.model.state_dict()
        layout = [(k, tuple(v.shape)) for k, v in state.items()]
        self.shm = shared_memory.SharedMemory(create=True, size=HEADER * 8 + 4 * _size(layout))
        self.header = np.ndarray((HEADER,), dtype=np.int64, buffer=self.shm.buf)
        self.header[:] = 0
        self.flat = np.ndarray((_size(layout),), dtype=np.float32, buffer=self.shm.buf, offset=HEADER * 8)
        self.publish(trainer)
        mc = trainer.model_cfg
        return Ready(
            str(trainer.run_dir),
            trainer.corpus.identity(),
            mc.to_dict(),
            trainer.vocab.chars,
            trainer.params,
            trainer.describe_device(),
            trainer.step,
            trainer.history,
            asdict(trainer.cfg),
            self.shm.name,
            layout,
        )

    def publish(self, trainer) -> None:
        import torch

        self.header[0] += 1  # odd: writing
        pos = 0
        with torch.no_grad():
            for v in trainer.model.state_dict().values():
                n = v.numel()
                self.flat[pos : pos + n] = v.detach().float().cpu().reshape(-1).numpy()
                pos += n
        self.header[1] = trainer.step
        self.header[0] += 1  # even: stable
        self.last_publish = time.monotonic()

    def hook(self, trainer) -> None:
        """After every step: commands, weights, events."""
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                break
            self.handle(cmd, trainer)
        if time.monotonic() - self.last_publish >= PUBLISH_INTERVAL:
            self.publish(trainer)
        if time.monotonic() - self.last_flush >= EVENT_INTERVAL:
            self.flush()

    def handle(self, cmd: str, trainer, paused: bool = False) -> None:
        if cmd == "save":
            self.emit(Status("saving"))
            self.flush()
            trainer.save()
            self.emit(Status("paused" if paused else "training"))
            self.flush()
        elif cmd == "stop":
            self.stop_requested = True
        elif cmd == "pause":
            self.publish(trainer)
            self.emit(Status("paused"))
            self.flush()
            while not self.stop_requested:
                try:
                    nxt = self.commands.get(timeout=0.2)
                except queue.Empty:
                    continue
                if nxt == "resume":
                    break
                self.handle(nxt, trainer, paused=True)
            self.emit(Status("training"))
            self.flush()


def _child_main(request, commands, events, log_path: str | None) -> None:
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
    with contextlib.suppress(OSError, AttributeError):
        os.nice(TRAINER_NICENESS)
    child = _Child(commands, events)
    _watch_parent(child)
    try:
        from rnn_tui.training import prepare

        trainer = prepare(request, child.emit)
        child.emit(child.share(trainer))
        child.flush()
        print(f"rnn-tui trainer: {trainer.run_dir}, step {trainer.step}, {trainer.describe_device()}", flush=True)
        trainer.run(should_stop=lambda: child.stop_requested, hook=child.hook)
        child.publish(trainer)
    except UserError as exc:
        child.emit(Failed(str(exc)))
    except Exception as exc:  # the UI shows one line; the traceback goes to train.log
        traceback.print_exc()
        child.emit(Failed(f"{type(exc).__name__}: {exc}"))
    finally:
        child.flush()
        if child.shm is not None:
            child.header = child.flat = None
            child.shm.close()
            with contextlib.suppress(FileNotFoundError):
                child.shm.unlink()
        events.close()
        if child.parent_gone:
            events.cancel_join_thread()  # nobody will read what is left
        else:
            events.join_thread()


def _watch_parent(child: _Child) -> None:
    """When the parent dies, stop at the next step (which saves); give up after a while."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        child.parent_gone = child.stop_requested = True
        time.sleep(60)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
