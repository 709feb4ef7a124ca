"""Reference MILP: the LipMIP formulation solved by ``scipy.optimize.milp`` (HiGHS).

Variables: the input ``x`` in the box, post-activations ``a_i``, one binary ``d_ij``
per ambiguous ReLU, the backward quantities ``u_i = D_i y_i`` and ``y_i`` (the
gradient with respect to ``a_i``; ``y_0`` is the input gradient), and the objective
variables.  With pre-activation bounds ``[l, u]`` and backward bounds ``[yl, yu]``:

* forward, ambiguous neuron: ``a >= z``, ``a >= 0``, ``a <= z - l (1 - d)``,
  ``a <= u d``; stable active ``a = z``; stable inactive ``a = 0``;
* backward, ambiguous neuron (same ``d``): ``u <= y - yl (1 - d)``,
  ``u >= y - yu (1 - d)``, ``u <= yu d``, ``u >= yl d`` (``d = 1`` gives ``u = y``,
  ``d = 0`` gives ``u = 0``); stable active ``u = y``; stable inactive ``u = 0``;
  ``y_{i-1} = W_i^T u_i`` and ``y_{L-1} = W_L^T c``;
* objective for ``q = l1`` (input norm linf): ``max sum_k t_k`` with
  ``t_k <= y_0k + M0 (1 - s_k)``, ``t_k <= -y_0k + M1 s_k`` (binary ``s_k`` for
  coordinates whose sign is not fixed by the bounds); for ``q = linf`` (input norm
  l1): ``max t`` with ``t <= +-y_0k + M (1 - e_k^+-)`` and ``sum e = 1``.

Pre-activation bounds are interval bounds, tightened layer by layer by two LPs per
ambiguous neuron over the triangle relaxation of the earlier layers, solved on one
retained HiGHS model whose objective is changed between solves.

Witnesses: the binaries of the MIP solution give an activation pattern; the interior
point of its region is re-checked on the network.  If that region is not
full-dimensional (degenerate ties at the MIP point) the MIP point and random
perturbations of it are re-checked; if the gap is still open, the pattern provably
occupies no full-dimensional region, so a no-good cut excludes it and the MIP is
solved again (at most ``max_cuts`` times).  ``lower_bound`` is always the value of a
re-checked witness and ``upper_bound`` the MIP's dual bound (the interval bound of
the gradient norm when the MIP found nothing before the time limit).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from bnblip.bounds import (
    BackwardBounds,
    ForwardBounds,
    backward_interval,
    derivative_bounds,
    forward_interval,
)
from bnblip.errors import InputError
from bnblip.incumbent import Witness, check_witness
from bnblip.lp.sanitize import fold_small_entries
from bnblip.network import Network, Pattern, same_pattern
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Box, Norm, Problem
from bnblip.reference_common import (
    Deadline,
    Outcome,
    assemble,
    better,
    fallback_witness,
    gradient_norm_bound,
    silent_highs,
)
from bnblip.regions import interior_point, pattern_halfspaces
from bnblip.result import LipschitzResult, Method, Stats, Status

logger = logging.getLogger("bnblip.reference")

INF = np.inf
#: Relative sizes of the perturbations tried around a degenerate MIP point.
_PERTURB_SCALES = (1e-9, 1e-7, 1e-5, 1e-3)
_PERTURB_SAMPLES = 8


# ---------------------------------------------------------------- model builder
class LinearModel:
    """A (mixed-integer) linear model under construction: columns with bounds and
    integrality, and sparse rows ``lo <= A v <= hi``."""

    def __init__(self, small_entry: float = DEFAULT_TOLERANCES.lp_small_entry) -> None:
        self.small_entry = small_entry
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[int] = []
        self.row_index: list[np.ndarray] = []
        self.row_coef: list[np.ndarray] = []
        self.row_lo: list[float] = []
        self.row_hi: list[float] = []

    @property
    def num_cols(self) -> int:
        return len(self.lb)

    @property
    def num_rows(self) -> int:
        return len(self.row_lo)

    def add_cols(self, lower, upper, integer: bool = False) -> np.ndarray:
        """Append columns with bounds ``[lower, upper]``; returns their indices."""
        lower = np.atleast_1d(np.asarray(lower, dtype=np.float64))
        upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), lower.shape)
        start = self.num_cols
        self.lb.extend(lower.tolist())
        self.ub.extend(upper.tolist())
        self.integer.extend([int(integer)] * lower.size)
        return np.arange(start, start + lower.size)

    def add_row(self, index, coef, lo: float, hi: float) -> None:
        """Append ``lo <= sum coef * v[index] <= hi``.

        Zero coefficients are dropped; tiny ones (below ``small_entry``, which HiGHS
        would drop silently) are folded into the row bounds over the columns' bounds
        (:func:`bnblip.lp.sanitize.fold_small_entries`), keeping the row sound.
        """
        index = np.asarray(index, dtype=np.int64)
        coef = np.asarray(coef, dtype=np.float64)
        col_lo = np.array([self.lb[i] for i in index], dtype=np.float64)
        col_hi = np.array([self.ub[i] for i in index], dtype=np.float64)
        folded = fold_small_entries(np.zeros(index.size, dtype=np.int64), np.arange(index.size),
                                    coef, np.array([float(lo)]), np.array([float(hi)]),
                                    col_lo, col_hi, self.small_entry)
        keep = folded.values != 0.0
        self.row_index.append(index[keep])
        self.row_coef.append(folded.values[keep])
        self.row_lo.append(float(folded.row_lower[0]))
        self.row_hi.append(float(folded.row_upper[0]))

    def matrix(self, first_row: int = 0) -> csr_array:
        """Rows from ``first_row`` on as a sparse matrix over all columns."""
        idx = self.row_index[first_row:]
        counts = np.array([len(i) for i in idx], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        indices = np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)
        data = np.concatenate(self.row_coef[first_row:]) if idx else np.zeros(0)
        return csr_array((data, indices, indptr), shape=(len(idx), self.num_cols))


def _push_to_highs(model: LinearModel, highs, cols_done: int, rows_done: int) -> None:
    """Append the columns and rows of ``model`` not yet in ``highs``."""
    ncol = model.num_cols - cols_done
    if ncol:
        highs.addCols(ncol, np.zeros(ncol), np.array(model.lb[cols_done:]),
                      np.array(model.ub[cols_done:]), 0, np.zeros(0, dtype=np.int32),
                      np.zeros(0, dtype=np.int32), np.zeros(0))
    nrow = model.num_rows - rows_done
    if nrow:
        mat = model.matrix(rows_done)
        highs.addRows(nrow, np.array(model.row_lo[rows_done:]),
                      np.array(model.row_hi[rows_done:]), mat.nnz,
                      mat.indptr[:-1].astype(np.int32), mat.indices.astype(np.int32),
                      mat.data)


# ---------------------------------------------------------------- neuron classes
def _stable_masks(lower: np.ndarray, upper: np.ndarray):
    """``(active, inactive, ambiguous)`` masks, consistent with ``derivative_bounds``."""
    inactive = upper <= 0
    active = ~inactive & (lower >= 0)
    return active, inactive, ~(active | inactive)


# ---------------------------------------------------------------- bound tightening
@dataclass(frozen=True, eq=False)
class Tightening:
    """Forward bounds after LP tightening, with what it cost."""

    bounds: ForwardBounds
    lps: int
    time_s: float
    complete: bool


def _layer_interval(network: Network, layer: int, a_lo, a_hi, tol: Tolerances):
    """Interval bounds of hidden layer ``layer`` from bounds of its input."""
    sub = Network(network.weights[layer:layer + 2], network.biases[layer:layer + 2])
    fwd = forward_interval(sub, a_lo, a_hi, tol=tol)
    return fwd.lower[0], fwd.upper[0]


def _relu_relaxation(model: LinearModel, prev: np.ndarray, w, b, lower, upper) -> np.ndarray:
    """Triangle relaxation of ``a = relu(W prev + b)`` under bounds; returns ``a``'s columns."""
    active, inactive, ambiguous = _stable_masks(lower, upper)
    cols = model.add_cols(np.where(active, np.maximum(lower, 0.0), 0.0),
                          np.where(inactive, 0.0, np.maximum(upper, 0.0)))
    for j in np.flatnonzero(active | ambiguous):
        index = np.concatenate([[cols[j]], prev])
        if active[j]:
            model.add_row(index, np.concatenate([[1.0], -w[j]]), b[j], b[j])
            continue
        slope = upper[j] / (upper[j] - lower[j])
        model.add_row(index, np.concatenate([[1.0], -w[j]]), b[j], INF)
        model.add_row(index, np.concatenate([[1.0], -slope * w[j]]), -INF,
                      slope * (b[j] - lower[j]))
    return cols


