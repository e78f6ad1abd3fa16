"""rnn-tui: train, watch and play with character-level recurrent language models."""

__version__ = "0.1.0"
