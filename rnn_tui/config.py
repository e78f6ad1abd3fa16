"""The model, training and sampling configs, with each field's help and bounds. Torch-free.

Every setting a user can give is a dataclass field here; its metadata carries the help
text and the bounds. The CLI builds its flags from these fields, and the CLI, the app and
a saved run's meta.json are all checked by the same function (`check`), so a mistake
gets the same one-line message wherever it is made. `Settings` carries the settings a
user gave, each checked once, and builds the config from them without checking again.
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Generic, TypeVar

from rnn_tui.errors import UserError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")
BATCHING = ("tbptt", "random")
OPTIMIZERS = ("adamw", "muon")
DRAWS = ("every", "word-start")


@dataclass(frozen=True)
class Cell:
    """A recurrent cell: how many weight blocks it has per hidden unit, and what its state holds."""

    gates: int  # rows of weight_ih (and weight_hh) per hidden unit
    state_parts: int  # 2 for an LSTM (h and c), 1 otherwise (h)
    torch_name: str  # the fused torch.nn module that trains it ("" for ours: train/model.py)
    recurrent: bool = True  # it has weight_hh and bias_hh; the min cells' gates see only the input


# One entry here (plus its NumPy step in inference.py) adds a cell.
CELLS = {
    "lstm": Cell(4, 2, "LSTM"),
    "gru": Cell(3, 1, "GRU"),
    "rnn": Cell(1, 1, "RNN"),
    "mingru": Cell(2, 1, "", recurrent=False),
    "minlstm": Cell(3, 1, "", recurrent=False),
}


DROPOUT_MASKS = ("element", "sequence")  # a new dropout mask at every step, or one per sequence (locked)


@dataclass(frozen=True)
class Spec:
    """What a config field accepts. `flag` is its command-line name ("" for none)."""

    help: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # `low` itself is not allowed
    choices: tuple[str, ...] = ()
    flag: str | None = None  # default: the field name with dashes
    machine: bool = False  # a property of the machine, not the run: not inherited on resume


def setting(default: Any = MISSING, help: str = "", **spec: Any) -> Any:
    """A dataclass field with its `Spec`."""
    return field(default=default, metadata={"spec": Spec(help, **spec)})


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = setting(help="characters the model knows, the unknown one included", low=2, flag="")
    cell: str = setting("lstm", "recurrent cell", choices=tuple(CELLS), flag="model")
    layers: int = setting(2, "recurrent layers", low=1, high=64)
    hidden: int = setting(512, "hidden units per layer", low=1, high=16_384)
    embedding: int = setting(64, "character embedding size", low=1, high=16_384)
    dropout: float = setting(0.15, "dropout between layers and before the output layer", low=0.0, high=0.9)
    weight_drop: float = setting(
        0.0, "weight-drop: the fraction of recurrent weights (W_hh) dropped, one mask per batch", low=0.0, high=0.9
    )
    dropout_mask: str = setting(
        "element",
        "element: a new dropout mask at every time step; sequence: one per sequence of the batch, the same at "
        "every step (variational or locked dropout, as in AWD-LSTM)",
        choices=DROPOUT_MASKS,
    )

    def __post_init__(self) -> None:
        validate(self)

    @property
    def spec(self) -> Cell:
        return CELLS[self.cell]

    def summary(self) -> str:
        return f"{self.cell} {self.layers}×{self.hidden}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return from_dict(cls, d)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = setting(16, "sequences per batch", low=1, high=1 << 16)
    seq_len: int = setting(64, "characters per sequence (the backprop length)", low=1, high=1 << 16)
    lr: float = setting(3e-3, "peak learning rate (AdamW)", low=0.0, open_low=True, high=1000.0)
    min_lr_frac: float = setting(0.1, "the learning rate decays to this fraction of the peak", low=0.0, high=1.0)
    warmup_steps: int = setting(100, "learning-rate warm-up steps", low=0, high=10**9)
    weight_decay: float = setting(0.2, "AdamW weight decay (decoupled, every weight)", low=0.0, high=10.0)
    grad_clip: float = setting(1.0, "gradient-norm clip", low=0.0, open_low=True, high=1e6)
    max_steps: int | None = setting(
        None,
        "total steps of the run (a resumed run stops at N); off a GPU, the run's length (N x batch x seq "
        "characters) sets the defaults of --lr, --warmup-steps, --weight-decay, --dropout and --min-lr-frac: a "
        "run of 2 M characters learns fastest with a higher peak, a longer warm-up and less regularisation, one "
        "of 10 M ends lowest with the learning rate decaying to 0",
        low=1,
        high=10**12,
    )
    max_minutes: float | None = setting(
        None, "wall-clock budget of the run, evaluations included", low=0.0, open_low=True, high=1e7
    )
    eval_every: int = setting(500, "steps between validation passes", low=1, high=10**12)
    patience: int | None = setting(
        None, "stop after N evaluations in a row without a new best validation loss", low=1, high=10**9
    )
    eval_chars: int = setting(200_000, "validation characters per pass, at most", low=1, high=10**12)
    sample_every: int = setting(250, "steps between samples", low=1, high=10**12)
    sample_chars: int = setting(300, "characters per training sample", low=1, high=100_000)
    sample_temperature: float = setting(0.8, "temperature of the training samples", low=0.0, high=5.0)
    sample_prompt: str = setting("", "text every training sample starts from")
    checkpoint_every: int = setting(1000, "steps between checkpoints", low=1, high=10**12)
    val_frac: float | None = setting(
        None,
        "fraction of the text kept for validation, its end (default 0.1, or the corpus's standard split: enwik8)",
        low=0.0,
        open_low=True,
        high=0.5,
    )
    batching: str = setting("tbptt", "carry the state across batches (tbptt) or random windows", choices=BATCHING)
    seed: int = setting(1337, "random seed", low=0, high=2**32 - 1)
    device: str = setting("auto", "where to train: auto picks cuda, then mps, then cpu", choices=DEVICES, machine=True)
    precision: str = setting("auto", "auto: bf16 where the hardware multiplies it", choices=PRECISIONS, machine=True)
    threads: int | None = setting(
        None, "CPU threads for training (default: every core)", low=1, high=4096, machine=True
    )
    ema: float = setting(
        0.0,
        "decay per step of a moving average of the weights that evaluates, samples and is saved (0: off)",
        low=0.0,
        high=0.9999,
    )
    optimizer: str = setting(
        "adamw",
        "muon: orthogonalised momentum for the recurrent layers' matrices, AdamW for the rest",
        choices=OPTIMIZERS,
    )
    short_first: float = setting(
        0.0,
        "this first fraction of the budget trains on halves of each batch (rows, then the window), one update "
        "each: more, smaller updates early (0: off)",
        low=0.0,
        high=1.0,
    )
    dropout_ramp: float = setting(
        0.0, "epochs over which the dropout rises from 0 to --dropout (0: all of it from the start)", low=0.0, high=1e6
    )

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return from_dict(cls, d)

    def without_machine(self) -> dict:
        """The settings that belong to the run (a resumed run inherits these, not the device)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata["spec"].machine}


