"""Tests of the benchmark suite (issue 4): runner, peers, cross-checks and report."""

from __future__ import annotations

import csv
import io
import math
import sys

import numpy as np
import pytest

from bench import report
from bench.cases import Case, CaseConfig, build_cases, random_network
from bench.peers import NOT_INSTALLED, PeerUnavailable, solve_peer
from bench.runner import (
    ProgressLine,
    RunStatus,
    SolveRecord,
    SolverKind,
    SolverSpec,
    SolveTask,
    rotated,
    run_benchmark,
    solve_task,
)
from bnblip.problem import Norm

ENGINE = SolverSpec("bnb", SolverKind.BNB)
SOLVERS = [ENGINE, SolverSpec("milp", SolverKind.MILP), SolverSpec("scip", SolverKind.SCIP),
           SolverSpec("gurobi", SolverKind.GUROBI)]


def _tiny_case(tmp_path, name: str, seed: int, norm: str) -> Case:
    weights, biases = random_network([2, 5, 4, 2], seed)
    path = tmp_path / f"{name}.npz"
    np.savez(path, **{f"W{k}": w for k, w in enumerate(weights)},
             **{f"b{k}": b for k, b in enumerate(biases)})
    centre = np.array([0.3, -0.2])
    return Case(name, "tiny", str(path), centre - 0.8, centre + 0.8, np.array([1.0, -1.0]),
                norm, widths=(2, 5, 4, 2), ambiguous=9)


def _grid_constant(case: Case, steps: int = 401) -> float:
    """Largest dual-norm gradient on a dense grid: each linear region of a 2-D box of
    this size contains grid points, and the gradient is constant on a region."""
    net = case.network()
    u, v = np.meshgrid(np.linspace(case.lower[0], case.upper[0], steps),
                       np.linspace(case.lower[1], case.upper[1], steps))
    points = np.column_stack([u.ravel(), v.ravel()])
    x = points
    grads_mask = []
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = x @ w.T + b
        grads_mask.append(z > 0)
        x = np.maximum(z, 0.0)
    g = np.tile(case.c @ net.weights[-1], (len(points), 1))
    for w, mask in zip(reversed(net.weights[:-1]), reversed(grads_mask)):
        g = (g * mask) @ w
    dual = {"linf": 1, "l1": np.inf}[case.norm]
    return float(np.max(np.linalg.norm(g, ord=dual, axis=1)))


@pytest.fixture
def no_gurobi(monkeypatch):
    """Simulate a machine without gurobipy (its import raises ImportError)."""
    monkeypatch.setitem(sys.modules, "gurobipy", None)


def _record(case: str, solver: str, value: float, status=RunStatus.OPTIMAL, exact=math.nan,
            time_s=1.0, lower=None, upper=None) -> SolveRecord:
    return SolveRecord(case, "fab", solver, "linf", "2-3-2", 3, 3, exact, value,
                       value if lower is None else lower, value if upper is None else upper,
                       status, time_s)


