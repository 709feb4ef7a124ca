"""Bounds of the gradient norm over a branch-and-bound node.

The input gradient is ``g = W_1^T D_1 W_2^T D_2 ... W_L^T c`` with ReLU derivatives
``d_k`` in ``[dlo_k, dhi_k]``.  The dual norm is written as a maximum of a linear
functional ``v^T g`` over a direction set ``V``:

* ``q = l1``: ``V`` is a sub-box of ``[-1, 1]^n`` (sign splits fix coordinates);
* ``q = linf``: ``V = {s e_j}`` (one node per coordinate and sign);
* ``q = l2``: ``V`` is the unit l2 ball.

``v^T g`` factors at every hidden layer ``k`` as ``r_k^T y_k`` where ``y_k`` is the
backward quantity (gradient with respect to ``a_k``, depending on ``d_{k+1..}``) and
``r_k = d_k * (W_k r_{k-1})`` with ``r_0 = v`` (depending on ``d_{..k}``).  The two
factors depend on disjoint derivatives, so the interval product bound at any layer
is sound; the node bound is the smallest over all layers ("meet in the middle").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnblip.bounds.interval import BackwardBounds, backward_interval
from bnblip.network import Network
from bnblip.options import DEFAULT_TOLERANCES, Tolerances


@dataclass(frozen=True, eq=False)
class DirectionSet:
    """The set ``V`` of directions whose maximum of ``v^T g`` is the dual norm.

    Attributes
    ----------
    lower, upper : ndarray or None
        Box ``lower <= v <= upper`` (entries in ``{-1, 1}`` or the interval
        ``[-1, 1]``); ``None`` for the unit l2 ball.
    """

    lower: np.ndarray | None
    upper: np.ndarray | None

    @property
    def is_ball(self) -> bool:
        """Whether ``V`` is the unit l2 ball."""
        return self.lower is None

    def value(self, gradient: np.ndarray) -> float:
        """``max over v in V of v^T gradient`` for an exact gradient."""
        if self.is_ball:
            return float(np.linalg.norm(gradient))
        return float(np.maximum(self.lower * gradient, self.upper * gradient).sum())


@dataclass(frozen=True, eq=False)
class ObjectiveBound:
    """Upper bound of ``max v^T g`` over a node and the quantities it came from.

    Attributes
    ----------
    value : float
        The upper bound (smallest over the split layers).
    layer_values : ndarray
        Bound obtained by splitting at each layer ``0..L-1``.
    backward : BackwardBounds
        Bounds of ``y_k`` (``y_0`` is the input gradient).
    direction_lower, direction_upper : tuple of ndarray
        Bounds of ``t_k = W_k r_{k-1}`` for every hidden layer (before the ReLU
        derivative is applied).
    """

    value: float
    layer_values: np.ndarray
    backward: BackwardBounds
    direction_lower: tuple[np.ndarray, ...]
    direction_upper: tuple[np.ndarray, ...]


def _interval_matvec(w: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: Tolerances):
    mid = 0.5 * (lo + hi)
    rad = 0.5 * (hi - lo)
    aw = np.abs(w)
    centre = w @ mid
    radius = aw @ rad
    widen = tol.bound_rel_widen * (aw @ np.abs(mid) + radius) + tol.bound_abs_widen
    return centre - radius - widen, centre + radius + widen


def _scale_by_derivative(lo, hi, dlo, dhi):
    """Interval hull of ``d * t`` for ``d`` in ``[dlo, dhi]`` and ``t`` in ``[lo, hi]``."""
    cand = (dlo * lo, dlo * hi, dhi * lo, dhi * hi)
    return np.minimum.reduce(cand), np.maximum.reduce(cand)


def _product_bound(rlo, rhi, ylo, yhi, tol: Tolerances) -> float:
    terms = np.maximum.reduce((rlo * ylo, rlo * yhi, rhi * ylo, rhi * yhi))
    total = float(terms.sum())
    return total + tol.bound_rel_widen * float(np.abs(terms).sum())


def direction_bounds(network: Network, dlo, dhi, directions: DirectionSet,
                     tol: Tolerances = DEFAULT_TOLERANCES):
    """Bounds of ``t_k = W_k r_{k-1}`` for each hidden layer, ``r_0 = v`` in ``V``.

    Returns
    -------
    lower, upper : tuple of ndarray
    """
    if network.num_hidden_layers == 0:
        return (), ()
    w1 = network.weights[0]
    if directions.is_ball:
        row = np.linalg.norm(w1, axis=1)
        tlo, thi = -row, row.copy()
    else:
        tlo, thi = _interval_matvec(w1, directions.lower, directions.upper, tol)
    los, his = [tlo], [thi]
    for k in range(1, network.num_hidden_layers):
        rlo, rhi = _scale_by_derivative(tlo, thi, dlo[k - 1], dhi[k - 1])
        tlo, thi = _interval_matvec(network.weights[k], rlo, rhi, tol)
        los.append(tlo)
        his.append(thi)
    return tuple(los), tuple(his)


def objective_bound(network: Network, c, dlo, dhi, directions: DirectionSet,
                    tol: Tolerances = DEFAULT_TOLERANCES,
                    backward: BackwardBounds | None = None) -> ObjectiveBound:
    """Upper bound of ``max over v in V of v^T g`` with derivatives in ``[dlo, dhi]``.

    Parameters
    ----------
    network : Network
    c : ndarray
        Output functional.
    dlo, dhi : tuple of ndarray
        Bounds of the ReLU derivatives per hidden layer (entries 0 or 1).
    directions : DirectionSet
    tol : Tolerances
    backward : BackwardBounds, optional
        Precomputed backward bounds for the same derivatives.
    """
    if backward is None:
        backward = backward_interval(network, c, dlo, dhi, tol)
    tlo, thi = direction_bounds(network, dlo, dhi, directions, tol)
    values = np.empty(network.num_hidden_layers + 1)
    ylo0, yhi0 = backward.lower[0], backward.upper[0]
    if directions.is_ball:
        sq = np.maximum(ylo0 * ylo0, yhi0 * yhi0)
        values[0] = float(np.sqrt(sq.sum())) * (1.0 + tol.bound_rel_widen)
    else:
        values[0] = _product_bound(directions.lower, directions.upper, ylo0, yhi0, tol)
    for k in range(network.num_hidden_layers):
        rlo, rhi = _scale_by_derivative(tlo[k], thi[k], dlo[k], dhi[k])
        values[k + 1] = _product_bound(rlo, rhi, backward.lower[k + 1],
                                       backward.upper[k + 1], tol)
    return ObjectiveBound(float(values.min()), values, backward, tlo, thi)
