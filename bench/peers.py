"""Peer MIP solvers (SCIP, Gurobi) on the reference LipMIP formulation.

Both peers receive exactly the model :func:`bnblip.reference_milp.build_mip` assembles
(columns with bounds and integrality, sparse rows ``lo <= A v <= hi``, cost ``-t``)
over the LP-tightened bounds of :func:`bnblip.reference_milp.tighten_bounds`, solve it
single-threaded with tight gaps (relative 1e-9, feasibility 1e-9, as the reference),
and re-check a witness from the solution with
:func:`bnblip.reference_milp.recover_witness`.

Neither peer is required: a failed import raises :class:`PeerUnavailable` with reason
``"not installed"``; Gurobi's size-limited licence gives ``"too large for licence"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnblip.network import Network
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Box, Norm
from bnblip.reference_common import Deadline
from bnblip.reference_milp import MipModel, build_mip, recover_witness, tighten_bounds
from bnblip.result import Status

#: Variables / constraints allowed by Gurobi's size-limited pip licence.
GUROBI_LICENCE_LIMIT = 2000
#: Reasons a peer did not run.
NOT_INSTALLED = "not installed"
TOO_LARGE = "too large for licence"


class PeerUnavailable(Exception):
    """A peer cannot run this solve; ``reason`` is :data:`NOT_INSTALLED` or
    :data:`TOO_LARGE`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}{': ' + detail if detail else ''}")
        self.reason = reason


@dataclass(frozen=True)
class PeerOutcome:
    """What a peer established.

    Attributes
    ----------
    value : float
        The MIP optimum when ``status`` is optimal, else the proven upper bound.
    lower_bound : float
        Value of the witness re-checked from the peer's solution (0 without one).
    upper_bound : float
        The peer's dual bound.
    status : Status
    nodes : int
    setup_s : float
        Bound tightening and model building (included in the caller's wall time).
    """

    value: float
    lower_bound: float
    upper_bound: float
    status: Status
    nodes: int
    setup_s: float


@dataclass(frozen=True)
class MipSolution:
    """A peer's raw answer: dual bound, primal point (or None), status, nodes."""

    upper: float
    x: np.ndarray | None
    optimal: bool
    nodes: int


