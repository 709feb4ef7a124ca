"""``python -m bench``: build the cases, run every solver, write the report.

Exit status: 0 when every cross-check passes, 1 on any DISAGREEMENT, 2 on bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
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


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small subset (< 3 minutes)")
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
    p.add_argument("--max-cases", type=int, help="only the first N cases (smoke runs)")
    p.add_argument("--budget", type=float, help="minutes after which the remaining solves are "
                   f"skipped (default {FULL_BUDGET_MIN:g}, quick {QUICK_BUDGET_MIN:g}; "
                   "0: none)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--report-only", action="store_true",
                   help="re-render the report from OUT/results.csv and OUT/run.json")
    p.add_argument("--no-readme", action="store_true",
                   help="do not update the table in bench/README.md (full default run only)")
    return p.parse_args(argv)


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
    if not (args.quick or args.no_readme or args.out or args.families or args.max_cases):
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


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    limit = args.time_limit or (QUICK_TIME_LIMIT if args.quick else FULL_TIME_LIMIT)
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    if args.report_only:
        return report_only(out, args)
    solvers = select_solvers(args)
    start = time.perf_counter()
    print(f"building cases (cache {args.cache}) ...", file=sys.stderr, flush=True)
    cases = build_cases(args.families, CaseConfig(args.cache, args.quick))
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
    notes = [f"{len(cases)} cases, {len(solvers)} solvers, time limit {limit:g} s per solve, "
             f"total wall time {wall / 60:.1f} min ({'quick subset' if args.quick else 'full'})."]
    if skipped:
        notes.append(f"**{skipped} solves skipped: the time budget of {budget:g} min was used "
                     "up.**")
    title = "Benchmark results" + (" (quick subset)" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"time_limit": limit, "title": title,
                                              "notes": notes}, indent=1))
    return finish(records, out, limit, title, notes, args)


if __name__ == "__main__":
    sys.exit(main())
