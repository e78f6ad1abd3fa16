"""Our AdamW against torch.optim.AdamW: the same weights after the same steps, and no torch._dynamo."""

import subprocess
import sys

import pytest
import torch

from rnn_tui.train.optim import AdamW


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Embedding(11, 6), torch.nn.LSTM(6, 8, batch_first=True))


def _train(net: torch.nn.Module, opt, steps: range, set_lr) -> None:
    for step in steps:
        x = torch.randint(0, 11, (3, 5), generator=torch.Generator().manual_seed(step))
        set_lr(opt, 1e-2 * (1 + step % 3))  # a changing rate, as the schedule gives
        out, _ = net[1](net[0](x))
        opt.zero_grad()
        (out**2).mean().backward()
        opt.step()


def _set_ours(opt, lr):
    opt.lr = lr


def _set_torch(opt, lr):
    for group in opt.param_groups:
        group["lr"] = lr


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_the_same_steps_as_torch(weight_decay, fused):
    ours, theirs = _net(), _net()
    opt = AdamW(ours.parameters(), 1e-2, (0.9, 0.99), weight_decay=weight_decay, fused=fused)
    _train(ours, opt, range(20), _set_ours)
    assert opt.fused == fused  # the CPU has the fused kernel from PyTorch 2.4
    reference = torch.optim.AdamW(theirs.parameters(), 1e-2, (0.9, 0.99), weight_decay=weight_decay)
    _train(theirs, reference, range(20), _set_torch)
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_a_saved_state_goes_on_as_if_never_stopped():
    whole, resumed = _net(), _net()
    _train(whole, AdamW(whole.parameters(), 1e-2), range(10), _set_ours)
    first = AdamW(resumed.parameters(), 1e-2)
    _train(resumed, first, range(5), _set_ours)
    second = AdamW(resumed.parameters(), 1e-2)
    second.load_state_dict(first.state_dict())
    _train(resumed, second, range(5, 10), _set_ours)
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    assert {float(s["step"]) for s in second.state.values()} == {10.0}


def test_a_snapshot_is_a_copy():
    net = _net()
    opt = AdamW(net.parameters(), 1e-2)
    _train(net, opt, range(2), _set_ours)
    snap = opt.state_dict()
    _train(net, opt, range(2, 4), _set_ours)
    assert float(snap[0]["step"]) == 2.0 and not torch.equal(snap[0]["exp_avg"], opt.state[opt.params[0]]["exp_avg"])


@pytest.mark.process
def test_it_does_not_import_dynamo():
    code = (
        "import sys, torch\n"
        "from rnn_tui.train.optim import AdamW\n"
        "p = torch.nn.Parameter(torch.ones(3)); o = AdamW([p], 0.1); p.sum().backward(); o.step()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # torch.optim.AdamW's constructor imports it (about 1.8 s on 2 cores)
