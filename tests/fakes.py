"""Stand-ins for the trainer's process: the app sees the same events, with no timing in play."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import torch

from rnn_tui.config import ModelConfig
from rnn_tui.events import (
    CheckpointSaved,
    Evaluation,
    Event,
    Finished,
    History,
    Progress,
    RunStarted,
    Sample,
    TrainerFailed,
    TrainerState,
)
from rnn_tui.session import Weights
from rnn_tui.text.vocab import Vocab
from rnn_tui.train import model as train_model
from rnn_tui.train.model import CharRNN

VOCAB = Vocab("\n !',.:;?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

TEXT = "the cat sat on the mat. the dog sat on the log. " * 8


def numpy_weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """A torch model's weights as the playground gets them: float32 NumPy arrays."""
    return {k: v.detach().float().numpy().copy() for k, v in model.state_dict().items()}


@functools.cache
def tiny_weights(seed: int = 0, steps: int = 60) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """A tiny model that has learned a little, so its confidence varies (fixed: seeded, CPU, fp32).

    It trains with torch's dropout, whatever the trainer's own is, so the snapshots drawn with
    it stay the same."""
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=len(VOCAB), hidden=32, layers=2, embedding=8, dropout=0.1)  # pinned: not the default
    model = CharRNN(cfg)
    ids = torch.from_numpy(VOCAB.encode(TEXT).astype("int64"))[None]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ours, train_model.dropout = train_model.dropout, _torch_dropout
    try:
        for _ in range(steps):
            logits, _ = model(ids[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        train_model.dropout = ours
    return cfg, numpy_weights(model)


def _torch_dropout(x: torch.Tensor, p: float, training: bool = True, locked: bool = False) -> torch.Tensor:
    assert not locked  # the fake trains with masks per element
    return torch.nn.functional.dropout(x, p, training)


def started(cfg: ModelConfig, step: int = 0, resumed: bool = False) -> RunStarted:
    return RunStarted(
        step,
        "checkpoints/demo",
        {"name": "demo", "chars": 1_115_394, "sha256": "0" * 64, "description": "demo"},
        cfg.to_dict(),
        {"max_steps": 1000},
        21_000,
        "cpu (2 threads, bf16)",
        resumed=resumed,
    )


def scripted_run(first: int, last: int, *, rate: float = 0.993, seconds_per_step: float = 0.7) -> list[Event]:
    """Progress every 10 steps, an evaluation every 100 and a sample every 150, as a trainer sends them."""
    out: list[Event] = []
    total = max(1000, last)
    t = seconds_per_step
    for step in range(first, last + 1, 10):
        loss = 4.0 * rate**step + 1.2
        out.append(Progress(step, 0, loss, 2e-3, 11_000.0, step * t, step / total, (total - step) * t))
        if step % 100 == 0:
            out.append(Evaluation(step, loss + 0.05, loss + 0.05, True, 1.0, step * t))
        if step % 150 == 0:
            out.append(Sample(step, f"ROMEO:\nWhat [light] through yonder window breaks? (step {step})", 0.8, 1337))
    return out


class FakeSession:
    """Delivers a scripted run: its start, some progress, evaluations and samples.

    `resumed_at`: the run resumes at that step, and its record so far arrives first as History.
    """

    controllable = True

    def __init__(self, seed: int = 0, history: bool = True, resumed_at: int | None = None):
        self.cfg, self.tensors = tiny_weights(seed)
        self.commands: list[str] = []
        self.finished = False
        self.alive = True
        self.started = False
        self.step = 300 if resumed_at is None else resumed_at + 100
        self._weights_version = 0
        self._seen = 0
        self.polls = 0
        self.inbox: list[Event] = []
        first = 10
        if resumed_at is not None:
            self.inbox.append(History([started(self.cfg), *scripted_run(10, resumed_at)]))
            first = resumed_at + 10
        self.inbox.append(started(self.cfg, resumed_at or 0, resumed=resumed_at is not None))
        if history:
            self.inbox += scripted_run(first, self.step)
        self.publish()

    def start(self) -> None:
        self.started = True

    def publish(self) -> None:
        self._weights_version += 2

    def poll(self) -> list[Event]:
        self.polls += 1
        out, self.inbox = self.inbox, []
        return out

    @property
    def weights_seen(self) -> bool:
        return self._seen == self._weights_version

    def weights(self) -> Weights | None:
        if self._weights_version == self._seen:
            return None
        self._seen = self._weights_version
        return Weights(self._weights_version, self.step, self.cfg, VOCAB, self.tensors)

    def pause(self) -> None:
        self.commands.append("pause")
        self.inbox.append(TrainerState("paused"))

    def resume(self) -> None:
        self.commands.append("resume")
        self.inbox.append(TrainerState("training"))

    def save(self) -> None:
        self.commands.append("save")
        self.inbox += [CheckpointSaved(self.step, "checkpoints/demo", False), TrainerState("training")]

    def stop(self) -> None:
        self.commands.append("stop")
        self.inbox += [
            CheckpointSaved(self.step, "checkpoints/demo", False),
            Finished(self.step, "stopped", 1.5, 200.0),
        ]
        self.finished = True

    def restart(self) -> None:
        self.commands.append("restart")
        self.finished, self.alive = False, True
        self.inbox += [started(self.cfg, self.step, resumed=True), TrainerState("training")]

    def die(self) -> None:
        self.inbox.append(TrainerFailed("the trainer stopped unexpectedly (exit code -9); see train.log", True))
        self.finished = True
        self.alive = False

    def close(self) -> None:
        self.alive = False


def session_for(folder: Path | None = None) -> FakeSession:
    """A scripted session whose run lives in `folder` (see run_folder), as the neuron view reads it."""
    session = FakeSession()
    if folder is not None:
        session.inbox[0] = dataclasses.replace(session.inbox[0], run_dir=str(folder))
    return session


class FakeFolder(FakeSession):
    """A saved run opened without training (`launch --resume RUN --no-train`)."""

    controllable = False

    def __init__(self, step: int = 1234):
        super().__init__(history=False)
        self.finished = True
        self.step = step
        self.inbox = [History([started(self.cfg), *scripted_run(10, step)])]


def make_run(
    root: Path, name: str, *, steps: int = 600, seed: int = 0, rate: float = 0.993, seconds_per_step: float = 0.7
) -> Path:
    """A saved run folder, as a trainer leaves it: a checkpoint of tiny weights and its record.

    The losses fall at `rate` per step; `seconds_per_step` sets the training time, so runs differ
    by step and by time.
    """
    from rnn_tui import checkpoint, record

    cfg, tensors = tiny_weights(seed)
    folder = root / name
    with checkpoint.RunLock(folder):  # a trainer's lock, left behind free
        pass
    writer = record.Writer(folder)
    writer(started(cfg))
    best = None
    for event in scripted_run(10, steps, rate=rate, seconds_per_step=seconds_per_step):
        writer(event)
        if isinstance(event, Evaluation):
            best = event.best_val_loss
    writer.close()
    meta = {
        "model": cfg.to_dict(),
        "vocab": VOCAB.chars,
        "step": steps,
        "corpus": {"name": "demo", "chars": 1_115_394},
        "train_seconds": steps * seconds_per_step,
        "best_val_loss": best,
        "updated": f"2026-01-{1 + seed:02d}T12:00:00",
    }
    checkpoint.save(folder, tensors, {}, meta)
    return folder


# The neuron view's validation text: speech, quotes, brackets and indentation for its features to find.
VALIDATION = 'ROMEO:\nthe cat (said) "so it is" to the dog.\n    and if (a [b] c): d\n' * 60


def run_folder(tmp_path: Path) -> Path:
    """A run folder with what the neuron view reads: meta.json naming the text, and the text."""
    text = tmp_path / "plays.txt"
    text.write_text(VALIDATION * 2)
    folder = tmp_path / "run"
    folder.mkdir()
    meta = {
        "format": "rnn-tui-run",
        "format_version": 2,
        "step": 300,
        "source": {"data": str(text), "corpus": None, "globs": [], "encoding": "utf-8"},
        "train": {"val_frac": 0.5},
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def ship_tiny(root: Path, name: str, seed: int = 0) -> Path:
    """A tiny stand-in for a shipped model: `make_run`'s run, shipped as `scripts/train_pretrained.py` ships one."""
    from rnn_tui import checkpoint, models

    build = root.parent / f"{root.name}-build"
    run = make_run(build, name, seed=seed)
    ckpt = checkpoint.load(run, optimizer=False)
    return models.ship(ckpt, root / name, run, val_loss=ckpt.meta["best_val_loss"], command="tests", wall_seconds=1)