# ---------------------------------------------------------------- runner end to end
def test_runner_writes_csv_and_markdown_and_reports_missing_peer(tmp_path, no_gurobi):
    cases = [_tiny_case(tmp_path, "tiny_a", 1, "linf"), _tiny_case(tmp_path, "tiny_b", 2, "l1")]
    stream = io.StringIO()
    records = run_benchmark(cases, SOLVERS, 5.0, ProgressLine(len(cases), stream))
    assert [(r.case, r.solver) for r in records] == \
        [(c.name, s.name) for c in cases for s in SOLVERS]
    for case in cases:
        expected = _grid_constant(case)
        for r in records:
            if r.case == case.name and r.solver in ("bnb", "milp"):
                assert r.status is RunStatus.OPTIMAL
                assert r.value == pytest.approx(expected, rel=1e-6)
                assert r.time_s > 0 and r.peak_mem_mb > 0
    gurobi = [r for r in records if r.solver == "gurobi"]
    assert all(r.status is RunStatus.NOT_INSTALLED for r in gurobi)
    scip = [r for r in records if r.solver == "scip"]
    assert all(r.status in (RunStatus.OPTIMAL, RunStatus.NOT_INSTALLED) for r in scip)
    assert "2/2" in stream.getvalue() and "tiny_b" in stream.getvalue()

    found = report.cross_check(records)
    assert found == []
    report.write_csv(records, tmp_path / "results.csv")
    with open(tmp_path / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(cases) * len(SOLVERS)
    assert {row["status"] for row in rows if row["solver"] == "gurobi"} == {"not installed"}
    assert report.read_csv(tmp_path / "results.csv")[0].value == records[0].value
    text = report.markdown_report(records, 5.0, found, "Test")
    assert "DISAGREEMENT" not in text
    solved_row = next(line for line in text.splitlines() if line.startswith("| all |"))
    assert "not installed" in solved_row and "2/2" in solved_row


def test_peer_reports_not_installed_in_the_worker_path(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyscipopt", None)
    case = _tiny_case(tmp_path, "tiny_c", 3, "linf")
    with pytest.raises(PeerUnavailable) as err:
        solve_peer("scip", case.network(), case.box(), Norm.LINF, case.c, 5.0)
    assert err.value.reason == NOT_INSTALLED
    record = solve_task(SolveTask(case, SolverSpec("scip", SolverKind.SCIP), 5.0))
    assert record.status is RunStatus.NOT_INSTALLED


def test_l2_case_is_unsupported_for_mip_solvers(tmp_path):
    case = _tiny_case(tmp_path, "tiny_d", 4, "l2")
    record = solve_task(SolveTask(case, SolverSpec("milp", SolverKind.MILP), 5.0))
    assert record.status is RunStatus.UNSUPPORTED and math.isnan(record.value)


def test_installed_peers_agree_with_the_grid(tmp_path):
    case = _tiny_case(tmp_path, "tiny_e", 5, "l1")
    expected = _grid_constant(case)
    for name in ("scip", "gurobi"):
        try:
            out = solve_peer(name, case.network(), case.box(), Norm.L1, case.c, 20.0)
        except PeerUnavailable:
            continue
        assert out.value == pytest.approx(expected, rel=1e-6)
        assert out.lower_bound <= out.value * (1 + 1e-9)


# ---------------------------------------------------------------- cross-checks
def test_disagreement_between_optimal_solvers_is_detected():
    records = [_record("p", "bnb", 1.0), _record("p", "milp", 1.0 + 1e-3),
               _record("q", "bnb", 2.0), _record("q", "milp", 2.0 * (1 + 1e-8))]
    found = report.cross_check(records)
    assert [(d.case, d.kind, d.solver, d.other) for d in found] == [
        ("p", report.Clash.OPTIMAL_VALUES, "bnb", "milp"),
        ("p", report.Clash.UPPER_BELOW_WITNESS, "bnb", "milp")]
    assert found[0].rel == pytest.approx(1e-3 / 1.001)


def test_upper_bound_below_a_witness_of_an_unfinished_solver_is_detected():
    records = [_record("p", "bnb", 2.0, status=RunStatus.OPTIMAL),
               _record("p", "milp", 3.0, status=RunStatus.TIME_LIMIT, lower=2.5, upper=3.0)]
    found = report.cross_check(records)
    assert [(d.kind, d.solver, d.value, d.other, d.other_value) for d in found] == [
        (report.Clash.UPPER_BELOW_WITNESS, "bnb", 2.0, "milp", 2.5)]


def test_disagreement_with_exact_value_and_unsound_bounds():
    records = [_record("p", "bnb", 1.5, exact=1.5),
               _record("p", "scip", 1.6, exact=1.5),
               _record("p", "milp", 1.4, status=RunStatus.TIME_LIMIT, exact=1.5, lower=1.0,
                       upper=1.4),
               _record("p", "gurobi", math.nan, status=RunStatus.NOT_INSTALLED, exact=1.5)]
    kinds = {(d.solver, d.kind) for d in report.cross_check(records)}
    assert ("scip", report.Clash.EXACT_VALUE) in kinds
    assert ("scip", report.Clash.LOWER_ABOVE) in kinds
    assert ("milp", report.Clash.UPPER_BELOW) in kinds
    assert ("bnb", report.Clash.OPTIMAL_VALUES) in kinds
    assert ("bnb", report.Clash.EXACT_VALUE) not in kinds
    assert not any(d.solver == "gurobi" for d in report.cross_check(records))


def test_markdown_has_disagreement_section_and_main_exit_code(tmp_path):
    from bench.__main__ import write_outputs

    records = [_record("p", "bnb", 1.0), _record("p", "milp", 1.1)]
    found = write_outputs(records, tmp_path, 10.0, "T", [], plots=True)
    text = (tmp_path / "results.md").read_text()
    assert found and text.index("## DISAGREEMENT") < text.index("### Solved")
    assert (tmp_path / "time_vs_ambiguous.png").stat().st_size > 0
    assert (tmp_path / "performance_profile.png").stat().st_size > 0


# ---------------------------------------------------------------- ratios and helpers
def test_geometric_mean_ratios_against_the_engine():
    records = [_record("a", "bnb", 1.0, time_s=1.0), _record("a", "milp", 1.0, time_s=4.0),
               _record("b", "bnb", 1.0, time_s=2.0), _record("b", "milp", 1.0, time_s=0.5),
               _record("c", "bnb", 1.0, time_s=1.0),
               _record("c", "milp", 9.0, status=RunStatus.TIME_LIMIT, time_s=10.0)]
    ratios = report.time_ratios(records, "milp", time_limit=10.0)
    assert sorted(ratios) == pytest.approx([0.25, 4.0, 10.0])
    assert report.geomean(ratios) == pytest.approx((0.25 * 4.0 * 10.0) ** (1 / 3))
    hard = report.time_ratios(records, "milp", time_limit=10.0, min_solver_s=1.0)
    assert sorted(hard) == pytest.approx([4.0, 10.0])


def test_a_run_that_ends_incomplete_counts_with_its_own_time():
    # HiGHS's MIP may finish in 1.4 s with its bound 3e-6 above the witnessed value
    # (depth_8 l1): no limit stopped it, so it must not count as a 10 s run
    records = [_record("a", "bnb", 1.0, time_s=1.0),
               _record("a", "milp", 1.0, status=RunStatus.INCOMPLETE, time_s=1.4),
               _record("b", "bnb", 1.0, time_s=1.0),
               _record("b", "milp", 1.0, status=RunStatus.TIME_LIMIT, time_s=10.02)]
    assert sorted(report.time_ratios(records, "milp", time_limit=10.0)) == pytest.approx(
        [1.4, 10.0])
    assert RunStatus("incomplete").ran


def test_an_incomplete_engine_run_counts_with_the_time_limit():
    # the engine's own 'incomplete' never makes it look faster: its time is the limit
    records = [_record("a", "bnb", 1.0, status=RunStatus.INCOMPLETE, time_s=0.5),
               _record("a", "milp", 1.0, time_s=2.0)]
    assert report.time_ratios(records, "milp", time_limit=10.0) == pytest.approx([0.2])


def test_performance_profile_ratios():
    records = [_record("a", "bnb", 1.0, time_s=1.0), _record("a", "milp", 1.0, time_s=3.0),
               _record("b", "bnb", 1.0, status=RunStatus.TIME_LIMIT, time_s=10.0),
               _record("b", "milp", 1.0, time_s=2.0)]
    records += [_record("a", "variant", 1.0, time_s=2.0),
                _record("b", "variant", math.nan, status=RunStatus.UNSUPPORTED)]
    prof = report.performance_profile(records, 10.0)
    assert list(prof["bnb"]) == [1.0, math.inf]
    assert list(prof["milp"]) == [1.0, 3.0]
    assert list(prof["variant"]) == [2.0]


def test_rotating_order_puts_each_solver_first_once():
    names = ["a", "b", "c"]
    firsts = [rotated(names, i)[0] for i in range(3)]
    assert sorted(firsts) == names and rotated(names, 4) == ["b", "c", "a"]


def test_generated_families_are_deterministic(tmp_path):
    cfg = CaseConfig(tmp_path / "cache", quick=True)
    first = build_cases(["depth", "width"], cfg)
    again = build_cases(["depth", "width"], CaseConfig(tmp_path / "other", quick=True))
    assert [c.name for c in first] == [c.name for c in again]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.lower, b.lower)
        for wa, wb in zip(a.network().weights, b.network().weights):
            np.testing.assert_array_equal(wa, wb)
        assert a.ambiguous == b.ambiguous >= 0


def test_budget_used_up_skips_remaining_solves(tmp_path, no_gurobi):
    cases = [_tiny_case(tmp_path, "tiny_f", 6, "linf")]
    records = run_benchmark(cases, SOLVERS, 5.0, budget_s=0.0)
    status = {r.solver: r.status for r in records}
    assert status == {"bnb": RunStatus.SKIPPED, "milp": RunStatus.SKIPPED,
                      "scip": status["scip"], "gurobi": RunStatus.NOT_INSTALLED}
    assert status["scip"] in (RunStatus.SKIPPED, RunStatus.NOT_INSTALLED)
    assert "1 skipped" in report.markdown_report(records, 5.0, [], "T")


def test_variant_restricted_to_families_is_not_run_elsewhere(tmp_path):
    case = _tiny_case(tmp_path, "tiny_g", 7, "linf")
    variant = SolverSpec("bnb-x", SolverKind.BNB, (("strong", 1),), ("shared",))
    record = solve_task(SolveTask(case, variant, 5.0))
    assert record.status is RunStatus.UNSUPPORTED and "family" in record.message


def test_default_solvers_only_use_known_engine_options():
    from bench.runner import bnb_option_names, default_solvers

    known = bnb_option_names()
    solvers = default_solvers((("bogus", {"no_such_option": 1}),))
    assert "bogus" not in {s.name for s in solvers}
    assert all({k for k, _ in s.options} <= known for s in solvers)
    assert [s.name for s in solvers][0] == "bnb"


def test_interleave_round_robins_over_families(tmp_path):
    from bench.cases import interleave

    def case(name, family):
        return Case(name, family, "", np.zeros(1), np.ones(1), np.ones(1), "linf")

    cases = [case("a1", "a"), case("a2", "a"), case("a3", "a"), case("b1", "b")]
    assert [c.name for c in interleave(cases)] == ["a1", "b1", "a2", "a3"]


def test_readme_table_is_replaced_between_markers(tmp_path):
    from bench.__main__ import README_END, README_START, update_readme

    path = tmp_path / "README.md"
    path.write_text(f"intro\n{README_START}\nold table\n{README_END}\nafter\n")
    update_readme(["| new |", "|---|"], path)
    text = path.read_text()
    assert "old table" not in text and "| new |" in text
    assert text.startswith("intro\n") and text.endswith("after\n")


def test_variant_option_values_are_typed():
    from bench.__main__ import _variant

    name, options = _variant("v:dive=false,strong=2,rel=0.5,tighten=never,check_monotone=True")
    assert name == "v"
    assert options == {"dive": False, "strong": 2, "rel": 0.5, "tighten": "never",
                       "check_monotone": True}
    assert options["dive"] is False and options["check_monotone"] is True


def test_gradient_variant_runs_on_linf_cases_only(tmp_path):
    from bench.runner import engine_solvers, not_runnable

    spec = next(s for s in engine_solvers(variant_families=None) if s.name == "bnb-gradient")
    assert dict(spec.options) == {"gradient": "always"}
    for norm in ("l1", "l2"):
        record = not_runnable(_tiny_case(tmp_path, f"tiny_g_{norm}", 3, norm), spec)
        assert record is not None and record.status is RunStatus.UNSUPPORTED
    assert not_runnable(_tiny_case(tmp_path, "tiny_g_linf", 3, "linf"), spec) is None


# ---------------------------------------------------------------- --long and --slower-than
def test_slower_than_selects_the_cases_where_the_solver_ran_that_long(tmp_path):
    from bench.__main__ import slow_cases

    records = [_record("fast", "milp", 1.0, time_s=0.5), _record("slow", "milp", 1.0, time_s=2.0),
               _record("limit", "milp", 1.0, status=RunStatus.TIME_LIMIT, time_s=10.0),
               _record("skipped", "milp", 1.0, status=RunStatus.SKIPPED, time_s=math.nan),
               _record("fast", "bnb", 1.0, time_s=5.0)]
    path = tmp_path / "results.csv"
    report.write_csv(records, path)
    assert slow_cases(path, "milp", 1.0) == {"slow", "limit"}
    assert slow_cases(path, "milp", 0.0) == {"fast", "slow", "limit"}
    assert slow_cases(path, "bnb", 1.0) == {"fast"}


def test_slower_than_names_a_missing_file_or_solver(tmp_path, capsys):
    from bench.__main__ import slow_cases

    with pytest.raises(SystemExit) as exc:
        slow_cases(tmp_path / "none.csv", "milp", 1.0)
    assert exc.value.code == 2 and "--from-results" in capsys.readouterr().err
    path = tmp_path / "results.csv"
    report.write_csv([_record("a", "bnb", 1.0)], path)
    with pytest.raises(SystemExit) as exc:
        slow_cases(path, "milp", 1.0)
    assert exc.value.code == 2 and "'milp'" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["milp", "milp:", ":1", "milp:x", "milp:-1", "milp:nan"])
