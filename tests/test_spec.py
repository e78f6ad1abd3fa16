"""The run specification: a setting is checked once, when parsed, built into its config once; meta.json keeps it."""

import json
import pickle

import pytest

from rnn_tui import checkpoint, config
from rnn_tui.cli import build_parser, run_spec
from rnn_tui.config import ModelConfig, SampleConfig, Settings, TrainConfig
from rnn_tui.errors import UserError
from rnn_tui.runs import RunPlan, plan
from rnn_tui.text.sources import SourceSpec
from rnn_tui.train.loop import prepare
from tests.conftest import TINY_FLAGS, resume_plan


def test_a_setting_is_checked_once_from_its_flag_to_meta_json(text_file, tmp_path, monkeypatch):
    checked = []
    real = config.check

    def counting(cls, name, value):
        if name in ("hidden", "lr"):
            checked.append((name, value))
        return real(cls, name, value)

    monkeypatch.setattr(config, "check", counting)
    flags = ["train", "--data", str(text_file), *TINY_FLAGS, "--max-steps", "3", "--eval-every", "3"]
    flags += ["--lr", "2e-3", "--checkpoint-dir", str(tmp_path), "--run-name", "once"]
    spec = run_spec(build_parser().parse_args(flags))
    with prepare(plan(spec)) as trainer:
        assert trainer.model_cfg.hidden == 32 and trainer.cfg.lr == 2e-3
        trainer.run()
    assert checked == [("hidden", 32), ("lr", 2e-3)]  # parsed once; the plan and the trainer trust it
    assert spec.model == Settings(ModelConfig, {"hidden": 32, "layers": 1, "embedding": 8})
    assert spec.source == SourceSpec(str(text_file))  # the four source flags travel as one value
    meta = json.loads((tmp_path / "once" / checkpoint.META).read_text())
    assert meta["model"]["hidden"] == 32 and isinstance(meta["model"]["hidden"], int)
    assert meta["train"]["lr"] == 2e-3 and meta["train"]["max_steps"] == 3  # the values as parsed
    assert meta["source"] == spec.source.checked().to_dict()


def test_a_mistake_is_the_same_one_line_when_parsed():
    with pytest.raises(UserError, match=r"^--hidden 0 is too small: it must be at least 1$"):
        run_spec(build_parser().parse_args(["train", "--hidden", "0"]))
    with pytest.raises(UserError, match=r"^--lr -1 is too small"):
        Settings(TrainConfig, {"lr": -1})  # values given in code are checked too
    with pytest.raises(TypeError, match="no setting 'dropout'"):
        Settings(TrainConfig, {"dropout": 0.0})  # a model setting among the training ones: a bug, not a user's


def test_settings_are_a_read_only_checked_mapping():
    s = Settings(TrainConfig, {"batch_size": 8, "lr": 1})
    assert s["lr"] == 1.0 and isinstance(s["lr"], float) and "seed" not in s and len(s) == 2
    with pytest.raises(TypeError):
        s["lr"] = 2.0  # type: ignore[index]
    assert pickle.loads(pickle.dumps(s)) == s  # to a spawned trainer
    assert s.build().batch_size == 8 and s.build().seq_len == TrainConfig.seq_len
    assert Settings(TrainConfig, {"lr": 0.5}).over(s) == Settings(TrainConfig, {"batch_size": 8, "lr": 0.5})
    assert s.without(["lr"]) == Settings(TrainConfig, {"batch_size": 8})
    with pytest.raises(UserError, match="--temperature"):
        Settings(SampleConfig).build(temperature=9.0)  # a value fixed at build time is checked there


def test_gpu_presets_fill_only_what_the_user_did_not_give(text_file, tmp_path):
    flags = ["train", "--data", str(text_file), "--hidden", "64", "--checkpoint-dir", str(tmp_path)]
    p = plan(run_spec(build_parser().parse_args(flags)))
    gpu = p.model_config("cuda", vocab_size=10)
    assert gpu.hidden == 64 and gpu.layers == config.GPU_MODEL["layers"] and gpu.vocab_size == 10
    assert p.train_config("cuda").batch_size == config.GPU_TRAIN["batch_size"]
    cpu = p.model_config("cpu", vocab_size=10)
    assert cpu.hidden == 64 and cpu.layers == ModelConfig.layers
    assert RunPlan.from_json(json.loads(json.dumps(p.to_json()))) == p


def test_a_resumed_run_inherits_its_settings_but_not_the_machine_ones(text_file, tmp_path):
    flags = ["train", "--data", str(text_file), *TINY_FLAGS, "--max-steps", "2", "--precision", "fp32"]
    spec = run_spec(build_parser().parse_args([*flags, "--checkpoint-dir", str(tmp_path), "--run-name", "tiny"]))
    with prepare(plan(spec)) as trainer:
        trainer.run()
    resumed = resume_plan(tmp_path, max_steps=4)
    assert resumed.train["max_steps"] == 4 and resumed.train["batch_size"] == 8  # the user's over the run's
    assert not {"threads", "precision", "device"} & set(resumed.train)  # machine ones come from this machine
    assert resumed.model["hidden"] == 32 and resumed.model_config("cuda", 10).layers == 1  # no presets on resume
