"""Candidate points -> exact, re-checked witnesses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnblip.network import Network, Pattern
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Box, Norm
from bnblip.regions import interior_point, pattern_halfspaces


@dataclass(frozen=True, eq=False)
class Witness:
    """A point whose activation pattern is unambiguous and whose gradient norm is
    ``value``.

    Attributes
    ----------
    point : ndarray
    pattern : tuple of ndarray
    gradient : ndarray
        Exact gradient of ``functional^T f`` at ``point``.
    value : float
        Dual norm of ``gradient``.
    functional : ndarray
    """

    point: np.ndarray
    pattern: Pattern
    gradient: np.ndarray
    value: float
    functional: np.ndarray


def preactivation_scales(network: Network, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Magnitude ``|W||a| + |b|`` of the terms summed into each pre-activation."""
    scales = []
    a = np.asarray(x, dtype=np.float64)
    for w, b in zip(network.weights[:-1], network.biases[:-1]):
        z = w @ a + b
        scales.append(np.abs(w) @ np.abs(a) + np.abs(b))
        a = np.maximum(z, 0.0)
    return tuple(scales)


def check_witness(network: Network, box: Box, norm: Norm, c, x,
                  tol: Tolerances = DEFAULT_TOLERANCES) -> Witness | None:
    """Re-check ``x`` on the concrete network.

    ``x`` is a witness when it lies in ``box`` (up to ``tol.box_tol``) and every
    pre-activation is away from zero by more than ``tol.witness_rel_margin`` times
    its scale (neurons whose terms all vanish are constant zero near ``x`` and do
    not affect the gradient).  Returns ``None`` otherwise.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (network.input_dim,) or not np.all(np.isfinite(x)):
        return None
    if not box.contains(x, tol.box_tol):
        return None
    x = np.clip(x, box.lower, box.upper)
    zs = network.preactivations(x)
    for z, scale in zip(zs, preactivation_scales(network, x)):
        ambiguous = (np.abs(z) <= tol.witness_rel_margin * scale) & (scale > 0)
        if np.any(ambiguous):
            return None
    pattern = tuple(z > 0 for z in zs)
    c = np.asarray(c, dtype=np.float64)
    grad = network.gradient_for_pattern(pattern, c)
    return Witness(x, pattern, grad, float(norm.dual_value(grad)), c)


def witness_for_pattern(network: Network, box: Box, norm: Norm, c, pattern: Pattern,
                        tol: Tolerances = DEFAULT_TOLERANCES) -> Witness | None:
    """Witness at the interior point of ``pattern``'s region, if it is full-dimensional
    and the re-check reproduces ``pattern``."""
    centre = interior_point(pattern_halfspaces(network, pattern), box, tol)
    if centre is None:
        return None
    wit = check_witness(network, box, norm, c, centre.point, tol)
    if wit is None:
        return None
    same = all(np.array_equal(p, np.asarray(q, dtype=bool)) for p, q in zip(wit.pattern, pattern))
    return wit if same else None
