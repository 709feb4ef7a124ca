"""LipLP: the LP relaxation of the LipMIP formulation (Jordan & Dimakis 2020).

LipMIP encodes the forward pass with the big-M ReLU formulation and the backward pass
``u_i = delta_i * y_i`` with the switch formulation, both driven by the same binary
``delta`` per ambiguous neuron and both using interval bounds (pre-activations
``[z_l, z_u]`` from :func:`bnblip.bounds.forward_interval`, backward quantities
``[y_l, y_u]`` and the input gradient ``[g_l, g_u]`` from
:func:`bnblip.bounds.backward_interval`):

* forward, ``z_l < 0 < z_u``: ``a >= z``, ``a >= 0``, ``a <= z_u delta``,
  ``a <= z - z_l (1 - delta)``; stable neurons are ``a = z`` or ``a = 0``;
* backward: ``u <= y_u delta``, ``u >= y_l delta``, ``u <= y - y_l (1 - delta)``,
  ``u >= y - y_u (1 - delta)``; stable neurons are ``u = y`` or ``u = 0``;
* gradient ``g = W_1^T u_1``.

Objective for input ``linf`` (dual ``l1``): ``sum_j |g_j|`` with ``|g| = 2 relu(g) - g``
and ``relu(g)`` in the same big-M form with a sign binary ``tau`` (``g`` stable in sign
gives ``|g| = +-g``).  Relaxing ``tau`` to ``[0, 1]`` gives the chord of ``|.|`` over
``[g_l, g_u]``.  Input ``l1`` (dual ``linf``): ``max_j |g_j|``; the coordinate and sign
selection is enumerated (one LP per coordinate and sign, skipped when the interval
bound of ``|g_j|`` cannot beat the best LP so far), which is at least as tight as
relaxing the selection binaries.

Relaxing every binary to ``[0, 1]`` gives an LP whose optimum bounds the MIP optimum,
which bounds the exact constant.  The LP is solved by
``scipy.optimize.linprog(method="highs")``; its value is inflated by
``tol.relaxation_safety`` (relative) so solver tolerances cannot make it unsound.
Interval bounds enter the LP widened by ``10 feas_tol (1 + |bound|)`` (see
:func:`_widen`).  If HiGHS still fails, the bound is reported as ``inf`` (sound) and a
warning is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from bnblip.bounds import backward_interval, derivative_bounds, forward_interval
from bnblip.errors import BnblipError
from bnblip.estimators.base import Estimate, EstimatorSpec, Kind, max_over_functionals
from bnblip.lp.sanitize import fold_small_entries
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Norm, Problem

logger = logging.getLogger("bnblip.estimators")


class RelaxationError(BnblipError):
    """The LP relaxation could not be solved (a numerical failure, not bad input)."""


@dataclass
class _LPBuilder:
    """Columns with bounds and sparse rows ``A_ub x <= b_ub`` / ``A_eq x = b_eq``."""

    lower: list = field(default_factory=list)
    upper: list = field(default_factory=list)
    ub_rows: list = field(default_factory=list)
    ub_rhs: list = field(default_factory=list)
    eq_rows: list = field(default_factory=list)
    eq_rhs: list = field(default_factory=list)

    def columns(self, lower, upper) -> np.ndarray:
        start = len(self.lower)
        self.lower.extend(np.asarray(lower, dtype=np.float64).tolist())
        self.upper.extend(np.asarray(upper, dtype=np.float64).tolist())
        return np.arange(start, len(self.lower))

    def row_le(self, cols, coefs, rhs: float) -> None:
        self.ub_rows.append((np.asarray(cols), np.asarray(coefs, dtype=np.float64)))
        self.ub_rhs.append(float(rhs))

    def row_eq(self, cols, coefs, rhs: float) -> None:
        self.eq_rows.append((np.asarray(cols), np.asarray(coefs, dtype=np.float64)))
        self.eq_rhs.append(float(rhs))

    def _matrix(self, rows) -> sparse.csr_matrix | None:
        if not rows:
            return None
        r = np.concatenate([np.full(len(c), k) for k, (c, _) in enumerate(rows)])
        c = np.concatenate([cols for cols, _ in rows])
        v = np.concatenate([coefs for _, coefs in rows])
        return sparse.csr_matrix((v, (r, c)), shape=(len(rows), len(self.lower)))

    def matrices(self, small_entry: float = DEFAULT_TOLERANCES.lp_small_entry):
        """``(A_ub, b_ub, A_eq, b_eq)`` with entries HiGHS would drop folded into the
        right-hand sides (an equality row holding one becomes two inequalities)."""
        lo, hi = np.asarray(self.lower), np.asarray(self.upper)
        ub_rows, ub_rhs, eq_rows, eq_rhs = [], [], [], []
        for (cols, coefs), rhs in zip(self.ub_rows, self.ub_rhs):
            f = fold_small_entries(np.zeros(len(cols), dtype=np.int64), np.arange(len(cols)),
                                   coefs, np.array([-np.inf]), np.array([rhs]),
                                   lo[cols], hi[cols], small_entry)
            ub_rows.append((cols, f.values))
            ub_rhs.append(float(f.row_upper[0]))
        for (cols, coefs), rhs in zip(self.eq_rows, self.eq_rhs):
            f = fold_small_entries(np.zeros(len(cols), dtype=np.int64), np.arange(len(cols)),
                                   coefs, np.array([rhs]), np.array([rhs]),
                                   lo[cols], hi[cols], small_entry)
            if f.folded == 0:
                eq_rows.append((cols, coefs))
                eq_rhs.append(rhs)
                continue
            ub_rows += [(cols, f.values), (cols, -f.values)]
            ub_rhs += [float(f.row_upper[0]), -float(f.row_lower[0])]
        return (self._matrix(ub_rows), np.asarray(ub_rhs),
                self._matrix(eq_rows), np.asarray(eq_rhs))


@dataclass(frozen=True, eq=False)
class _Relaxation:
    builder: _LPBuilder
    grad_cols: np.ndarray
    grad_lower: np.ndarray
    grad_upper: np.ndarray


def _widen(lower: np.ndarray, upper: np.ndarray, tol: Tolerances):
    """Interval bounds widened by ``10 feas_tol (1 + |bound|)`` for use as LP constants.

    Bounds only a few ``feas_tol`` wide (dead neurons of weight-decayed networks, input
    gradient coordinates of clipped pixels) otherwise make HiGHS declare the relaxation
    infeasible; widening only enlarges the relaxation, so it stays sound.
    """
    pad = 10.0 * tol.feas_tol * (1.0 + np.maximum(np.abs(lower), np.abs(upper)))
    return lower - pad, upper + pad


def _forward(builder: _LPBuilder, problem: Problem, fwd,
             tol: Tolerances) -> list[tuple[np.ndarray, np.ndarray]]:
    """Forward big-M rows; returns ``(a_cols, delta)`` per hidden layer where ``delta``
    holds the column of each ambiguous neuron's binary, ``-1`` for active and ``-2``
    for inactive neurons."""
    net = problem.network
    prev = builder.columns(problem.box.lower, problem.box.upper)
    layers = []
    for w, b, zl0, zu0 in zip(net.weights[:-1], net.biases[:-1], fwd.lower, fwd.upper):
        zl, zu = _widen(zl0, zu0, tol)
        acts = builder.columns(np.where(zu0 <= 0, 0.0, np.maximum(zl, 0.0)),
                               np.where(zu0 <= 0, 0.0, np.maximum(zu, 0.0)))
        delta = np.full(w.shape[0], -1)
        for j in range(w.shape[0]):
            cols = np.append(prev, acts[j])
            if zu0[j] <= 0:                      # a = 0: fixed by its bounds
                delta[j] = -2
            elif zl0[j] >= 0:                    # a = z
                builder.row_eq(cols, np.append(-w[j], 1.0), b[j])
            else:
                d = builder.columns([0.0], [1.0])[0]
                delta[j] = d
                builder.row_le(cols, np.append(w[j], -1.0), -b[j])          # z <= a
                builder.row_le([acts[j], d], [1.0, -zu[j]], 0.0)            # a <= zu d
                builder.row_le(np.append(cols, d), np.concatenate(
                    [-w[j], [1.0, -zl[j]]]), b[j] - zl[j])                  # a <= z - zl(1-d)
        layers.append((acts, delta))
        prev = acts
    return layers


def _switch(builder: _LPBuilder, u: int, d: int, ycols, ycoefs, yconst: float,
            yl: float, yu: float) -> None:
    """Rows of ``u = d * y`` with ``y = ycoefs . x[ycols] + yconst`` in ``[yl, yu]``."""
    builder.row_le([u, d], [1.0, -yu], 0.0)                                  # u <= yu d
    builder.row_le([u, d], [-1.0, yl], 0.0)                                  # u >= yl d
    builder.row_le(np.concatenate([[u, d], ycols]), np.concatenate(
        [[1.0, -yl], -ycoefs]), yconst - yl)                                 # u <= y - yl(1-d)
    builder.row_le(np.concatenate([[u, d], ycols]), np.concatenate(
        [[-1.0, yu], ycoefs]), yu - yconst)                                  # u >= y - yu(1-d)


def _backward(builder: _LPBuilder, problem: Problem, layers, back, c: np.ndarray,
              tol: Tolerances) -> np.ndarray:
    """Switch rows of the backward pass; returns the gradient columns."""
    net = problem.network
    wvec = net.weights[-1].T @ c
    nxt = None                                   # u columns of the layer above
    for k in range(net.num_hidden_layers - 1, -1, -1):
        _, delta = layers[k]
        yl, yu = _widen(back.lower[k + 1], back.upper[k + 1], tol)
        lo = np.where(delta == -2, 0.0, np.minimum(yl, 0.0))
        hi = np.where(delta == -2, 0.0, np.maximum(yu, 0.0))
        ucols = builder.columns(lo, hi)
        w_above = None if nxt is None else net.weights[k + 1]
        for j in range(len(delta)):
            if delta[j] == -2:
                continue
            if nxt is None:
                ycols, ycoefs, yconst = np.zeros(0, dtype=int), np.zeros(0), wvec[j]
            else:
                ycols, ycoefs, yconst = nxt, w_above[:, j], 0.0
            if delta[j] == -1:                   # u = y
                builder.row_eq(np.append(ucols[j], ycols), np.append(1.0, -ycoefs), yconst)
            else:
                _switch(builder, ucols[j], delta[j], ycols, ycoefs, yconst, yl[j], yu[j])
        nxt = ucols
    gl, gu = _widen(back.lower[0], back.upper[0], tol)
    gcols = builder.columns(gl, gu)
    w0 = net.weights[0]
    for i in range(net.input_dim):
        builder.row_eq(np.append(gcols[i], nxt), np.append(1.0, -w0[:, i]), 0.0)
    return gcols


def build_relaxation(problem: Problem, c: np.ndarray,
                     tol: Tolerances = DEFAULT_TOLERANCES) -> _Relaxation:
    """The LipMIP LP relaxation of ``problem`` for the functional ``c`` (no objective)."""
    net = problem.network
    fwd = forward_interval(net, problem.box.lower, problem.box.upper, tol=tol)
    dlo, dhi = derivative_bounds(fwd)
    back = backward_interval(net, c, dlo, dhi, tol=tol)
    builder = _LPBuilder()
    layers = _forward(builder, problem, fwd, tol)
    gcols = _backward(builder, problem, layers, back, c, tol)
    return _Relaxation(builder, gcols, *_widen(back.lower[0], back.upper[0], tol))


def _solve_max(builder: _LPBuilder, objective: dict, tol: Tolerances) -> float:
    """Maximise ``sum objective[col] * x[col]``."""
    cost = np.zeros(len(builder.lower))
    for col, coef in objective.items():
        cost[col] -= coef
    a_ub, b_ub, a_eq, b_eq = builder.matrices()
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub if a_ub is not None else None, A_eq=a_eq,
                  b_eq=b_eq if a_eq is not None else None,
                  bounds=list(zip(builder.lower, builder.upper)), method="highs",
                  options={"primal_feasibility_tolerance": tol.feas_tol,
                           "dual_feasibility_tolerance": tol.feas_tol})
    if res.status != 0:
        raise RelaxationError(f"LipLP: the LP relaxation failed: {res.message}")
    return float(-res.fun)


def _l1_objective(relax: _Relaxation) -> dict:
    """``sum_j |g_j|`` with ambiguous signs relaxed (adds ``relu(g)`` columns)."""
    builder = relax.builder
    objective: dict = {}
    for col, gl, gu in zip(relax.grad_cols, relax.grad_lower, relax.grad_upper):
        if gl >= 0 or gu <= 0:
            objective[int(col)] = objective.get(int(col), 0.0) + (1.0 if gl >= 0 else -1.0)
            continue
        r, tau = builder.columns([0.0, 0.0], [gu, 1.0])
        builder.row_le([col, r], [1.0, -1.0], 0.0)                          # r >= g
        builder.row_le([r, tau], [1.0, -gu], 0.0)                           # r <= gu tau
        builder.row_le([r, col, tau], [1.0, -1.0, -gl], -gl)                # r <= g - gl(1-tau)
        objective[int(r)] = 2.0
        objective[int(col)] = objective.get(int(col), 0.0) - 1.0
    return objective


def _linf_value(relax: _Relaxation, tol: Tolerances) -> float:
    bound = np.maximum(np.abs(relax.grad_lower), np.abs(relax.grad_upper))
    best = 0.0
    for j in np.argsort(-bound, kind="stable"):
        if bound[j] <= best:
            break
        col = int(relax.grad_cols[j])
        for sign in (1.0, -1.0):
            extreme = relax.grad_upper[j] if sign > 0 else -relax.grad_lower[j]
            if extreme > best:
                best = max(best, _solve_max(relax.builder, {col: sign}, tol))
    return best


def liplp_value(problem: Problem, c: np.ndarray, tol: Tolerances = DEFAULT_TOLERANCES) -> float:
    """Optimum of the relaxation for one functional (not yet inflated)."""
    if problem.network.num_hidden_layers == 0:           # affine: the gradient is constant
        return float(problem.norm.dual_value(problem.network.weights[0].T @ c))
    relax = build_relaxation(problem, c, tol)
    if problem.norm is Norm.LINF:
        return max(0.0, _solve_max(relax.builder, _l1_objective(relax), tol))
    return _linf_value(relax, tol)


def _compute(problem: Problem, *, tol: Tolerances = DEFAULT_TOLERANCES) -> float:
    try:
        value = max_over_functionals(problem, lambda c: liplp_value(problem, c, tol))
    except RelaxationError as exc:
        logger.warning("%s; reporting inf", exc)
        return float("inf")
    return value * (1.0 + tol.relaxation_safety)


SPEC = EstimatorSpec(
    name="LipLP", kind=Kind.UPPER, norms=frozenset({Norm.LINF, Norm.L1}), compute=_compute,
    summary="LP relaxation of the LipMIP formulation")


def liplp(problem: Problem, **options) -> Estimate:
    """LipLP upper bound (input norms linf, l1); option ``tol``."""
    return SPEC.run(problem, **options)
