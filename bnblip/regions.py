"""Activation regions as polytopes in input space, and their interior points.

For a pattern ``P`` the pre-activations are affine in ``x`` inside the region:
``z_i = A_i x + beta_i``.  The region is ``{x in box : s_ij (A_ij x + beta_ij) >= 0}``
with ``s_ij = +1`` for active and ``-1`` for inactive neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

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
    a_mat = np.eye(network.input_dim)
    a_off = np.zeros(network.input_dim)
    for k in range(count):
        w, b = network.weights[k], network.biases[k]
        z_mat, z_off = w @ a_mat, w @ a_off + b
        mats.append((z_mat, z_off))
        if k + 1 < count:
            d = np.asarray(pattern[k], dtype=np.float64)
            a_mat, a_off = z_mat * d[:, None], z_off * d
    return mats


def pattern_halfspaces(network: Network, pattern: Pattern, layers: int | None = None,
                       scale_floor: float = 1e-300) -> Halfspaces:
    """Half-spaces (in input space) of the region of ``pattern``."""
    rows, offs = [], []
    empty = False
    for (z_mat, z_off), p in zip(affine_preactivations(network, pattern, layers), pattern):
        sign = np.where(np.asarray(p, dtype=bool), 1.0, -1.0)
        normal = z_mat * sign[:, None]
        offset = -z_off * sign
        norms = np.linalg.norm(normal, axis=1)
        flat = norms <= scale_floor
        empty |= bool(np.any(offset[flat] > 0))
        keep = ~flat
        rows.append(normal[keep] / norms[keep, None])
        offs.append(offset[keep] / norms[keep])
    dim = network.input_dim
    normal = np.vstack(rows) if rows else np.zeros((0, dim))
    offset = np.concatenate(offs) if offs else np.zeros(0)
    return Halfspaces(normal, offset, empty)


@dataclass(frozen=True, eq=False)
class InteriorPoint:
    """Chebyshev-style centre of a region: ``point`` is ``radius`` away from every
    hyperplane and from every non-degenerate face of the box."""

    point: np.ndarray
    radius: float


def interior_point(halfspaces: Halfspaces, box: Box,
                   tol: Tolerances = DEFAULT_TOLERANCES) -> InteriorPoint | None:
    """Deepest point of ``halfspaces`` within ``box``, or ``None`` if the region is
    not full-dimensional (radius ``<= tol.interior_margin``).

    Coordinates where the box is degenerate (``lower == upper``) are held fixed; the
    region is then full-dimensional relative to the box.
    """
    if halfspaces.empty:
        return None
    free = box.upper > box.lower
    nfree = int(free.sum())
    fixed_part = halfspaces.normal[:, ~free] @ box.lower[~free]
    a = halfspaces.normal[:, free]
    rhs_off = halfspaces.offset - fixed_part
    if nfree == 0:
        ok = bool(np.all(rhs_off <= 0))
        return InteriorPoint(box.lower.copy(), 0.0) if ok else None
    # variables (x_free, t); maximise t
    anorm = np.linalg.norm(a, axis=1)
    a_ub = sparse.csr_matrix(np.hstack([-a, anorm[:, None]]))  # -a x + |a| t <= -offset
    b_ub = -rhs_off
    # box faces, two entries per row: -x_i + t <= -lower_i and x_i + t <= upper_i
    eye = sparse.identity(nfree, format="csr")
    ones = sparse.csr_matrix(np.ones((nfree, 1)))
    box_rows = sparse.vstack([sparse.hstack([-eye, ones]), sparse.hstack([eye, ones])])
    box_rhs = np.concatenate([-box.lower[free], box.upper[free]])
    cost = np.zeros(nfree + 1)
    cost[-1] = -1.0
    bounds = np.column_stack([np.append(box.lower[free], -np.inf),
                              np.append(box.upper[free], np.inf)])
    res = linprog(cost, A_ub=sparse.vstack([a_ub, box_rows], format="csr"),
                  b_ub=np.concatenate([b_ub, box_rhs]), bounds=bounds, method="highs")
    if res.status != 0 or -res.fun <= tol.interior_margin:
        return None
    point = box.lower.copy()
    point[free] = res.x[:-1]
    return InteriorPoint(point, float(res.x[-1]))
