"""NumPy reference of interval bound propagation.

Phases encode a node's fixed ReLU decisions: one int8 array per hidden layer with
``+1`` (active, ``z >= 0``), ``-1`` (inactive, ``z <= 0``) or ``0`` (free).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnblip.network import Network
from bnblip.options import DEFAULT_TOLERANCES, Tolerances

ACTIVE = 1
INACTIVE = -1
FREE = 0


@dataclass(frozen=True, eq=False)
class ForwardBounds:
    """Bounds of every hidden pre-activation ``z_i`` over the (restricted) box.

    Attributes
    ----------
    lower, upper : tuple of ndarray
        One array per hidden layer.
    infeasible : bool
        True when a fixed phase contradicts the bounds (the node is empty).
    """

    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]
    infeasible: bool = False


@dataclass(frozen=True, eq=False)
class BackwardBounds:
    """Bounds of the gradient quantities ``y_i = d(c^T f)/d a_i``.

    ``lower[0]`` / ``upper[0]`` bound the input gradient ``y_0``; entry ``i`` bounds
    the gradient with respect to the post-activation of hidden layer ``i``.
    """

    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]


def free_phases(network: Network) -> tuple[np.ndarray, ...]:
    """All-free phases for ``network``."""
    return tuple(np.zeros(h, dtype=np.int8) for h in network.hidden_widths)


def _affine_interval(w, b, lo, hi, tol: Tolerances):
    mid = 0.5 * (lo + hi)
    rad = 0.5 * (hi - lo)
    aw = np.abs(w)
    center = w @ mid + b
    radius = aw @ rad
    widen = tol.bound_rel_widen * (aw @ np.abs(mid) + radius + np.abs(b)) + tol.bound_abs_widen
    return center - radius - widen, center + radius + widen


def forward_interval(network: Network, lower, upper, phases=None,
                     tol: Tolerances = DEFAULT_TOLERANCES) -> ForwardBounds:
    """Interval bounds of each hidden pre-activation under fixed ``phases``.

    A neuron fixed active has its lower bound raised to 0, one fixed inactive has
    its upper bound lowered to 0 and output 0.
    """
    if phases is None:
        phases = free_phases(network)
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    los, his = [], []
    infeasible = False
    for w, b, ph in zip(network.weights[:-1], network.biases[:-1], phases):
        zl, zu = _affine_interval(w, b, lo, hi, tol)
        act = ph == ACTIVE
        ina = ph == INACTIVE
        infeasible |= bool(np.any(zu[act] < 0) or np.any(zl[ina] > 0))
        zl = np.where(act, np.maximum(zl, 0.0), zl)
        zu = np.where(ina, np.minimum(zu, 0.0), zu)
        los.append(zl)
        his.append(zu)
        lo = np.where(ina, 0.0, np.maximum(zl, 0.0))
        hi = np.where(ina, 0.0, np.maximum(zu, 0.0))
    return ForwardBounds(tuple(los), tuple(his), infeasible)


def derivative_bounds(forward: ForwardBounds, phases=None):
    """Bounds ``(dlo, dhi)`` of each ReLU derivative: 1 when active, 0 when inactive.

    A neuron is active if fixed so or ``z_lower >= 0``; inactive if fixed so or
    ``z_upper <= 0``; otherwise its derivative lies in ``[0, 1]``.
    """
    dlo, dhi = [], []
    for k, (zl, zu) in enumerate(zip(forward.lower, forward.upper)):
        ph = phases[k] if phases is not None else np.zeros(zl.shape, dtype=np.int8)
        inactive = (ph == INACTIVE) | (zu <= 0)
        active = ~inactive & ((ph == ACTIVE) | (zl >= 0))
        dlo.append(active.astype(np.float64))
        dhi.append((~inactive).astype(np.float64))
    return tuple(dlo), tuple(dhi)


def backward_interval(network: Network, c, dlo, dhi,
                      tol: Tolerances = DEFAULT_TOLERANCES) -> BackwardBounds:
    """Interval bounds of the backward pass with derivatives in ``[dlo, dhi]``."""
    y = network.weights[-1].T @ np.asarray(c, dtype=np.float64)
    ylo, yhi = y.copy(), y.copy()
    los, his = [ylo], [yhi]
    for k in range(network.num_hidden_layers - 1, -1, -1):
        # u = d * y with d in [dlo, dhi] (dlo, dhi in {0, 1})
        cand = np.stack([dlo[k] * ylo, dlo[k] * yhi, dhi[k] * ylo, dhi[k] * yhi])
        ulo, uhi = cand.min(axis=0), cand.max(axis=0)
        w = network.weights[k]
        ylo, yhi = _affine_interval(w.T, np.zeros(w.shape[1]), ulo, uhi, tol)
        los.append(ylo)
        his.append(yhi)
    return BackwardBounds(tuple(reversed(los)), tuple(reversed(his)))
