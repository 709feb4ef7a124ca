"""Reference enumeration: every full-dimensional activation region, layer by layer.

Depth-first over the hidden neurons in network order.  Inside a partial region
(the signs of all earlier neurons fixed) the next neuron's pre-activation is affine
in ``x``, ``z = A x + beta``.  Its sign choices are decided by, in order:

1. the exact range of ``z`` over the box (``min > 0``: active only; ``max <= 0``:
   inactive only, no constraint is added);
2. the region's Chebyshev centre ``c`` (distance ``r`` to every face): the side
   containing ``c`` is full-dimensional when ``c`` is more than
   ``tol.interior_margin`` away from the new hyperplane and ``r`` exceeds it too;
3. otherwise a Chebyshev-centre LP on normalised rows (signed distances), kept in one
   HiGHS model: the constraint is added, solved, and removed on backtracking.

At each complete region the Jacobian is known from the affine forms, so every output
functional is evaluated at once; the best region's centre is re-checked on the
network and becomes the witness.  Regions whose Chebyshev radius is at most
``tol.interior_margin`` are treated as empty.

If the time limit passes, the result has status ``time_limit`` with the interval
bound of the gradient norm over the box as upper bound and the best re-checked
witness found so far as lower bound.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from bnblip.bounds import forward_interval
from bnblip.errors import InputError, TooLargeError
from bnblip.incumbent import Witness, check_witness, witness_for_pattern
from bnblip.network import same_pattern
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Box, Problem
from bnblip.reference_common import (
    Deadline,
    Outcome,
    assemble,
    better,
    gradient_norm_bound,
    silent_highs,
)
from bnblip.regions import InteriorPoint
from bnblip.result import LipschitzResult, Method, Stats, Status

logger = logging.getLogger("bnblip.reference")

#: Default cap on hidden neurons accepted by enumeration.
DEFAULT_MAX_NEURONS = 40
#: Default cap on the number of regions enumerated.
DEFAULT_MAX_REGIONS = 200_000


class ChebyshevLP:
    """Incremental Chebyshev-centre LP of ``{x in box : normal @ x >= offset}``.

    Rows are added with :meth:`push` and removed last-in first-out with :meth:`pop`;
    :meth:`solve` maximises the radius ``t`` of a ball (within the box's free
    coordinates) inside every half-space and box face.  Degenerate box coordinates
    (``lower == upper``) stay fixed.
    """

    def __init__(self, box: Box, tol: Tolerances = DEFAULT_TOLERANCES) -> None:
        self.box = box
        self.tol = tol
        self.free = box.upper > box.lower
        self.dim = box.dim
        self.rows = 0
        self.highs = silent_highs(tol.feas_tol)
        n = self.dim
        lower = np.append(box.lower, -np.inf)
        upper = np.append(box.upper, np.inf)
        cost = np.zeros(n + 1)
        cost[n] = -1.0
        self.highs.addCols(n + 1, cost, lower, upper, 0, np.zeros(0, dtype=np.int32),
                           np.zeros(0, dtype=np.int32), np.zeros(0))
        for k in np.flatnonzero(self.free):
            # x_k - t >= lower_k and x_k + t <= upper_k
            self._add([k, n], [1.0, -1.0], box.lower[k], np.inf)
            self._add([k, n], [1.0, 1.0], -np.inf, box.upper[k])
        self.base_rows = self.rows

    def _add(self, index, coef, lo: float, hi: float) -> None:
        self.highs.addRow(float(lo), float(hi), len(index), np.asarray(index, dtype=np.int32),
                          np.asarray(coef, dtype=np.float64))
        self.rows += 1

    def push(self, normal: np.ndarray, offset: float) -> None:
        """Add ``normal @ x >= offset``; ``normal`` has unit norm on the free coordinates."""
        index = np.append(np.arange(self.dim), self.dim)
        self._add(index, np.append(normal, -1.0), offset, np.inf)

    def pop(self) -> None:
        """Remove the most recently pushed row."""
        if self.rows <= self.base_rows:
            raise IndexError("no pushed row to pop")
        self.rows -= 1
        self.highs.deleteRows(1, np.array([self.rows], dtype=np.int32))

    def solve(self) -> InteriorPoint | None:
        """Deepest point, or ``None`` when the radius is at most ``tol.interior_margin``."""
        self.highs.run()
        if self.highs.getModelStatus().name != "kOptimal":
            return None
        sol = np.asarray(self.highs.getSolution().col_value)
        radius = float(sol[self.dim])
        if radius <= self.tol.interior_margin:
            return None
        point = np.clip(sol[:self.dim], self.box.lower, self.box.upper)
        return InteriorPoint(point, radius)


@dataclass(frozen=True, eq=False)
class _Child:
    """A feasible sign choice of one neuron: its region's centre and the added row."""

    active: bool
    centre: np.ndarray
    radius: float
    normal: np.ndarray | None
    offset: float


