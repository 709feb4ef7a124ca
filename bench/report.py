"""Cross-checks, CSV, Markdown tables and plots from benchmark records.

Cross-check: two solvers that both claim optimality must agree within ``REL_TOL``
(relative); no solver's proven upper bound may lie below another solver's attained
(re-checked witness) lower bound, which names the unsound side; an optimal value must
equal a known exact value; and no solver's proven bounds may cut off the reference
value (an upper bound below it or a lower bound above it).  Violations are
:class:`Disagreement` records, printed in a DISAGREEMENT section.

Time ratios are ``t_solver / t_engine`` per case, geometric means over the cases at
least one of the two solved; a run stopped by a limit counts with the time limit (so
ratios of such cases are bounds), and a peer's run that ended unsolved on its own
(``incomplete``: it finished with the gap open) with its own time; the engine's own
``incomplete`` runs count with the limit, so neither rule favours the engine.  The ``>= 1 s``
column keeps only cases where the solver in the column needed at least one second.
"""

from __future__ import annotations

import csv
import enum
import math
from collections import defaultdict
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from bench.runner import RunStatus, SolveRecord

#: Relative disagreement that is reported.
REL_TOL = 1e-6
#: Absolute floor of the comparison (values near zero).
ABS_TOL = 1e-9
#: Times below this are clipped before taking ratios.
MIN_TIME_S = 1e-3
#: Threshold of the "hard for the peer" ratio column (issue 3).
HARD_PEER_S = 1.0
ENGINE = "bnb"


class Clash(enum.Enum):
    """Kinds of disagreement."""

    OPTIMAL_VALUES = "two optimal values differ"
    EXACT_VALUE = "optimal value differs from the known exact value"
    UPPER_BELOW = "proven upper bound below the reference value"
    LOWER_ABOVE = "attained lower bound above the reference value"
    UPPER_BELOW_WITNESS = "proven upper bound below another solver's attained lower bound"


@dataclass(frozen=True)
class Disagreement:
    """A failed cross-check on one case."""

    case: str
    kind: Clash
    solver: str
    value: float
    other: str
    other_value: float

    @property
    def rel(self) -> float:
        """Relative difference."""
        return abs(self.value - self.other_value) / max(abs(self.value),
                                                        abs(self.other_value), ABS_TOL)


def _differ(a: float, b: float) -> bool:
    return abs(a - b) > max(ABS_TOL, REL_TOL * max(abs(a), abs(b)))


def _case_checks(case: str, recs: list[SolveRecord]) -> list[Disagreement]:
    out = []
    optimal = [r for r in recs if r.solved and math.isfinite(r.value)]
    for i, a in enumerate(optimal):
        for b in optimal[i + 1:]:
            if _differ(a.value, b.value):
                out.append(Disagreement(case, Clash.OPTIMAL_VALUES, a.solver, a.value,
                                        b.solver, b.value))
    for a in recs:
        for b in recs:
            if a is not b and math.isfinite(a.upper_bound) and math.isfinite(b.lower_bound) \
                    and a.upper_bound < b.lower_bound and _differ(a.upper_bound, b.lower_bound):
                out.append(Disagreement(case, Clash.UPPER_BELOW_WITNESS, a.solver,
                                        a.upper_bound, b.solver, b.lower_bound))
    exact = recs[0].exact if recs else math.nan
    for r in optimal:
        if math.isfinite(exact) and _differ(r.value, exact):
            out.append(Disagreement(case, Clash.EXACT_VALUE, r.solver, r.value, "exact", exact))
    if math.isfinite(exact):
        refs = [("exact", exact)]
    else:  # against the optimal value, unless optimal values already clash
        refs = [] if out else [(r.solver, r.value) for r in optimal[:1]]
    for name, ref in refs:
        for r in recs:
            if math.isfinite(r.upper_bound) and r.upper_bound < ref and _differ(r.upper_bound,
                                                                                ref):
                out.append(Disagreement(case, Clash.UPPER_BELOW, r.solver, r.upper_bound,
                                        name, ref))
            if math.isfinite(r.lower_bound) and r.lower_bound > ref and _differ(r.lower_bound,
                                                                                ref):
                out.append(Disagreement(case, Clash.LOWER_ABOVE, r.solver, r.lower_bound,
                                        name, ref))
    return out


def by_case(records) -> dict[str, list[SolveRecord]]:
    """Records grouped by case, in first-seen order."""
    groups: dict[str, list[SolveRecord]] = {}
    for r in records:
        groups.setdefault(r.case, []).append(r)
    return groups


def cross_check(records) -> list[Disagreement]:
    """Every failed cross-check over ``records``."""
    out = []
    for case, recs in by_case(records).items():
        out += _case_checks(case, recs)
    return out