def import_peer(module: str):
    """Import a peer module or raise :class:`PeerUnavailable` (not installed)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PeerUnavailable(NOT_INSTALLED, str(exc)) from None


def peer_installed(module: str) -> bool:
    """Whether ``module`` imports."""
    try:
        import_peer(module)
    except PeerUnavailable:
        return False
    return True


def formulation(network: Network, box: Box, norm: Norm, c, tol: Tolerances,
                deadline: Deadline) -> MipModel:
    """The reference MIP over LP-tightened bounds (the same as ``method='milp'``)."""
    fwd = tighten_bounds(network, box, tol, deadline).bounds
    return build_mip(network, box, norm, np.asarray(c, dtype=np.float64), fwd, tol)


def _split_rows(mip: MipModel):
    """Rows as ``(A_eq, b_eq, A_le, b_le, A_ge, b_ge)`` with one-sided senses."""
    a = mip.model.matrix().tocsr()
    lo, hi = np.array(mip.model.row_lo), np.array(mip.model.row_hi)
    eq = lo == hi
    le = ~eq & np.isfinite(hi)
    ge = ~eq & np.isfinite(lo)
    return a[eq], hi[eq], a[le], hi[le], a[ge], lo[ge]


# ---------------------------------------------------------------- SCIP
def _scip_solve(mip: MipModel, tol: Tolerances, time_limit: float | None) -> MipSolution:
    scip = import_peer("pyscipopt")
    model = scip.Model()
    model.hideOutput()
    model.setParam("limits/gap", tol.mip_rel_gap)
    model.setParam("limits/absgap", tol.abs_gap)
    model.setParam("numerics/feastol", tol.feas_tol)
    model.setParam("parallel/maxnthreads", 1)
    model.setParam("lp/threads", 1)
    if time_limit is not None:
        model.setParam("limits/time", max(float(time_limit), 1e-3))
    m = mip.model
    cols = [model.addVar(lb=lo, ub=up, vtype="B" if (integer and lo >= 0 and up <= 1) else
                         ("I" if integer else "C"), obj=float(cost))
            for lo, up, integer, cost in zip(m.lb, m.ub, m.integer, mip.cost)]
    a = m.matrix().tocsr()
    for r in range(a.shape[0]):
        start, end = a.indptr[r], a.indptr[r + 1]
        expr = scip.quicksum(float(v) * cols[j]
                             for j, v in zip(a.indices[start:end], a.data[start:end]))
        lo = None if not np.isfinite(m.row_lo[r]) else float(m.row_lo[r])
        hi = None if not np.isfinite(m.row_hi[r]) else float(m.row_hi[r])
        model.addCons(scip.ExprCons(expr, lhs=lo, rhs=hi))
    model.setMinimize()
    model.optimize()
    status = model.getStatus()
    nodes = int(model.getNNodes())
    upper = -float(model.getDualbound())
    x = None
    if model.getNSols() > 0:
        best = model.getBestSol()
        x = np.array([model.getSolVal(best, v) for v in cols])
    return MipSolution(upper, x, status == "optimal", nodes)


# ---------------------------------------------------------------- Gurobi
def _gurobi_env(gp):
    env = gp.Env(empty=True)
    env.setParam("OutputFlag", 0)
    env.start()
    return env


def _gurobi_solve(mip: MipModel, tol: Tolerances, time_limit: float | None) -> MipSolution:
    gp = import_peer("gurobipy")
    m = mip.model
    if max(m.num_cols, m.num_rows) > GUROBI_LICENCE_LIMIT:
        raise PeerUnavailable(TOO_LARGE, f"{m.num_cols} variables, {m.num_rows} constraints")
    try:
        with _gurobi_env(gp) as env, gp.Model(env=env) as model:
            return _gurobi_run(gp, model, mip, tol, time_limit)
    except gp.GurobiError as exc:
        if "size-limited" in str(exc).lower() or getattr(exc, "errno", None) == 10010:
            raise PeerUnavailable(TOO_LARGE, str(exc)) from None
        raise


def _gurobi_run(gp, model, mip: MipModel, tol: Tolerances, time_limit) -> MipSolution:
    params = {"Threads": 1, "MIPGap": tol.mip_rel_gap, "MIPGapAbs": tol.abs_gap,
              "FeasibilityTol": tol.feas_tol, "IntFeasTol": tol.feas_tol,
              "OptimalityTol": tol.feas_tol}
    if time_limit is not None:
        params["TimeLimit"] = max(float(time_limit), 1e-3)
    for key, value in params.items():
        model.setParam(key, value)
    m = mip.model
    vtype = np.where(np.array(m.integer) > 0, gp.GRB.INTEGER, gp.GRB.CONTINUOUS)
    v = model.addMVar(m.num_cols, lb=np.array(m.lb), ub=np.array(m.ub), vtype=vtype)
    a_eq, b_eq, a_le, b_le, a_ge, b_ge = _split_rows(mip)
    for a, b, sense in ((a_eq, b_eq, "="), (a_le, b_le, "<"), (a_ge, b_ge, ">")):
        if a.shape[0]:
            model.addMConstr(a, v, sense, b)
    model.setObjective(mip.cost @ v, gp.GRB.MINIMIZE)
    model.optimize()
    optimal = model.Status == gp.GRB.OPTIMAL
    upper = -float(model.ObjBound)
    x = np.array(v.X) if model.SolCount > 0 else None
    return MipSolution(upper, x, optimal, int(model.NodeCount))


# ---------------------------------------------------------------- driver
#: Peer name -> (module imported, solve function).
PEERS = {"scip": ("pyscipopt", _scip_solve), "gurobi": ("gurobipy", _gurobi_solve)}


def solve_peer(name: str, network: Network, box: Box, norm: Norm, c,
               time_limit: float | None = None,
               tol: Tolerances = DEFAULT_TOLERANCES) -> PeerOutcome:
    """Solve the LipMIP formulation of ``||grad c^T f||_q`` with peer ``name``.

    Raises
    ------
    PeerUnavailable
        When the peer is not installed or the model is too large for its licence.
    ValueError
        For an unknown peer name.
    """
    if name not in PEERS:
        raise ValueError(f"name: unknown peer {name!r}; known: {sorted(PEERS)}")
    module, solve = PEERS[name]
    import_peer(module)
    deadline = Deadline(time_limit)
    mip = formulation(network, box, norm, c, tol, deadline)
    setup = deadline.elapsed()
    remaining = deadline.remaining()
    sol = solve(mip, tol, None if remaining is None else max(remaining, 1e-3))
    lower = 0.0
    if sol.x is not None:
        pattern = _pattern(mip, sol.x)
        rec = recover_witness(network, box, norm, c, sol.x[mip.x_cols], pattern, tol)
        lower = 0.0 if rec.witness is None else rec.witness.value
    if sol.optimal and sol.x is not None:
        value = max(-float(mip.cost @ sol.x), lower)
    else:
        value = sol.upper
    status = Status.OPTIMAL if sol.optimal else Status.TIME_LIMIT
    return PeerOutcome(value, lower, max(sol.upper, value), status, sol.nodes, setup)


def _pattern(mip: MipModel, x: np.ndarray):
    """Activation pattern encoded by the binaries of a MIP point."""
    pattern = []
    for k, d in enumerate(mip.d_cols):
        on = mip.forward.lower[k] >= 0
        on = on & ~(mip.forward.upper[k] <= 0)
        free = d >= 0
        on[free] = x[d[free]] > 0.5
        pattern.append(on)
    return tuple(pattern)

