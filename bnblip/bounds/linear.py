"""NumPy reference of linear (symbolic, back-substituted) forward bounds.

For every hidden layer ``k`` the pre-activation ``z_k`` is bounded by linear
functions of the input, obtained by back-substituting ``z_k = W_k a_{k-1} + b_k``
through the ReLU relaxations of all earlier layers (CROWN / DeepPoly style), and
concretised over the input box.  The result is intersected with the interval bound
of the same layer computed from the (already intersected) bounds of the layer
below, so it is never looser than :func:`bnblip.bounds.interval.forward_interval`.

ReLU relaxation of neuron ``j`` with bounds ``[l, u]`` (``a = relu(z)``):

* fixed active (phase ``+1``) or ``l >= 0``: ``a = z`` (identity);
* fixed inactive (phase ``-1``) or ``u <= 0``: ``a = 0``;
* ambiguous (``l < 0 < u``): upper ``a <= u / (u - l) * (z - l)`` (triangle);
  lower ``a >= alpha * z`` with the *adaptive* slope ``alpha = 1`` when
  ``u >= -l`` and ``alpha = 0`` otherwise (the choice of smaller area).

A fixed phase restricts the region to the points whose pre-activation has that
sign, so the identity / zero relaxations are exact there.  Optional ``prior``
bounds (e.g. the parent node's) are intersected into each layer before it is
relaxed.  A fixed active neuron gets its lower bound clamped to 0 and a fixed
inactive one its upper bound; the node is reported infeasible when a fixed phase
is contradicted or some neuron's lower bound exceeds its upper bound (the
restricted region is then empty).  Unlike interval bounds, linear bounds are not
monotone in the bounds of earlier layers: tightening one can flip an adaptive
lower slope and loosen a later neuron, which is why the result is always
intersected with the interval bound and ``prior``.

Cost: layer ``k`` back-substitutes a ``2 h_k``-row matrix through every earlier
layer, ``O(h_k * sum_{j<k} h_j h_{j-1})``; the products dominate.

Floating-point safety: every bound is widened by ``bound_rel_widen`` times the
magnitude of the terms summed into it (``sum_j |Lambda_j| m_j`` over the
back-substitution steps, ``m_j`` a bound on ``|z_j|`` and on the terms summed into
it) plus ``bound_abs_widen``; see DESIGN.md section 7.
"""

from __future__ import annotations

import numpy as np

from bnblip.bounds.interval import (
    ACTIVE,
    INACTIVE,
    ForwardBounds,
    check_box,
    check_phases,
    check_prior,
    post_activation,
    settle_layer,
)
from bnblip.network import Network
from bnblip.options import DEFAULT_TOLERANCES, Tolerances


def relu_relaxation(zl: np.ndarray, zu: np.ndarray, phase: np.ndarray):
    """Linear relaxation ``lo_slope*z <= relu(z) <= up_slope*z + up_icpt``.

    Parameters
    ----------
    zl, zu : ndarray
        Pre-activation bounds of one layer (after phase clamping).
    phase : ndarray of int8
        Fixed phases of the layer.

    Returns
    -------
    up_slope, up_icpt, lo_slope : ndarray
        The lower relaxation has intercept 0.
    """
    active = (phase == ACTIVE) | ((phase != INACTIVE) & (zl >= 0))
    inactive = (phase == INACTIVE) | (~active & (zu <= 0))
    ambiguous = ~(active | inactive)
    width = np.where(ambiguous, zu - zl, 1.0)
    slope = np.where(ambiguous, zu / width, 0.0)
    up_slope = np.where(active, 1.0, slope)
    up_icpt = np.where(ambiguous, -slope * zl, 0.0)
    lo_slope = np.where(active | (ambiguous & (zu >= -zl)), 1.0, 0.0)
    return up_slope, up_icpt, lo_slope


