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
        if (name, value) in (("hidden", 32), ("lr", 2e-3)):  # the user's (a budget's presets are checked too)
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


SHAKESPEARE_TRAIN = 1_003_855  # tinyshakespeare's training part: 2,048,000 characters are 2.04 passes over it


STEP = 16 * 64  # the default batch's characters


def test_a_step_budget_chooses_the_learning_rate_warm_up_regularisation_and_floor():
    short = config.Budget.defaults(2000, STEP, SHAKESPEARE_TRAIN)  # BENCHMARKS.md's short budget, 2.05 M
    assert short == ({"dropout": 0.1}, {"lr": 0.008, "warmup_steps": 300, "weight_decay": 0.1, "min_lr_frac": 0.1})
    long = config.Budget.defaults(10_000, STEP, SHAKESPEARE_TRAIN)  # and its long one, 10.24 M
    defaults = {
        "lr": TrainConfig.lr,
        "warmup_steps": TrainConfig.warmup_steps,
        "weight_decay": TrainConfig.weight_decay,
        "min_lr_frac": 0.0,  # down to 0
    }
    assert long == ({"dropout": ModelConfig.dropout}, defaults)
    assert config.Budget.defaults(None, STEP, SHAKESPEARE_TRAIN) == ({}, {})  # no budget: the defaults
    runs = [config.Budget.defaults(steps, STEP, SHAKESPEARE_TRAIN) for steps in (10, 1000, 2000, 5000, 10**4, 10**6)]
    lrs, dropouts = [t["lr"] for _, t in runs], [m["dropout"] for m, _ in runs]
    assert lrs == sorted(lrs, reverse=True) and dropouts == sorted(dropouts)  # longer: lower peak, more dropout
    decays = [t["weight_decay"] for _, t in runs]
    assert decays == sorted(decays) and decays[0] == 0.1 and 0.1 < decays[3] < 0.2 == decays[-1]  # more decay
    floors = [t["min_lr_frac"] for _, t in runs]
    assert floors == sorted(floors, reverse=True) and floors[0] == 0.1 and floors[-1] == 0.0  # and a lower floor
    assert runs[0][1]["warmup_steps"] == 3  # at most 30 % of the run warms up
    # the budget is in characters: half the steps of twice the batch is the same budget
    assert config.Budget.defaults(1000, 2 * STEP, SHAKESPEARE_TRAIN) == short
    # dropout follows the passes over the text, the learning rate the characters: a big text keeps dropout low
    assert config.Budget.defaults(10_000, STEP, 100 * SHAKESPEARE_TRAIN) == ({"dropout": 0.1}, long[1])


def _budget_plan(tmp_path, train=None, **kw) -> RunPlan:
    settings = Settings(TrainConfig, {"max_steps": 2000, **(train or {})})
    return RunPlan(tmp_path / "r", SourceSpec("x.txt"), Settings(ModelConfig), settings, **kw)


def test_what_the_user_gives_wins_over_the_budget_and_only_new_cpu_runs_get_one(tmp_path):
    given = _budget_plan(tmp_path, {"lr": 1e-3})
    assert given.train_config("cpu").lr == 1e-3 and given.train_config("cpu").warmup_steps == 300
    assert given.model_config("cpu", 10, SHAKESPEARE_TRAIN).dropout == 0.1
    assert "learning rate" not in given.budget_note("cpu", SHAKESPEARE_TRAIN)
    assert "warm-up steps 300, weight decay 0.1, dropout 0.1;" in given.budget_note("cpu", SHAKESPEARE_TRAIN)
    long = _budget_plan(tmp_path, {"max_steps": 10_000})
    assert long.budget_note("cpu", SHAKESPEARE_TRAIN) == (
        "a run of 10.24 M characters (10.2 passes over the text) learns best with the learning rate decaying to 0; "
        "--min-lr-frac chooses it yourself"
    )
    tiny = _budget_plan(tmp_path, {"max_steps": 2}).budget_note("cpu", SHAKESPEARE_TRAIN)
    assert tiny.startswith("a run of 2,048 characters (0.002 of a pass over the text) learns best with")
    gpu = _budget_plan(tmp_path)  # a GPU's presets were measured on a GPU: no budget there
    assert (gpu.train_config("cuda").lr, gpu.model_config("cuda", 10, SHAKESPEARE_TRAIN).dropout) == (2e-3, 0.3)
    assert gpu.budget_note("cuda", SHAKESPEARE_TRAIN) is None
    tuned = _budget_plan(tmp_path, {"lr": 1e-3}, init_from={"source": "x", "path": "x", "step": 1})
    assert tuned.train_config("cpu").warmup_steps == 100 and tuned.budget_note("cpu", SHAKESPEARE_TRAIN) is None
    unbudgeted = RunPlan(tmp_path / "r", SourceSpec("x.txt"), Settings(ModelConfig), Settings(TrainConfig))
    assert unbudgeted.train_config("cpu") == TrainConfig() and unbudgeted.budget_note("cpu", 10**6) is None
    chosen = _budget_plan(tmp_path, {"lr": 3e-3, "warmup_steps": 100, "weight_decay": 0.2}).train
    everything = RunPlan(tmp_path / "r", SourceSpec("x.txt"), Settings(ModelConfig, {"dropout": 0.15}), chosen)
    assert everything.budget_note("cpu", SHAKESPEARE_TRAIN) is None  # the user chose all four


def test_a_resumed_run_keeps_the_settings_its_budget_chose(text_file, tmp_path):
    tiny = TINY_FLAGS[: TINY_FLAGS.index("--warmup-steps")]  # the budget's warm-up, not the tests' usual one
    flags = ["train", "--data", str(text_file), *tiny, "--max-steps", "4", "--eval-every", "4"]
    flags += ["--checkpoint-dir", str(tmp_path), "--run-name", "short"]
    with prepare(plan(run_spec(build_parser().parse_args(flags)))) as trainer:
        assert (trainer.cfg.lr, trainer.cfg.warmup_steps, trainer.model_cfg.dropout) == (0.008, 1, 0.1)
        trainer.run()
    said = [e["message"] for e in map(json.loads, (tmp_path / "short" / "events.jsonl").open()) if "message" in e]
    chose = "learning rate 0.008, warm-up steps 1, weight decay 0.1, dropout 0.1"
    assert any(m.startswith("a run of ") and chose in m for m in said)
    resumed = resume_plan(tmp_path, "short", max_steps=50_000)  # now a long budget, but the run is the same run
    assert resumed.train_config("cpu").lr == 0.008 and resumed.model_config("cpu", 10).dropout == 0.1
