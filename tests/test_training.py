"""Issue 5: training loss terms (L1/L2, FGSM/PGD, gradient-norm penalty) and train_mlp."""

from __future__ import annotations

import numpy as np
import pytest

from bnblip.errors import InputError
from bnblip.network import Network
from bnblip.training import (
    Attack,
    Regime,
    fgsm,
    gradient_norm_penalty,
    make_mlp,
    pgd,
    train_mlp,
    weight_penalty,
)

torch = pytest.importorskip("torch")


@pytest.fixture
def model_and_batch():
    model = make_mlp(5, [8, 6], 3, seed=1).double()
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.uniform(0.1, 0.9, (16, 5)))
    y = torch.as_tensor(rng.integers(0, 3, 16))
    return model, x, y


def _loss(model, x, y):
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(x), y))


def test_weight_penalties_match_numpy(model_and_batch):
    model = model_and_batch[0]
    net = Network.from_torch(model)
    assert float(weight_penalty(model, 1).detach()) == pytest.approx(
        sum(np.abs(w).sum() for w in net.weights))
    assert float(weight_penalty(model, 2).detach()) == pytest.approx(
        sum((w ** 2).sum() for w in net.weights))
    with pytest.raises(InputError, match="order must be 1 or 2"):
        weight_penalty(model, 3)


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_adversarial_examples_stay_in_the_ball_and_raise_the_loss(model_and_batch, attack):
    model, x, y = model_and_batch
    eps = 0.05
    x_adv = fgsm(model, x, y, eps) if attack == "fgsm" else pgd(model, x, y, eps, steps=5)
    assert x_adv.shape == x.shape
    assert float((x_adv - x).abs().max()) <= eps + 1e-12
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert _loss(model, x_adv, y) > _loss(model, x, y)


def test_attacks_respect_the_clip_range(model_and_batch):
    model, x, y = model_and_batch
    x_edge = x.clone()
    x_edge[:, 0] = 1.0
    x_adv = pgd(model, x_edge, y, 0.2, steps=3, clip=(0.0, 1.0))
    assert float(x_adv.max()) <= 1.0
    with pytest.raises(InputError, match="eps must be a number > 0"):
        fgsm(model, x, y, 0.0)


@pytest.mark.parametrize(("norm", "dual"), [("linf", 1), ("l1", np.inf), ("l2", 2)])
def test_gradient_norm_penalty_value_and_weight_gradient(model_and_batch, norm, dual):
    model, x, y = model_and_batch
    penalty = gradient_norm_penalty(model, x[:4], y[:4], norm)
    # independent value: central finite differences of each sample's loss
    expected = []
    for i in range(4):
        xi = x[i].clone()
        grad = np.zeros(5)
        for j in range(5):
            step = torch.zeros(5, dtype=x.dtype)
            step[j] = 1e-6
            up = _loss(model, (xi + step)[None], y[i:i + 1])
            down = _loss(model, (xi - step)[None], y[i:i + 1])
            grad[j] = (up - down) / 2e-6
        expected.append(np.linalg.norm(grad, dual) ** 2)
    assert float(penalty.detach()) == pytest.approx(np.mean(expected), rel=1e-5)
    penalty.backward()
    first = next(model.parameters())
    assert first.grad is not None and float(first.grad.abs().sum()) > 0


def test_train_mlp_is_seeded_and_learns():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (200, 4))
    y = (x[:, 0] + x[:, 1] > 1).astype(int)
    a = train_mlp(x, y, [8], epochs=15, seed=5)
    b = train_mlp(x, y, [8], epochs=15, seed=5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    with torch.no_grad():
        acc = float((a(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy() == y).mean())
    assert acc > 0.85


def test_weight_decay_regime_shrinks_weights():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (150, 4))
    y = (x[:, 2] > 0.5).astype(int)
    plain = train_mlp(x, y, [8], epochs=10, seed=0)
    decayed = train_mlp(x, y, [8], Regime("l2", weight_l2=0.05), epochs=10, seed=0)
    assert float(weight_penalty(decayed, 2).detach()) < float(weight_penalty(plain, 2).detach())


def test_adversarial_and_penalty_regimes_train():
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 1, (64, 3))
    y = (x[:, 0] > 0.5).astype(int)
    for regime in (Regime("fgsm", attack=Attack.FGSM, eps=0.05),
                   Regime("pgd", attack=Attack.PGD, eps=0.05, pgd_steps=2),
                   Regime("grad", grad_penalty=0.1, grad_norm="l2")):
        model = train_mlp(x, y, [6], regime, epochs=2, seed=0)
        assert Network.from_torch(model).widths == (3, 6, 2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"weight_l2": -1.0}, "Regime.weight_l2 must be a number >= 0"),
    ({"attack": Attack.FGSM}, "Regime.eps must be > 0 when an attack is set"),
    ({"attack": "fgsm", "eps": 0.1}, "Regime.attack must be an Attack"),
    ({"pgd_steps": 0}, "Regime.pgd_steps must be an integer >= 1"),
    ({"grad_norm": "l3"}, "Regime.grad_norm must be one of"),
])
def test_regime_validation(kwargs, message):
    with pytest.raises(InputError, match=message):
        Regime("bad", **kwargs)


def test_train_mlp_validation():
    with pytest.raises(InputError, match="x must be \\(N, n\\) and y \\(N,\\)"):
        train_mlp(np.zeros((4, 2)), np.zeros(3, dtype=int), [3])
    with pytest.raises(InputError, match="hidden must be a non-empty list"):
        make_mlp(2, [], 2)