def _interval_layer(w, b, plo, phi, rel, absw):
    """Interval bound of ``w a + b`` for ``a`` in ``[plo, phi]`` and its magnitude."""
    mid = 0.5 * (plo + phi)
    rad = 0.5 * (phi - plo)
    aw = np.abs(w)
    center = w @ mid + b
    radius = aw @ rad
    magnitude = aw @ np.abs(mid) + radius + np.abs(b)
    widen = rel * magnitude + absw
    return center - radius - widen, center + radius + widen, magnitude


def _back_substitute(network, k, relax, magnitudes, mid, rad, rel, absw):
    """Linear bounds of layer ``k`` back-substituted to the input and concretised.

    Lower bounds are computed as negated upper bounds of ``-z_k`` so that one
    stacked matrix ``[W_k; -W_k]`` serves both.
    """
    w = network.weights[k]
    b = network.biases[k]
    lam = np.vstack([w, -w])
    const = np.concatenate([b, -b])
    error = np.concatenate([magnitudes[k], magnitudes[k]])
    for j in range(k - 1, -1, -1):
        up_slope, up_icpt, lo_slope = relax[j]
        positive = lam >= 0
        scaled = lam * np.where(positive, up_slope, lo_slope)
        const = const + (lam * np.where(positive, up_icpt, 0.0)).sum(axis=1)
        const = const + scaled @ network.biases[j]
        error = error + np.abs(lam) @ magnitudes[j]
        lam = scaled @ network.weights[j]
    alam = np.abs(lam)
    bound = lam @ mid + alam @ rad + const
    error = error + alam @ (np.abs(mid) + rad)
    bound = bound + (rel * error + absw)
    h = w.shape[0]
    return -bound[h:], bound[:h]


def forward_linear(network: Network, lower, upper, phases=None,
                   tol: Tolerances = DEFAULT_TOLERANCES,
                   prior: ForwardBounds | None = None) -> ForwardBounds:
    """Linear (back-substituted) bounds of each hidden pre-activation.

    Parameters
    ----------
    network : Network
    lower, upper : array_like
        The input box.
    phases : sequence of ndarray, optional
        One int8 array per hidden layer (``+1`` active, ``-1`` inactive, ``0``
        free); all free when omitted.
    tol : Tolerances
        ``bound_rel_widen`` / ``bound_abs_widen`` set the widening.
    prior : ForwardBounds, optional
        Bounds known to hold on the node (e.g. its parent's); intersected into each
        layer before that layer is relaxed.

    Returns
    -------
    ForwardBounds
        Per neuron the tighter of the interval and the linear bound; ``infeasible``
        when a fixed phase is contradicted or a lower bound exceeds an upper bound.

    Raises
    ------
    InputError
        When the box, the phases or ``prior`` do not fit the network.
    """
    lo, hi = check_box(network, lower, upper)
    phases = check_phases(network, phases)
    prior = check_prior(network, prior)
    rel, absw = tol.bound_rel_widen, tol.bound_abs_widen
    mid = 0.5 * (lo + hi)
    rad = 0.5 * (hi - lo)
    plo, phi = lo, hi
    los, his, relax, magnitudes = [], [], [], []
    infeasible = False
    for k, phase in enumerate(phases):
        zl, zu, magnitude = _interval_layer(network.weights[k], network.biases[k],
                                            plo, phi, rel, absw)
        magnitudes.append(magnitude)
        if k > 0:
            ll, lu = _back_substitute(network, k, relax, magnitudes, mid, rad, rel, absw)
            zl, zu = np.maximum(zl, ll), np.minimum(zu, lu)
        zl, zu, empty = settle_layer(zl, zu, phase, prior, k)
        infeasible |= empty
        los.append(zl)
        his.append(zu)
        relax.append(relu_relaxation(zl, zu, phase))
        magnitudes[k] = np.maximum(magnitude, np.maximum(np.abs(zl), np.abs(zu)))
        plo, phi = post_activation(zl, zu, phase)
    return ForwardBounds(tuple(los), tuple(his), infeasible)