class _Stop(Exception):
    """The deadline passed during the search."""


class _Enumerator:
    """Depth-first search state (one instance per solve)."""

    def __init__(self, problem: Problem, tol: Tolerances, deadline: Deadline,
                 max_regions: int) -> None:
        self.net = problem.network
        self.box = problem.box
        self.norm = problem.norm
        self.funcs = np.vstack(problem.functionals)
        self.tol = tol
        self.deadline = deadline
        self.max_regions = max_regions
        self.lp = ChebyshevLP(problem.box, tol)
        self.free = self.box.upper > self.box.lower
        self.regions = self.nodes = self.lps = self.infeasible = 0
        self.upper = -np.inf
        self.witness: Witness | None = None

    # -------------------------------------------------------------- search
    def run(self) -> None:
        n = self.net.input_dim
        if self.net.num_hidden_layers == 0:  # one linear region: the whole box
            self._leaf([], np.eye(n), self.box.center)
            return
        width = (self.box.upper - self.box.lower)[self.free]
        radius = 0.5 * float(width.min()) if width.size else 0.0
        self._layer(0, [], np.eye(n), np.zeros(n), self.box.center, radius)

    def _layer(self, k: int, pattern: list, a_mat, a_off, centre, radius) -> None:
        w, b = self.net.weights[k], self.net.biases[k]
        z_mat, z_off = w @ a_mat, w @ a_off + b
        lo, hi = self.box.lower, self.box.upper
        zmin = z_off + np.minimum(z_mat * lo, z_mat * hi).sum(axis=1)
        zmax = z_off + np.maximum(z_mat * lo, z_mat * hi).sum(axis=1)
        fixed = np.zeros(w.shape[0], dtype=np.int8)
        for j in range(w.shape[0]):
            sides = self._children(z_mat[j], z_off[j], zmin[j], zmax[j], centre, radius)
            if len(sides) == 1:
                fixed[j] = 1 if sides[0].active else -1
            elif not sides:
                return
        on = np.zeros(w.shape[0], dtype=bool)
        self._neuron(k, 0, pattern + [on], (z_mat, z_off, fixed), centre, radius)

    def _neuron(self, k: int, j: int, pattern: list, form, centre, radius) -> None:
        z_mat, z_off, fixed = form
        if j == z_off.size:
            on = pattern[-1]
            if k + 1 == self.net.num_hidden_layers:
                self._leaf(pattern, z_mat * on[:, None], centre)
            else:
                self._layer(k + 1, pattern, z_mat * on[:, None], z_off * on, centre, radius)
            return
        self.nodes += 1
        if self.deadline.expired():
            raise _Stop
        if fixed[j]:
            children = [_Child(bool(fixed[j] > 0), centre, radius, None, 0.0)]
        else:
            children = self._children(z_mat[j], z_off[j], -np.inf, np.inf, centre, radius)
        for child in children:
            pattern[-1][j] = child.active
            if child.normal is not None:
                self.lp.push(child.normal, child.offset)
            self._neuron(k, j + 1, pattern, form, child.centre, child.radius)
            if child.normal is not None:
                self.lp.pop()

    def _children(self, a_row, beta, zmin, zmax, centre, radius) -> list:
        if zmin > 0:
            return [_Child(True, centre, radius, None, 0.0)]
        if zmax <= 0:
            return [_Child(False, centre, radius, None, 0.0)]
        scale = float(np.linalg.norm(a_row[self.free]))
        at_centre = (a_row @ centre + beta) / scale
        children = []
        for active in (at_centre > 0, not at_centre > 0):
            sign = 1.0 if active else -1.0
            normal, offset = sign * a_row / scale, -sign * beta / scale
            distance = sign * at_centre
            margin = self.tol.interior_margin
            if min(radius, distance) > margin:
                children.append(_Child(active, centre, min(radius, distance), normal, offset))
                continue
            self.lp.push(normal, offset)
            found = self.lp.solve()
            self.lp.pop()
            self.lps += 1
            if found is None:
                self.infeasible += 1
                continue
            children.append(_Child(active, found.point, found.radius, normal, offset))
        return children

    def _leaf(self, pattern: list, last_form: np.ndarray, centre: np.ndarray) -> None:
        self.regions += 1
        if self.regions > self.max_regions:
            raise TooLargeError(f"enumeration passed max_regions={self.max_regions} regions; "
                                f"raise max_regions or use method 'milp' or 'bnb'")
        jacobian = self.net.weights[-1] @ last_form
        values = self.norm.dual_value(self.funcs @ jacobian)
        best = int(np.argmax(values))
        value = float(values[best])
        self.upper = max(self.upper, value)
        if self.witness is None or value > self.witness.value:
            self._witness(tuple(p.copy() for p in pattern), centre, self.funcs[best])

    def _witness(self, pattern, centre, c) -> None:
        found = check_witness(self.net, self.box, self.norm, c, centre, self.tol)
        if found is None or not same_pattern(found.pattern, pattern):
            found = witness_for_pattern(self.net, self.box, self.norm, c, pattern, self.tol)
        self.witness = better(self.witness, found)

    def stats(self) -> Stats:
        return Stats(nodes=self.nodes, lps=self.lps, regions=self.regions,
                     pruned_infeasible=self.infeasible,
                     max_depth=self.net.num_neurons)