def test_slower_than_argument_is_validated(text, capsys):
    from bench.__main__ import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args(["--slower-than", text])
    assert exc.value.code == 2 and "SOLVER:SECONDS" in capsys.readouterr().err


def test_long_fills_its_defaults_and_keeps_given_ones(tmp_path):
    from bench.__main__ import (
        LONG_MIN_S,
        LONG_PEER,
        LONG_SKIPS,
        LONG_SOLVERS,
        LONG_TIME_LIMIT,
        RESULTS,
        parse_args,
    )

    args = parse_args(["--long"])
    assert args.solvers == list(LONG_SOLVERS) and args.time_limit == LONG_TIME_LIMIT
    assert args.slower_than == (LONG_PEER, LONG_MIN_S) and args.budget == 0.0
    assert args.out == RESULTS / "long" and not set(LONG_SKIPS) & set(args.families)
    args = parse_args(["--long", "--time-limit", "30", "--out", str(tmp_path),
                       "--slower-than", "scip:2", "--budget", "5", "--families", "open"])
    assert (args.time_limit, args.out, args.slower_than, args.budget, args.families) == \
        (30.0, tmp_path, ("scip", 2.0), 5.0, ["open"])
    assert parse_args([]).slower_than is None


def test_cases_selects_the_named_cases_and_names_an_unknown_one(tmp_path, capsys):
    from bench.__main__ import named_cases, parse_args

    cases = [_tiny_case(tmp_path, name, seed, "linf")
             for seed, name in enumerate(["first", "second", "third"])]
    assert [c.name for c in named_cases(cases, ["third", "first"])] == ["first", "third"]
    assert [c.name for c in named_cases(cases, ["second", "second"])] == ["second"]
    with pytest.raises(SystemExit) as exc:
        named_cases(cases, ["second", "fourth"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--cases" in err and "'fourth'" in err and "second" not in err
    assert parse_args(["--cases", "a", "b"]).cases == ["a", "b"]
    assert parse_args([]).cases is None


def test_long_and_quick_exclude_each_other(capsys):
    from bench.__main__ import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args(["--long", "--quick"])
    assert exc.value.code == 2 and "exclude" in capsys.readouterr().err


def test_issue3_lp_backend_replay_keeps_warm_starts_and_values(tmp_path):
    # bench/bench_lp_backends.py: the recorded node LPs chain warm starts, and the
    # replays through every backend give the same optimal values
    from bench import bench_lp_backends as lpb
    from bnblip.problem import make_problem

    case = _tiny_case(tmp_path, "tiny_lp", 5, "linf")
    problem = make_problem(case.network(), case.box(), case.norm, c=case.c)
    layout, lps = lpb.record(problem, 60)
    assert len(lps) >= 5 and any(lp.start >= 0 for lp in lps)
    assert all(lp.start < i for i, lp in enumerate(lps))
    values = {name: lpb.replay(name, layout, lps)[1] for name in lpb.REPLAYS}
    cold = values["linprog"]
    for name in ("highspy", "HiGHS defaults"):
        warm = values[name]
        assert np.array_equal(np.isneginf(warm), np.isneginf(cold))
        solved = np.isfinite(warm)
        assert solved.any()
        np.testing.assert_allclose(warm[solved], cold[solved], rtol=1e-7, atol=1e-9)