def _lp_extreme(highs, cols: np.ndarray, w_row: np.ndarray, sense: float) -> float | None:
    """``min sense * w_row @ v[cols]`` on the retained model, or ``None`` on failure."""
    highs.changeColsCost(cols.size, cols.astype(np.int32), sense * w_row)
    highs.run()
    if highs.getModelStatus().name != "kOptimal":
        return None
    return sense * highs.getInfo().objective_function_value


def tighten_bounds(network: Network, box: Box, tol: Tolerances = DEFAULT_TOLERANCES,
                   deadline: Deadline | None = None, tighten: bool = True) -> Tightening:
    """Pre-activation bounds: interval, then LP-tightened layer by layer.

    Each ambiguous neuron of layer ``k >= 2`` gets two LPs (min and max of its
    pre-activation) over the triangle relaxation of layers ``< k``.  LP optima are
    widened by ``tol.feas_tol`` times the magnitude of the summed terms.  When the
    deadline passes, the remaining layers keep interval bounds.
    """
    start = time.perf_counter()
    deadline = deadline or Deadline(None)
    base = forward_interval(network, box.lower, box.upper, tol=tol)
    lows, ups = [base.lower[0]], [base.upper[0]]
    if not tighten or network.num_hidden_layers == 1:
        return Tightening(base, 0, time.perf_counter() - start, True)
    model = LinearModel()
    highs = silent_highs(tol.feas_tol)
    prev = model.add_cols(box.lower, box.upper)
    lps, complete, cols_done, rows_done = 0, True, 0, 0
    for k in range(1, network.num_hidden_layers):
        w_in, b_in = network.weights[k - 1], network.biases[k - 1]
        prev = _relu_relaxation(model, prev, w_in, b_in, lows[-1], ups[-1])
        _push_to_highs(model, highs, cols_done, rows_done)
        cols_done, rows_done = model.num_cols, model.num_rows
        prev_lo, prev_hi = np.maximum(lows[-1], 0.0), np.maximum(ups[-1], 0.0)
        zl, zu = _layer_interval(network, k, prev_lo, prev_hi, tol)
        w, b = network.weights[k], network.biases[k]
        scale = np.abs(w) @ np.maximum(np.abs(prev_lo), np.abs(prev_hi)) + np.abs(b)
        for j in np.flatnonzero((zl < 0) & (zu > 0)):
            if deadline.expired():
                complete = False
                break
            low = _lp_extreme(highs, prev, w[j], 1.0)
            high = _lp_extreme(highs, prev, w[j], -1.0)
            lps += 2
            widen = tol.feas_tol * scale[j]
            if low is not None:
                zl[j] = max(zl[j], low + b[j] - widen)
            if high is not None:
                zu[j] = min(zu[j], high + b[j] + widen)
        highs.changeColsCost(prev.size, prev.astype(np.int32), np.zeros(prev.size))
        lows.append(zl)
        ups.append(zu)
    bounds = ForwardBounds(tuple(lows), tuple(ups))
    return Tightening(bounds, lps, time.perf_counter() - start, complete)


