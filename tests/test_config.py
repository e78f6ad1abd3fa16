"""The settings: one set of bounds and one message per mistake, for the CLI, the app and meta.json alike."""

from dataclasses import fields

import pytest

from rnn_tui import config
from rnn_tui.cli import build_parser
from rnn_tui.config import ModelConfig, SampleConfig, TrainConfig
from rnn_tui.errors import UserError


@pytest.mark.parametrize(
    ("cls", "name", "text", "message"),
    [
        (TrainConfig, "lr", "fast", "--lr 'fast' is not a number"),
        (TrainConfig, "lr", "0", "--lr 0 is too small: it must be greater than 0"),
        (TrainConfig, "lr", "nan", "--lr nan is not a finite number"),
        (TrainConfig, "lr", "inf", "--lr inf is not a finite number"),
        (TrainConfig, "batch_size", "0", "--batch-size 0 is too small: it must be at least 1"),
        (TrainConfig, "batch_size", "2.5", "--batch-size '2.5' is not a whole number"),
        (TrainConfig, "batch_size", "1e12", "--batch-size '1e12' is not a whole number"),
        (TrainConfig, "val_frac", "0.9", "--val-frac 0.9 is too large: it must be at most 0.5"),
        (TrainConfig, "device", "tpu", "--device tpu: choose one of auto, cpu, cuda, mps"),
        (ModelConfig, "cell", "transformer", "--model transformer: choose one of lstm, gru, rnn, mingru, minlstm"),
        (ModelConfig, "hidden", "-3", "--hidden -3 is too small: it must be at least 1"),
        (ModelConfig, "hidden", "100000", "--hidden 100000 is too large: it must be at most 16384"),
        (SampleConfig, "temperature", "-1", "--temperature -1 is too small: it must be at least 0"),
        (SampleConfig, "top_k", "x", "--top-k 'x' is not a whole number"),
    ],
)
def test_one_message_per_mistake(cls, name, text, message):
    with pytest.raises(UserError) as info:
        config.parse(cls, name, text)
    assert str(info.value) == message


def test_values_are_checked_however_they_arrive():
    assert config.parse(TrainConfig, "lr", "3e-3") == pytest.approx(3e-3)
    assert config.parse(TrainConfig, "max_steps", "100") == 100
    with pytest.raises(UserError, match="--layers 0 is too small"):
        ModelConfig(vocab_size=10, layers=0)  # a dataclass built in code
    with pytest.raises(UserError, match="--lr"):
        TrainConfig.from_dict({"lr": -1.0})  # a meta.json
    with pytest.raises(UserError, match="not a whole number"):
        ModelConfig.from_dict({"vocab_size": 10, "hidden": True})
    assert TrainConfig(max_steps=None).max_steps is None  # optional ones may be unset


@pytest.mark.parametrize("command", ["train", "launch"])
def test_every_setting_has_a_flag_with_its_help(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    flags = {opt: action for action in sub._actions for opt in action.option_strings}
    for cls in (ModelConfig, TrainConfig):
        for f in fields(cls):
            if f.name == "vocab_size":
                continue
            action = flags[config.flag_of(cls, f.name)]
            assert action.dest == f.name and action.help.startswith(f.metadata["spec"].help)


def test_the_cell_table_names_the_cells():
    assert set(config.CELLS) == set(config.spec_of(ModelConfig, "cell").choices)
    # embedding 65x64, layer 1: 4*512*(64+512) + 2*2048 biases, layer 2: 4*512*1024 + 2*2048, head 512*65+65
    assert config.count_params(ModelConfig(vocab_size=65)) == 4_160 + 1_183_744 + 2_101_248 + 33_345
