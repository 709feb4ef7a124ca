"""Network: validation, forward pass and exact gradients (checked against torch)."""

import numpy as np
import pytest
import torch

from bnblip.errors import InputError
from bnblip.network import Network
from tests.conftest import random_network


def _torch_model(net: Network) -> torch.nn.Sequential:
    layers = []
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w))
            lin.bias.copy_(torch.tensor(b))
        layers.append(lin)
        if k + 1 < len(net.weights):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("seed", range(5))
def test_forward_and_gradient_match_torch(seed):
    rng = np.random.default_rng(seed)
    widths = [int(v) for v in rng.integers(1, 9, size=rng.integers(2, 6))]
    net = random_network(rng, widths)
    model = _torch_model(net)
    x = rng.normal(size=(50, widths[0]))
    c = rng.normal(size=widths[-1])
    xt = torch.tensor(x, requires_grad=True)
    out = model(xt)
    (out @ torch.from_numpy(c)).sum().backward()
    np.testing.assert_allclose(net.forward(x), out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.gradient(x, c), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_single_point_shapes():
    net = random_network(np.random.default_rng(0), [3, 4, 2])
    x = np.zeros(3)
    assert net.forward(x).shape == (2,)
    assert net.gradient(x, [1, -1]).shape == (3,)
    assert [p.shape for p in net.pattern(x)] == [(4,)]
    assert net.widths == (3, 4, 2) and net.num_neurons == 4 and net.num_hidden_layers == 1


def test_weights_are_read_only_copies():
    w = np.ones((2, 2))
    net = Network.from_layers([w, np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    w[0, 0] = 5.0
    assert net.weights[0][0, 0] == 1.0
    with pytest.raises(ValueError):
        net.weights[0][0, 0] = 3.0


@pytest.mark.parametrize(("weights", "biases", "message"), [
    ([], [], "at least one affine layer"),
    ([np.ones((2, 2))], [np.ones(2), np.ones(1)], "2 bias vectors"),
    ([np.ones(2)], [np.ones(2)], "layer 0: weight must be 2-D"),
    ([np.ones((2, 2))], [np.ones(3)], "layer 0: bias shape"),
    ([np.ones((2, 2)), np.ones((1, 3))], [np.ones(2), np.ones(1)],
     "layer 1: takes 3 inputs but layer 0 gives 2"),
    ([np.array([[np.nan, 1.0]])], [np.ones(1)], "layer 0: weights or biases contain NaN"),
    ([np.ones((1, 2))], [np.array([np.inf])], "contain NaN or inf"),
    ([np.ones((0, 2))], [np.ones(0)], "empty dimension"),
    ([[[1.0, 2.0], [3.0]]], [[0.0, 0.0]], "layer 0: weight and bias must be rectangular"),
    ([np.ones((1, 2)) * (1 + 1j)], [np.ones(1)], "layer 0: weights and biases must be real"),
])
def test_invalid_layers_are_named(weights, biases, message):
    with pytest.raises(InputError, match=message):
        Network.from_layers(weights, biases)


def test_bad_point_and_functional():
    net = random_network(np.random.default_rng(1), [3, 4, 2])
    with pytest.raises(InputError, match=r"x must have shape \(3,\)"):
        net.forward(np.zeros(4))
    with pytest.raises(InputError, match="c must have length 2"):
        net.gradient(np.zeros(3), [1.0, 2.0, 3.0])
