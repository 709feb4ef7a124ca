"""Weak-duality bounds of node LPs, computed by bnblip from any row multipliers.

The LP of a node (:mod:`bnblip.lp.relaxation`) minimises ``cost @ v`` over
``rl <= A v <= ru``, ``l <= v <= u``.  For multipliers ``y`` of the rows and reduced
costs ``r = cost - A^T y`` every feasible ``v`` has ``cost @ v = y @ (A v) + r @ v >=
sum_i min(y_i rl_i, y_i ru_i) + sum_j min(r_j l_j, r_j u_j)``, whatever ``y`` is.  So a
bound computed here from an LP solver's duals rests on the solver's tolerances for
its tightness only, never for its validity.  The sums come from the C kernel
``bnblip._ckernels.weak_duality_kernel`` (``csrc/duality.c``) when it is built, else
from its NumPy twin in :class:`WeakDuality`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from bnblip.lp.relaxation import NodeData, RelaxationLayout

INF = np.inf

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PhaseBounds:
    """Bounds of a node LP's maximum with one relaxed phase ``d`` fixed.

    Per hidden layer, for the neurons of ``RelaxationLayout.ambiguous``.

    Attributes
    ----------
    if_inactive, if_active : tuple of ndarray
        Bound with ``d = 0`` and with ``d = 1``.
    """

    if_inactive: tuple[np.ndarray, ...]
    if_active: tuple[np.ndarray, ...]


def _dual_terms(dual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``min(dual * lower, dual * upper)`` per entry, 0 where ``dual`` is 0 (even
    against an infinite bound), ``-inf`` where the dual meets an infinite bound."""
    with np.errstate(invalid="ignore"):
        low = np.where(dual == 0.0, 0.0, dual * lower)
        high = np.where(dual == 0.0, 0.0, dual * upper)
    return np.minimum(low, high)


DUAL_ROUNDING = 1e-12
"""Least relative allowance for rounding in :class:`WeakDuality` (see
:func:`dual_rounding`)."""


def dual_rounding(terms: int) -> float:
    """Relative allowance for rounding in a weak-duality bound.

    Summed one after another, ``n`` terms carry an error of at most ``(n - 1) u``
    times the sum of their magnitudes (``u = 2**-53``, first order), and each
    reduced cost times its bound adds as many units as the reduced cost has terms.

    Parameters
    ----------
    terms : int
        Rows + columns + the most terms of one reduced cost.

    Returns
    -------
    float
        Twice ``(terms + 2) u``, and never below :data:`DUAL_ROUNDING`.
    """
    return max(DUAL_ROUNDING, 2.0 * (terms + 2) * 2.0 ** -53)


@dataclass(frozen=True, eq=False)
class DualSums:
    """The sums behind a weak-duality bound (:meth:`WeakDuality.sums`).

    Attributes
    ----------
    low : float
        ``sum_i min(y_i rl_i, y_i ru_i) + sum_j min(r_j l_j, r_j u_j)``, a lower
        bound of the minimisation up to rounding; ``-inf`` when there is none.
    allowance : float
        What rounding may have taken from ``low`` (``rounding`` times the
        magnitudes of every term summed).
    reduced : ndarray
        The reduced costs ``r = cost - A^T y`` of the signed multipliers.
    """

    low: float
    allowance: float
    reduced: np.ndarray


@dataclass(frozen=True, eq=False)
class DualBound:
    """An LP's maximum and its maxima with one phase fixed, bounded from duals.

    Attributes
    ----------
    value : float
        Upper bound of the LP maximum (``inf`` when there is none).
    phases : PhaseBounds
        Upper bounds of the maximum with each relaxed phase ``d`` fixed to 0 or 1.
    """

    value: float
    phases: PhaseBounds


def _floats(a) -> np.ndarray:
    """``a`` as a contiguous float64 array (the C kernel's form; no copy when it is)."""
    return np.ascontiguousarray(a, dtype=np.float64)


def _compiled_kernel():
    """The C kernel of :meth:`WeakDuality.sums`, or ``None`` when ``bnblip._ckernels``
    was not built (or predates it)."""
    try:
        from bnblip._ckernels import weak_duality_kernel
    except ImportError:
        logger.debug("the C weak-duality kernel is not available; using its NumPy twin")
        return None
    return weak_duality_kernel


def csr_slots(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray,
              cols: np.ndarray) -> np.ndarray:
    """Positions of the entries ``(rows[k], cols[k])`` in a CSR matrix with sorted
    indices (every entry must be present)."""
    width = int(max(indices.max(initial=-1), cols.max(initial=-1))) + 1
    entry_rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    keys = entry_rows * width + indices  # increasing: rows in order, sorted within
    wanted = rows.astype(np.int64) * width + cols
    slots = np.searchsorted(keys, wanted)
    if wanted.size and (keys.size == 0 or
                        not np.array_equal(keys[np.minimum(slots, keys.size - 1)], wanted)):
        raise ValueError("the LP matrix lacks a slot for a node coefficient")
    return slots.astype(np.int64)


