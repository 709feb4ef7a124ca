"""Activation regions as polytopes in input space, and their interior points.

For a pattern ``P`` the pre-activations are affine in ``x`` inside the region:
``z_i = A_i x + beta_i``.  The region is ``{x in box : s_ij (A_ij x + beta_ij) >= 0}``
with ``s_ij = +1`` for active and ``-1`` for inactive neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from bnblip.lp.small import minimise
from bnblip.network import Network, Pattern
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Box


@dataclass(frozen=True, eq=False)
class Halfspaces:
    """Constraints ``normal @ x >= offset`` (rows normalised to unit l2 norm).

    Rows whose input-space normal vanished are dropped when satisfied by their
    constant part; ``empty`` is set when such a row is violated.
    """

    normal: np.ndarray
    offset: np.ndarray
    empty: bool = False


def affine_preactivations(network: Network, pattern: Pattern, layers: int | None = None):
    """``(A_i, beta_i)`` with ``z_i = A_i x + beta_i`` on the region of ``pattern``.

    Only the first ``layers`` hidden layers are returned (all by default); layer
    ``i`` needs the pattern of layers ``< i`` only.
    """
    count = network.num_hidden_layers if layers is None else layers
    mats = []
    a_mat = a_off = None  # the identity map of the input, not formed
    for k in range(count):
        w, b = network.weights[k], network.biases[k]
        if a_mat is None:
            z_mat, z_off = w.copy(), b.copy()
        else:
            z_mat, z_off = w @ a_mat, w @ a_off + b
        mats.append((z_mat, z_off))
        if k + 1 < count:
            d = np.asarray(pattern[k], dtype=np.float64)
            a_mat, a_off = z_mat * d[:, None], z_off * d
    return mats


def pattern_halfspaces(network: Network, pattern: Pattern, layers: int | None = None,
                       scale_floor: float = 1e-300, keep: Pattern | None = None) -> Halfspaces:
    """Half-spaces (in input space) of the region of ``pattern``.

    ``keep`` (one boolean mask per hidden layer) limits the rows to those neurons;
    leave out only neurons whose sign the box itself decides (sound bounds), whose
    rows then hold on the whole box.
    """
    rows, offs = [], []
    empty = False
    mats = affine_preactivations(network, pattern, layers)
    if keep is not None and len(keep) < len(mats):
        raise ValueError(f"keep has {len(keep)} masks, the region {len(mats)} layers")
    masks = keep if keep is not None else [None] * len(mats)
    for (z_mat, z_off), p, mask in zip(mats, pattern, masks):
        sign = np.where(np.asarray(p, dtype=bool), 1.0, -1.0)
        normal = z_mat * sign[:, None]
        offset = -z_off * sign
        if mask is not None:
            normal, offset = normal[mask], offset[mask]
        norms = np.linalg.norm(normal, axis=1)
        flat = norms <= scale_floor
        empty |= bool(np.any(offset[flat] > 0))
        keep_rows = ~flat
        rows.append(normal[keep_rows] / norms[keep_rows, None])
        offs.append(offset[keep_rows] / norms[keep_rows])
    dim = network.input_dim
    normal = np.vstack(rows) if rows else np.zeros((0, dim))
    offset = np.concatenate(offs) if offs else np.zeros(0)
    return Halfspaces(normal, offset, empty)


def ray_interval(halfspaces: Halfspaces, box: Box, x: np.ndarray,
                 direction: np.ndarray) -> tuple[float, float] | None:
    """The steps ``s`` with ``x + s * direction`` in ``halfspaces`` and ``box``, as
    ``(low, high)``; ``None`` when that stretch is empty or a single point."""
    if halfspaces.empty:
        return None
    # every row reads  slack + slope * s >= 0
    slope = np.concatenate([halfspaces.normal @ direction, direction, -direction])
    slack = np.concatenate([halfspaces.normal @ x - halfspaces.offset,
                            x - box.lower, box.upper - x])
    flat = slope == 0
    if np.any(slack[flat] < 0):
        return None
    limit = -slack[~flat] / slope[~flat]
    rising = slope[~flat] > 0
    low = float(np.max(limit[rising], initial=-np.inf))
    high = float(np.min(limit[~rising], initial=np.inf))
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return None
    return low, high


@dataclass(frozen=True, eq=False)
class InteriorPoint:
    """Chebyshev-style centre of a region: ``point`` is ``radius`` away from every
    hyperplane and from every non-degenerate face of the box.

    ``inset_bound`` is set when an inset LP's radius is its inset (the hyperplanes
    leave more room): the region is then no thinner than the inset, and the full
    LP could not find a deeper point.
    """

    point: np.ndarray
    radius: float
    inset_bound: bool = False


def interior_point(halfspaces: Halfspaces, box: Box,
                   tol: Tolerances = DEFAULT_TOLERANCES,
                   inset: float | None = None,
                   min_radius: float | None = None) -> InteriorPoint | None:
    """Deepest point of ``halfspaces`` within ``box``, or ``None`` if the region is
    not full-dimensional (radius ``<= tol.interior_margin``, or ``<= min_radius``
    when given: ``min_radius=0`` asks for any point the LP puts inside, however thin
    the region; within the LP's tolerances such a point proves nothing by itself).

    Coordinates where the box is degenerate (``lower == upper``) are held fixed; the
    region is then full-dimensional relative to the box.

    With ``inset`` (a fraction of each box width), the box enters the LP as column
    bounds shrunk by ``inset`` times its width instead of as distance rows: an LP with
    two rows fewer per input, which finds a point as far from the hyperplanes as the
    shrunk box allows but misses regions that lie within the inset of the box's faces
    (it returns ``None`` for them, so ``None`` then proves nothing).
    """
    if halfspaces.empty:
        return None
    free = box.upper > box.lower
    if not np.any(free):
        ok = bool(np.all(halfspaces.normal @ box.lower >= halfspaces.offset))
        return InteriorPoint(box.lower.copy(), 0.0) if ok else None
    a = halfspaces.normal[:, free]
    rhs_off = halfspaces.offset - halfspaces.normal[:, ~free] @ box.lower[~free]
    lower, upper = box.lower[free], box.upper[free]
    # variables (x_free, t); maximise t subject to -a x + |a| t <= -offset
    a_ub = sparse.csr_matrix(np.hstack([-a, np.linalg.norm(a, axis=1)[:, None]]))
    b_ub = -rhs_off
    if inset is None:
        a_ub, b_ub = _with_box_distance_rows(a_ub, b_ub, lower, upper)
        t_bounds, box_gap = (-np.inf, np.inf), np.inf
    else:
        margin = inset * (upper - lower)
        lower, upper = lower + margin, upper - margin
        box_gap = float(margin.min())
        t_bounds = (-np.inf, float(np.max(upper - lower)) + box_gap)
    cost = np.zeros(a_ub.shape[1])
    cost[-1] = -1.0
    solution = minimise(cost, a_ub, b_ub, np.append(lower, t_bounds[0]),
                        np.append(upper, t_bounds[1]))
    if solution is None:
        return None
    depth = float(solution[-1])
    radius = min(depth, box_gap)
    if radius <= (tol.interior_margin if min_radius is None else min_radius):
        return None
    point = box.lower.copy()
    point[free] = solution[:-1]
    return InteriorPoint(point, radius, inset_bound=depth >= box_gap)


def _with_box_distance_rows(a_ub, b_ub, lower: np.ndarray, upper: np.ndarray):
    """Append ``-x_i + t <= -lower_i`` and ``x_i + t <= upper_i`` (distance of the
    centre to each face of the box)."""
    n = lower.size
    eye = sparse.identity(n, format="csr")
    ones = sparse.csr_matrix(np.ones((n, 1)))
    box_rows = sparse.vstack([sparse.hstack([-eye, ones]), sparse.hstack([eye, ones])])
    return (sparse.vstack([a_ub, box_rows], format="csr"),
            np.concatenate([b_ub, -lower, upper]))
