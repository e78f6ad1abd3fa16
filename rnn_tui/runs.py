"""Planning a run, once, for every face: new or resumed, its text, its name, its settings. Torch-free.

`plan(request)` checks everything that can be checked cheaply and without PyTorch, so a
mistake is reported before anything heavy starts (before the app paints, or before a
trainer process spawns). The plan is a plain value: the trainer (training.prepare) builds
from it, in this process or in a child.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path

from rnn_tui import checkpoint
from rnn_tui.config import ModelConfig, TrainConfig, check, count_params, defaults_for
from rnn_tui.errors import UserError
from rnn_tui.text.sources import SourceSpec


@dataclass
class RunRequest:
    """What the user asked for. `model` and `train` hold only the settings they gave."""

    data: str | None = None
    corpus: str | None = None
    globs: tuple[str, ...] = ()
    encoding: str = "utf-8"
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    checkpoint_dir: str = "checkpoints"
    run_name: str | None = None
    resume: str | None = None


@dataclass(frozen=True)
class RunPlan:
    run_dir: Path
    source: SourceSpec
    model: dict  # settings the user gave (a resumed run's come from its meta.json)
    train: dict
    resume_step: int | None = None  # the checkpoint's step, for a resumed run
    saved_train: dict = field(default_factory=dict)  # a resumed run's own settings, machine ones left out

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def resumed(self) -> bool:
        return self.resume_step is not None

    def device_name(self) -> str:
        return self.train.get("device", "auto")

    def configs(self, device_type: str, vocab_size: int) -> tuple[ModelConfig, TrainConfig]:
        """The run's settings on this device: defaults, then the device's presets, then the user's."""
        model_preset, _ = defaults_for(device_type)
        model = self.model if self.resumed else {**model_preset, **self.model}
        return ModelConfig(vocab_size=vocab_size, **model), self.train_config(device_type)

    def train_config(self, device_type: str) -> TrainConfig:
        """The run's training settings on this device (they do not depend on the vocabulary)."""
        if self.resumed:
            return TrainConfig(**{**self.saved_train, **self.train})
        return TrainConfig(**{**defaults_for(device_type)[1], **self.train})

    def to_json(self) -> dict:
        """The plan as JSON, to hand to the other processes of a distributed job."""
        return {
            "run_dir": str(self.run_dir),
            "source": self.source.to_dict(),
            "model": self.model,
            "train": self.train,
            "resume_step": self.resume_step,
            "saved_train": self.saved_train,
        }

    @classmethod
    def from_json(cls, d: dict) -> RunPlan:
        source = SourceSpec.from_dict(d["source"])
        return cls(Path(d["run_dir"]), source, d["model"], d["train"], d["resume_step"], d["saved_train"])


def plan(req: RunRequest) -> RunPlan:
    """Resolve what to train, or a UserError that names the mistake and its fix."""
    for name, value in req.model.items():
        check(ModelConfig, name, value)
    for name, value in req.train.items():
        check(TrainConfig, name, value)
    if req.resume:
        return _plan_resume(req)
    source = _source(req)
    name = checkpoint.check_name(req.run_name) if req.run_name else f"{slug(source.name)}-{_stamp()}"
    run_dir = Path(req.checkpoint_dir) / name
    if checkpoint.has_checkpoint(run_dir):
        raise UserError(
            f"a run named {name!r} already exists in {req.checkpoint_dir}/; "
            f"continue it with --resume {name}, or choose another --run-name"
        )
    ModelConfig(vocab_size=2, **req.model)  # the combination, not just each field
    TrainConfig(**req.train)
    check_memory(ModelConfig(vocab_size=MEMORY_VOCAB, **req.model), TrainConfig(**req.train))
    checkpoint.check_writable(run_dir)
    if run_dir.is_dir():  # a run of that name that has not saved yet may be training
        checkpoint.RunLock.check_free(run_dir)
    return RunPlan(run_dir, source, dict(req.model), dict(req.train))


def _plan_resume(req: RunRequest) -> RunPlan:
    run_dir = checkpoint.resolve(req.resume, req.checkpoint_dir)
    meta = checkpoint.read_meta(run_dir)
    saved_model = checkpoint.model_config(run_dir, meta)
    for key, value in req.model.items():
        if getattr(saved_model, key) != value:
            flag = "--model" if key == "cell" else f"--{key.replace('_', '-')}"
            raise UserError(
                f"{flag} {value} disagrees with the run being resumed ({key} = {getattr(saved_model, key)}); "
                "drop the flag, or start a new run without --resume"
            )
    if req.data or req.corpus:
        source = _source(req)
    else:
        source = SourceSpec.from_dict(meta.get("source") or {})
        source.still_there("give the text with --data PATH to resume on it")
    saved_train = TrainConfig.from_dict(meta.get("train") or {}).without_machine()
    check_memory(saved_model, TrainConfig(**{**saved_train, **req.train}))
    checkpoint.check_writable(run_dir)
    checkpoint.RunLock.check_free(run_dir)
    model = {f.name: getattr(saved_model, f.name) for f in fields(ModelConfig) if f.name != "vocab_size"}
    return RunPlan(run_dir, source, model, dict(req.train), resume_step=meta["step"], saved_train=saved_train)


MEMORY_VOCAB = 256  # characters assumed when the corpus is not read yet (a typical one has fewer)


def training_bytes(model: ModelConfig, train: TrainConfig) -> int:
    """A rough floor of the memory training takes: weights, gradients, AdamW's moments, the rollback copy and
    the checkpoint's copies (about ten copies of the weights), then the activations one batch keeps for backprop.
    """
    rows = train.batch_size * train.seq_len
    activations = rows * (model.layers * (model.spec.gates + 2) * model.hidden + 3 * model.vocab_size + model.embedding)
    return 4 * (10 * count_params(model) + activations)


def check_memory(model: ModelConfig, train: TrainConfig) -> None:
    """Refuse a model or batch that cannot fit in this machine's memory, before anything is allocated."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): let the allocator say it
        return
    need = training_bytes(model, train)
    if need > total:
        raise UserError(
            f"training {model.summary()} with batches of {train.batch_size} x {train.seq_len} needs at least "
            f"{need / 2**30:,.1f} GiB of memory, and this machine has {total / 2**30:,.1f} GiB; "
            "lower --hidden, --layers, --batch-size or --seq-len"
        )


def _source(req: RunRequest) -> SourceSpec:
    return SourceSpec(req.data, req.corpus, tuple(req.globs), req.encoding).checked()


def slug(name: str) -> str:
    """A run-name-safe version of a corpus name."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.") or "run"


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")