@dataclass(frozen=True)
class SampleConfig:
    """How the playground and `rnn-tui sample` draw characters."""

    temperature: float = setting(0.8, "0 is greedy; higher is more adventurous", low=0.0, high=5.0)
    seed: int = setting(42, "sampling seed", low=0, high=2**32 - 1)
    length: int = setting(300, "characters to generate", low=1, high=100_000)
    top_k: int = setting(0, "draw only from the k likeliest characters (0: all)", low=0, high=1_000_000)
    top_p: float = setting(
        1.0,
        "nucleus: draw only from the likeliest characters whose probabilities add up to p (1: all)",
        low=0.0,
        open_low=True,
        high=1.0,
    )
    repetition_penalty: float = setting(
        1.0,
        "divide the probability of each character seen in the last --repetition-window characters by this "
        "(1: off; above 1 repeats less)",
        low=0.0,
        open_low=True,
        high=100.0,
    )
    repetition_window: int = setting(20, "characters the repetition penalty looks back over", low=1, high=100_000)
    draw: str = setting(
        "every",
        "where a character is drawn at random: at every character, or only at a word's first (greedy inside words)",
        choices=DRAWS,
    )
    until: str = setting("", "stop each sample when it has written this text (it ends the sample)")
    count: int = setting(
        1, "samples to draw (seeds seed, seed+1, ...), ranked by bits per character", low=1, high=10_000
    )
    copied_min: int = setting(
        20, "the shortest stretch marked as copied when it occurs verbatim in the training text", low=4, high=32
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class CellsConfig:
    """How `rnn-tui cells` and the neuron view's "find cells" rank the model's cells."""

    top: int = setting(5, "cells listed per feature", low=1, high=100)
    chars: int = setting(50_000, "characters of text the model reads, at most", low=1, high=10_000_000)

    def __post_init__(self) -> None:
        validate(self)


# A GPU is fed a bigger model and bigger batches (measured on an H100: BENCHMARKS.md).
GPU_MODEL = {"layers": 3, "hidden": 1024, "embedding": 128, "dropout": 0.3}
GPU_TRAIN = {"batch_size": 64, "seq_len": 128, "lr": 2e-3, "weight_decay": 0.1}


def defaults_for(
    device_type: str, steps: int | None = None, step_chars: int = 0, train_chars: int | None = None
) -> tuple[Settings[ModelConfig], Settings[TrainConfig]]:
    """Model and training settings that differ from the dataclass defaults on this kind of device and, off a GPU,
    for a run of `steps` of `step_chars` training characters over a text of `train_chars` (see `Budget`)."""
    if device_type == "cuda":
        return Settings(ModelConfig, GPU_MODEL), Settings(TrainConfig, GPU_TRAIN)
    model, train = Budget.defaults(steps, step_chars, train_chars)
    return Settings(ModelConfig, model), Settings(TrainConfig, train)


@dataclass(frozen=True)
class Budget:
    """The defaults of a run whose length is known (`--max-steps`): a short run learns fastest with a higher peak
    learning rate, a longer warm-up and less regularisation than a long one (measured on tinyshakespeare:
    BENCHMARKS.md, "A budget's defaults" and "Batch 16 by default"). The optimal learning rate falls as a power of
    the run's length (Bjorck et al. 2025, "Scaling Optimal LR Across Token Horizons"), and the dropout a text needs
    grows with the passes over it.

    A long run also ends lower when its learning rate decays all the way to 0 (Bergsma et al. 2025, "Straight to
    Zero"), while a short one at its higher peak does better keeping a tenth of it.

    Two measured ends, log-linear between and constant beyond: SHORT (2.05 M characters, about 2 passes) and LONG
    (10.24 M characters, about 10 passes: the dataclass defaults, but the learning rate decays to 0). The learning
    rate, its warm-up and floor and the weight decay follow the characters, the dropout the passes. A run without a
    step budget gets the dataclass defaults."""

    chars: float  # the run's training characters: max_steps x batch_size x seq_len
    passes: float  # of those over the text's training part
    lr: float
    warmup_steps: int
    weight_decay: float
    dropout: float
    min_lr_frac: float

    @staticmethod
    def defaults(steps: int | None, step_chars: int, train_chars: int | None) -> tuple[dict, dict]:
        """Model and training settings for a budget of `steps` of `step_chars`: {} where it is unknown. The
        warm-up takes at most WARMUP_SHARE of the run."""
        if not steps:
            return {}, {}
        budget_chars = steps * step_chars
        t = _between(budget_chars, SHORT.chars, LONG.chars)

        def along(name: str, at: float, digits: int) -> float:
            return round(getattr(SHORT, name) + at * (getattr(LONG, name) - getattr(SHORT, name)), digits)

        train = {
            "lr": float(f"{math.exp(math.log(SHORT.lr) + t * math.log(LONG.lr / SHORT.lr)):.3g}"),
            "warmup_steps": min(round(along("warmup_steps", t, 0)), max(1, round(WARMUP_SHARE * steps))),
            "weight_decay": along("weight_decay", t, 3),
            "min_lr_frac": along("min_lr_frac", t, 3),
        }
        model = {}
        if train_chars:
            model["dropout"] = along("dropout", _between(budget_chars / train_chars, SHORT.passes, LONG.passes), 2)
        return model, train


def _between(x: float, low: float, high: float) -> float:
    """Where x lies from low (0) to high (1) on a log scale, clamped."""
    return min(1.0, max(0.0, math.log(x / low) / math.log(high / low)))


SHORT = Budget(2_048_000, passes=2.0, lr=8e-3, warmup_steps=300, weight_decay=0.1, dropout=0.1, min_lr_frac=0.1)
LONG = Budget(
    10_240_000,
    passes=10.0,
    lr=TrainConfig.lr,
    warmup_steps=TrainConfig.warmup_steps,
    weight_decay=TrainConfig.weight_decay,
    dropout=ModelConfig.dropout,
    min_lr_frac=0.0,
)
BUDGETED = ("lr", "warmup_steps", "weight_decay", "dropout", "min_lr_frac")  # what a step budget sets
WARMUP_SHARE = 0.3  # at most this share of a run warms up (SHORT was measured with 300 of 2,000 steps)


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every weight of a CharRNN with this config (PyTorch's names)."""
    v, e, h, g = cfg.vocab_size, cfg.embedding, cfg.hidden, cfg.spec.gates
    shapes: dict[str, tuple[int, ...]] = {"embed.weight": (v, e)}
    for layer in range(cfg.layers):
        inp = e if layer == 0 else h
        shapes[f"rnn.weight_ih_l{layer}"] = (g * h, inp)
        if cfg.spec.recurrent:
            shapes[f"rnn.weight_hh_l{layer}"] = (g * h, h)
        shapes[f"rnn.bias_ih_l{layer}"] = (g * h,)
        if cfg.spec.recurrent:
            shapes[f"rnn.bias_hh_l{layer}"] = (g * h,)
    shapes["head.weight"] = (v, h)
    shapes["head.bias"] = (v,)
    return shapes


def count_params(cfg: ModelConfig) -> int:
    return sum(math.prod(s) for s in param_shapes(cfg).values())


# --------------------------------------------------------------------------- checking

C = TypeVar("C")


def spec_of(cls: type, name: str) -> Spec:
    return next(f.metadata["spec"] for f in fields(cls) if f.name == name)


def flag_of(cls: type, name: str) -> str:
    flag = spec_of(cls, name).flag
    return "--" + (flag if flag else name.replace("_", "-")) if flag != "" else name


def kind_of(cls: type, name: str) -> type:
    """int, float or str: the field's type, without its `| None`."""
    hint = _type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return args[0]


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """typing.get_type_hints, once per class: building the command line asks for every field's (start-up time)."""
    return typing.get_type_hints(cls)


def check(cls: type, name: str, value: Any) -> Any:
    """`value` if field `name` of `cls` accepts it; else a UserError naming the flag and the fix."""
    spec, flag, kind = spec_of(cls, name), flag_of(cls, name), kind_of(cls, name)
    if value is None:
        default = next(f.default for f in fields(cls) if f.name == name)
        if default is None:
            return None
        raise UserError(f"{flag} needs a value")
    if kind is str:
        if not isinstance(value, str):
            raise UserError(f"{flag} {value!r} is not text")
        if spec.choices and value not in spec.choices:
            shown = value if value.isprintable() else repr(value)
            raise UserError(f"{flag} {shown}: choose one of {', '.join(spec.choices)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{flag} {value!r} is not {'a whole number' if kind is int else 'a number'}")
    if kind is int and not float(value).is_integer():
        raise UserError(f"{flag} {value!r} is not a whole number")
    if not math.isfinite(value):
        raise UserError(f"{flag} {value!r} is not a finite number")
    value = kind(value)

    def show(x: float) -> str:  # whole numbers in full (a seed of 4294967295, not 4.29497e+09)
        return str(int(x)) if kind is int else f"{x:g}"

    if spec.low is not None and (value < spec.low or (spec.open_low and value == spec.low)):
        bound = f"greater than {show(spec.low)}" if spec.open_low else f"at least {show(spec.low)}"
        raise UserError(f"{flag} {show(value)} is too small: it must be {bound}")
    if spec.high is not None and value > spec.high:
        raise UserError(f"{flag} {show(value)} is too large: it must be at most {show(spec.high)}")
    return value


def parse(cls: type, name: str, text: str) -> Any:
    """A field's value from text (a flag or an input box), checked like any other value."""
    kind, flag = kind_of(cls, name), flag_of(cls, name)
    if kind is str:
        return check(cls, name, text)
    try:
        value = int(text) if kind is int else float(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise UserError(f"{flag} {text!r} is not {what}") from None
    return check(cls, name, value)


_BUILDING = ContextVar("building", default=False)  # Settings.build: every value is checked already


def validate(obj: Any) -> None:
    """Check every field of a config instance; the first mistake is a UserError."""
    if _BUILDING.get():
        return
    for f in fields(obj):
        check(type(obj), f.name, getattr(obj, f.name))


def from_dict(cls: type[C], d: dict) -> C:
    """A config from a dict (e.g. meta.json), ignoring keys it does not know."""
    if not isinstance(d, dict):
        raise UserError(f"expected a {cls.__name__} as a JSON object, not {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in d.items() if k in names})
    except TypeError as exc:  # a required field is missing
        raise UserError(f"incomplete {cls.__name__}: {exc}") from None


class Settings(Mapping[str, Any], Generic[C]):
    """Some settings of one config class, by field name, each checked once: when parsed from text (`parse`),
    given as values (the constructor) or taken from a config (`of`, checked when it was built).

    A run's spec carries the settings its user gave as these; `build` makes the config from them, over the
    defaults and any presets, without checking any of them again. Read-only.
    """

    __slots__ = ("_values", "cls")

    def __init__(self, cls: type[C], values: Mapping[str, Any] | None = None) -> None:
        values = dict(values or {})
        _known(cls, values)
        self.cls = cls
        self._values = {name: check(cls, name, value) for name, value in values.items()}

    @classmethod
    def _checked(cls, kind: type[C], values: Mapping[str, Any]) -> Settings[C]:
        """Settings whose values are checked already."""
        made = cls.__new__(cls)
        made.cls, made._values = kind, dict(values)
        return made

    @classmethod
    def parse(cls, kind: type[C], texts: Mapping[str, str]) -> Settings[C]:
        """Settings from text (flags, input boxes): each converted and checked, or the UserError for the first."""
        _known(kind, texts)
        return cls._checked(kind, {name: parse(kind, name, text) for name, text in texts.items()})

    @classmethod
    def of(cls, config: C, names: Iterable[str] | None = None) -> Settings[C]:
        """A built config's settings (all of them, or `names`)."""
        names = [f.name for f in fields(config)] if names is None else list(names)
        return cls._checked(type(config), {name: getattr(config, name) for name in names})

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and other.cls is self.cls and other._values == self._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Settings({self.cls.__name__}, {self._values!r})"

    def __reduce__(self) -> tuple:  # to a spawned trainer, checked already
        return Settings._checked, (self.cls, self._values)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def without(self, names: Iterable[str]) -> Settings[C]:
        drop = set(names)
        return Settings._checked(self.cls, {k: v for k, v in self._values.items() if k not in drop})

    def over(self, under: Settings[C]) -> Settings[C]:
        """These settings over `under`'s (e.g. the user's over a resumed run's own)."""
        return Settings._checked(self.cls, {**under._values, **self._values})

    def build(self, *under: Settings[C], **fixed: Any) -> C:
        """The config: its defaults, then each of `under` in turn (a device's presets), then these settings,
        then `fixed` (e.g. the vocabulary's size, checked here). Nothing is checked a second time."""
        values: dict[str, Any] = {}
        for settings in under:
            values.update(settings._values)
        values.update(self._values)
        values.update({name: check(self.cls, name, value) for name, value in fixed.items()})
        token = _BUILDING.set(True)
        try:
            return self.cls(**values)
        finally:
            _BUILDING.reset(token)


def _known(cls: type, names: Iterable[str]) -> None:
    """A TypeError for a name that is not a setting of `cls` (a mistake in the code, not the user's)."""
    fields_ = {f.name for f in fields(cls)}
    if unknown := [name for name in names if name not in fields_]:
        raise TypeError(f"{cls.__name__} has no setting {unknown[0]!r}")
