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


def _ambiguous(network: Network, layer: int, z, scale, tol: Tolerances) -> np.ndarray:
    """Neurons of ``layer`` whose sign at the point is not robust.

    A neuron all of whose terms vanish (``scale == 0``) is constant zero near the
    point only when its inputs are locally zero: true beyond the first layer (they
    are inactive neurons, checked before), and in the first layer only for a zero
    weight row with zero bias.
    """
    flat = scale == 0
    if layer == 0:
        w, b = network.weights[0], network.biases[0]
        flat &= ~np.any(w != 0, axis=1) & (b == 0)
    return (np.abs(z) <= tol.witness_rel_margin * scale) & ~flat


def check_witness(network: Network, box: Box, norm: Norm, c, x,
                  tol: Tolerances = DEFAULT_TOLERANCES) -> Witness | None:
    """Re-check ``x`` on the concrete network.

    ``x`` is a witness when it lies in ``box`` (up to ``tol.box_tol``) and every
    pre-activation is away from zero by more than ``tol.witness_rel_margin`` times
    its scale (neurons that are constant zero near ``x`` do not affect the gradient
    and are exempt, see :func:`_ambiguous`).  Returns ``None`` otherwise.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (network.input_dim,) or not np.all(np.isfinite(x)):
        return None
    if not box.contains(x, tol.box_tol):
        return None
    x = np.clip(x, box.lower, box.upper)
    zs = network.preactivations(x)
    for k, (z, scale) in enumerate(zip(zs, preactivation_scales(network, x))):
        if np.any(_ambiguous(network, k, z, scale, tol)):
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


def best_witness(network: Network, box: Box, norm: Norm, c, points,
                 tol: Tolerances = DEFAULT_TOLERANCES, tries: int = 8) -> Witness | None:
    """The best re-checked witness among candidate ``points``.

    Points are ranked by the dual norm of their gradient; the first ``tries`` of
    them are re-checked with :func:`check_witness` and the best valid one returned.
    """
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    if points.shape[0] == 0:
        return None
    points = np.clip(points, box.lower, box.upper)
    values = norm.dual_value(network.gradient(points, c))
    for idx in np.argsort(-values)[:tries]:
        wit = check_witness(network, box, norm, c, points[idx], tol)
        if wit is not None:
            return wit
    return None


def _flipped_patterns(pattern: Pattern) -> tuple[np.ndarray, ...]:
    """All single-neuron flips of ``pattern``: one batch row per neuron."""
    flat = np.concatenate([np.asarray(p, dtype=bool) for p in pattern])
    batch = np.repeat(flat[None, :], flat.size, axis=0)
    batch[np.arange(flat.size), np.arange(flat.size)] ^= True
    out, start = [], 0
    for p in pattern:
        out.append(batch[:, start:start + len(p)])
        start += len(p)
    return tuple(out)


def local_ascent(network: Network, box: Box, norm: Norm, witness: Witness,
                 tol: Tolerances = DEFAULT_TOLERANCES, max_steps: int = 50,
                 tries: int = 4) -> Witness:
    """Climb the gradient norm across neighbouring activation regions.

    From ``witness``'s pattern, flip one neuron at a time; a flip is taken when the
    neighbour's exact gradient norm is larger and its region is full-dimensional
    with a re-checked witness (:func:`witness_for_pattern`).  At most ``tries``
    improving flips are checked per step.  Returns the best witness reached.
    """
    current = witness
    if not any(len(p) for p in witness.pattern):
        return current
    for _ in range(max_steps):
        flips = _flipped_patterns(current.pattern)
        values = norm.dual_value(network.gradient_for_pattern(flips, current.functional))
        order = np.argsort(-values)
        moved = False
        for idx in order[:tries]:
            if values[idx] <= current.value:
                break
            pattern = tuple(layer[idx] for layer in flips)
            wit = witness_for_pattern(network, box, norm, current.functional, pattern, tol)
            if wit is not None and wit.value > current.value:
                current, moved = wit, True
                break
        if not moved:
            return current
    return current