# ---------------------------------------------------------------- the MIP
@dataclass(frozen=True, eq=False)
class MipModel:
    """The assembled MIP for one functional and how to read its solution.

    Attributes
    ----------
    model : LinearModel
    cost : ndarray
        Minimised cost (the negated gradient norm).
    x_cols : ndarray
        Columns of the input.
    d_cols : tuple of ndarray
        Per hidden layer, the binary column of each neuron (-1 for stable ones).
    forward : ForwardBounds
    """

    model: LinearModel
    cost: np.ndarray
    x_cols: np.ndarray
    d_cols: tuple[np.ndarray, ...]
    forward: ForwardBounds


def _forward_section(model: LinearModel, network: Network, box: Box, fwd: ForwardBounds):
    prev = model.add_cols(box.lower, box.upper)
    x_cols = prev
    d_all = []
    for k in range(network.num_hidden_layers):
        w, b = network.weights[k], network.biases[k]
        lower, upper = fwd.lower[k], fwd.upper[k]
        active, inactive, ambiguous = _stable_masks(lower, upper)
        a = model.add_cols(np.where(active, np.maximum(lower, 0.0), 0.0),
                           np.where(inactive, 0.0, np.maximum(upper, 0.0)))
        d = np.full(w.shape[0], -1, dtype=np.int64)
        amb = np.flatnonzero(ambiguous)
        d[amb] = model.add_cols(np.zeros(amb.size), 1.0, integer=True)
        for j in np.flatnonzero(active):
            model.add_row(np.concatenate([[a[j]], prev]), np.concatenate([[1.0], -w[j]]),
                          b[j], b[j])
        for j in amb:
            lo, up = lower[j], upper[j]
            index = np.concatenate([[a[j], d[j]], prev])
            model.add_row(index, np.concatenate([[1.0, 0.0], -w[j]]), b[j], INF)
            model.add_row(index, np.concatenate([[1.0, -lo], -w[j]]), -INF, b[j] - lo)
            model.add_row([a[j], d[j]], [1.0, -up], -INF, 0.0)
        d_all.append(d)
        prev = a
    return x_cols, tuple(d_all)


