"""Messages that widgets post to the app and to each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # annotations only: the app's first frame imports this module, before NumPy
    from rnn_tui.generation import Token
    from rnn_tui.session import Weights


@dataclass
class Generated(Message):
    """A (partial) result of generation, as an edit of the coloured text: keep its first `keep` tokens and
    append `tokens`; then its first `n_prompt` tokens are the prompt's, the rest generated. `done`: the
    continuation is complete."""

    keep: int
    tokens: list[Token]
    n_prompt: int
    done: bool


@dataclass
class Choose(Message):
    """Enter on a character of the coloured text: choose among the model's top five there (the inspector)."""

    index: int


@dataclass
class Branch(Message):
    """The inspector's choice: continue from character `index` of the coloured text with `char` in its place."""

    index: int
    char: str


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
    """Progress through a long prompt: `done` of `total` characters scored (done >= total: none under way)."""

    done: int
    total: int


@dataclass
class WeightsTaken(Message):
    """The generation engine generates with these weights from now on."""

    weights: Weights


@dataclass
class EngineFailed(Message):
    """The generation engine's thread stopped on an error (a bug): the playground raises it."""

    error: Exception


@dataclass
class ShownRun(Message):
    """Whose weights the playground shows: another run's ("name at step N"), or "" for this session's."""

    label: str


@dataclass
class OpenRun(Message):
    """Show this run's weights in the playground (from the runs screen)."""

    name: str
    weights: Weights