# ---------------------------------------------------------------- CSV
def _cell(value) -> str:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def write_csv(records, path: Path) -> None:
    """One row per record, columns in :class:`SolveRecord` field order."""
    names = [f.name for f in fields(SolveRecord)]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for r in records:
            writer.writerow([_cell(getattr(r, n)) for n in names])


def read_csv(path: Path) -> list[SolveRecord]:
    """Records back from :func:`write_csv` (for re-rendering a report)."""
    types = {f.name: f.type for f in fields(SolveRecord)}
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            kw = {}
            for name, text in row.items():
                kind = types[name]
                if kind == "RunStatus":
                    kw[name] = RunStatus(text)
                elif kind == "float":
                    kw[name] = math.nan if text == "" else float(text)
                elif kind == "int":
                    kw[name] = int(text)
                else:
                    kw[name] = text
            out.append(SolveRecord(**kw))
    return out


# ---------------------------------------------------------------- tables
def solver_names(records) -> list[str]:
    """Solvers in first-seen order."""
    return list(dict.fromkeys(r.solver for r in records))


def _censored(r: SolveRecord, time_limit: float, own_incomplete: bool) -> float:
    """The run's time; an unsolved run counts with the time limit, except an
    ``incomplete`` one when ``own_incomplete`` (then with its own time)."""
    own = r.solved or (own_incomplete and r.status is RunStatus.INCOMPLETE)
    return max(r.time_s if own else time_limit, MIN_TIME_S)


def time_ratios(records, solver: str, time_limit: float, min_solver_s: float = 0.0,
                engine: str = ENGINE) -> list[float]:
    """Per case ``t_solver / t_engine`` over cases either of them solved."""
    out = []
    for recs in by_case(records).values():
        mine = next((r for r in recs if r.solver == solver), None)
        base = next((r for r in recs if r.solver == engine), None)
        if mine is None or base is None or not (mine.status.ran and base.status.ran):
            continue
        if not (mine.solved or base.solved):
            continue
        t_mine = _censored(mine, time_limit, own_incomplete=True)
        if t_mine < min_solver_s:
            continue
        # the engine's own 'incomplete' runs count as limit-length (never in its favour)
        out.append(t_mine / _censored(base, time_limit, own_incomplete=False))
    return out


def geomean(values) -> float:
    """Geometric mean (NaN for no values)."""
    values = [v for v in values if v > 0 and math.isfinite(v)]
    return float(np.exp(np.mean(np.log(values)))) if values else math.nan


def _solved_cell(recs: list[SolveRecord]) -> str:
    if recs and all(r.status is RunStatus.NOT_INSTALLED for r in recs):
        return "not installed"
    ran = [r for r in recs if r.status.ran]
    large = sum(r.status is RunStatus.TOO_LARGE for r in recs)
    errors = sum(r.status is RunStatus.ERROR for r in recs)
    skipped = sum(r.status is RunStatus.SKIPPED for r in recs)
    cell = f"{sum(r.solved for r in ran)}/{len(ran)}" if ran else "-"
    notes = [f"{large} too large for licence"] * bool(large) + [f"{errors} errors"] * bool(errors)
    notes += [f"{skipped} skipped"] * bool(skipped)
    return cell + (f" ({', '.join(notes)})" if notes else "")


def _ratio_cell(records, solver: str, time_limit: float, min_s: float) -> str:
    if solver == ENGINE:
        return "1"
    ratios = time_ratios(records, solver, time_limit, min_s)
    if not ratios:
        return "-"
    return f"{geomean(ratios):.3g} (n={len(ratios)})"


def _family_groups(records) -> dict[str, list[SolveRecord]]:
    groups: dict[str, list[SolveRecord]] = defaultdict(list)
    for r in records:
        groups[r.family].append(r)
    groups["all"] = list(records)
    return groups


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def summary_tables(records, time_limit: float) -> list[str]:
    """Markdown lines: solved counts and geometric-mean time ratios per family."""
    names = solver_names(records)
    groups = _family_groups(records)
    solved_rows, ratio_rows, hard_rows = [], [], []
    for family, recs in groups.items():
        cases = len(by_case(recs))
        per = {n: [r for r in recs if r.solver == n] for n in names}
        solved_rows.append([family, str(cases)] + [_solved_cell(per[n]) for n in names])
        ratio_rows.append([family] + [_ratio_cell(recs, n, time_limit, 0.0) for n in names])
        hard_rows.append([family] + [_ratio_cell(recs, n, time_limit, HARD_PEER_S)
                                     for n in names])
    lines = ["### Solved (optimal / ran)", ""]
    lines += _table(["family", "cases"] + names, solved_rows)
    lines += ["", f"### Geometric-mean time ratio vs `{ENGINE}` (> 1: {ENGINE} is faster)", ""]
    lines += _table(["family"] + names, ratio_rows)
    lines += ["", f"### Same, only cases where the column's solver needs >= {HARD_PEER_S:g} s",
              ""]
    lines += _table(["family"] + names, hard_rows)
    return lines


