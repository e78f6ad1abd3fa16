"""The run specification and the plan: new or resumed, its text, its name, its settings, once for every face.

`RunSpec` is what the user asked for, parsed and checked once (the CLI's `run_spec`): the text as
a whole `SourceSpec` and the settings they gave as `config.Settings`. `plan(spec)` checks, cheaply
and without PyTorch, everything the settings alone do not tell (the run's name, a run that exists
or is being trained, a folder that cannot be written, memory, the text's path), so a mistake is
reported before anything heavy starts (before the app paints, or before a trainer process spawns).
The plan is a plain value: the trainer (train.loop.prepare) builds the run's configs from it once,
on its device, in this process or in a child. Torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rnn_tui import checkpoint, humanize, models
from rnn_tui.config import BUDGETED, ModelConfig, Settings, TrainConfig, count_params, defaults_for, flag_of
from rnn_tui.errors import UserError
from rnn_tui.text.sources import SourceSpec


@dataclass(frozen=True)
class RunSpec:
    """What the user asked for, each setting checked once when parsed. `model` and `train` hold only the
    settings they gave: the rest comes from the defaults, a GPU's presets, or a resumed run's own."""

    source: SourceSpec = field(default_factory=SourceSpec)
    model: Settings[ModelConfig] = field(default_factory=lambda: Settings(ModelConfig))
    train: Settings[TrainConfig] = field(default_factory=lambda: Settings(TrainConfig))
    checkpoint_dir: str = checkpoint.CHECKPOINT_DIR
    run_name: str | None = None
    resume: str | None = None
    init_from: str | None = None  # a run or `pretrained:NAME` whose weights a new run starts from (fine-tuning)


FINE_TUNE_LR = 1e-3  # the peak learning rate of a fine-tuning run unless --lr says otherwise (a third of 3e-3)
ARCHITECTURE = ("cell", "layers", "hidden", "embedding")  # what a fine-tuning run takes from its source


@dataclass(frozen=True)
class RunPlan:
    """What will run. A new run's configs are its user's settings over the device's presets; a resumed run's
    are its saved ones (the machine's left out: device, precision, threads) under its user's."""

    run_dir: Path
    source: SourceSpec  # checked, `data` absolute
    model: Settings[ModelConfig]  # a new run's: its user's; a resumed run's: all of its saved ones
    train: Settings[TrainConfig]  # a new run's: its user's; a resumed run's: its user's over its saved ones
    resume_step: int | None = None  # the checkpoint's step, for a resumed run
    init_from: dict | None = None  # a new fine-tuning run's source: {"source", "path", "step"} (meta.json's too)

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def resumed(self) -> bool:
        return self.resume_step is not None

    def device_name(self) -> str:
        return self.train.get("device", "auto")

    def train_config(self, device_type: str) -> TrainConfig:
        """The run's training settings on this kind of device (they do not depend on the vocabulary)."""
        return self.train.build(*self._presets(device_type)[1:])

    def model_config(self, device_type: str, vocab_size: int, train_chars: int | None = None) -> ModelConfig:
        """The run's model on this kind of device, for this vocabulary and a text of `train_chars` to train on."""
        return self.model.build(*self._presets(device_type, train_chars)[:1], vocab_size=vocab_size)

    def budget_note(self, device_type: str, train_chars: int) -> str | None:
        """What the run's step budget chose that the user did not (config.Budget), in a line, or None."""
        steps, step_chars = self._budget(device_type)
        if not steps:
            return None
        model, train = self._presets(device_type, train_chars)  # off a GPU, only the budget's
        chosen = {
            name: value
            for name, value in {**model, **train}.items()
            if name not in self.model and name not in self.train and value != getattr(_config_of(name), name)
        }
        if not chosen:
            return None
        chars = steps * step_chars
        said = ", ".join(_budgeted(name, chosen[name]) for name in BUDGETED if name in chosen)
        flags = [flag_of(_config_of(name), name) for name in BUDGETED if name in chosen]
        flagged = ", ".join(flags[:-1]) + " and " + flags[-1] if len(flags) > 1 else flags[0]
        return (
            f"a run of {humanize.chars(chars)} ({_passes(chars / train_chars)} over the text) "
            f"learns best with {said}; {flagged} {'choose them' if len(flags) > 1 else 'chooses it'} yourself"
        )

    def _presets(self, device_type: str, train_chars: int | None = None) -> tuple[Settings, ...]:
        """The device's presets, under which the user's settings go; off a GPU, a new run from scratch with a
        step budget gets that budget's too (config.Budget). A resumed run has its own; a fine-tuning run, its own."""
        return () if self.resumed else defaults_for(device_type, *self._budget(device_type), train_chars)

    def _budget(self, device_type: str) -> tuple[int | None, int]:
        """The step budget of a new run from scratch off a GPU (None for any other run), and a step's characters."""
        cfg = self.train.build()
        own = not (self.resumed or self.init_from or device_type == "cuda")
        return (cfg.max_steps if own else None), cfg.batch_size * cfg.seq_len

    def to_json(self) -> dict:
        """The plan as JSON, to hand to the other processes of a distributed job."""
        return {
            "run_dir": str(self.run_dir),
            "source": self.source.to_dict(),
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "resume_step": self.resume_step,
            "init_from": self.init_from,
        }

    @classmethod
    def from_json(cls, d: dict) -> RunPlan:
        return cls(
            Path(d["run_dir"]),
            SourceSpec.from_dict(d["source"]),
            Settings(ModelConfig, d["model"]),
            Settings(TrainConfig, d["train"]),
            d["resume_step"],
            d.get("init_from"),
        )


def plan(spec: RunSpec) -> RunPlan:
    """Resolve what to train, or a UserError that names the mistake and its fix."""
    if spec.resume:
        if spec.init_from:
            raise UserError("--init-from starts a new run and --resume continues one; give only one of them")
        return _plan_resume(spec)
    source = spec.source.checked()
    name = checkpoint.check_name(spec.run_name) if spec.run_name else f"{slug(source.name)}-{_stamp()}"
    run_dir = Path(spec.checkpoint_dir) / name
    if checkpoint.has_checkpoint(run_dir):
        raise UserError(
            f"a run named {name!r} already exists in {spec.checkpoint_dir}/; "
            f"continue it with --resume {name}, or choose another --run-name"
        )
    model, train, init_from = spec.model, spec.train, None
    if spec.init_from:
        model, init_from = _init_from(spec)
        if "lr" not in train:
            train = Settings(TrainConfig, {"lr": FINE_TUNE_LR}).over(train)
    check_memory(model.build(vocab_size=MEMORY_VOCAB), train.build())
    checkpoint.check_writable(run_dir)
    if run_dir.is_dir():  # a run of that name that has not saved yet may be training
        checkpoint.RunLock.check_free(run_dir)
    return RunPlan(run_dir, source, model, train, init_from=init_from)


def _init_from(spec: RunSpec) -> tuple[Settings[ModelConfig], dict]:
    """A fine-tuning run's model settings (its source's, with the user's dropout) and its source, checked now:
    a source that does not exist, is damaged or disagrees with a model flag is one line before anything starts."""
    assert spec.init_from is not None
    folder = checkpoint.resolve(spec.init_from, spec.checkpoint_dir)
    ckpt = checkpoint.load(folder, optimizer=False)  # every weight checked: a damaged source fails here
    for key, value in spec.model.items():
        if key in ARCHITECTURE and getattr(ckpt.config, key) != value:
            flag = "--model" if key == "cell" else f"--{key}"
            raise UserError(
                f"{flag} {value} disagrees with --init-from {spec.init_from} ({key} = {getattr(ckpt.config, key)}); "
                "drop the flag: a fine-tuned model keeps the shape of the one it starts from"
            )
    saved = Settings.of(ckpt.config).without(["vocab_size"])
    name = spec.init_from if models.is_pretrained(spec.init_from) else folder.name
    return spec.model.over(saved), {"source": name, "path": str(folder.resolve()), "step": ckpt.step}


def _plan_resume(spec: RunSpec) -> RunPlan:
    run_dir = checkpoint.resolve(spec.resume, spec.checkpoint_dir)
    meta = checkpoint.read_meta(run_dir)
    if models.is_shipped(meta):
        raise UserError(
            f"{spec.resume} is a shipped model, which never trains in place; fine-tune it in a new run with "
            f"--init-from {spec.resume if models.is_pretrained(spec.resume) else run_dir} --data FILE"
        )
    saved_model = checkpoint.model_config(run_dir, meta)
    for key, value in spec.model.items():
        if getattr(saved_model, key) != value:
            flag = "--model" if key == "cell" else f"--{key.replace('_', '-')}"
            raise UserError(
                f"{flag} {value} disagrees with the run being resumed ({key} = {getattr(saved_model, key)}); "
                "drop the flag, or start a new run without --resume"
            )
    if spec.source.named:
        source = spec.source.checked()
    else:
        source = SourceSpec.from_dict(meta.get("source") or {})
        source.still_there("give the text with --data PATH to resume on it")
    saved_train = TrainConfig.from_dict(meta.get("train") or {})
    train = spec.train.over(Settings.of(saved_train, saved_train.without_machine()))
    check_memory(saved_model, train.build())
    checkpoint.check_writable(run_dir)
    checkpoint.RunLock.check_free(run_dir)
    model = Settings.of(saved_model).without(["vocab_size"])
    return RunPlan(run_dir, source, model, train, resume_step=meta["step"], init_from=meta.get("init_from"))


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


def slug(name: str) -> str:
    """A run-name-safe version of a corpus name."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.") or "run"


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


BUDGET_WORDS = {
    "lr": "learning rate",
    "warmup_steps": "warm-up steps",
    "weight_decay": "weight decay",
    "dropout": "dropout",
}


def _config_of(name: str) -> type:
    """The config class a setting belongs to."""
    return TrainConfig if name in TrainConfig.__dataclass_fields__ else ModelConfig


def _budgeted(name: str, value: float) -> str:
    """A setting a step budget chose, in words."""
    if name == "min_lr_frac":
        return "the learning rate decaying to " + (f"{value:g} of its peak" if value else "0")
    return f"{BUDGET_WORDS[name]} {value:g}"


def _passes(n: float) -> str:
    return f"{n:.1f} passes" if n >= 0.1 else f"{n:.2g} of a pass"
