"""Candidate points -> exact, re-checked witnesses."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from bnblip.network import Network, Pattern, same_pattern
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Box, Norm
from bnblip.regions import affine_preactivations, interior_point, pattern_halfspaces, ray_interval


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


def _flat(network: Network, layer: int, scale) -> np.ndarray:
    """Neurons of ``layer`` constant zero near a point where their terms have
    magnitudes ``scale``.

    A neuron all of whose terms vanish (``scale == 0``) is constant zero near the
    point only when its inputs are locally zero: true beyond the first layer (they
    are inactive neurons, checked before), and in the first layer only for a zero
    weight row with zero bias.
    """
    flat = scale == 0
    if layer == 0:
        w, b = network.weights[0], network.biases[0]
        flat &= ~np.any(w != 0, axis=1) & (b == 0)
    return flat


def _ambiguous(network: Network, layer: int, z, scale, tol: Tolerances) -> np.ndarray:
    """Neurons of ``layer`` whose sign at the point is not robust (constant-zero
    neurons, :func:`_flat`, are exempt)."""
    return (np.abs(z) <= tol.witness_rel_margin * scale) & ~_flat(network, layer, scale)


def constant_zero(network: Network, x) -> tuple[np.ndarray, ...]:
    """Per hidden layer, the neurons constant zero near ``x`` (:func:`_flat`); their
    phase does not affect the gradient there."""
    scales = preactivation_scales(network, np.asarray(x, dtype=np.float64))
    return tuple(_flat(network, k, scale) for k, scale in enumerate(scales))


def matches(network: Network, witness: Witness, pattern: Pattern) -> bool:
    """Whether ``pattern`` agrees with ``witness.pattern`` on every neuron not constant
    zero near the witness: then both give the witness's gradient.

    The solver may fix a neuron active because its exact sign is ``>= 0`` (see
    :class:`~bnblip.bounds.interval.ExactSigns`) where the neuron is constant zero
    and a concrete point reads it inactive; every path through it carries a zero
    factor there.
    """
    pattern = tuple(np.asarray(q, dtype=bool) for q in pattern)
    if same_pattern(witness.pattern, pattern):
        return True
    flat = constant_zero(network, witness.point)
    return all(np.array_equal(p[~f], q[~f]) for p, q, f in zip(witness.pattern, pattern, flat))


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
                        tol: Tolerances = DEFAULT_TOLERANCES,
                        quick: bool = False, keep: Pattern | None = None) -> Witness | None:
    """Witness at the interior point of ``pattern``'s region, if it is full-dimensional
    and the re-check reproduces ``pattern``.

    ``quick`` uses the smaller LP over the inset box (``tol.region_inset``): a
    ``None`` then does not prove the region thin.  ``keep`` limits the region's rows
    to those neurons (see :func:`~bnblip.regions.pattern_halfspaces`).
    """
    inset = tol.region_inset if quick else None
    centre = interior_point(pattern_halfspaces(network, pattern, keep=keep), box, tol,
                            inset=inset)
    if centre is None:
        return None
    return _witness_with_pattern(network, box, norm, c, centre.point, pattern, tol)


def _witness_with_pattern(network: Network, box: Box, norm: Norm, c, x, pattern: Pattern,
                          tol: Tolerances) -> Witness | None:
    """:func:`check_witness` at ``x``, kept only if its pattern is ``pattern``."""
    wit = check_witness(network, box, norm, c, x, tol)
    if wit is None:
        return None
    return wit if matches(network, wit, pattern) else None


def witness_across(network: Network, box: Box, norm: Norm, witness: Witness,
                   layer: int, neuron: int, tol: Tolerances = DEFAULT_TOLERANCES,
                   keep: Pattern | None = None) -> Witness | None:
    """Witness of the region next to ``witness``'s across neuron ``(layer, neuron)``,
    found without an LP.

    Walks from ``witness.point`` along the neuron's normal (in the current region),
    then towards the box corner that maximises the neuron's move, and takes the
    middle of the stretch of the ray inside the neighbour's region and the box;
    ``None`` when both rays miss the neighbour or the re-check fails.  ``keep`` as
    in :func:`witness_for_pattern`.
    """
    target = tuple(np.array(p, dtype=bool) for p in witness.pattern)
    target[layer][neuron] = not target[layer][neuron]
    z_mat, _ = affine_preactivations(network, target, layer + 1)[layer]
    normal = z_mat[neuron] if target[layer][neuron] else -z_mat[neuron]
    normal = np.where(box.upper > box.lower, normal, 0.0)  # fixed coordinates stay
    corner = np.where(normal > 0, box.upper, box.lower)
    halfspaces = pattern_halfspaces(network, target, keep=keep)
    for direction in (normal, corner - witness.point):
        stretch = ray_interval(halfspaces, box, witness.point, direction)
        if stretch is None:
            continue
        point = witness.point + 0.5 * (stretch[0] + stretch[1]) * direction
        wit = _witness_with_pattern(network, box, norm, witness.functional, point, target, tol)
        if wit is not None:
            return wit
    return None


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


def _locate(pattern: Pattern, flat_index: int) -> tuple[int, int]:
    """``(layer, neuron)`` of a neuron's index in the concatenated ``pattern``."""
    for layer, p in enumerate(pattern):
        if flat_index < len(p):
            return layer, int(flat_index)
        flat_index -= len(p)
    raise IndexError("flat_index beyond the pattern")


def local_ascent(network: Network, box: Box, norm: Norm, witness: Witness,
                 tol: Tolerances = DEFAULT_TOLERANCES, max_steps: int = 50,
                 tries: int = 4, flippable: Pattern | None = None,
                 deadline: float | None = None) -> Witness:
    """Climb the gradient norm across neighbouring activation regions.

    From ``witness``'s pattern, flip one neuron at a time; a flip is taken when the
    neighbour's exact gradient norm is larger and a re-checked witness of its region
    is found, first by a step across the neuron's hyperplane
    (:func:`witness_across`), else by the quick interior-point LP
    (:func:`witness_for_pattern`).  At most ``tries`` improving flips are checked per
    step.  ``flippable`` (one boolean mask per hidden layer) restricts the flips to
    the neurons that can change sign in ``box`` (e.g. those its bounds leave
    ambiguous: the other neurons' rows are then left out of the regions, which is
    sound only when their signs are constant on ``box``); by default every neuron may
    flip.  No step starts once ``time.perf_counter()`` passes ``deadline``.  Returns
    the best witness reached.
    """
    current = witness
    if not any(len(p) for p in witness.pattern):
        return current
    allowed = None if flippable is None else np.concatenate(
        [np.asarray(p, dtype=bool) for p in flippable])
    for _ in range(max_steps):
        if deadline is not None and time.perf_counter() > deadline:
            return current
        flips = _flipped_patterns(current.pattern)
        values = norm.dual_value(network.gradient_for_pattern(flips, current.functional))
        if allowed is not None:
            values = np.where(allowed, values, -np.inf)
        order = np.argsort(-values)
        moved = False
        for idx in order[:tries]:
            if values[idx] <= current.value:
                break
            layer, neuron = _locate(current.pattern, int(idx))
            wit = witness_across(network, box, norm, current, layer, neuron, tol,
                                 keep=flippable)
            if wit is None:
                pattern = tuple(flipped[idx] for flipped in flips)
                wit = witness_for_pattern(network, box, norm, current.functional, pattern,
                                          tol, quick=True, keep=flippable)
            if wit is not None and wit.value > current.value:
                current, moved = wit, True
                break
        if not moved:
            return current
    return current
