"""``python -m bench``: build the cases, run every solver, write the report.

Exit status: 0 when every cross-check passes, 1 on any DISAGREEMENT, 2 on bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import time
from pathlib import Path

from bench import report
from bench.cases import DEFAULT_CACHE, FAMILIES, REPO, CaseConfig, build_cases, interleave
from bench.runner import (
    VARIANT_FAMILIES,
    ProgressLine,
    RunStatus,
    default_solvers,
    run_benchmark,
)

RESULTS = REPO / "bench" / "results"
README = REPO / "bench" / "README.md"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
#: Per-solve time limits (seconds) of the full run and of ``--quick``.
FULL_TIME_LIMIT, QUICK_TIME_LIMIT = 10.0, 5.0
#: Total budgets (minutes) after which remaining solves are skipped.
FULL_BUDGET_MIN, QUICK_BUDGET_MIN = 27.0, 2.5
#: ``--long``: these solvers, this limit (seconds, no total budget), on the cases where
#: ``LONG_PEER`` needed at least ``LONG_MIN_S`` seconds in the full run's results.
LONG_SOLVERS, LONG_TIME_LIMIT = ("bnb", "milp"), 60.0
LONG_PEER, LONG_MIN_S = "milp", 1.0
#: Families ``--long`` leaves out: no solver closes their cases.
LONG_SKIPS = ("open",)


def _variant(text: str) -> tuple[str, dict]:
    """``NAME:key=value,key=value`` -> ``(NAME, {key: value})`` (ints, floats and
    ``true`` / ``false`` parsed)."""
    name, _, rest = text.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if value.lower() in ("true", "false"):
            options[key.strip()] = value.lower() == "true"
            continue
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        options[key.strip()] = value
    if not name:
        raise argparse.ArgumentTypeError(f"--bnb-variant needs NAME:key=value, got {text!r}")
    return name, options


def _threshold(text: str) -> tuple[str, float]:
    """``SOLVER:SECONDS`` -> ``(SOLVER, SECONDS)``."""
    name, _, seconds = text.partition(":")
    try:
        value = float(seconds)
    except ValueError:
        value = math.nan
    if not name or not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"--slower-than needs SOLVER:SECONDS with SECONDS >= 0, got {text!r}")
    return name, value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small subset (< 3 minutes)")
    p.add_argument("--long", action="store_true",
                   help=f"{' and '.join(LONG_SOLVERS)} with a {LONG_TIME_LIMIT:g} s limit "
                   f"on the cases where {LONG_PEER} needed >= {LONG_MIN_S:g} s in the full "
                   f"run's results (not {', '.join(LONG_SKIPS)}), written to "
                   "bench/results/long")
    p.add_argument("--slower-than", type=_threshold, metavar="SOLVER:SECONDS",
                   help="only the cases where SOLVER took at least SECONDS in --from-results")
    p.add_argument("--from-results", type=Path, default=RESULTS / "results.csv",
                   help="the results.csv --slower-than reads (default: the full run's)")
    p.add_argument("--families", nargs="+", choices=sorted(FAMILIES),
                   help="case families (default: all)")
    p.add_argument("--solvers", nargs="+", help="solver names to run (default: all)")
    p.add_argument("--bnb-variant", action="append", type=_variant, default=[],
                   metavar="NAME:key=value,...", help="extra engine variant")
    p.add_argument("--variant-families", nargs="+", metavar="FAMILY",
                   help="families the engine variants run on (default: shared; 'all')")
    p.add_argument("--time-limit", type=float, help="seconds per solve "
                   f"(default {FULL_TIME_LIMIT:g}, quick {QUICK_TIME_LIMIT:g})")
    p.add_argument("--out", type=Path, help="output directory (default bench/results, "
                   "quick: bench/results/quick)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="case cache directory")
    p.add_argument("--cases", nargs="+", metavar="NAME",
                   help="only the cases with these names (among the families built)")
    p.add_argument("--max-cases", type=int, help="only the first N cases (smoke runs)")
    p.add_argument("--budget", type=float, help="minutes after which the remaining solves are "
                   f"skipped (default {FULL_BUDGET_MIN:g}, quick {QUICK_BUDGET_MIN:g}; "
                   "0: none)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--report-only", action="store_true",
                   help="re-render the report from OUT/results.csv and OUT/run.json")
    p.add_argument("--no-readme", action="store_true",
                   help="do not update the table in bench/README.md (full default run only)")
    args = p.parse_args(argv)
    if args.long and args.quick:
        p.error("--long and --quick exclude each other")
    if args.long:
        args.solvers = args.solvers or list(LONG_SOLVERS)
        args.time_limit = args.time_limit or LONG_TIME_LIMIT
        args.slower_than = args.slower_than or (LONG_PEER, LONG_MIN_S)
        args.out = args.out or RESULTS / "long"
        args.families = args.families or sorted(set(FAMILIES) - set(LONG_SKIPS))
        args.budget = 0.0 if args.budget is None else args.budget
    return args


def slow_cases(path: Path, solver: str, seconds: float) -> set[str]:
    """Names of the cases where ``solver`` ran for at least ``seconds`` in ``path``.

    Raises
    ------
    SystemExit
        With status 2 when ``path`` is missing or holds no run of ``solver``.
    """
    if not path.is_file():
        print(f"--from-results: {path} does not exist (run the full bench first)",
              file=sys.stderr)
        raise SystemExit(2)
    runs = [r for r in report.read_csv(path) if r.solver == solver and r.status.ran]
    if not runs:
        print(f"--slower-than: {path} holds no run of solver {solver!r}", file=sys.stderr)
        raise SystemExit(2)
    return {r.case for r in runs if r.time_s >= seconds}


def named_cases(cases: list, names: list[str]) -> list:
    """The ``cases`` whose names are in ``names``, in their order.

    Raises
    ------
    SystemExit
        With status 2 when a name matches no case.
    """
    known = {c.name for c in cases}
    unknown = [n for n in dict.fromkeys(names) if n not in known]
    if unknown:
        print(f"--cases: no case named {', '.join(map(repr, unknown))} among the "
              f"{len(known)} cases built (see --families)", file=sys.stderr)
        raise SystemExit(2)
    wanted = set(names)
    return [c for c in cases if c.name in wanted]


def select_solvers(args):
    fams = args.variant_families
    fams = VARIANT_FAMILIES if fams is None else (None if "all" in fams else tuple(fams))
    solvers = default_solvers(tuple(args.bnb_variant), fams)
    if args.solvers:
        unknown = set(args.solvers) - {s.name for s in solvers}
        if unknown:
            print(f"--solvers: unknown {sorted(unknown)}; known: {[s.name for s in solvers]}",
                  file=sys.stderr)
            raise SystemExit(2)
        solvers = [s for s in solvers if s.name in args.solvers]
    return solvers


def update_readme(summary: list[str], path: Path = README) -> None:
    """Replace the table between the result markers of ``path``."""
    if not path.exists():
        return
    text = path.read_text()
    block = "\n".join([README_START, *summary, README_END])
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if pattern.search(text):
        path.write_text(pattern.sub(lambda _: block, text))


def write_outputs(records, out: Path, time_limit: float, title: str, notes, plots: bool):
    """CSV, Markdown and plots; returns the disagreements."""
    out.mkdir(parents=True, exist_ok=True)
    found = report.cross_check(records)
    report.write_csv(records, out / "results.csv")
    (out / "results.md").write_text(report.markdown_report(records, time_limit, found, title,
                                                           notes))
    if plots:
        report.plot_time_vs_ambiguous(records, out / "time_vs_ambiguous.png", time_limit)
        report.plot_performance_profile(records, out / "performance_profile.png", time_limit)
    return found


def finish(records, out: Path, limit: float, title: str, notes, args) -> int:
    """Write the report, update the README (full default runs), print disagreements."""
    found = write_outputs(records, out, limit, title, notes, not args.no_plots)
    partial = args.quick or args.long or args.slower_than or args.families or args.max_cases \
        or args.cases
    if not (partial or args.no_readme or args.out):
        update_readme(notes + [""] + report.summary_tables(records, limit))
    for d in found:
        print(f"DISAGREEMENT {d.case}: {d.kind.value}: {d.solver}={d.value!r} vs "
              f"{d.other}={d.other_value!r} (rel {d.rel:.2e})", file=sys.stderr)
    print(f"wrote {out}; {len(found)} disagreement(s)", file=sys.stderr)
    return 1 if found else 0


def report_only(out: Path, args) -> int:
    """Re-render from a previous run's CSV and metadata."""
    meta = json.loads((out / "run.json").read_text())
    records = report.read_csv(out / "results.csv")
    return finish(records, out, meta["time_limit"], meta["title"], meta["notes"], args)


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    limit = args.time_limit or (QUICK_TIME_LIMIT if args.quick else FULL_TIME_LIMIT)
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    if args.report_only:
        return report_only(out, args)
    solvers = select_solvers(args)
    names = slow_cases(args.from_results, *args.slower_than) if args.slower_than else None
    start = time.perf_counter()
    print(f"building cases (cache {args.cache}) ...", file=sys.stderr, flush=True)
    cases = build_cases(args.families, CaseConfig(args.cache, args.quick))
    if names is not None:
        cases = [c for c in cases if c.name in names]
    if args.cases:
        cases = named_cases(cases, args.cases)
    if not cases:
        print("no case left to run (see --families, --slower-than, --cases)", file=sys.stderr)
        return 2
    cases = interleave(cases)
    if args.max_cases:
        cases = cases[:args.max_cases]
    print(f"{len(cases)} cases x {len(solvers)} solvers "
          f"({', '.join(s.name for s in solvers)}), time limit {limit:g} s",
          file=sys.stderr, flush=True)
    budget = args.budget if args.budget is not None else \
        (QUICK_BUDGET_MIN if args.quick else FULL_BUDGET_MIN)
    budget_s = budget * 60.0 - (time.perf_counter() - start) if budget > 0 else None
    records = run_benchmark(cases, solvers, limit, ProgressLine(len(cases)), budget_s)
    wall = time.perf_counter() - start
    skipped = sum(r.status is RunStatus.SKIPPED for r in records)
    kind = "quick subset" if args.quick else ("long" if args.long else "full")
    notes = [f"{len(cases)} cases, {len(solvers)} solvers, time limit {limit:g} s per solve, "
             f"total wall time {wall / 60:.1f} min ({kind})."]
    if skipped:
        notes.append(f"**{skipped} solves skipped: the time budget of {budget:g} min was used "
                     "up.**")
    title = "Benchmark results" + (" (quick subset)" if args.quick else "")
    if args.slower_than:
        solver, seconds = args.slower_than
        notes.append(f"Cases where `{solver}` took >= {seconds:g} s in "
                     f"`{_shown(args.from_results)}`.")
        title += f" (cases where {solver} took >= {seconds:g} s)"
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"time_limit": limit, "title": title,
                                              "notes": notes}, indent=1))
    return finish(records, out, limit, title, notes, args)


if __name__ == "__main__":
    sys.exit(main())