def _fmt_time(r: SolveRecord) -> str:
    if r.status is RunStatus.OPTIMAL:
        return f"{r.time_s:.3g}"
    if r.status.ran:
        return f"{r.status.value} ({r.value:.6g})" if math.isfinite(r.value) else r.status.value
    short = {RunStatus.NOT_INSTALLED: "n/i", RunStatus.TOO_LARGE: "too large",
             RunStatus.UNSUPPORTED: "n/a"}
    return short.get(r.status, r.status.value)


def case_table(records) -> list[str]:
    """Markdown lines: per case, the value and every solver's time (s) or status."""
    names = solver_names(records)
    rows = []
    for case, recs in by_case(records).items():
        per = {r.solver: r for r in recs}
        values = [r.value for r in recs if r.solved]
        first = recs[0]
        exact = f"{first.exact:.10g}" if math.isfinite(first.exact) else ""
        rows.append([case, first.norm, str(first.ambiguous), exact,
                     f"{values[0]:.10g}" if values else ""]
                    + [_fmt_time(per[n]) if n in per else "" for n in names])
    return _table(["case", "norm", "ambiguous", "exact", "value"] + names, rows)


def disagreement_lines(found) -> list[str]:
    """The DISAGREEMENT section (empty when there are none)."""
    if not found:
        return []
    lines = ["## DISAGREEMENT", "", f"{len(found)} failed cross-check(s):", ""]
    rows = [[d.case, d.kind.value, d.solver, f"{d.value:.12g}", d.other,
             f"{d.other_value:.12g}", f"{d.rel:.2e}"] for d in found]
    return lines + _table(["case", "check", "solver", "value", "against", "its value", "rel"],
                          rows) + [""]


def markdown_report(records, time_limit: float, found, title: str, notes=()) -> str:
    """The whole Markdown report."""
    lines = [f"# {title}", ""]
    lines += disagreement_lines(found)
    lines += list(notes) + ([""] if notes else [])
    lines += summary_tables(records, time_limit)
    lines += ["", "### Per case (seconds, or status and bound)", ""]
    lines += case_table(records)
    if not found:
        lines += ["", "Cross-check: every optimal value agrees with every other and with the "
                  f"known exact values (rel {REL_TOL:g}); no bound cuts off a reference value."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_time_vs_ambiguous(records, path: Path, time_limit: float) -> None:
    """Solve time against ambiguous ReLUs, one marker series per solver (log time)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = "os^vDPX*<>"
    for k, name in enumerate(solver_names(records)):
        recs = [r for r in records if r.solver == name and r.status.ran and r.ambiguous >= 0]
        if not recs:
            continue
        x = [r.ambiguous for r in recs]
        y = [_censored(r, time_limit, own_incomplete=True) for r in recs]
        ax.scatter(x, y, s=18, marker=markers[k % len(markers)], label=name, alpha=0.7)
    ax.axhline(time_limit, color="grey", lw=0.8, ls="--", label="time limit")
    ax.set_yscale("log")
    ax.set_xlabel("ambiguous ReLUs (LP-tightened bounds)")
    ax.set_ylabel("time (s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def performance_profile(records, time_limit: float) -> dict[str, np.ndarray]:
    """Per solver, sorted ratios ``t / t_best`` over the cases some solver solved and
    this solver ran on (``inf`` where it ran but did not solve the case); cases where
    it did not run (unsupported norm, other family, licence size) are left out."""
    names = solver_names(records)
    ratios: dict[str, list[float]] = {n: [] for n in names}
    for recs in by_case(records).values():
        solved = [r for r in recs if r.solved]
        if not solved:
            continue
        best = min(max(r.time_s, MIN_TIME_S) for r in solved)
        per = {r.solver: r for r in recs}
        for n in names:
            r = per.get(n)
            if r is not None and r.status.ran:
                ratios[n].append(max(r.time_s, MIN_TIME_S) / best if r.solved else math.inf)
    return {n: np.sort(np.array(v)) for n, v in ratios.items()}


def plot_performance_profile(records, path: Path, time_limit: float) -> None:
    """Dolan-More profile: fraction of cases solved within a factor tau of the best."""
    plt = _pyplot()
    prof = performance_profile(records, time_limit)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    finite = [v[np.isfinite(v)] for v in prof.values()]
    top = max([float(v.max()) for v in finite if v.size] + [2.0]) * 1.5
    for name, ratios in prof.items():
        if ratios.size == 0 or not np.isfinite(ratios).any():
            continue
        taus = np.concatenate([[1.0], ratios[np.isfinite(ratios)], [top]])
        frac = [np.mean(ratios <= t) for t in taus]
        ax.step(taus, frac, where="post", label=f"{name} ({ratios.size} cases)")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("tau (time / best time on the case)")
    ax.set_ylabel("fraction of its cases solved within tau")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
