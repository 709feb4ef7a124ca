"""LP backends behind one small protocol.

:class:`HighspyBackend` keeps one ``highspy`` model of the relaxation and changes
bounds and coefficients per node, re-solving warm from the previous basis;
:class:`LinprogBackend` solves every node cold with
``scipy.optimize.linprog(method="highs")``.  ``bench/bench_lp_backends.py`` measures
both; the retained model is the default.
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import sparse

from bnblip.lp.duality import PhaseBounds, WeakDuality, csr_slots
from bnblip.lp.relaxation import NodeData, RelaxationLayout, constant_part
from bnblip.lp.sanitize import fold_small_entries
from bnblip.lp.small import quiet_highs
from bnblip.options import DEFAULT_TOLERANCES

SIMPLEX_OPTIONS: tuple[tuple[str, int], ...] = (
    ("simplex_dual_edge_weight_strategy", 1),
    ("simplex_scale_strategy", 0),
)
"""HiGHS options of the retained model.

Every node changes bounds and matrix coefficients.  With HiGHS's defaults its log
(``log_dev_level`` 3) shows each warm solve computing dual steepest-edge weights
afresh ("Basis is not logical, so compute steepest edge weights": a BTRAN per row)
before the first iteration.  Devex pricing skips that, and without scaling the
solves took less time again.  ``bench/bench_lp_backends.py`` replays recorded node
LPs (``bench/results/lp_backends.md``): 0.65-0.84 of the time per LP of HiGHS's
defaults on five of six bench cases, 1.04 on the sixth, the optimal values within
5e-11 of cold ``linprog``'s.  Without scaling HiGHS may call a basis optimal whose
duals it reports infeasible, with a value below the LP's maximum (seen once in a
review's replay of a badly scaled network): :meth:`HighspyBackend.solve` then solves
cold once more and otherwise gives no bound."""


HIGHS_DEFAULT_STRATEGY = 1
"""HiGHS's default ``simplex_strategy`` (dual simplex), kept for node solves: a
child's LP is its parent's with bounds (and relaxation coefficients) changed, from
which the dual simplex starts."""
EXTREMES_STRATEGY = 4
"""``simplex_strategy`` (primal simplex) of :meth:`HighspyBackend.extremes` after its
first solve.  Its LPs differ in the objective only, so each starts from a primal
feasible basis, where the dual simplex first has to regain dual feasibility.  The
tightening LPs of twelve bench cases, replayed on fresh models (min of 2 runs in
alternating order): 0.62x the time of the dual simplex on digits [100, 100] r0.1 linf
(116 columns, 12.1 s), 0.67-0.83x on nine more, 0.97x and 1.03x on two that take
under 0.06 s; the extremes agreed within 5e-10 relative (each is the weak-duality
bound from its solve's own duals, whichever simplex ran)."""


class LPStatus(enum.Enum):
    """Outcome of an LP solve."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    """Infeasible (:class:`HighspyBackend`: as proved by HiGHS's dual ray)."""
    CUTOFF = "cutoff"
    """The optimum is proven to be at most the requested cutoff (dual bound)."""
    FAILED = "failed"


@dataclass(frozen=True, eq=False)
class LPSolution:
    """Result of one node LP.

    Attributes
    ----------
    status : LPStatus
    value : float
        Maximum of the relaxation objective (``nan`` unless optimal; the cutoff
        for status ``CUTOFF``).  :class:`HighspyBackend` reports the weak-duality
        bound from the solve's own duals: never below the maximum, and above it by
        rounding only when the duals are as accurate as HiGHS reports.
    x : ndarray or None
        The input part of the optimal solution.
    basis : object or None
        The backend's final basis (opaque), to warm-start a later solve of a
        related node; ``None`` when the backend has none.  It may carry the
        solve's duals, which can bound a later node's LP without solving it.
    values : ndarray or None
        The whole optimal solution (every column), when optimal.
    phases : PhaseBounds or None
        When optimal (and the backend has the duals), bounds of the maximum with
        each relaxed phase fixed (see
        :meth:`bnblip.lp.duality.WeakDuality.bound_with_phases`).
    """

    status: LPStatus
    value: float
    x: np.ndarray | None
    basis: object | None = None
    values: np.ndarray | None = None
    phases: PhaseBounds | None = None
    runs: int = 1
    """LPs run: 0 for status ``CUTOFF`` from the warm start's duals alone, 2 when
    :class:`LinprogBackend` checked an infeasibility claim with a second LP.
    :class:`HighspyBackend` counts 1 for a solve it had to run again (cold, or past
    a cutoff its duals did not confirm)."""

    @property
    def solved(self) -> bool:
        """Whether an LP was run."""
        return self.runs > 0


@dataclass(frozen=True, eq=False)
class _Warm:
    """A HiGHS basis of ``owner``'s model and, after an optimal solve, its row duals."""

    basis: object
    row_dual: np.ndarray | None
    owner: object


@dataclass(frozen=True, eq=False)
class Extremes:
    """Minimum and maximum of columns over one LP's feasible set.

    Attributes
    ----------
    lower, upper : ndarray
        Per column; ``-inf`` / ``inf`` where an LP failed or was not solved (its
        deadline passed), ``nan`` everywhere when the LP is infeasible.
    solved : int
        LPs solved (two per column unless the deadline or infeasibility cut it short).
    """

    lower: np.ndarray
    upper: np.ndarray
    solved: int

    @property
    def infeasible(self) -> bool:
        """Whether the LP was found infeasible (no bound at all)."""
        return bool(np.any(np.isnan(self.lower)))


def _certified(duality: WeakDuality, sent: NodeData, row_dual: np.ndarray,
               values: np.ndarray, basis: object | None = None) -> LPSolution:
    """The solution of an optimal solve: its value and phase bounds are the weak-
    duality bounds from ``row_dual`` (status ``FAILED`` when they give none).

    Parameters
    ----------
    duality : WeakDuality
        The backend's, for the LP as sent to the solver.
    sent : NodeData
        The node's data as the solver held it (small entries folded).
    row_dual : ndarray
        The solve's row duals.
    values : ndarray
        The solve's point, one entry per column.
    basis : object, optional
        What :attr:`LPSolution.basis` carries.
    """
    certified = duality.bound_with_phases(sent, row_dual)
    if not math.isfinite(certified.value):
        return LPSolution(LPStatus.FAILED, float("nan"), None, basis)
    return LPSolution(LPStatus.OPTIMAL, certified.value, values[duality.layout.x_cols], basis,
                      values, certified.phases)


def _claim_ends(proved: bool, lows: np.ndarray, highs: np.ndarray, solved: int) -> Extremes:
    """How an infeasibility claim ends an ``extremes`` loop: the LP is infeasible when
    the claim is ``proved``; else the bounds so far, with no further one (every LP of
    the loop shares the feasible set, so each would make the same claim)."""
    if proved:
        return Extremes(np.full(lows.size, np.nan), np.full(lows.size, np.nan), solved)
    return Extremes(lows, highs, solved)


class LPBackend(Protocol):
    """Solves the relaxation of :class:`RelaxationLayout` for a node's data."""

    layout: RelaxationLayout

    def solve(self, data: NodeData, basis: object | None = None,
              cutoff: float | None = None) -> LPSolution:
        """Maximise the objective terms ``sum t``, starting from ``basis`` (an
        :attr:`LPSolution.basis` of an earlier solve) when given.  With ``cutoff``,
        a backend may stop as soon as a dual bound proves the maximum is at most
        ``cutoff`` (status ``CUTOFF``), even before solving, from duals the
        ``basis`` carries."""
        ...

    def extremes(self, data: NodeData, cols: np.ndarray,
                 deadline: float | None = None) -> Extremes:
        """Minimum and maximum of each column in ``cols``; no further column is
        started once ``time.perf_counter()`` passes ``deadline`` (a started column
        gets both its LPs)."""
        ...

    def forget(self) -> None:
        """Drop the retained basis: the next solve starts cold."""
        ...


class _Folder:
    """Folds matrix entries HiGHS would drop into the row bounds, per node.

    Constant entries of the layout below ``threshold`` are zeroed once (the model
    handed to HiGHS never holds them); node coefficients below it are sent as 0.
    Each node's row bounds are widened by the range of every removed term over the
    node's column bounds (:func:`bnblip.lp.sanitize.fold_small_entries`).
    """

    def __init__(self, layout: RelaxationLayout, threshold: float):
        self.threshold = threshold
        mat = constant_part(layout)
        small = (mat.data != 0) & (np.abs(mat.data) < threshold)
        self.const_rows = mat.row[small]
        self.const_cols = mat.col[small]
        self.const_vals = mat.data[small]
        csc = layout.matrix.tocsc(copy=True)
        csc.data[np.abs(csc.data) < threshold] = 0.0
        self.matrix = csc
        held = mat.tocsc()
        held.data[np.abs(held.data) < threshold] = 0.0
        self.constant = held  # what HiGHS holds, node coefficients at 0
        self.coef_rows = layout.coef_rows
        self.coef_cols = layout.coef_cols

    def node(self, data: NodeData) -> NodeData:
        """``data`` with small coefficients zeroed and row bounds widened."""
        rows = np.concatenate([self.const_rows, self.coef_rows])
        cols = np.concatenate([self.const_cols, self.coef_cols])
        vals = np.concatenate([self.const_vals, data.coefs])
        folded = fold_small_entries(rows, cols, vals, data.row_lower, data.row_upper,
                                    data.col_lower, data.col_upper, self.threshold)
        if folded.folded == 0:
            return data
        return NodeData(data.col_lower, data.col_upper, folded.row_lower, folded.row_upper,
                        folded.values[self.const_rows.size:])


@dataclass(frozen=True, eq=False)
class _Held:
    """The bounds a HiGHS model holds for its columns or its rows (updated in place)."""

    lower: np.ndarray
    upper: np.ndarray


def _send_bounds(change, held: _Held, lower: np.ndarray, upper: np.ndarray,
                 rejected: object) -> bool:
    """Call ``change(count, indices, lower, upper)`` (``changeColsBounds`` or
    ``changeRowsBounds``) for the entries where ``lower, upper`` differ from
    ``held``, and record them; return whether HiGHS took them (it returns
    ``rejected`` for a batch it applies none of, e.g. one holding a NaN).  A rejected
    batch is recorded as NaN, so that it is sent again next time."""
    differ = np.flatnonzero((lower != held.lower) | (upper != held.upper))
    if differ.size == 0:
        return True
    ok = change(differ.size, differ.astype(np.int32), lower[differ], upper[differ]) != rejected
    held.lower[differ] = lower[differ] if ok else np.nan
    held.upper[differ] = upper[differ] if ok else np.nan
    return ok


class HighspyBackend:
    """Retained ``highspy`` model; per node only changed data is sent.

    Parameters
    ----------
    layout : RelaxationLayout
    feas_tol : float
        Primal/dual feasibility tolerance.
    time_limit : float or None
        Seconds per LP.
    small_entry : float
        Matrix entries below this magnitude are folded into the row bounds.
    simplex_options : tuple of (str, int)
        HiGHS options set on the model (:data:`SIMPLEX_OPTIONS`; ``()`` keeps
        HiGHS's defaults, which ``bench/bench_lp_backends.py`` compares).
    """

    def __init__(self, layout: RelaxationLayout, feas_tol: float = 1e-9,
                 time_limit: float | None = None,
                 small_entry: float = DEFAULT_TOLERANCES.lp_small_entry,
                 simplex_options: tuple[tuple[str, int], ...] = SIMPLEX_OPTIONS):
        import highspy

        self._highspy = highspy
        self.layout = layout
        h = quiet_highs()
        h.setOptionValue("primal_feasibility_tolerance", max(feas_tol, 1e-10))
        h.setOptionValue("dual_feasibility_tolerance", max(feas_tol, 1e-10))
        h.setOptionValue("presolve", "off")
        for name, value in simplex_options:
            h.setOptionValue(name, value)
        self._strategy = dict(simplex_options).get("simplex_strategy", HIGHS_DEFAULT_STRATEGY)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        self._folder = _Folder(layout, small_entry)
        mat = self._folder.matrix
        lp = highspy.HighsLp()
        lp.num_col_ = layout.num_cols
        lp.num_row_ = layout.num_rows
        lp.col_cost_ = layout.cost
        lp.col_lower_ = np.full(layout.num_cols, -np.inf)
        lp.col_upper_ = np.full(layout.num_cols, np.inf)
        lp.row_lower_ = layout.row_lower_base
        lp.row_upper_ = layout.row_upper_base
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = mat.indptr
        lp.a_matrix_.index_ = mat.indices
        lp.a_matrix_.value_ = mat.data
        h.passModel(lp)
        self.highs = h
        self._coefs = np.full(layout.coef_rows.size, np.nan)
        self._all_cols = np.arange(layout.num_cols, dtype=np.int32)
        self._cols_held = _Held(np.full(layout.num_cols, -np.inf), np.full(layout.num_cols, np.inf))
        self._rows_held = _Held(np.array(layout.row_lower_base, dtype=np.float64),
                                np.array(layout.row_upper_base, dtype=np.float64))
        self._basis = None  # the basis HiGHS holds, when it is the last solve's
        self._duality = WeakDuality(layout, self._folder.constant)

    def _send(self, data: NodeData) -> bool:
        """Send folded ``data`` to the model, only the entries that differ from what
        it holds; return whether HiGHS took all of it (if not, the model is not the
        node's LP and must not be solved for it)."""
        h = self.highs
        lay = self.layout
        rejected = self._highspy.HighsStatus.kError
        changed = np.flatnonzero(data.coefs != self._coefs)
        refused = [i for i, row, col, value in zip(
            changed.tolist(), lay.coef_rows[changed].tolist(), lay.coef_cols[changed].tolist(),
            data.coefs[changed].tolist()) if h.changeCoeff(row, col, value) == rejected]
        self._coefs[changed] = data.coefs[changed]
        self._coefs[refused] = np.nan
        cols_taken = _send_bounds(h.changeColsBounds, self._cols_held, data.col_lower,
                                  data.col_upper, rejected)
        rows_taken = _send_bounds(h.changeRowsBounds, self._rows_held, data.row_lower,
                                  data.row_upper, rejected)
        return not refused and cols_taken and rows_taken

    def solve(self, data: NodeData, basis: object | None = None,
              cutoff: float | None = None) -> LPSolution:
        sent = self._folder.node(data)
        warm = basis if isinstance(basis, _Warm) and basis.owner is self else None
        if cutoff is not None and warm is not None and warm.row_dual is not None and \
                self._duality.bound(sent, warm.row_dual) <= cutoff:
            return LPSolution(LPStatus.CUTOFF, float(cutoff), None, warm, runs=0)
        if not self._send(sent):
            self._basis = None
            return LPSolution(LPStatus.FAILED, float("nan"), None)
        h = self.highs
        if warm is not None and warm is not self._basis:
            h.setBasis(warm.basis)
        # HiGHS minimises -sum t: its dual simplex stops once the dual objective
        # (a bound on the optimum) reaches -cutoff
        h.setOptionValue("objective_bound", -cutoff if cutoff is not None else np.inf)
        status, info = self._run_settled()
        ms = self._highspy.HighsModelStatus
        self._basis = None
        if status == ms.kObjectiveBound:
            row_dual = self._row_dual(h.getSolution())
            if row_dual is not None and self._duality.bound(sent, row_dual) <= cutoff:
                self._basis = _Warm(h.getBasis(), row_dual, self)
                return LPSolution(LPStatus.CUTOFF, float(cutoff), None, self._basis)
            # HiGHS's dual bound is not confirmed by its duals: solve to the end
            h.setOptionValue("objective_bound", np.inf)
            status, info = self._run_settled()
        if status == ms.kOptimal:
            return self._optimal(sent)
        if status == ms.kInfeasible and self._proved_infeasible(sent):
            return LPSolution(LPStatus.INFEASIBLE, float("nan"), None)
        return LPSolution(LPStatus.FAILED, float("nan"), None)

    def _row_dual(self, solution) -> np.ndarray | None:
        """The row duals of a HiGHS solution, ``None`` unless HiGHS calls them valid
        and there is one per row."""
        row_dual = np.asarray(solution.row_dual, dtype=np.float64)
        if not solution.dual_valid or row_dual.shape != (self.layout.num_rows,):
            return None
        return row_dual

    def _proved_infeasible(self, sent: NodeData) -> bool:
        """Whether HiGHS's dual ray proves the LP infeasible: weak duality for the
        zero objective, from the ray or its negative, bounds that objective's minimum
        (0 if the LP had a point) from below by a positive number."""
        _, has_ray, ray = self.highs.getDualRay()
        ray = np.asarray(ray, dtype=np.float64)
        if not has_ray or ray.shape != (self.layout.num_rows,):
            return False
        return any(self._duality.proves_infeasible(sent, sign * ray) for sign in (1.0, -1.0))

    def _run_settled(self) -> tuple[object, object]:
        """Run HiGHS, once more cold if its answer cannot be used (numerical
        trouble from the start basis, seen from a basis the tightening's LPs left
        behind, and, without scaling, as an "optimal" basis whose duals are
        infeasible); model status ``kNotset`` if it still cannot."""
        status, info = self._run()
        if not self._settled(status, info):
            self.highs.clearSolver()
            status, info = self._run()
            if not self._settled(status, info):
                status = self._highspy.HighsModelStatus.kNotset
        return status, info

    def _optimal(self, sent: NodeData) -> LPSolution:
        """The solution of an optimal run.  Its value and phase bounds are the weak-
        duality bounds from its row duals (:class:`WeakDuality`), which hold whatever
        HiGHS's tolerances: with duals as accurate as HiGHS reports they exceed its
        objective value by rounding only, with less accurate ones they stay above the
        maximum where that value may not.  The run counts as failed if they give no
        bound (or HiGHS has no valid duals)."""
        h = self.highs
        solution = h.getSolution()
        row_dual = self._row_dual(solution)
        if row_dual is None:
            return LPSolution(LPStatus.FAILED, float("nan"), None)
        self._basis = _Warm(h.getBasis(), row_dual, self)
        values = np.asarray(solution.col_value, dtype=np.float64)
        return _certified(self._duality, sent, row_dual, values, self._basis)

    def _run(self) -> tuple[object, object]:
        """Run HiGHS; return its model status and its info."""
        self.highs.run()
        return self.highs.getModelStatus(), self.highs.getInfo()

    def _settled(self, status, info) -> bool:
        """Whether HiGHS's answer can be used: infeasible, cut off, out of time, or
        optimal with duals it reports feasible (an "optimal" value from infeasible
        duals is a feasible point's: it may lie inside the LP's optimum, below a
        maximum or above a minimum)."""
        ms = self._highspy.HighsModelStatus
        if status == ms.kOptimal:
            return info.dual_solution_status == self._highspy.SolutionStatus.kSolutionStatusFeasible
        return status in (ms.kInfeasible, ms.kObjectiveBound, ms.kTimeLimit)

    def forget(self) -> None:
        self.highs.clearSolver()
        self._basis = None

    def extremes(self, data: NodeData, cols: np.ndarray,
                 deadline: float | None = None) -> Extremes:
        """Like :meth:`LPBackend.extremes`; each extreme is the weak-duality bound
        from its solve's row duals (:meth:`WeakDuality.lower_bound`), which holds
        whatever HiGHS's tolerances, not HiGHS's objective value, and the LP is
        infeasible only when HiGHS's dual ray proves it; any infeasibility claim ends
        the loop (:func:`_claim_ends`)."""
        sent = self._folder.node(data)
        if not self._send(sent):
            return Extremes(np.full(len(cols), -np.inf), np.full(len(cols), np.inf), 0)
        h = self.highs
        ms = self._highspy.HighsModelStatus
        lay = self.layout
        cost = np.zeros(lay.num_cols)  # the objective of the LP being solved
        every = self._all_cols
        h.changeColsCost(lay.num_cols, every, cost)
        h.setOptionValue("objective_bound", np.inf)
        self._basis = None
        lows = np.full(len(cols), -np.inf)
        highs = np.full(len(cols), np.inf)
        solved = 0
        try:
            for i, col in enumerate(cols):
                if deadline is not None and time.perf_counter() > deadline:
                    break
                for sense, out in ((1.0, lows), (-1.0, highs)):
                    h.changeColCost(int(col), sense)
                    status, info = self._run()
                    if solved == 0:  # the basis is primal feasible from here on
                        h.setOptionValue("simplex_strategy", EXTREMES_STRATEGY)
                    solved += 1
                    if status == ms.kInfeasible:
                        return _claim_ends(self._proved_infeasible(sent), lows, highs, solved)
                    row_dual = self._row_dual(h.getSolution()) \
                        if status == ms.kOptimal and self._settled(status, info) else None
                    if row_dual is not None:
                        cost[col] = sense
                        out[i] = sense * self._duality.lower_bound(sent, row_dual, cost)
                        cost[col] = 0.0
                h.changeColCost(int(col), 0.0)
        finally:
            h.changeColsCost(lay.num_cols, every, lay.cost)
            h.setOptionValue("simplex_strategy", self._strategy)
        return Extremes(lows, highs, solved)


@dataclass(frozen=True, eq=False)
class _ScipyLP:
    """One node LP in ``scipy.optimize.linprog``'s form (``A_ub x <= b_ub``,
    ``A_eq x = b_eq``) and where its rows came from.

    Attributes
    ----------
    a_ub, b_ub, a_eq, b_eq, bounds
        ``linprog``'s arguments.
    up, down, equal : ndarray
        Indices of the LP rows behind ``A_ub``'s first rows (``row <= ru``), its
        last rows (``-row <= -rl``) and ``A_eq``'s rows.
    """

    a_ub: sparse.csr_matrix
    b_ub: np.ndarray
    a_eq: sparse.csr_matrix
    b_eq: np.ndarray
    bounds: np.ndarray
    up: np.ndarray
    down: np.ndarray
    equal: np.ndarray


class LinprogBackend:
    """Cold solves with ``scipy.optimize.linprog(method="highs")``.

    As with :class:`HighspyBackend`, values, phase bounds and extremes are weak-duality
    bounds computed by bnblip (:class:`~bnblip.lp.duality.WeakDuality`) from the row
    duals ``linprog`` reports (its ``marginals``), not ``linprog``'s objective value.
    ``linprog`` gives no certificate with an infeasible status, so such a claim is
    checked by one more LP: the LP with every row made elastic, whose positive
    minimum, bounded by weak duality from its duals, proves the infeasibility.
    Unproved, the node's LP fails (no bound).
    """

    def __init__(self, layout: RelaxationLayout, feas_tol: float = 1e-9,
                 time_limit: float | None = None,
                 small_entry: float = DEFAULT_TOLERANCES.lp_small_entry):
        self.layout = layout
        self._folder = _Folder(layout, small_entry)
        self.feas_tol = max(feas_tol, 1e-10)
        self.time_limit = time_limit
        self._matrix = self._folder.matrix.tocsr()  # explicit zeros kept: every slot
        self._matrix.sort_indices()
        self._slots = csr_slots(self._matrix.indptr, self._matrix.indices, layout.coef_rows,
                                layout.coef_cols)
        self._duality = WeakDuality(layout, self._folder.constant)

    def solve(self, data: NodeData, basis: object | None = None,
              cutoff: float | None = None) -> LPSolution:
        sent = self._folder.node(data)
        program = self._program(sent)
        res = self._linprog(program, self.layout.cost)
        if res.status == 2:
            status = LPStatus.INFEASIBLE if self._proved_infeasible(sent, program) \
                else LPStatus.FAILED
            return LPSolution(status, float("nan"), None, runs=2)
        row_dual = self._row_dual(program, res)
        if row_dual is None:
            return LPSolution(LPStatus.FAILED, float("nan"), None)
        return _certified(self._duality, sent, row_dual, np.asarray(res.x, dtype=np.float64))

    def extremes(self, data: NodeData, cols: np.ndarray,
                 deadline: float | None = None) -> Extremes:
        """Like :meth:`LPBackend.extremes`; each extreme is the weak-duality bound from
        ``linprog``'s marginals.  An infeasible status is checked by the elastic LP and
        ends the loop (:func:`_claim_ends`)."""
        sent = self._folder.node(data)
        program = self._program(sent)
        lows = np.full(len(cols), -np.inf)
        highs = np.full(len(cols), np.inf)
        solved = 0
        cost = np.zeros(self.layout.num_cols)
        for i, col in enumerate(cols):
            if deadline is not None and time.perf_counter() > deadline:
                break
            for sense, out in ((1.0, lows), (-1.0, highs)):
                cost[col] = sense
                res = self._linprog(program, cost)
                solved += 1
                if res.status == 2:
                    solved += 1
                    return _claim_ends(self._proved_infeasible(sent, program), lows, highs,
                                       solved)
                row_dual = self._row_dual(program, res)
                if row_dual is not None:
                    out[i] = sense * self._duality.lower_bound(sent, row_dual, cost)
                cost[col] = 0.0
        return Extremes(lows, highs, solved)

    def forget(self) -> None:
        """Every solve is cold: nothing to drop."""

    def _program(self, sent: NodeData) -> _ScipyLP:
        """``sent`` (folded node data) in ``linprog``'s form."""
        full = self._matrix.copy()
        full.data[self._slots] = sent.coefs
        lo, hi = sent.row_lower, sent.row_upper
        eq = lo == hi
        up = np.flatnonzero(~eq & np.isfinite(hi))
        down = np.flatnonzero(~eq & np.isfinite(lo))
        equal = np.flatnonzero(eq)
        return _ScipyLP(sparse.vstack([full[up], -full[down]]).tocsr(),
                        np.concatenate([hi[up], -lo[down]]), full[equal], lo[equal],
                        np.column_stack([sent.col_lower, sent.col_upper]), up, down, equal)

    def _options(self) -> dict:
        """``linprog``'s HiGHS options: tolerances, no presolve, the time limit."""
        options = {"primal_feasibility_tolerance": self.feas_tol,
                   "dual_feasibility_tolerance": self.feas_tol, "presolve": False}
        if self.time_limit is not None:
            options["time_limit"] = self.time_limit
        return options

    def _linprog(self, program: _ScipyLP, cost: np.ndarray):
        """Minimise ``cost`` over ``program`` with ``linprog``."""
        from scipy.optimize import linprog

        return linprog(cost, A_ub=program.a_ub, b_ub=program.b_ub, A_eq=program.a_eq,
                       b_eq=program.b_eq, bounds=program.bounds, method="highs",
                       options=self._options())

    def _row_dual(self, program: _ScipyLP, res) -> np.ndarray | None:
        """Multipliers of the LP rows from ``res``'s marginals (``None`` unless it is
        optimal with the right number of them): a row's ``y`` is its ``row <= ru``
        marginal minus its ``-row <= -rl`` one, or its equality's."""
        if res.status != 0:
            return None
        ub = _marginals(res, "ineqlin", program.up.size + program.down.size)
        eq = _marginals(res, "eqlin", program.equal.size)
        if ub is None or eq is None:
            return None
        y = np.zeros(self.layout.num_rows)
        y[program.up] = ub[:program.up.size]
        y[program.down] -= ub[program.up.size:]
        y[program.equal] = eq
        return y

    def _proved_infeasible(self, sent: NodeData, program: _ScipyLP) -> bool:
        """Whether the elastic LP (each row may be violated at unit cost) proves
        ``program`` infeasible: its duals, as multipliers of the LP's rows at zero
        cost, give a positive weak-duality lower bound (a Farkas certificate)."""
        n_ub, n_eq = program.b_ub.size, program.b_eq.size
        n = self.layout.num_cols
        a_ub = sparse.hstack([program.a_ub, -sparse.identity(n_ub),
                              sparse.csr_matrix((n_ub, 2 * n_eq))]).tocsr()
        a_eq = sparse.hstack([program.a_eq, sparse.csr_matrix((n_eq, n_ub)),
                              sparse.identity(n_eq), -sparse.identity(n_eq)]).tocsr()
        slack = np.column_stack([np.zeros(n_ub + 2 * n_eq), np.full(n_ub + 2 * n_eq, np.inf)])
        elastic = _ScipyLP(a_ub, program.b_ub, a_eq, program.b_eq,
                           np.vstack([program.bounds, slack]), program.up, program.down,
                           program.equal)
        cost = np.concatenate([np.zeros(n), np.ones(n_ub + 2 * n_eq)])
        row_dual = self._row_dual(elastic, self._linprog(elastic, cost))
        return row_dual is not None and self._duality.proves_infeasible(sent, row_dual)


def _marginals(res, name: str, count: int) -> np.ndarray | None:
    """``res[name].marginals`` as floats when there are ``count`` of them."""
    part = res.get(name)
    marginals = getattr(part, "marginals", None)
    if marginals is None:
        return np.zeros(0) if count == 0 else None
    marginals = np.asarray(marginals, dtype=np.float64)
    return marginals if marginals.shape == (count,) else None


BACKENDS = {"highspy": HighspyBackend, "linprog": LinprogBackend}
"""Named backends (option ``lp_backend``)."""
