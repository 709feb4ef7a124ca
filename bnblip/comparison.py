"""Every applicable estimator side by side with the exact constant.

:func:`compare` solves the problem exactly with :func:`bnblip.lipschitz` and runs the
estimators of :data:`bnblip.estimators.REGISTRY` that support its input norm;
:func:`format_table` renders the outcome as plain text (the ``bnblip compare``
command prints it).
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bnblip.api import lipschitz
from bnblip.errors import InputError
from bnblip.estimators import REGISTRY, Estimate, EstimatorSpec, Kind, find_estimator
from bnblip.network import Network
from bnblip.problem import Box, Norm, make_problem
from bnblip.result import LipschitzResult, Status

logger = logging.getLogger("bnblip")

#: Relative slack when checking an estimator's promise against the exact solve.
CONSISTENCY_SLACK = 1e-9


class RowKind(enum.Enum):
    """Kind of a comparison row: an estimator's :class:`~bnblip.estimators.Kind` or the
    exact solve."""

    EXACT = "exact"
    UPPER = "upper"
    LOWER = "lower"
    ESTIMATE = "estimate"

    @classmethod
    def of(cls, kind: Kind) -> RowKind:
        """The row kind of an estimator kind."""
        return cls(kind.value)


@dataclass(frozen=True)
class ComparisonRecord:
    """One row of a comparison.

    Attributes
    ----------
    name : str
        ``'exact'`` or an estimator name.
    kind : RowKind
    norm : Norm
        Input norm.
    value : float
    time_s : float
    rel_error : float
        ``(value - exact) / exact`` (``0`` / ``inf`` when ``exact == 0``).
    consistent : bool
        Whether the row keeps its promise against the exact solve: an upper bound is
        ``>=`` the exact lower bound, a lower bound ``<=`` the exact upper bound
        (relative slack :data:`CONSISTENCY_SLACK`); always true for estimates.
    """

    name: str
    kind: RowKind
    norm: Norm
    value: float
    time_s: float
    rel_error: float
    consistent: bool = True

    def to_dict(self) -> dict:
        """JSON-ready dict with keys name, kind, norm, value, time_s, rel_error, consistent."""
        return {"name": self.name, "kind": self.kind.value, "norm": self.norm.value,
                "value": self.value, "time_s": self.time_s, "rel_error": self.rel_error,
                "consistent": self.consistent}


@dataclass(frozen=True, eq=False)
class ComparisonResult:
    """Outcome of :func:`compare`.

    Attributes
    ----------
    records : tuple of ComparisonRecord
        The exact row first, then one row per estimator in registry order.
    exact : LipschitzResult
        The exact solve (its ``value`` is the proven upper bound when it did not
        reach optimality; relative errors are then measured against that value).
    """

    records: tuple[ComparisonRecord, ...]
    exact: LipschitzResult

    @property
    def norm(self) -> Norm:
        """Input norm of the problem."""
        return self.exact.norm

    def record(self, name: str) -> ComparisonRecord:
        """The row called ``name`` (case-insensitive)."""
        for rec in self.records:
            if rec.name.lower() == name.lower():
                return rec
        raise InputError(f"no row named {name!r} in this comparison")

    def to_dicts(self) -> list[dict]:
        """One dict per row (see :meth:`ComparisonRecord.to_dict`).

        The row named ``'exact'`` has kind ``'exact'`` and also carries
        ``lower_bound``, ``upper_bound``, ``status`` and ``method`` of the exact solve.
        """
        out = []
        for rec in self.records:
            row = rec.to_dict()
            if rec.kind is RowKind.EXACT:
                row.update(lower_bound=self.exact.lower_bound,
                           upper_bound=self.exact.upper_bound,
                           status=self.exact.status.value, method=self.exact.method.value)
            out.append(row)
        return out


def relative_error(value: float, exact: float) -> float:
    """``(value - exact) / exact`` with ``0 / 0 = 0`` and ``x / 0 = inf``."""
    if exact == 0:
        return 0.0 if value == 0 else math.inf
    return (value - exact) / abs(exact)


def _consistent(est: Estimate, exact: LipschitzResult) -> bool:
    if est.kind is Kind.UPPER:
        return est.value >= exact.lower_bound * (1 - CONSISTENCY_SLACK) - CONSISTENCY_SLACK
    if est.kind is Kind.LOWER:
        return est.value <= exact.upper_bound * (1 + CONSISTENCY_SLACK) + CONSISTENCY_SLACK
    return True


def _selected(norm: Norm, estimators: Sequence[str] | None) -> tuple[EstimatorSpec, ...]:
    if estimators is None:
        return tuple(s for s in REGISTRY if norm in s.norms and s.available)
    if isinstance(estimators, str):
        raise InputError("estimators must be a list of estimator names, not a string")
    specs = tuple(find_estimator(name) for name in estimators)
    for spec in specs:
        if norm not in spec.norms:
            raise InputError(f"estimator {spec.name} does not support input norm "
                             f"'{norm.value}'")
    return specs


def compare(net: Network, domain: Box, norm="linf", c=None, *, logit_diff=None,
            output_norm=None, method=None, time_limit: float | None = None,
            estimators: Sequence[str] | None = None) -> ComparisonResult:
    """Run the estimators and the exact solver on one problem.

    Parameters
    ----------
    net : Network
    domain : Box
    norm : {'linf', 'l1', 'l2'}
        Input norm.
    c, logit_diff, output_norm
        Output specification, as in :func:`bnblip.lipschitz`.
    method : {'bnb', 'milp', 'enumerate'}, optional
        Exact method (default: that of :func:`bnblip.lipschitz`).
    time_limit : float, optional
        Seconds for the exact solve.
    estimators : list of str, optional
        Estimator names; default every estimator supporting ``norm`` whose optional
        dependencies are installed.

    Returns
    -------
    ComparisonResult

    Raises
    ------
    InputError
        On invalid arguments, an unknown estimator, or one that does not support
        ``norm``.
    """
    problem = make_problem(net, domain, norm, c=c, logit_diff=logit_diff,
                           output_norm=output_norm)
    specs = _selected(problem.norm, estimators)
    exact = lipschitz(net, domain, norm, c, logit_diff=logit_diff, output_norm=output_norm,
                      method=method, time_limit=time_limit)
    if exact.status is not Status.OPTIMAL:
        logger.warning("compare: exact solve ended with status %s; errors are relative to "
                       "its upper bound", exact.status.value)
    rows = [ComparisonRecord("exact", RowKind.EXACT, problem.norm, exact.value, exact.time_s,
                             0.0)]
    for spec in specs:
        est = spec.run(problem)
        rows.append(ComparisonRecord(est.name, RowKind.of(est.kind), est.norm, est.value,
                                     est.time_s, relative_error(est.value, exact.value),
                                     _consistent(est, exact)))
    return ComparisonResult(tuple(rows), exact)


def _records(comparison) -> tuple[ComparisonRecord, ...]:
    if isinstance(comparison, ComparisonResult):
        return comparison.records
    records = tuple(comparison)
    if not all(isinstance(r, ComparisonRecord) for r in records):
        raise InputError("format_table takes a ComparisonResult or ComparisonRecords")
    return records


def format_table(records: ComparisonResult | Iterable[ComparisonRecord]) -> str:
    """Plain-text table of a comparison (a :class:`ComparisonResult` or its records).

    Columns: estimator, kind, value, ratio to the exact value, relative error, time.
    Rows that break their promise against the exact solve are flagged ``!``.
    """
    rows = _records(records)
    exact = next((r.value for r in rows if r.kind is RowKind.EXACT), None)
    header = f"{'estimator':<10} {'kind':<8} {'value':>14} {'ratio':>9} {'rel.err':>11} " \
             f"{'time [s]':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = "" if not exact else f"{r.value / exact:9.4f}"
        flag = "" if r.consistent else "  ! inconsistent with the exact value"
        lines.append(f"{r.name:<10} {r.kind.value:<8} {r.value:14.8g} {ratio:>9} "
                     f"{r.rel_error:>+11.3%} {r.time_s:9.3f}{flag}")
    if rows:
        lines.append(f"(input norm {rows[0].norm.value}; upper = proven >= exact, lower = "
                     "attained <= exact, estimate = no guarantee)")
    return "\n".join(lines)