def _backward_section(model: LinearModel, network: Network, fwd: ForwardBounds,
                      back: BackwardBounds, d_cols) -> np.ndarray:
    """Backward pass rows; returns the columns of the input gradient ``y_0``."""
    hidden = network.num_hidden_layers
    y = model.add_cols(back.lower[hidden], back.upper[hidden])
    for k in range(hidden - 1, -1, -1):
        active, inactive, _ = _stable_masks(fwd.lower[k], fwd.upper[k])
        yl, yu = back.lower[k + 1], back.upper[k + 1]
        u_lo = np.where(active, yl, np.minimum(yl, 0.0))
        u_hi = np.where(active, yu, np.maximum(yu, 0.0))
        u = model.add_cols(np.where(inactive, 0.0, u_lo), np.where(inactive, 0.0, u_hi))
        for j in range(u.size):
            if inactive[j]:
                continue
            if active[j]:
                model.add_row([u[j], y[j]], [1.0, -1.0], 0.0, 0.0)
                continue
            index, lo, up = [u[j], y[j], d_cols[k][j]], yl[j], yu[j]
            model.add_row(index, [1.0, -1.0, -lo], -INF, -lo)
            model.add_row(index, [1.0, -1.0, -up], -up, INF)
            model.add_row([u[j], d_cols[k][j]], [1.0, -up], -INF, 0.0)
            model.add_row([u[j], d_cols[k][j]], [1.0, -lo], 0.0, INF)
        w = network.weights[k]
        y = model.add_cols(back.lower[k], back.upper[k])
        for m in range(y.size):
            model.add_row(np.concatenate([[y[m]], u]), np.concatenate([[1.0], -w[:, m]]),
                          0.0, 0.0)
    return y


def _objective_l1(model: LinearModel, y0: np.ndarray, yl, yu) -> np.ndarray:
    """``max sum |y_0k|``; returns the columns with cost -1."""
    t = model.add_cols(np.zeros(y0.size), np.maximum(np.abs(yl), np.abs(yu)))
    for k in range(y0.size):
        if yl[k] >= 0:
            model.add_row([t[k], y0[k]], [1.0, -1.0], -INF, 0.0)
        elif yu[k] <= 0:
            model.add_row([t[k], y0[k]], [1.0, 1.0], -INF, 0.0)
        else:
            s = model.add_cols([0.0], 1.0, integer=True)[0]
            m0, m1 = -2.0 * yl[k], 2.0 * yu[k]
            model.add_row([t[k], y0[k], s], [1.0, -1.0, m0], -INF, m0)
            model.add_row([t[k], y0[k], s], [1.0, 1.0, -m1], -INF, 0.0)
    return t


