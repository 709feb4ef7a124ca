"""Folding of coefficients HiGHS would drop (regression for weight-decayed networks)."""

import numpy as np
import pytest
from scipy.optimize import linprog

from bnblip.lp.sanitize import fold_small_entries


def _solve(rows, cols, vals, lo, hi, col_lo, col_hi, cost):
    """HiGHS on ``lo <= A x <= hi`` (equality rows as ``A_eq``)."""
    a = np.zeros((lo.size, col_lo.size))
    np.add.at(a, (rows, cols), vals)
    eq = lo == hi
    ub = ~eq & np.isfinite(hi)
    lb = ~eq & np.isfinite(lo)
    a_ub = np.vstack([a[ub], -a[lb]])
    b_ub = np.concatenate([hi[ub], -lo[lb]])
    return linprog(cost, A_ub=a_ub if a_ub.size else None, b_ub=b_ub if a_ub.size else None,
                   A_eq=a[eq] if eq.any() else None, b_eq=lo[eq] if eq.any() else None,
                   bounds=list(zip(col_lo, col_hi)), method="highs")


def test_dropping_tiny_coefficient_is_infeasible_but_folding_is_not():
    # z = 1e-10 * x with x in [1e6, 2e6] and z in [1e-4, 2e-4]: feasible.
    # HiGHS drops the entry 1e-10 and sees z = 0, contradicting z >= 1e-4.
    rows, cols = np.array([0, 0]), np.array([0, 1])
    vals = np.array([1.0, -1e-10])            # z - 1e-10 x = 0
    lo, hi = np.zeros(1), np.zeros(1)
    col_lo, col_hi = np.array([1e-4, 1e6]), np.array([2e-4, 2e6])
    raw = _solve(rows, cols, vals, lo, hi, col_lo, col_hi, np.zeros(2))
    assert raw.status == 2   # what HiGHS says without folding: infeasible
    folded = fold_small_entries(rows, cols, vals, lo, hi, col_lo, col_hi, 2e-9)
    assert folded.folded == 1 and folded.values[1] == 0.0
    np.testing.assert_allclose([folded.row_lower[0], folded.row_upper[0]], [1e-4, 2e-4])
    fixed = _solve(rows, cols, folded.values, folded.row_lower, folded.row_upper,
                   col_lo, col_hi, np.zeros(2))
    assert fixed.status == 0


def test_folding_is_a_relaxation_on_random_rows():
    rng = np.random.default_rng(0)
    for _ in range(50):
        nrow, ncol = 4, 6
        dense = rng.normal(size=(nrow, ncol))
        dense[rng.random((nrow, ncol)) < 0.4] *= 1e-11
        rows, cols = np.nonzero(np.ones((nrow, ncol)))
        vals = dense[rows, cols]
        col_lo, col_hi = -rng.random(ncol), rng.random(ncol)
        x = rng.uniform(col_lo, col_hi, size=(200, ncol))
        act = x @ dense.T
        lo, hi = act.min(axis=0), act.max(axis=0)
        folded = fold_small_entries(rows, cols, vals, lo, hi, col_lo, col_hi, 2e-9)
        kept = np.zeros_like(dense)
        np.add.at(kept, (rows, cols), folded.values)
        rest = x @ kept.T
        assert np.all(rest >= folded.row_lower - 1e-15)
        assert np.all(rest <= folded.row_upper + 1e-15)


def test_infinite_column_bound_frees_the_side():
    folded = fold_small_entries(np.array([0]), np.array([0]), np.array([1e-12]),
                                np.array([0.0]), np.array([1.0]),
                                np.array([-np.inf]), np.array([1.0]), 2e-9)
    assert folded.row_upper[0] == np.inf and folded.row_lower[0] == -1e-12


def test_issue3_weight_decay_network_engine_equals_milp():
    """A digits MLP trained with L2 weight decay (weights down to 6e-11): the engine's
    LP once pruned the optimum (5.848 instead of 5.8627) because HiGHS dropped the
    tiny weights; the MILP's witness proves the larger value."""
    from pathlib import Path

    from bnblip import lipschitz
    from bnblip.io.npz_io import network_from_arrays
    from bnblip.problem import Box

    data = dict(np.load(Path(__file__).parent / "data" / "weight_decay_digits_32x32x32.npz"))
    box, c = Box(data.pop("lower"), data.pop("upper")), data.pop("c")
    net = network_from_arrays(data)
    milp = lipschitz(net, box, "l1", c, method="milp")
    for backend in ("highspy", "linprog"):
        res = lipschitz(net, box, "l1", c, method="bnb", lp_backend=backend)
        assert res.upper_bound >= milp.lower_bound * (1 - 1e-9)
        assert res.value == pytest.approx(milp.value, rel=1e-6)


def test_issue5_liplp_stays_above_exact_on_weight_decay_network():
    from pathlib import Path

    from bnblip import lipschitz
    from bnblip.estimators import run_estimator
    from bnblip.io.npz_io import network_from_arrays
    from bnblip.problem import Box, make_problem

    data = dict(np.load(Path(__file__).parent / "data" / "weight_decay_digits_32x32x32.npz"))
    box, c = Box(data.pop("lower"), data.pop("upper")), data.pop("c")
    net = network_from_arrays(data)
    for norm in ("linf", "l1"):
        exact = lipschitz(net, box, norm, c, method="milp").value
        bound = run_estimator("LipLP", make_problem(net, box, norm, c=c)).value
        assert bound >= exact * (1 - 1e-9)
