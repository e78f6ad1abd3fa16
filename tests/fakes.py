"""A stand-in for the trainer's process: the app sees the same messages, with no timing in play."""

from __future__ import annotations

import functools

import torch

from rnn_tui.corpus import Vocab
from rnn_tui.model import CharRNN, ModelConfig
from rnn_tui.session import Failed, Ready, Status, Weights
from rnn_tui.training import Checkpoint, Done, Eval, Progress, Sample

VOCAB = Vocab("\n !',.:;?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


TEXT = "the cat sat on the mat. the dog sat on the log. " * 8


@functools.cache
def tiny_weights(seed: int = 0, steps: int = 60) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """A tiny model that has learned a little, so its confidence varies (fixed: seeded, CPU, fp32)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=len(VOCAB), hidden=32, layers=2, embedding=8, dropout=0.1)  # pinned: not the default
    model = CharRNN(cfg)
    ids = torch.from_numpy(VOCAB.encode(TEXT).astype("int64"))[None]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        logits, _ = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return cfg, {k: v.detach().clone() for k, v in model.state_dict().items()}


class FakeSession:
    """Delivers a scripted run: Ready, some progress, an evaluation and a sample."""

    def __init__(self, seed: int = 0, history: bool = True):
        self.cfg, state = tiny_weights(seed)
        self.tensors = {k: v.numpy().copy() for k, v in state.items()}
        self.commands: list[str] = []
        self.finished = False
        self.alive = True
        self.step = 300
        self._weights_version = 0
        self._seen = 0
        self.inbox: list = [
            Ready(
                "checkpoints/demo",
                {"name": "demo", "chars": 1_115_394, "sha256": "0" * 64, "description": "demo"},
                self.cfg.to_dict(),
                VOCAB.chars,
                21_000,
                "cpu (2 threads, bf16)",
                0,
                {"train": [], "val": []},
                {},
                "unused",
                [],
            ),
        ]
        if history:
            for step in range(10, 301, 10):
                loss = 4.0 * 0.993**step + 1.2
                self.inbox.append(Progress(step, 0, loss, 2e-3, 11_000.0, step * 0.7, step / 1000, (1000 - step) * 0.7))
                if step % 100 == 0:
                    self.inbox.append(Eval(step, loss + 0.05, loss + 0.05, True, 1.0, step * 0.7))
            self.inbox.append(Sample(300, "ROMEO:\nWhat [light] through yonder window breaks?", 0.8))
        self.publish()

    def publish(self) -> None:
        self._weights_version += 2

    def poll(self) -> list:
        out, self.inbox = self.inbox, []
        return out

    def weights(self) -> Weights | None:
        if self._weights_version == self._seen:
            return None
        self._seen = self._weights_version
        return Weights(self._weights_version, self.step, self.tensors)

    def pause(self) -> None:
        self.commands.append("pause")
        self.inbox.append(Status("paused"))

    def resume(self) -> None:
        self.commands.append("resume")
        self.inbox.append(Status("training"))

    def save(self) -> None:
        self.commands.append("save")
        self.inbox += [Checkpoint(self.step, "checkpoints/demo", False), Status("training")]

    def stop(self) -> None:
        self.commands.append("stop")
        self.inbox += [Checkpoint(self.step, "checkpoints/demo", False), Done(self.step, "stopped", 1.5, 200.0)]
        self.finished = True

    def die(self) -> None:
        self.inbox.append(Failed("the trainer stopped unexpectedly (exit code -9); see train.log"))
        self.finished = True
        self.alive = False

    def close(self) -> None:
        self.alive = False