def _check_options(max_neurons, max_regions) -> None:
    for name, value in (("max_neurons", max_neurons), ("max_regions", max_regions)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")


def solve_enumerate(problem: Problem, time_limit: float | None = None,
                    tol: Tolerances = DEFAULT_TOLERANCES,
                    max_neurons: int = DEFAULT_MAX_NEURONS,
                    max_regions: int = DEFAULT_MAX_REGIONS) -> LipschitzResult:
    """Exact local Lipschitz constant by enumerating the activation regions.

    Parameters
    ----------
    problem : Problem
        Any norm (``linf``, ``l1``, ``l2``); all functionals share one enumeration.
    time_limit : float, optional
        Seconds; on expiry the status is ``time_limit`` and the upper bound is the
        interval bound of the gradient norm.
    tol : Tolerances
        ``interior_margin`` decides full-dimensionality; ``rel_gap`` / ``abs_gap``
        the status.
    max_neurons : int
        Networks with more hidden neurons are refused before starting.
    max_regions : int
        The search stops with :class:`TooLargeError` after this many regions.

    Returns
    -------
    LipschitzResult
        Method ``enumerate``; ``stats.regions`` counts full-dimensional regions,
        ``stats.lps`` the Chebyshev LPs.

    Raises
    ------
    TooLargeError
        More than ``max_neurons`` hidden neurons, or more than ``max_regions`` regions.
    InputError
        For invalid options.
    """
    _check_options(max_neurons, max_regions)
    neurons = problem.network.num_neurons
    if neurons > max_neurons:
        raise TooLargeError(f"enumeration accepts at most max_neurons={max_neurons} hidden "
                            f"neurons, the network has {neurons}; use method 'milp' or 'bnb'")
    deadline = Deadline(time_limit)
    search = _Enumerator(problem, tol, deadline, int(max_regions))
    status = Status.OPTIMAL
    try:
        search.run()
        upper = search.upper
    except _Stop:
        status = Status.TIME_LIMIT
        upper = max(search.upper, _interval_upper(problem, tol))
    wit = search.witness
    functional = problem.functionals[0] if wit is None else wit.functional
    outcome = Outcome(np.asarray(functional, dtype=np.float64), upper, wit, status,
                      search.stats())
    options = {"max_neurons": max_neurons, "max_regions": max_regions,
               "time_limit": time_limit}
    return assemble(problem, [outcome], Method.ENUMERATE, tol, deadline.elapsed(), options)


def _interval_upper(problem: Problem, tol: Tolerances) -> float:
    net, box = problem.network, problem.box
    fwd = forward_interval(net, box.lower, box.upper, tol=tol)
    return max(gradient_norm_bound(net, fwd, c, problem.norm, tol) for c in problem.functionals)
