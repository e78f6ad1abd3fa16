import pytest
import torch

from rnn_tui import devices
from rnn_tui.errors import UserError


def test_auto_picks_what_is_there():
    assert devices.pick_device("auto").type in ("cpu", "cuda", "mps")
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
    assert devices.pick_precision(torch.device("cpu"), "bf16") == "bf16"


def test_threads():
    before = torch.get_num_threads()
    try:
        assert devices.set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
