"""Training MLPs with Lipschitz-relevant regularisers (optional: needs ``torch``).

Loss terms: L1 / L2 weight penalties, FGSM / PGD adversarial examples (l-inf balls
clipped to the data range) and a gradient-norm (local Lipschitz) penalty; plus a
small seeded :func:`train_mlp`.  ``torch`` is imported inside the functions, so
importing this module never requires it.  Models are ``nn.Sequential`` MLPs that
:meth:`bnblip.Network.from_torch` converts.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bnblip.errors import InputError
from bnblip.problem import Norm

logger = logging.getLogger("bnblip.training")


class Attack(enum.Enum):
    """Adversarial training attack."""

    NONE = "none"
    FGSM = "fgsm"
    PGD = "pgd"


@dataclass(frozen=True)
class Regime:
    """A training regime: which terms are added to the cross-entropy loss.

    Attributes
    ----------
    name : str
    weight_l1, weight_l2 : float
        Coefficients of ``sum |W|`` and ``sum W^2`` over the Linear weights.
    attack : Attack
        Train on adversarial examples (half clean, half adversarial loss) when set.
    eps : float
        l-inf radius of the attack.
    pgd_steps : int
        Steps of PGD (step size ``2.5 eps / pgd_steps``).
    grad_penalty : float
        Coefficient of the mean squared dual norm of the input gradient of the loss.
    grad_norm : Norm
        Input norm whose dual measures that gradient.
    """

    name: str
    weight_l1: float = 0.0
    weight_l2: float = 0.0
    attack: Attack = Attack.NONE
    eps: float = 0.0
    pgd_steps: int = 10
    grad_penalty: float = 0.0
    grad_norm: Norm = Norm.LINF

    def __post_init__(self) -> None:
        for field_name in ("weight_l1", "weight_l2", "eps", "grad_penalty"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"Regime.{field_name} must be a number >= 0, got {value!r}")
        if not isinstance(self.attack, Attack):
            raise InputError(f"Regime.attack must be an Attack, got {self.attack!r}")
        if self.attack is not Attack.NONE and self.eps <= 0:
            raise InputError("Regime.eps must be > 0 when an attack is set")
        if isinstance(self.pgd_steps, bool) or not isinstance(self.pgd_steps, int) \
                or self.pgd_steps < 1:
            raise InputError(f"Regime.pgd_steps must be an integer >= 1, got {self.pgd_steps!r}")
        object.__setattr__(self, "grad_norm", Norm.parse(self.grad_norm, "Regime.grad_norm"))


def _torch():
    try:
        import torch
    except ImportError:
        raise InputError("bnblip.training needs PyTorch: pip install 'bnblip[torch]'") from None
    return torch


def make_mlp(input_dim: int, hidden: Sequence[int], output_dim: int, seed: int = 0):
    """``nn.Sequential`` of Linear/ReLU layers, initialised from ``seed``."""
    torch = _torch()
    if not hidden or any(int(h) < 1 for h in hidden):
        raise InputError(f"hidden must be a non-empty list of widths >= 1, got {hidden!r}")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        widths = [int(input_dim), *map(int, hidden)]
        layers = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
        layers.append(torch.nn.Linear(widths[-1], int(output_dim)))
        return torch.nn.Sequential(*layers)
    finally:
        torch.random.set_rng_state(gen_state)


def _linear_weights(model):
    torch = _torch()
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]


def weight_penalty(model, order: int = 2):
    """``sum |W|`` (``order=1``) or ``sum W^2`` (``order=2``) over the Linear weights."""
    if order not in (1, 2):
        raise InputError(f"order must be 1 or 2, got {order!r}")
    weights = _linear_weights(model)
    if order == 1:
        return sum(w.abs().sum() for w in weights)
    return sum((w * w).sum() for w in weights)


def _project(x_adv, x, eps: float, clip):
    torch = _torch()
    x_adv = torch.max(torch.min(x_adv, x + eps), x - eps)
    if clip is not None:
        x_adv = x_adv.clamp(float(clip[0]), float(clip[1]))
    return x_adv


def _input_gradient(model, x, y):
    torch = _torch()
    x = x.detach().clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def _check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise InputError(f"eps must be a number > 0, got {eps!r}")
    return float(eps)


def fgsm(model, x, y, eps: float, clip=(0.0, 1.0)):
    """FGSM example ``x + eps sign(grad_x loss)``, projected on the ball and ``clip``."""
    eps = _check_eps(eps)
    grad = _input_gradient(model, x, y)
    return _project(x.detach() + eps * grad.sign(), x.detach(), eps, clip).detach()


def pgd(model, x, y, eps: float, steps: int = 10, step_size: float | None = None,
        clip=(0.0, 1.0), seed: int = 0):
    """PGD (l-inf, random start from ``seed``): ``steps`` signed-gradient ascent steps,
    each projected on the ``eps`` ball around ``x`` and on ``clip``."""
    torch = _torch()
    eps = _check_eps(eps)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be an integer >= 1, got {steps!r}")
    step = 2.5 * eps / steps if step_size is None else float(step_size)
    gen = torch.Generator().manual_seed(seed)
    x0 = x.detach()
    start = (torch.rand(x0.shape, generator=gen, dtype=x0.dtype) * 2 - 1) * eps
    x_adv = _project(x0 + start, x0, eps, clip)
    for _ in range(steps):
        grad = _input_gradient(model, x_adv, y)
        x_adv = _project(x_adv + step * grad.sign(), x0, eps, clip)
    return x_adv.detach()


def gradient_norm_penalty(model, x, y, norm="linf"):
    """Mean over the batch of ``||grad_x loss_i||_q^2`` (``q`` dual of ``norm``).

    Built with ``create_graph=True``, so it can be differentiated with respect to the
    weights (double back-propagation).
    """
    torch = _torch()
    dual = Norm.parse(norm).dual
    x = x.detach().clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    if dual is Norm.L1:
        per = grad.abs().sum(dim=1)
    elif dual is Norm.LINF:
        per = grad.abs().amax(dim=1)
    else:
        per = grad.pow(2).sum(dim=1).sqrt()
    return (per * per).mean()


def regularised_loss(model, x, y, regime: Regime, clip=(0.0, 1.0), seed: int = 0):
    """Cross-entropy plus every term ``regime`` switches on."""
    torch = _torch()
    ce = torch.nn.functional.cross_entropy
    if regime.attack is Attack.NONE:
        loss = ce(model(x), y)
    else:
        if regime.attack is Attack.FGSM:
            x_adv = fgsm(model, x, y, regime.eps, clip)
        else:
            x_adv = pgd(model, x, y, regime.eps, regime.pgd_steps, clip=clip, seed=seed)
        loss = 0.5 * ce(model(x), y) + 0.5 * ce(model(x_adv), y)
    if regime.weight_l1:
        loss = loss + regime.weight_l1 * weight_penalty(model, 1)
    if regime.weight_l2:
        loss = loss + regime.weight_l2 * weight_penalty(model, 2)
    if regime.grad_penalty:
        loss = loss + regime.grad_penalty * gradient_norm_penalty(model, x, y, regime.grad_norm)
    return loss


def train_mlp(x, y, hidden: Sequence[int], regime: Regime | None = None, *, epochs: int = 30,
              batch_size: int = 64, lr: float = 1e-2, seed: int = 0, clip=(0.0, 1.0)):
    """Train a ReLU MLP classifier with Adam; deterministic for a given ``seed``.

    Parameters
    ----------
    x : array_like, shape (N, n)
    y : array_like of int, shape (N,)
        Class labels ``0 .. K-1``.
    hidden : list of int
    regime : Regime, optional
        Default: plain cross-entropy.
    epochs, batch_size, lr, seed
    clip : (float, float) or None
        Data range adversarial examples are clipped to.

    Returns
    -------
    torch.nn.Sequential
        In evaluation mode.
    """
    torch = _torch()
    regime = regime if regime is not None else Regime("plain")
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    if xt.ndim != 2 or yt.shape != (xt.shape[0],):
        raise InputError(f"x must be (N, n) and y (N,), got {tuple(xt.shape)} and "
                         f"{tuple(yt.shape)}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    model = make_mlp(xt.shape[1], hidden, int(yt.max()) + 1, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(xt.shape[0], generator=gen)
        for step, start in enumerate(range(0, xt.shape[0], batch_size)):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = regularised_loss(model, xt[idx], yt[idx], regime, clip,
                                    seed=seed + 7919 * epoch + step)
            loss.backward()
            opt.step()
        logger.debug("%s epoch %d loss %.4f", regime.name, epoch, float(loss.detach()))
    return model.eval()
