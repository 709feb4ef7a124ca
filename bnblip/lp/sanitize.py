"""Keep LP coefficients HiGHS would silently drop from cutting off feasible points.

HiGHS treats matrix entries with ``|a| <= small_matrix_value`` (1e-9 by default) as
zero.  In a row ``lo <= sum a_j x_j <= hi`` that changes the row and can make a
relaxation infeasible or cut off real points: weight-decayed networks have weights of
1e-10 and below (DESIGN.md section 7).  :func:`fold_small_entries` removes such
entries itself and widens the row bounds by the interval of the removed terms over
the column bounds, so the LP handed to HiGHS is still a relaxation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class FoldedRows:
    """Entries after folding and the widened row bounds.

    Attributes
    ----------
    values : ndarray
        The entry values with the small ones set to exactly 0.
    row_lower, row_upper : ndarray
        Row bounds widened by the range of the removed terms.
    folded : int
        Number of entries removed.
    """

    values: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    folded: int


def fold_small_entries(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                       row_lower: np.ndarray, row_upper: np.ndarray,
                       col_lower: np.ndarray, col_upper: np.ndarray,
                       threshold: float) -> FoldedRows:
    """Move entries with ``0 < |value| < threshold`` into the row bounds.

    A removed term ``a_ij x_j`` lies in ``[min, max]`` of ``a_ij * [l_j, u_j]``; the
    row ``lo <= rest + term <= hi`` is relaxed to ``lo - max <= rest <= hi - min``.
    Infinite column bounds make the widened side infinite (the row stays sound).

    Parameters
    ----------
    rows, cols, values : ndarray
        Coordinates and values of the matrix entries.
    row_lower, row_upper, col_lower, col_upper : ndarray
        Row and column bounds.
    threshold : float
        Entries below it in magnitude are folded.
    """
    values = np.asarray(values, dtype=np.float64)
    small = (values != 0) & (np.abs(values) < threshold)
    lo = np.array(row_lower, dtype=np.float64, copy=True)
    hi = np.array(row_upper, dtype=np.float64, copy=True)
    if not np.any(small):
        return FoldedRows(values, lo, hi, 0)
    r, c, a = rows[small], cols[small], values[small]
    with np.errstate(invalid="ignore"):
        t1, t2 = a * col_lower[c], a * col_upper[c]
    tmin = np.where(np.isnan(t1) | np.isnan(t2), -np.inf, np.minimum(t1, t2))
    tmax = np.where(np.isnan(t1) | np.isnan(t2), np.inf, np.maximum(t1, t2))
    np.subtract.at(lo, r, tmax)
    np.subtract.at(hi, r, tmin)
    out = values.copy()
    out[small] = 0.0
    return FoldedRows(out, lo, hi, int(small.sum()))