def _objective_linf(model: LinearModel, y0: np.ndarray, yl, yu, floor: float) -> np.ndarray:
    """``max max_k |y_0k|`` with one binary per (coordinate, sign); returns ``[t]``.

    A (coordinate, sign) whose bound is at most ``floor`` (a value already attained)
    cannot raise the optimum above ``floor`` and gets no binary; the best one is kept
    whatever its bound, so the model stays feasible.
    """
    reach = np.concatenate([yu, -yl])
    keep = reach > floor
    keep[int(np.argmax(reach))] = True
    top = float(reach[keep].max())
    t = model.add_cols([0.0], top)
    chosen = np.flatnonzero(keep)
    pick = model.add_cols(np.zeros(chosen.size), 1.0, integer=True)
    model.add_row(pick, np.ones(chosen.size), 1.0, 1.0)
    for col, idx in zip(pick, chosen):
        k, sign = idx % y0.size, (1.0 if idx < y0.size else -1.0)
        # t <= sign * y_0k + big (1 - pick), big covering the whole range of y_0k
        big = top - (yl[k] if sign > 0 else -yu[k])
        model.add_row([t[0], y0[k], col], [1.0, -sign, big], -INF, big)
    return t


def build_mip(network: Network, box: Box, norm: Norm, c, fwd: ForwardBounds,
              tol: Tolerances = DEFAULT_TOLERANCES, floor: float = -INF) -> MipModel:
    """Assemble the LipMIP model of ``||grad c^T f||_q`` under forward bounds ``fwd``.

    ``floor`` is a value already attained by a witness; the model may then miss
    solutions worth at most ``floor`` (the true constant is ``max(optimum, floor)``).
    """
    if norm is Norm.L2:
        raise InputError("milp supports norm 'linf' and 'l1' (its objective is linear); "
                         "use method='enumerate' or 'bnb' for norm 'l2'")
    dlo, dhi = derivative_bounds(fwd)
    back = backward_interval(network, c, dlo, dhi, tol)
    model = LinearModel()
    x_cols, d_cols = _forward_section(model, network, box, fwd)
    y0 = _backward_section(model, network, fwd, back, d_cols)
    if norm.dual is Norm.L1:
        t = _objective_l1(model, y0, back.lower[0], back.upper[0])
    else:
        t = _objective_linf(model, y0, back.lower[0], back.upper[0], floor)
    cost = np.zeros(model.num_cols)
    cost[t] = -1.0
    return MipModel(model, cost, x_cols, d_cols, fwd)


@dataclass(frozen=True, eq=False)
class MipRun:
    """One HiGHS MIP solve: the dual (upper) bound, the incumbent and its pattern.

    ``error`` is HiGHS's message when the solve failed (e.g. "Solve error"); the
    run then carries no bound and no incumbent.
    """

    finished: bool
    upper: float | None
    x: np.ndarray | None
    pattern: Pattern | None
    nodes: int
    error: str | None = None


def _pattern_of(mip: MipModel, solution: np.ndarray) -> Pattern:
    pattern = []
    for k, d in enumerate(mip.d_cols):
        active, _, ambiguous = _stable_masks(mip.forward.lower[k], mip.forward.upper[k])
        on = active.copy()
        on[ambiguous] = solution[d[ambiguous]] > 0.5
        pattern.append(on)
    return tuple(pattern)


def run_mip(mip: MipModel, tol: Tolerances, time_limit: float | None,
            cuts=()) -> MipRun:
    """Solve ``mip`` (plus no-good ``cuts``) with ``scipy.optimize.milp``."""
    model = mip.model
    rows = [LinearConstraint(model.matrix(), model.row_lo, model.row_hi)]
    rows.extend(cuts)
    # HiGHS's mip_feasibility_tolerance stays at its default: set to 1e-9 it made
    # HiGHS 1.x declare a wrong optimum (1.4563 for 1.5403, a feasible point of
    # the same model; tests/test_reference.py::test_issue2_milp_tolerance_regression).
    options = {"mip_rel_gap": tol.mip_rel_gap, "mip_abs_gap": tol.abs_gap,
               "primal_feasibility_tolerance": tol.feas_tol,
               "dual_feasibility_tolerance": tol.feas_tol}
    if time_limit is not None:
        options["time_limit"] = max(float(time_limit), 1e-3)
    with warnings.catch_warnings():
        # options scipy does not list are passed to HiGHS verbatim, with a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        res = milp(mip.cost, integrality=np.array(model.integer), bounds=Bounds(model.lb, model.ub),
                   constraints=rows, options=options)
    nodes = int(res.get("mip_node_count") or 0)
    if res.status not in (0, 1):
        return MipRun(False, None, None, None, nodes, error=str(res.message))
    dual = res.get("mip_dual_bound")
    upper = None if dual is None or not np.isfinite(dual) else -float(dual)
    if res.x is None:
        return MipRun(False, upper, None, None, nodes)
    x = np.asarray(res.x)
    if upper is None and res.status == 0:
        upper = -float(res.fun)
    return MipRun(res.status == 0, upper, x[mip.x_cols], _pattern_of(mip, x), nodes)


