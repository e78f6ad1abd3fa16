"""Issue 17's options: minGRU and minLSTM cells, weight-drop, Muon, the weight average, short first, our dropout."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from rnn_tui import checkpoint
from rnn_tui.config import ModelConfig, Settings
from rnn_tui.inference import Stepper
from rnn_tui.runs import plan
from rnn_tui.train.loop import prepare
from rnn_tui.train.model import CharRNN, LinearScan, dropout
from rnn_tui.train.optim import Average, orthogonalize
from tests.conftest import cli_env, resume_plan, tiny_request
from tests.fakes import numpy_weights

VARIANTS = {
    "mingru": ({"cell": "mingru"}, {}),
    "minlstm": ({"cell": "minlstm", "layers": 2}, {}),
    "weight-drop": ({"weight_drop": 0.3, "layers": 2}, {}),
    "muon": ({"layers": 2}, {"optimizer": "muon"}),
    "ema": ({}, {"ema": 0.9}),
    "short-first": ({"layers": 2}, {"short_first": 0.8}),
    "dropout-ramp": ({"layers": 2}, {"dropout_ramp": 0.5}),
    "sequence-dropout": ({"layers": 2, "dropout": 0.3, "dropout_mask": "sequence"}, {}),
    "everything": ({"weight_drop": 0.2, "layers": 2}, {"optimizer": "muon", "ema": 0.95}),
}


def _plan(text_file, folder, model: dict, **train):
    req = tiny_request(text_file, folder, **train)
    return plan(dataclasses.replace(req, model=Settings(ModelConfig, model).over(req.model)))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_resume_continues_as_if_it_never_stopped(text_file, tmp_path, variant):
    model, train = VARIANTS[variant]
    opts = {"max_steps": 40, "eval_every": 15, "sample_every": 1000, "precision": "fp32", **train}
    with prepare(_plan(text_file, tmp_path / "a", model, **opts)) as straight:
        straight.run()
    with prepare(_plan(text_file, tmp_path / "b", model, **opts)) as interrupted:
        interrupted.run(should_stop=lambda: interrupted.step >= 20)
    torch.manual_seed(999)  # whatever happened in between must not matter
    with prepare(resume_plan(tmp_path / "b", precision="fp32")) as resumed:
        assert resumed.step == 20
        resumed.run()
    for a, b in ((straight.model, resumed.model), (straight.shown, resumed.shown)):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(x, y), name
    assert resumed.best_val_loss == straight.best_val_loss < 3.0  # and it learned


def test_the_folder_holds_the_average_and_the_weights_that_train(text_file, tmp_path):
    with prepare(_plan(text_file, tmp_path, {}, max_steps=30, ema=0.9, sample_every=1000)) as t:
        t.run()
        ckpt = checkpoint.load(tmp_path / "tiny")
        for name, w in t.averaged.model.state_dict().items():
            np.testing.assert_array_equal(ckpt.model[name], w.numpy())
            np.testing.assert_array_equal(ckpt.optimizer[f"trained.{name}"], t.model.state_dict()[name].numpy())
        assert not np.array_equal(ckpt.model["head.weight"], ckpt.optimizer["trained.head.weight"])
        assert t.evaluate() == pytest.approx(t.best_val_loss)  # the average is what was evaluated


def test_a_damaged_trained_array_is_refused(text_file, tmp_path):
    with prepare(_plan(text_file, tmp_path, {}, max_steps=5, ema=0.9, eval_every=5, sample_every=1000)) as t:
        t.run()
    ckpt = checkpoint.load(tmp_path / "tiny")
    opt = {**ckpt.optimizer, "trained.head.weight": np.zeros((2, 2), np.float32)}
    meta = {k: v for k, v in ckpt.meta.items() if k not in ("checkpoint_id", "format", "format_version")}
    checkpoint.save(tmp_path / "tiny", ckpt.model, opt, meta)
    with pytest.raises(Exception, match="trained.head.weight"):
        checkpoint.load(tmp_path / "tiny")


@pytest.mark.process
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_a_min_cell_trains_samples_and_scores_from_the_cli(text_file, tmp_path, cell):
    env = cli_env()
    flags = ["--hidden", "32", "--layers", "2", "--embedding", "8", "--batch-size", "8", "--seq-len", "16"]
    flags += ["--threads", "1", "--max-steps", "30", "--eval-every", "30", "--model", cell]
    common = ["--checkpoint-dir", str(tmp_path)]
    run = [sys.executable, "-m", "rnn_tui"]
    train = subprocess.run([*run, "train", "--data", str(text_file), *flags, *common, "--run-name", "m"], env=env)
    assert train.returncode == 0
    sample = subprocess.run([*run, "sample", "m", "--length", "40", "--no-color", *common], env=env, **_text())
    assert sample.returncode == 0 and len(sample.stdout.strip()) >= 20
    score = subprocess.run([*run, "score", "m", str(text_file), "--json", *common], env=env, **_text())
    assert score.returncode == 0 and '"bits_per_char"' in score.stdout


def _text() -> dict:
    return {"capture_output": True, "text": True, "timeout": 120}


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_a_min_cell_carries_its_state_in_numpy_as_in_torch(cell):
    """Trained a little (so the gates are not all alike), the NumPy columns match the torch model row by row."""
    torch.manual_seed(3)
    m = CharRNN(ModelConfig(vocab_size=11, cell=cell, layers=3, hidden=20, embedding=5))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3)  # gates far from one half, candidates far from zero
    m.eval()
    ids = torch.randint(0, 11, (4, 25))
    with torch.no_grad():
        want, state = m(ids)
    stepper = Stepper(m.cfg, numpy_weights(m))
    logits, states = stepper.run_columns(ids.T.numpy(), stepper.initial_columns(4))
    np.testing.assert_allclose(logits.transpose(1, 0, 2), want.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(states[-1].transpose(1, 0, 2), state.numpy(), rtol=1e-4, atol=1e-5)


def test_the_linear_scan_has_the_right_gradient():
    torch.manual_seed(0)
    a = torch.rand(6, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 3, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LinearScan.apply, (a, b, h0))
    h, want = h0, []
    for t in range(6):
        h = a[t] * h + b[t]
        want.append(h)
    torch.testing.assert_close(LinearScan.apply(a, b, h0), torch.stack(want))


def test_weight_drop_drops_recurrent_weights_only_while_training():
    torch.manual_seed(0)
    m = CharRNN(ModelConfig(vocab_size=7, layers=2, hidden=16, embedding=4, dropout=0.0, weight_drop=0.5))
    ids = torch.randint(0, 7, (2, 9))
    m.eval()
    plain = m(ids)[0]
    m.cfg = dataclasses.replace(m.cfg, weight_drop=0.0)
    torch.testing.assert_close(m(ids)[0], plain)  # no effect in evaluation
    m.cfg = dataclasses.replace(m.cfg, weight_drop=0.5)
    m.train()
    assert not torch.allclose(m(ids)[0], plain)


def test_our_dropout_keeps_the_expectation_and_the_rate():
    torch.manual_seed(0)
    x = torch.ones(400, 1000, requires_grad=True)
    y = dropout(x, 0.2)
    assert abs((y == 0).float().mean().item() - 0.2) < 0.005
    assert abs(y.mean().item() - 1.0) < 0.01
    kept = torch.unique(y)
    assert len(kept) == 2 and kept[0] == 0 and kept[1].item() == pytest.approx(65536 / (65536 - round(0.2 * 65536)))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # the gradient goes through the same mask
    assert dropout(x, 0.2, training=False) is x


def test_orthogonalize_gives_about_orthogonal_matrices():
    torch.manual_seed(0)
    g = torch.randn(3, 32, 8)
    o = orthogonalize(g)
    singular = torch.linalg.svdvals(o)
    assert o.shape == g.shape and singular.min() > 0.6 and singular.max() < 1.25  # Muon's iteration: about 1


def test_the_average_follows_the_weights():
    lin = torch.nn.Linear(3, 3)
    before = lin.weight.detach().clone()
    avg = Average(lin, 0.5)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    avg.update(lin, step=100)  # the decay: 0.5
    torch.testing.assert_close(avg.model.weight, 0.5 * before + 0.5)
    avg.update(lin, step=0)  # early on it is capped at 1/10
    torch.testing.assert_close(avg.model.weight, 0.1 * (0.5 * before + 0.5) + 0.9)
    assert not avg.model.weight.requires_grad


def test_short_first_makes_more_smaller_updates_early(text_file, tmp_path):
    with prepare(_plan(text_file, tmp_path, {}, max_steps=40, short_first=0.5, sample_every=1000)) as t:
        seen = []
        for _ in range(40):
            seen.append(t.pieces())
            t.train_step()
        steps = {k: int(v["step"]) for k, v in enumerate(t.optimizer.state.values())}
    assert seen == [(2, 2)] * 10 + [(1, 2)] * 10 + [(1, 1)] * 20
    assert set(steps.values()) == {4 * 10 + 2 * 10 + 20}  # optimizer updates


def test_the_dropout_ramps_up_over_the_epochs(text_file, tmp_path):
    with prepare(_plan(text_file, tmp_path, {"dropout": 0.3, "layers": 2}, dropout_ramp=2.0)) as t:
        per_epoch = t.batches.per_epoch
        rates = []
        for _ in range(3 * per_epoch):
            t.train_step()
            rates.append(t.model.rate)
    assert rates[0] == 0.0 and rates[per_epoch] == pytest.approx(0.15) and rates[-1] == 0.3
    assert rates == sorted(rates) and t.model.rnn.dropout == 0.3


def test_a_locked_dropout_mask_is_the_same_at_every_time_step():
    torch.manual_seed(0)
    x = torch.ones(300, 7, 200)
    y = dropout(x, 0.3, locked=True)
    assert torch.equal(y, y[:, :1].expand_as(y))  # one mask per row of the batch
    assert abs((y[:, 0] == 0).float().mean().item() - 0.3) < 0.01
    assert abs(y.mean().item() - 1.0) < 0.02
    assert not torch.equal(y[0], y[1])


@pytest.mark.parametrize("cell", ["lstm", "minlstm"])
def test_sequence_dropout_masks_trains_and_evaluates_like_element_masks(text_file, tmp_path, cell):
    """The option changes only the masks while training: evaluation (no dropout) is the same function."""
    model = {"cell": cell, "layers": 2, "dropout": 0.3, "dropout_mask": "sequence"}
    with prepare(_plan(text_file, tmp_path, model, max_steps=30, sample_every=1000, precision="fp32")) as t:
        assert t.model.locked
        t.run()
        assert t.best_val_loss < 3.0
        ids = torch.randint(1, t.model_cfg.vocab_size, (2, 9))
        t.model.eval()
        plain = t.model(ids)[0]
        t.model.locked = False
        torch.testing.assert_close(t.model(ids)[0], plain)
    assert checkpoint.load(tmp_path / "tiny").config.dropout_mask == "sequence"