class WeakDuality:
    """Upper bounds of a node LP's maximum from any row multipliers.

    The LP minimises ``cost @ v`` (``-sum t``).  For multipliers ``y`` of the rows
    and reduced costs ``r = cost - A^T y``, every feasible ``v`` has ``cost @ v = y
    @ (A v) + r @ v >= sum_i min(y_i rl_i, y_i ru_i) + sum_j min(r_j l_j, r_j u_j)``.
    This holds for any ``y``, optimal or not, so an LP solver's tolerances cannot
    make such a bound unsound: the bound is computed here, from ``y`` alone, with
    this node's matrix and an allowance for its own rounding (:func:`dual_rounding`).
    ``y`` may be a parent's optimal duals (a bound before solving) or the LP's own
    (the bound reported after solving).  First ``y`` is moved to the sign its row
    admits (a row unbounded above gets ``y >= 0``, one unbounded below ``y <= 0``) and
    the objective rows' ``y`` to ``[c_t, 0]`` (``c_t``, the cost of their ``t``: -1 for
    the node LP, 0 for bound tightening, where ``t`` has no upper bound), so that ``r``
    is exactly zero or of the right sign on ``t``, the only columns without finite
    bounds.  Any other column with an infinite bound gives no bound.  With
    ``d``'s bounds set to ``[v, v]`` the same sums bound the maximum with that phase.

    Parameters
    ----------
    layout : RelaxationLayout
    constant : scipy.sparse matrix
        The LP's matrix with the node coefficients (at ``coef_rows, coef_cols``) set
        to 0: the matrix the LP solver holds, for node data sent as is.  Each node
        coefficient must have an entry (a zero) at its position.
    compiled : bool
        Whether to compute with the C kernel when ``bnblip._ckernels`` is built
        (else, and when it is not, with the NumPy twin).
    """

    def __init__(self, layout: RelaxationLayout, constant: sparse.spmatrix,
                 compiled: bool = True):
        self.layout = layout
        self._kernel = _compiled_kernel() if compiled else None
        # A^T with a slot for every entry, the node coefficients' slots included
        coo = sparse.coo_matrix(constant)
        t = sparse.csr_matrix((coo.data, (coo.col, coo.row)),
                              shape=(layout.num_cols, layout.num_rows))
        t.sum_duplicates()
        self._indptr = t.indptr.astype(np.int64)
        self._indices = t.indices.astype(np.int64)
        self._values = t.data.astype(np.float64)
        self._slots = csr_slots(self._indptr, self._indices, layout.coef_cols, layout.coef_rows)
        self._transposed = t  # the NumPy twin's: node coefficients' slots hold 0
        self._abs_transposed = abs(t)
        free = np.ones(layout.num_cols, dtype=bool)
        free[layout.col_t] = False
        self._bounded = free  # the columns that must have finite bounds
        self._bounded_i8 = free.astype(np.int8)
        self._row_t = np.asarray(layout.row_t, dtype=np.int64)
        self._col_t = np.asarray(layout.col_t, dtype=np.int64)
        self._zero_cost = np.zeros(layout.num_cols)
        longest = int(np.max(np.diff(self._indptr), initial=0))
        self.rounding = dual_rounding(layout.num_rows + layout.num_cols + longest)

    @property
    def compiled(self) -> bool:
        """Whether the sums come from the C kernel (else from the NumPy twin)."""
        return self._kernel is not None

    def bound(self, data: NodeData, row_dual: np.ndarray) -> float:
        """Upper bound of the maximum of the node LP (``sum t``).

        Parameters
        ----------
        data : NodeData
            The LP's data as the LP solver holds it (small entries folded).
        row_dual : ndarray
            Any multipliers of the rows (e.g. an LP solve's duals).

        Returns
        -------
        float
            ``inf`` when the multipliers give no bound.
        """
        return -self.lower_bound(data, row_dual, self.layout.cost)

    def lower_bound(self, data: NodeData, row_dual: np.ndarray, cost: np.ndarray) -> float:
        """Lower bound of the minimum of ``cost @ v`` over ``data``'s LP.

        Parameters
        ----------
        data : NodeData
            The LP's data as the LP solver holds it.
        row_dual : ndarray
            Any multipliers of the rows.
        cost : ndarray
            The objective, one entry per column.

        Returns
        -------
        float
            ``-inf`` when the multipliers give no bound.  With ``cost`` zero, a
            positive value proves the LP infeasible (a Farkas certificate).
        """
        sums = self.sums(data, row_dual, cost)
        return sums.low - sums.allowance if math.isfinite(sums.low) else -INF

    def proves_infeasible(self, data: NodeData, row_dual: np.ndarray) -> bool:
        """Whether multipliers ``row_dual`` prove ``data``'s LP infeasible: weak
        duality at zero cost bounds that objective's minimum (0 if the LP had a
        point) from below by a positive number (a Farkas certificate).

        Parameters
        ----------
        data : NodeData
            The LP's data as the LP solver holds it.
        row_dual : ndarray
            Any multipliers of the rows (e.g. a dual ray).

        Returns
        -------
        bool
        """
        return self.lower_bound(data, row_dual, self._zero_cost) > 0.0

    def bound_with_phases(self, data: NodeData, row_dual: np.ndarray) -> DualBound:
        """:meth:`bound` and the bounds with each free ``d`` fixed (from one pass).

        ``d`` fixed to 0 drops its term ``min(r_d l_d, r_d u_d)`` from the sum, fixed
        to 1 replaces it with ``r_d``; the allowance covers both (``|r_d|`` is among
        the magnitudes it counts).  Only a ``d`` free in ``data`` (bounds ``[0, 1]``)
        has meaningful bounds: for a fixed one the allowance does not count the
        rounding of ``r_d``.

        Parameters
        ----------
        data : NodeData
            The LP's data as the LP solver holds it.
        row_dual : ndarray
            Any multipliers of the rows.

        Returns
        -------
        DualBound
            Everything ``inf`` when the multipliers give no bound.
        """
        sums = self.sums(data, row_dual)
        if not math.isfinite(sums.low):
            return DualBound(INF, PhaseBounds(*(
                tuple(np.full(c.size, INF) for c in self.layout.col_d) for _ in range(2))))
        inactive, active = [], []
        for col_d in self.layout.col_d:
            r = sums.reduced[col_d]
            rest = sums.low - _dual_terms(r, data.col_lower[col_d], data.col_upper[col_d])
            inactive.append(-rest + sums.allowance)
            active.append(-(rest + r) + sums.allowance)
        return DualBound(-sums.low + sums.allowance, PhaseBounds(tuple(inactive), tuple(active)))

    def sums(self, data: NodeData, row_dual: np.ndarray,
             cost: np.ndarray | None = None) -> DualSums:
        """The weak-duality sums of ``data``'s LP from multipliers ``row_dual``.

        Parameters
        ----------
        data : NodeData
            The LP's data as the LP solver holds it.
        row_dual : ndarray
            Any multipliers of the rows (``num_rows`` of them).
        cost : ndarray, optional
            The objective minimised (default the layout's, ``-sum t``).

        Returns
        -------
        DualSums
        """
        row_dual = _floats(row_dual)
        cost = self.layout.cost if cost is None else _floats(cost)
        if self._kernel is None:
            return self._sums_numpy(data, row_dual, cost)
        values = self._values.copy()
        values[self._slots] = data.coefs
        reduced = np.empty(self.layout.num_cols)
        low, spread = self._kernel(
            self._indptr, self._indices, values, cost, self._bounded_i8,
            self._row_t, self._col_t, row_dual, _floats(data.col_lower),
            _floats(data.col_upper), _floats(data.row_lower), _floats(data.row_upper), reduced)
        return DualSums(low, self.rounding * spread, reduced)

    def _sums_numpy(self, data: NodeData, row_dual: np.ndarray,
                    cost: np.ndarray) -> DualSums:
        """NumPy twin of the C kernel ``bnblip._ckernels.weak_duality_kernel`` (the
        node coefficients added to the constant matrix's products, not set into it)."""
        lay = self.layout
        nothing = DualSums(-INF, 0.0, np.full(lay.num_cols, np.nan))
        if not (np.isfinite(data.col_lower[self._bounded]).all()
                and np.isfinite(data.col_upper[self._bounded]).all()):
            return nothing
        y = self._signed(data, row_dual, cost)
        terms = y[lay.coef_rows] * data.coefs
        reduced = cost - self._transposed @ y - \
            np.bincount(lay.coef_cols, terms, minlength=lay.num_cols)
        rows = _dual_terms(y, data.row_lower, data.row_upper)
        cols = _dual_terms(reduced, data.col_lower, data.col_upper)
        low = float(np.sum(rows)) + float(np.sum(cols))
        if not math.isfinite(low):
            return nothing
        scale = self._abs_transposed @ np.abs(y) + \
            np.bincount(lay.coef_cols, np.abs(terms), minlength=lay.num_cols) + np.abs(cost)
        reach = np.where(self._bounded, np.maximum(np.abs(data.col_lower),
                                                    np.abs(data.col_upper)), 0.0)
        spread = float(scale @ reach) + float(np.abs(rows).sum()) + float(np.abs(cols).sum())
        return DualSums(low, self.rounding * spread, reduced)

    def _signed(self, data: NodeData, row_dual: np.ndarray, cost: np.ndarray) -> np.ndarray:
        y = np.where(np.isfinite(data.row_upper), row_dual, np.maximum(row_dual, 0.0))
        y = np.where(np.isfinite(data.row_lower), y, np.minimum(y, 0.0))
        rt, ct = self.layout.row_t, self.layout.col_t
        y_t = np.maximum(y[rt], cost[ct])
        y[rt] = np.where(np.isfinite(data.col_upper[ct]), y_t, cost[ct])
        return y