def no_good_cut(mip: MipModel, pattern: Pattern) -> LinearConstraint | None:
    """Row excluding ``pattern``'s values of the ambiguous binaries (``None`` if none)."""
    index, coef = [], []
    for d, on in zip(mip.d_cols, pattern):
        free = d >= 0
        index.append(d[free])
        coef.append(np.where(on[free], -1.0, 1.0))
    index = np.concatenate(index)
    if index.size == 0:
        return None
    coef = np.concatenate(coef)
    row = np.zeros((1, mip.model.num_cols))
    row[0, index] = coef
    return LinearConstraint(csr_array(row), 1.0 - np.sum(coef < 0), INF)


# ---------------------------------------------------------------- witnesses
@dataclass(frozen=True, eq=False)
class Recovery:
    """Best re-checked witness near a MIP solution and whether the MIP pattern's
    region is full-dimensional."""

    witness: Witness | None
    full_dimensional: bool


def recover_witness(network: Network, box: Box, norm: Norm, c, x, pattern: Pattern,
                    tol: Tolerances, seed: int = 0) -> Recovery:
    """Witness for a MIP solution ``(x, pattern)``.

    First the interior point of ``pattern``'s region; when the region is not
    full-dimensional, or its centre fails the re-check, the MIP point itself and
    seeded perturbations of it at growing scales (their patterns are the
    full-dimensional regions that touch ``x``).
    """
    centre = interior_point(pattern_halfspaces(network, pattern), box, tol)
    best = None
    if centre is not None:
        best = check_witness(network, box, norm, c, centre.point, tol)
        if best is not None and same_pattern(best.pattern, pattern):
            return Recovery(best, True)
    best = better(best, check_witness(network, box, norm, c, x, tol))
    rng = np.random.default_rng(seed)
    width = box.upper - box.lower
    for scale in _PERTURB_SCALES:
        steps = rng.uniform(-1.0, 1.0, size=(_PERTURB_SAMPLES, x.size)) * (scale * width)
        for point in np.clip(x + steps, box.lower, box.upper):
            best = better(best, check_witness(network, box, norm, c, point, tol))
    return Recovery(best, centre is not None)


# ---------------------------------------------------------------- driver
def _solve_functional(problem: Problem, c: np.ndarray, fwd: ForwardBounds, tol: Tolerances,
                      deadline: Deadline, max_cuts: int) -> Outcome:
    net, box, norm = problem.network, problem.box, problem.norm
    upper = gradient_norm_bound(net, fwd, c, norm, tol)
    best = fallback_witness(net, box, norm, c, tol)
    floor = -INF if best is None else best.value
    mip = build_mip(net, box, norm, c, fwd, tol, floor)
    nodes, cuts = 0, []
    while True:
        remaining = deadline.remaining()
        if remaining is not None and remaining <= 0:
            status = Status.TIME_LIMIT
            break
        run = run_mip(mip, tol, remaining, cuts)
        nodes += run.nodes
        if run.error is not None:
            logger.warning("milp: HiGHS's MIP failed (%s); the result keeps the interval "
                           "bound and the best witness, status 'incomplete'", run.error)
            status = Status.INCOMPLETE
            break
        upper = upper if run.upper is None else min(upper, run.upper)
        full = True
        if run.x is not None:
            rec = recover_witness(net, box, norm, c, run.x, run.pattern, tol)
            best, full = better(best, rec.witness), rec.full_dimensional
        lower = 0.0 if best is None else best.value
        if tol.gap_closed(lower, max(upper, lower)):
            status = Status.OPTIMAL
            break
        # a MIP that finished without a witness reaching its bound leaves the gap open
        status = Status.TIME_LIMIT if not run.finished else Status.INCOMPLETE
        cut = None if full or not run.finished else no_good_cut(mip, run.pattern)
        if cut is None or len(cuts) == max_cuts:
            if run.finished:
                logger.warning("milp: best witness %.12g does not reach the MIP bound %.12g "
                               "(MIP pattern full-dimensional: %s, cuts used: %d of %d)",
                               lower, upper, full, len(cuts), max_cuts)
            break
        logger.info("milp: MIP pattern has no full-dimensional region; cutting it off")
        cuts.append(cut)
    # the MIP may ignore solutions worth at most `floor` (a witnessed value)
    upper = max(upper, 0.0 if best is None else best.value)
    return Outcome(np.asarray(c, dtype=np.float64), upper, best, status, Stats(nodes=nodes))


