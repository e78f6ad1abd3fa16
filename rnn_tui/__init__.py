"""rnn-tui: train, watch and play with character-level recurrent language models.

`rnn_tui.load(...)` gives a trained model to generate from and score with (rnn_tui/api.py, imported on first use,
so that `import rnn_tui` stays cheap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rnn_tui.api import Model, Score, load

__all__ = ["Model", "Score", "__version__", "load"]


def __getattr__(name: str) -> Any:
    if name in ("load", "Model", "Score"):
        from rnn_tui import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnn_tui' has no attribute {name!r}")
