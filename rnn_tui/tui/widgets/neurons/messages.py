"""What the neuron view's workers report to it (from their threads)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from rnn_tui.neurons import Analysis, Effect, Ranking, Trace


@dataclass
class Working(Message):
    """A worker's progress: what it does, and the fraction done (None: not known yet)."""

    task: str  # "trace", "find" or "ablate"
    what: str
    fraction: float | None


@dataclass
class Traced(Message):
    """Every cell's activation over the shown text."""

    trace: Trace
    source: str  # "playground" or "validation"


@dataclass
class CellsFound(Message):
    ranking: Ranking
    analysis: Analysis
    step: int  # the weights' training step
    what: str  # the text it read, for people
    note: str = ""  # why it read that text, when it is not the validation text


@dataclass
class Ablated(Message):
    effect: Effect


@dataclass
class Failed(Message):
    """A worker could not do its task (a UserError's message)."""

    task: str
    message: str