def _affine_outcome(problem: Problem, c: np.ndarray, tol: Tolerances) -> Outcome:
    """A network without hidden layers has one gradient, ``W^T c``, everywhere."""
    net, box, norm = problem.network, problem.box, problem.norm
    value = float(norm.dual_value(net.weights[0].T @ np.asarray(c, dtype=np.float64)))
    best = fallback_witness(net, box, norm, c, tol)
    return Outcome(np.asarray(c, dtype=np.float64), value, best, Status.OPTIMAL, Stats())


def solve_milp(problem: Problem, time_limit: float | None = None,
               tol: Tolerances = DEFAULT_TOLERANCES, tighten: bool = True,
               max_cuts: int = 10) -> LipschitzResult:
    """Exact local Lipschitz constant by the LipMIP formulation and HiGHS's MIP.

    Parameters
    ----------
    problem : Problem
        Norm ``linf`` or ``l1``; several functionals are solved one by one (those
        whose interval bound cannot beat the best witness are skipped).
    time_limit : float, optional
        Seconds for the whole solve (bound tightening included).
    tol : Tolerances
        ``mip_rel_gap``, ``feas_tol`` go to HiGHS; ``rel_gap`` / ``abs_gap`` decide
        the status.
    tighten : bool
        Tighten the pre-activation bounds by LPs before the MIP (default).
    max_cuts : int
        How many times a degenerate MIP pattern (no full-dimensional region) may be
        cut off and the MIP re-solved.

    Returns
    -------
    LipschitzResult
        Method ``milp``; ``stats.nodes`` are HiGHS's branch-and-bound nodes,
        ``stats.lps`` the tightening LPs, ``stats.time_presolve_s`` their time.

    Raises
    ------
    InputError
        For norm ``l2`` or invalid options.
    """
    if problem.norm is Norm.L2:
        raise InputError("milp supports norm 'linf' and 'l1' (its objective is linear); "
                         "use method='enumerate' or 'bnb' for norm 'l2'")
    if isinstance(max_cuts, bool) or not isinstance(max_cuts, int) or max_cuts < 0:
        raise InputError(f"max_cuts must be an integer >= 0, got {max_cuts!r}")
    deadline = Deadline(time_limit)
    options = {"tighten": bool(tighten), "max_cuts": max_cuts, "time_limit": time_limit}
    if problem.network.num_hidden_layers == 0:  # affine: no MIP to solve
        outcomes = [_affine_outcome(problem, c, tol) for c in problem.functionals]
        return assemble(problem, outcomes, Method.MILP, tol, deadline.elapsed(), options)
    tight = tighten_bounds(problem.network, problem.box, tol, deadline, bool(tighten))
    fwd = tight.bounds
    net = problem.network
    order = sorted(problem.functionals,
                   key=lambda c: -gradient_norm_bound(net, fwd, c, problem.norm, tol))
    outcomes = []
    for c in order:
        bound = gradient_norm_bound(net, fwd, c, problem.norm, tol)
        best_lower = max((o.lower for o in outcomes), default=-INF)
        if bound <= best_lower:
            outcomes.append(Outcome(np.asarray(c, float), bound, None, Status.OPTIMAL, Stats()))
            continue
        outcomes.append(_solve_functional(problem, c, fwd, tol, deadline, max_cuts))
    shared = Stats(lps=tight.lps, time_presolve_s=tight.time_s)
    return assemble(problem, outcomes, Method.MILP, tol, deadline.elapsed(), options, shared)
