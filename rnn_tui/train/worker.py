"""The trainer's process in the app: runs a Trainer, takes commands, sends events, publishes weights.

Started by session.LocalSession with the `spawn` method. Its output goes to the run's
train.log; it runs at a low CPU priority (priority.py), so the screen wins a core the moment
it needs one; and it stops, saving, when the app's process dies.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
from pathlib import Path

import torch

from rnn_tui import checkpoint, shm
from rnn_tui.config import Settings, TrainConfig
from rnn_tui.errors import UserError
from rnn_tui.events import Event, TrainerFailed, TrainerState
from rnn_tui.priority import APP_TRAINER, Priority, SharedCpu
from rnn_tui.runs import RunPlan
from rnn_tui.session import EVENT_INTERVAL, Ready
from rnn_tui.train.devices import set_threads
from rnn_tui.train.loop import Trainer, prepare

PUBLISH_INTERVAL = 1.0  # seconds between weight publications
PARENT_GRACE = 60  # seconds a trainer whose parent died may take to save before it exits anyway


class Channel:
    """The child's side of the session: batched events out, commands in, weights into shared memory."""

    def __init__(self, commands: mp.Queue, events: mp.Queue):
        self.commands, self.events = commands, events
        self.buffer: list = []
        self.last_flush = self.last_publish = 0.0
        self.stop_requested = self.parent_gone = False
        self.weights: shm.Writer | None = None
        self.cpu: SharedCpu | None = None  # set when the trainer's threads follow the machine's load

    def emit(self, msg: Event | Ready) -> None:
        self.buffer.append(msg)
        if time.monotonic() - self.last_flush >= EVENT_INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.events.put(self.buffer)
            self.buffer = []
        self.last_flush = time.monotonic()

    def share(self, trainer: Trainer) -> None:
        """Put the weights into shared memory and tell the app where they are."""
        layout = [(k, tuple(v.shape)) for k, v in trainer.shown.state_dict().items()]
        self.weights = shm.Writer(layout)
        self.publish(trainer)
        self.emit(Ready(self.weights.name, layout, trainer.model_cfg.to_dict(), trainer.vocab.chars))
        self.flush()

    def publish(self, trainer: Trainer) -> None:
        with torch.no_grad():
            arrays = (v.detach().float().cpu().numpy() for v in trainer.shown.state_dict().values())
            self.weights.write(arrays, trainer.step)
        self.last_publish = time.monotonic()

    def hook(self, trainer: Trainer) -> None:
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
        if self.cpu is not None and (threads := self.cpu.threads()) is not None:
            set_threads(threads)
            print(f"rnn-tui trainer: {threads} thread(s) from step {trainer.step} "
                  f"(other programs used {self.cpu.others:.1f} cores)", flush=True)  # fmt: skip

    def status(self, state: str) -> None:
        self.emit(TrainerState(state))
        self.flush()

    def handle(self, cmd: str, trainer: Trainer, paused: bool = False) -> None:
        if cmd == "save":
            self.status("saving")
            trainer.save()
            self.status("paused" if paused else "training")
        elif cmd == "stop":
            self.stop_requested = True
        elif cmd == "pause":
            self.publish(trainer)
            self.status("paused")
            while not self.stop_requested:
                try:
                    nxt = self.commands.get(timeout=0.2)
                except queue.Empty:
                    continue
                if nxt == "resume":
                    break
                self.handle(nxt, trainer, paused=True)
            self.status("training")

    def close(self) -> None:
        self.flush()
        if self.weights is not None:
            self.weights.close()
        self.events.close()
        if self.parent_gone:
            self.events.cancel_join_thread()  # nobody will read what is left
        else:
            self.events.join_thread()


def main(
    plan: RunPlan, commands: mp.Queue, events: mp.Queue, log_path: str | None, priority: Priority = APP_TRAINER
) -> None:
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
    priority.apply()  # the screen gets the CPU first when it needs it
    if priority.threads is not None and "threads" not in plan.train:  # the user's --threads wins
        plan = dataclasses.replace(plan, train=Settings(TrainConfig, {"threads": priority.threads}).over(plan.train))
    channel = Channel(commands, events)
    _watch_parent(channel)
    try:
        with prepare(plan, channel.emit) as trainer:
            channel.share(trainer)
            if priority.adaptive and "threads" not in plan.train and trainer.device.type == "cpu":
                channel.cpu = SharedCpu(torch.get_num_threads())
            print(f"rnn-tui trainer: {trainer.run_dir}, step {trainer.step}, {trainer.describe_device()}", flush=True)
            trainer.run(should_stop=lambda: channel.stop_requested, hook=channel.hook)
            channel.publish(trainer)
    except UserError as exc:
        channel.emit(TrainerFailed(str(exc)))
    except Exception as exc:  # the app shows one line; the traceback goes to train.log
        traceback.print_exc()
        restartable = (plan.run_dir / checkpoint.META).exists()
        channel.emit(TrainerFailed(f"{type(exc).__name__}: {exc}", restartable))
    finally:
        channel.close()


def _watch_parent(channel: Channel) -> None:
    """When the parent dies, stop at the next step (which saves); give up after a while."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        channel.parent_gone = channel.stop_requested = True
        time.sleep(PARENT_GRACE)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
