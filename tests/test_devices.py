import pytest
import torch

from rnn_tui.errors import UserError
from rnn_tui.train import devices


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"), [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_picks_the_best_there_is(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert devices.pick_device("auto").type == expected
    assert devices.pick_device("cpu") == torch.device("cpu")


def test_a_missing_gpu_is_a_user_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="--device cpu"):
        devices.pick_device("cuda")


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_precision_follows_the_hardware(monkeypatch, native, expected):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
    assert devices.pick_precision(torch.device("cpu")) == expected
    assert devices.pick_precision(torch.device("cpu"), "fp32") == "fp32"  # the flag wins
    if native:
        assert devices.pick_precision(torch.device("cpu"), "bf16") == "bf16"
    else:  # oneDNN's LSTM has no bf16 kernel without the hardware: say so instead of crashing
        with pytest.raises(UserError, match="--precision fp32"):
            devices.pick_precision(torch.device("cpu"), "bf16")


def test_threads():
    before = torch.get_num_threads()
    try:
        assert devices.set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
