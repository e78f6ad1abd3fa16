"""What a trainer reports, as dataclasses with a JSON form. Torch-free.

The same objects are printed by `rnn-tui train --json`, appended to a run's record
(events.jsonl), passed from the trainer's process to the app, and routed to its widgets.
Each class has a `KIND`, the "event" key of its JSON form.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    KIND: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return {"event": self.KIND, **asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    """A trainer started or resumed a run: what the run is."""

    KIND: ClassVar[str] = "start"
    step: int
    run_dir: str
    corpus: dict  # name, description, chars, sha256
    model: dict  # ModelConfig fields
    train: dict  # TrainConfig fields
    params: int
    device: str  # e.g. "cpu (2 threads, fp32)"
    resumed: bool = False
    time: str = ""  # when, ISO 8601


@dataclass(frozen=True)
class Progress(Event):
    KIND: ClassVar[str] = "progress"
    step: int
    epoch: int
    loss: float  # mean training loss since the last progress event (nats/char)
    lr: float
    chars_per_s: float
    elapsed: float  # seconds of training in this run, across resumes
    fraction: float | None = None  # of the step or time budget, if there is one
    eta: float | None = None  # seconds left, if there is a budget
    chars: int | None = None  # characters trained on so far (None: a record from before it was counted)
    # The trainer's process, sampled about once a second (None where there is none, or an older record).
    cpu_percent: float | None = None  # of one core: 200 is two cores busy
    threads: int | None = None
    rss_mb: float | None = None
    gpu_percent: float | None = None  # the GPU's utilisation, where there is one and the driver says
    gpu_mem_mb: float | None = None  # GPU memory the trainer holds


@dataclass(frozen=True)
class Evaluation(Event):
    KIND: ClassVar[str] = "eval"
    step: int
    val_loss: float
    best_val_loss: float
    is_best: bool
    seconds: float  # the evaluation's own time
    elapsed: float  # seconds of training so far, evaluations included


@dataclass(frozen=True)
class Sample(Event):
    """Text the model wrote during training. The prompt and seed are the same for every sample of a run."""

    KIND: ClassVar[str] = "sample"
    step: int
    text: str
    temperature: float
    seed: int = 0
    prompt: str = ""


@dataclass(frozen=True)
class CheckpointSaved(Event):
    KIND: ClassVar[str] = "checkpoint"
    step: int
    path: str
    best: bool


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know: a skipped step, a rollback, a failed save."""

    KIND: ClassVar[str] = "notice"
    step: int
    message: str
    level: str = "warning"  # information | warning | error


@dataclass(frozen=True)
class Finished(Event):
    KIND: ClassVar[str] = "done"
    step: int
    reason: str  # max_steps | max_minutes | patience | stopped | diverged
    best_val_loss: float | None
    elapsed: float


# --------------------------------------------------------------------------- session events
# Not in the run record: they describe the trainer's process as the app sees it.


@dataclass(frozen=True)
class TrainerState(Event):
    KIND: ClassVar[str] = "status"
    state: str  # training | paused | saving


@dataclass(frozen=True)
class TrainerFailed(Event):
    KIND: ClassVar[str] = "failed"
    message: str
    restartable: bool = False  # a checkpoint exists to restart from


@dataclass(frozen=True)
class History(Event):
    """A run's record so far, delivered at once when the app opens a run that has one."""

    KIND: ClassVar[str] = "history"
    events: list[Event] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"event": self.KIND, "events": [e.to_json() for e in self.events]}


RECORDED = (RunStarted, Progress, Evaluation, Sample, CheckpointSaved, Notice, Finished)
KINDS: dict[str, type[Event]] = {cls.KIND: cls for cls in (*RECORDED, TrainerState, TrainerFailed)}


def from_json(d: Any) -> Event:
    """The event of a JSON object; ValueError if it is not one we know."""
    if not isinstance(d, dict) or d.get("event") not in KINDS:
        raise ValueError(f"not an rnn-tui event: {str(d)[:80]}")
    cls = KINDS[d["event"]]
    hints = _hints(cls)
    values = {k: v for k, v in d.items() if k in hints}
    for name, value in values.items():
        if not _is(value, hints[name]):
            raise ValueError(f"a {cls.KIND} event whose {name} is {type(value).__name__}")
    try:
        return cls(**values)
    except TypeError as exc:  # a field is missing
        raise ValueError(f"a {cls.KIND} event with missing fields ({exc})") from None


@functools.cache
def _hints(cls: type[Event]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _is(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type (int, float, str, bool, dict, and their `| None`)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for t in options:
        if t is type(None) and value is None:
            return True
        if t is bool and isinstance(value, bool):
            return True
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and (t is float or (t is int and isinstance(value, int))):
            return True
        if t in (str, dict) and isinstance(value, t):
            return True
    return False
