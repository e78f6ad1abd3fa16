"""Messages that widgets post to the app and to each other."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from rnn_tui.generation import Token
from rnn_tui.session import Weights


@dataclass
class Generated(Message):
    """A (partial) result of generation: the prompt's tokens and what has been generated so far."""

    prompt: list[Token]
    generated: list[Token]
    done: bool
    started: float  # time.perf_counter() when the change that caused it arrived


@dataclass
class CursorMoved(Message):
    """The cursor (keys or mouse) is on a character of the coloured text; index -1 means none."""

    index: int
    token: Token | None


@dataclass
class SettingsChanged(Message):
    """A sampling control changed: regenerate."""


@dataclass
class Priming(Message):
    """Progress through a long prompt: `done` of `total` characters scored."""

    done: int
    total: int


@dataclass
class OpenRun(Message):
    """Show this run's weights in the playground (from the runs screen)."""

    name: str
    weights: Weights
