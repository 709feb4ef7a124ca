"""Pieces shared by the reference solvers (MILP and enumeration).

A silent HiGHS handle, the interval bound of the gradient norm (the sound answer
when a reference solve stops early), fallback witnesses, and the assembly of one
:class:`~bnblip.result.LipschitzResult` from per-functional outcomes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from bnblip.bounds import ForwardBounds, backward_interval, derivative_bounds
from bnblip.incumbent import Witness, check_witness, witness_for_pattern
from bnblip.lp.small import quiet_highs
from bnblip.network import Network
from bnblip.options import Tolerances
from bnblip.problem import Box, Norm, Problem
from bnblip.result import LipschitzResult, Method, Stats, Status


def silent_highs(feas_tol: float):
    """A fresh HiGHS handle (:func:`bnblip.lp.small.quiet_highs`) with tight
    tolerances."""
    highs = quiet_highs()
    highs.setOptionValue("primal_feasibility_tolerance", feas_tol)
    highs.setOptionValue("dual_feasibility_tolerance", feas_tol)
    return highs


class Deadline:
    """Wall-clock budget of a solve (``None`` seconds means unlimited)."""

    def __init__(self, seconds: float | None) -> None:
        self.start = time.perf_counter()
        self.end = None if seconds is None else self.start + float(seconds)

    def remaining(self) -> float | None:
        """Seconds left (may be negative), or ``None`` when unlimited."""
        return None if self.end is None else self.end - time.perf_counter()

    def expired(self) -> bool:
        """Whether the budget is used up."""
        return self.end is not None and time.perf_counter() >= self.end

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.start


def gradient_norm_bound(network: Network, forward: ForwardBounds, c, norm: Norm,
                        tol: Tolerances) -> float:
    """Interval upper bound of ``||grad c^T f||_q`` over the box of ``forward``."""
    dlo, dhi = derivative_bounds(forward)
    back = backward_interval(network, c, dlo, dhi, tol)
    magnitude = np.maximum(np.abs(back.lower[0]), np.abs(back.upper[0]))
    return float(norm.dual_value(magnitude))


def better(a: Witness | None, b: Witness | None) -> Witness | None:
    """The witness with the larger value (``None`` loses)."""
    if a is None:
        return b
    if b is None:
        return a
    return b if b.value > a.value else a


def fallback_witness(network: Network, box: Box, norm: Norm, c, tol: Tolerances,
                     seed: int = 0, samples: int = 16) -> Witness | None:
    """A cheap re-checked witness: the box centre, its region's interior point, or
    the best of a few seeded uniform samples."""
    best = check_witness(network, box, norm, c, box.center, tol)
    if best is None:
        pattern = network.pattern(box.center)
        best = witness_for_pattern(network, box, norm, c, pattern, tol)
    rng = np.random.default_rng(seed)
    for x in box.sample(samples, rng):
        best = better(best, check_witness(network, box, norm, c, x, tol))
    return best


@dataclass(frozen=True, eq=False)
class Outcome:
    """What a reference solve established for one output functional.

    Attributes
    ----------
    functional : ndarray
    upper : float
        Proven upper bound of the constant for this functional.
    witness : Witness or None
        Best re-checked witness (its value is the lower bound).
    status : Status
        How this functional's solve ended.
    stats : Stats
    """

    functional: np.ndarray
    upper: float
    witness: Witness | None
    status: Status
    stats: Stats

    @property
    def lower(self) -> float:
        """Value of the witness (0 without one: a norm is never negative)."""
        return 0.0 if self.witness is None else self.witness.value


def add_stats(parts) -> Stats:
    """Field-wise sum (max for ``max_depth``) of several :class:`Stats`."""
    total = {}
    for part in parts:
        for key, value in part.to_dict().items():
            if key == "max_depth":
                total[key] = max(total.get(key, 0), value)
            else:
                total[key] = total.get(key, 0) + value
    return Stats(**total)


def assemble(problem: Problem, outcomes, method: Method, tol: Tolerances, time_s: float,
             options: dict, extra_stats: Stats | None = None) -> LipschitzResult:
    """Combine per-functional outcomes: the constant is the max over functionals.

    The status is optimal when the combined gap is closed; otherwise it is the first
    non-optimal status among the outcomes.  ``extra_stats`` (work shared by all
    functionals) is added to the outcomes' statistics.
    """
    lower_outcome = max(outcomes, key=lambda o: o.lower)
    upper = max(o.upper for o in outcomes)
    lower = lower_outcome.lower
    upper = max(upper, lower)
    if tol.gap_closed(lower, upper):
        status = Status.OPTIMAL
    else:  # a limit that stopped any functional's solve, else 'incomplete'
        stopped = [o.status for o in outcomes
                   if o.status not in (Status.OPTIMAL, Status.INCOMPLETE)]
        status = stopped[0] if stopped else Status.INCOMPLETE
    wit = lower_outcome.witness
    return LipschitzResult(
        value=lower if status is Status.OPTIMAL else upper,
        lower_bound=lower,
        upper_bound=upper,
        status=status,
        witness=None if wit is None else wit.point,
        pattern=None if wit is None else wit.pattern,
        functional=lower_outcome.functional if wit is None else wit.functional,
        stats=add_stats([o.stats for o in outcomes] + [extra_stats or Stats()]),
        method=method,
        norm=problem.norm,
        time_s=time_s,
        options=options,
    )
