import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnn_tui.config import CELLS, ModelConfig, count_params, param_shapes
from rnn_tui.inference import KERNELS, Stepper
from rnn_tui.train.model import CharRNN
from tests.fakes import numpy_weights


@pytest.mark.parametrize("cell", list(CELLS))
def test_forward_shapes(cell):
    m = CharRNN(ModelConfig(vocab_size=11, cell=cell, layers=2, hidden=16, embedding=4))
    logits, state = m(torch.randint(0, 11, (3, 7)))
    assert logits.shape == (3, 7, 11)
    logits2, _ = m(torch.randint(0, 11, (3, 5)), state)  # a state carries on
    assert logits2.shape == (3, 5, 11)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("layers", [1, 3])
def test_numpy_stepper_matches_the_torch_model(cell, layers):
    torch.manual_seed(0)
    m = CharRNN(ModelConfig(vocab_size=13, cell=cell, layers=layers, hidden=24, embedding=6)).eval()
    ids = torch.randint(0, 13, (1, 30))
    with torch.no_grad():
        want = m(ids)[0][0].numpy()
    stepper = Stepper(m.cfg, numpy_weights(m))
    state = stepper.initial_state()
    for t, i in enumerate(ids[0].tolist()):
        logits, state = stepper.step(i, state)
        np.testing.assert_allclose(logits, want[t], rtol=1e-4, atol=1e-5)
    # the whole sequence at once, in two pieces, carrying the state between them
    first, states = stepper.run(ids[0, :11].numpy(), stepper.initial_state())
    second, states2 = stepper.run(ids[0, 11:].numpy(), list(states[-1]))
    np.testing.assert_allclose(np.concatenate([first, second]), want, rtol=1e-4, atol=1e-5)
    for layer in range(layers):
        np.testing.assert_allclose(states2[-1, layer], state[layer], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cell", list(CELLS))
def test_a_batched_step_matches_the_torch_model_row_by_row(cell):
    """A batch of three different sequences, stepped together: each row is the model on its own sequence."""
    torch.manual_seed(1)
    m = CharRNN(ModelConfig(vocab_size=13, cell=cell, layers=2, hidden=24, embedding=6)).eval()
    ids = torch.randint(0, 13, (3, 20))
    with torch.no_grad():
        want = m(ids)[0].numpy()
    stepper = Stepper(m.cfg, numpy_weights(m))
    state = [np.zeros((3, stepper.width), np.float32) for _ in range(2)]
    for t in range(ids.shape[1]):
        logits, state = stepper.step(ids[:, t].numpy(), state)
        assert logits.shape == (3, 13) and state[0].shape == (3, stepper.width)
        np.testing.assert_allclose(logits, want[:, t], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell", list(CELLS))
def test_the_cell_table_describes_the_torch_model(cell):
    cfg = ModelConfig(vocab_size=9, cell=cell, layers=2, hidden=12, embedding=5)
    m = CharRNN(cfg)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == param_shapes(cfg)
    assert count_params(cfg) == m.num_params()
    assert cell in KERNELS  # every cell can run in the playground
    assert KERNELS[cell].shows  # and the neuron view says what it colours


def test_unknown_id_has_a_zero_embedding():
    m = CharRNN(ModelConfig(vocab_size=5, hidden=8, embedding=4))
    assert torch.count_nonzero(m.embed.weight[0]) == 0


def test_overfits_a_tiny_text():
    torch.manual_seed(0)
    text = "hello world, hello rnn! " * 4
    chars = sorted(set(text))
    ids = torch.tensor([[chars.index(c) + 1 for c in text]])
    m = CharRNN(ModelConfig(vocab_size=len(chars) + 1, hidden=64, layers=1, embedding=16))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(300):
        logits, _ = m(ids[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
