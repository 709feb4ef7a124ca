"""Node LPs: the retained warm ``highspy`` model (with bnblip's simplex options and
with HiGHS's defaults) vs cold ``scipy.optimize.linprog``.

Records the node LPs of a branch-and-bound run on public cases (each LP's data,
cutoff and the earlier LP whose basis it starts from), replays the same sequence
through each backend, every warm start taken from the replay's own earlier solve,
and prints the time per LP and the agreement of the optimal values.

    python bench/bench_lp_backends.py [--cases NAME ...] [--max-lps N] [--out PATH]

The report is written to ``bench/results/lp_backends.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.cases import build_cases  # noqa: E402
from bnblip.lp.backend import HighspyBackend, LinprogBackend, LPStatus  # noqa: E402
from bnblip.problem import make_problem  # noqa: E402
from bnblip.solver import BnbOptions, _LimitReached, _Search  # noqa: E402

DEFAULT_CASES = ["pub_rand_8_16x16_r0.3_linf", "pub_rand_12_12x12x12_r0.1_l1",
                 "pub_digits_48x24_wd_r0.05_linf_img12", "depth_7_r0.2_l1",
                 "digits_100x100_plain_img6_r0.1_l1", "indim_16_r0.02_linf"]

REPLAYS = {
    "highspy": lambda layout: HighspyBackend(layout),
    "HiGHS defaults": lambda layout: HighspyBackend(layout, simplex_options=()),
    "linprog": lambda layout: LinprogBackend(layout),
}
"""The backends replayed, by column name."""


def load_cases(names: list[str]) -> list:
    """The problems of the bench cases ``names`` (see :mod:`bench.cases`)."""
    cases = {case.name: case for case in build_cases()}
    unknown = sorted(set(names) - set(cases))
    if unknown:
        raise SystemExit(f"--cases: unknown case(s) {unknown}")
    return [make_problem(cases[n].network(), cases[n].box(), cases[n].norm, c=cases[n].c)
            for n in names]


@dataclass(frozen=True)
class RecordedLP:
    """One node LP: its data, its cutoff and the index of the LP whose final basis
    it started from (``-1``: none)."""

    data: object
    cutoff: float | None
    start: int


class _Recorder:
    """Wraps a backend and keeps every node LP of its layout."""

    def __init__(self, inner):
        self.inner = inner
        self.layout = inner.layout
        self.lps: list[RecordedLP] = []
        self._source: dict[object, int] = {}  # a returned basis -> its LP's index

    def solve(self, data, basis=None, cutoff=None):
        sol = self.inner.solve(data, basis, cutoff)
        if sol.solved:
            start = self._source.get(basis, -1) if basis is not None else -1
            self.lps.append(RecordedLP(data, cutoff, start))
            if sol.basis is not None:
                self._source[sol.basis] = len(self.lps) - 1
        return sol

    def extremes(self, data, cols, deadline=None):
        return self.inner.extremes(data, cols, deadline)

    def forget(self):
        self.inner.forget()


def record(problem, max_lps: int):
    """The layout and node LPs (at most ``max_lps``) of the run's longest-lived LP
    model."""
    from bnblip.options import DEFAULT_TOLERANCES

    search = _Search(problem, DEFAULT_TOLERANCES, BnbOptions(lp="always"), 60.0, None)
    recorders = []
    build = search.build_lp

    def build_and_record():
        build()
        if search.lp is not None:
            recorders.append(_Recorder(search.lp))
            search.lp = recorders[-1]

    search.build_lp = build_and_record
    try:
        search.run()
    except _LimitReached:
        pass
    longest = max(recorders, key=lambda r: len(r.lps))
    return longest.layout, longest.lps[:max_lps]


def replay(name: str, layout, lps: list[RecordedLP]):
    """Seconds per LP and the values (``-inf`` infeasible, ``nan`` cut off or
    failed) of ``lps`` solved by backend ``name``."""
    backend = REPLAYS[name](layout)
    bases, values = [], []
    start = time.perf_counter()
    for lp in lps:
        warm = bases[lp.start] if lp.start >= 0 else None
        sol = backend.solve(lp.data, warm, lp.cutoff)
        bases.append(sol.basis)
        values.append(sol.value if sol.status is LPStatus.OPTIMAL else
                      (-np.inf if sol.status is LPStatus.INFEASIBLE else np.nan))
    return (time.perf_counter() - start) / max(len(lps), 1), np.array(values)


def _largest_difference(values: np.ndarray, reference: np.ndarray) -> float:
    both = np.isfinite(values) & np.isfinite(reference)
    if not both.any():
        return float("nan")
    return float(np.max(np.abs(values[both] - reference[both])
                        / np.maximum(1.0, np.abs(reference[both]))))


def _report(rows: list[str], names: list[str]) -> str:
    """The markdown report: what was run, then one table row per case."""
    head = ("# Node LPs: retained highspy model vs cold linprog\n\n"
            "Time per LP (`python bench/bench_lp_backends.py`): the node LPs of one search "
            "(`lp=\"always\"`, at most `--max-lps` of its longest-lived LP model) replayed "
            "in order through each backend, each warm start taken from the replay's own "
            "solve of the LP the search started from; fastest of `--repeats` replays. "
            "*highspy*: bnblip's retained model with its simplex options "
            "(`bnblip.lp.backend.SIMPLEX_OPTIONS`); *HiGHS defaults*: the same model with "
            "HiGHS's own options; *linprog*: `scipy.optimize.linprog(method=\"highs\")`, "
            "cold. Last columns: largest relative difference of the values (each backend's "
            "weak-duality bound from its solver's duals) from linprog's.\n\n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.1f} at the end; Python "
            f"{platform.python_version()}.\n\n")
    table = ("| case | columns | rows | LPs | " + " | ".join(f"{n} (ms)" for n in names)
             + " | highspy / HiGHS defaults | " + " | ".join(f"{n} diff" for n in names[:-1])
             + " |\n|" + "---|" * (4 + 2 * len(names)) + "\n")
    return head + table + "".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES)
    parser.add_argument("--max-lps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3,
                        help="replays per backend; the fastest is reported")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "lp_backends.md")
    args = parser.parse_args()
    names = list(REPLAYS)
    rows = []
    for case, problem in zip(args.cases, load_cases(args.cases)):
        layout, lps = record(problem, args.max_lps)
        runs = {n: [replay(n, layout, lps) for _ in range(args.repeats)] for n in names}
        times = {n: min(seconds for seconds, _ in runs[n]) for n in names}
        values = {n: runs[n][0][1] for n in names}
        diffs = " | ".join(f"{_largest_difference(values[n], values['linprog']):.1e}"
                           for n in names[:-1])
        rows.append(f"| {case} | {layout.num_cols} | {layout.num_rows} | {len(lps)} | "
                    + " | ".join(f"{1e3 * times[n]:.2f}" for n in names)
                    + f" | {times['highspy'] / times['HiGHS defaults']:.2f} | {diffs} |\n")
        print(rows[-1], end="", flush=True)
    args.out.write_text(_report(rows, names))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
