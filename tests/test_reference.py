"""Reference solvers: MILP (HiGHS) and region enumeration.

They are held to each other on random networks, to the published exact values of
``/work/shared/cases``, to dense brute force (grids, sampling), and to hand-derived
values on degenerate networks.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np
import pytest

import bnblip
from bnblip.bounds import forward_interval
from bnblip.errors import InputError, TooLargeError
from bnblip.network import Network
from bnblip.options import Tolerances
from bnblip.problem import Box, Norm, make_problem
from bnblip.reference import solve_enumerate, solve_milp
from bnblip.reference_enum import ChebyshevLP
from bnblip.reference_milp import build_mip, run_mip, tighten_bounds
from bnblip.result import Method, Status
from tests.conftest import public_cases, random_network, requires_shared

REL = 1e-6
log = logging.getLogger(__name__)


# ---------------------------------------------------------------- helpers
def random_problem(seed: int):
    """Small random problem: 1-3 hidden layers, widths 2-8, inputs 2-4."""
    rng = np.random.default_rng(1000 + seed)
    depth = int(rng.integers(1, 4))
    n = int(rng.integers(2, 5))
    top = 9 if depth < 3 else 7
    hidden = [int(rng.integers(2, top)) for _ in range(depth)]
    widths = [n] + hidden + [int(rng.integers(1, 4))]
    net = random_network(rng, widths, bias_scale=0.3)
    radius = float(rng.choice([0.01, 0.1, 0.5, 1.0, 2.5]))
    centre = rng.normal(0.0, 1.0, n)
    box = Box(centre - radius * rng.uniform(0.5, 1.0, n), centre + radius)
    norm = ("linf", "l1")[seed % 2]
    return make_problem(net, box, norm, c=rng.normal(0.0, 1.0, widths[-1]))


def sampled_max(problem, c, count=2000, seed=0) -> float:
    """Largest gradient norm over uniform samples of the box."""
    xs = problem.box.sample(count, np.random.default_rng(seed))
    return float(problem.norm.dual_value(problem.network.gradient(xs, c)).max())


def assert_witness(result, problem) -> None:
    """The witness lies in the box and its exact gradient norm is the lower bound."""
    assert result.witness is not None
    x = result.witness
    assert problem.box.contains(x, 1e-9)
    grad = problem.network.gradient(x, result.functional)
    assert problem.norm.dual_value(grad) == pytest.approx(result.lower_bound, rel=1e-9, abs=1e-12)
    zs = problem.network.preactivations(x)
    assert all(np.all(z != 0) for z in zs)
    for z, p in zip(zs, result.pattern):
        np.testing.assert_array_equal(z > 0, p)


def assert_sound(result, problem, rel=REL) -> None:
    """Optimal, gap closed, witness valid, and no sample beats the value."""
    assert result.status is Status.OPTIMAL
    assert result.lower_bound <= result.upper_bound
    assert result.upper_bound - result.lower_bound <= max(1e-9, rel * result.upper_bound)
    assert_witness(result, problem)
    for c in problem.functionals:
        assert sampled_max(problem, c, 500) <= result.value * (1 + 1e-9) + 1e-12


CASES = public_cases()
ENUM_CASES = [c for c in CASES if c.name.startswith("pub_tiny_")]
MILP_CASES = [c for c in CASES if c.norm in ("linf", "l1") and c.peer_time_s < 5.0]


def case_problem(case):
    return make_problem(case.network, case.box, case.norm, c=case.c)


# ---------------------------------------------------------------- random agreement
@pytest.mark.parametrize("seed", range(110))
def test_enumeration_equals_milp_on_random_problems(seed):
    problem = random_problem(seed)
    enum = solve_enumerate(problem)
    milp = solve_milp(problem)
    assert enum.method is Method.ENUMERATE and milp.method is Method.MILP
    assert enum.value == pytest.approx(milp.value, rel=REL, abs=1e-9)
    assert_sound(enum, problem)
    assert_sound(milp, problem)
    assert enum.stats.regions >= 1


def test_random_problems_cover_the_intended_shapes():
    shapes = [random_problem(s) for s in range(110)]
    assert {p.network.num_hidden_layers for p in shapes} == {1, 2, 3}
    assert {p.network.input_dim for p in shapes} == {2, 3, 4}
    assert min(min(p.network.hidden_widths) for p in shapes) == 2
    assert max(max(p.network.hidden_widths) for p in shapes) == 8
    assert {p.norm for p in shapes} == {Norm.LINF, Norm.L1}


# ---------------------------------------------------------------- published cases
@requires_shared
@pytest.mark.parametrize("case", ENUM_CASES, ids=[c.name for c in ENUM_CASES])
def test_enumeration_reproduces_published_case(case):
    problem = case_problem(case)
    start = time.perf_counter()
    res = solve_enumerate(problem)
    log.info("enumerate %s: %.3f s, %d regions", case.name, time.perf_counter() - start,
             res.stats.regions)
    assert res.value == pytest.approx(case.exact, rel=REL)
    assert_sound(res, problem)


@requires_shared
@pytest.mark.parametrize("case", MILP_CASES, ids=[c.name for c in MILP_CASES])
def test_milp_reproduces_published_case(case):
    problem = case_problem(case)
    start = time.perf_counter()
    res = solve_milp(problem)
    log.info("milp %s: %.3f s (slowest peer %.3f s), %d nodes", case.name,
             time.perf_counter() - start, case.peer_time_s, res.stats.nodes)
    assert res.value == pytest.approx(case.exact, rel=REL)
    assert_sound(res, problem)


@requires_shared
def test_published_case_selection_is_not_empty():
    assert {c.norm for c in ENUM_CASES} == {"linf", "l1", "l2"}
    assert len(MILP_CASES) >= 10


# ---------------------------------------------------------------- brute force
def grid_points(box: Box, per_axis: int) -> np.ndarray:
    axes = [np.linspace(lo, hi, per_axis) for lo, hi in zip(box.lower, box.upper)]
    return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("norm", ["l2", "linf", "l1"])
def test_enumeration_equals_grid_brute_force(seed, norm):
    """Gradients are piecewise constant: a fine grid attains the exact value."""
    rng = np.random.default_rng(seed)
    n = 1 + seed % 2
    net = random_network(rng, [n, 6, 5, 2])
    box = Box(np.full(n, -1.5), np.full(n, 1.0))
    c = rng.normal(size=2)
    problem = make_problem(net, box, norm, c=c)
    res = solve_enumerate(problem)
    assert_sound(res, problem)
    xs = grid_points(box, 100_001 if n == 1 else 601)
    grid_max = float(problem.norm.dual_value(net.gradient(xs, c)).max())
    assert grid_max <= res.value * (1 + 1e-12)
    assert grid_max == pytest.approx(res.value, rel=1e-12)


def test_enumeration_counts_regions_of_a_known_arrangement():
    """Three lines in general position cut a large square into 7 regions."""
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    net = Network.from_layers([w, np.ones((1, 3))], [np.array([0.0, 0.0, -0.5]), np.zeros(1)])
    res = solve_enumerate(make_problem(net, Box([-5.0, -5.0], [5.0, 5.0]), "l2"))
    assert res.stats.regions == 7
    # the gradient is (1,0)+(0,1)+(1,1) where all three are active
    assert res.value == pytest.approx(np.sqrt(8.0), rel=1e-12)


# ---------------------------------------------------------------- MILP internals
@pytest.mark.parametrize("seed", range(8))
def test_tightened_bounds_are_sound_and_tighter(seed):
    rng = np.random.default_rng(seed)
    net = random_network(rng, [3, 8, 8, 6, 1])
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    tight = tighten_bounds(net, box).bounds
    loose = forward_interval(net, box.lower, box.upper)
    zs = net.preactivations(box.sample(20000, rng))
    for k, z in enumerate(zs):
        assert np.all(tight.lower[k] <= z.min(axis=0))
        assert np.all(tight.upper[k] >= z.max(axis=0))
        assert np.all(tight.lower[k] >= loose.lower[k])
        assert np.all(tight.upper[k] <= loose.upper[k])
    assert any(np.any(t > lo + 1e-6) for t, lo in zip(tight.lower, loose.lower))


@pytest.mark.parametrize("seed", range(12))
def test_mip_restricted_to_a_point_is_its_gradient_norm(seed):
    """With x fixed, the forward big-M rows force the pattern at x and the backward
    switch rows must reproduce the exact gradient: the MIP optimum is ||grad||_q."""
    rng = np.random.default_rng(100 + seed)
    net = random_network(rng, [3, 6, 5, 4, 2])
    norm = Norm.LINF if seed % 2 == 0 else Norm.L1
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    c = rng.normal(size=2)
    mip = build_mip(net, box, norm, c, tighten_bounds(net, box).bounds)
    x = box.sample(1, rng)[0]
    fixed = copy.deepcopy(mip)
    for col, value in zip(fixed.x_cols, x):
        fixed.model.lb[col] = fixed.model.ub[col] = value
    run = run_mip(fixed, Tolerances(), None)
    expected = norm.dual_value(net.gradient(x, c))
    assert run.finished
    assert run.upper == pytest.approx(expected, rel=1e-7, abs=1e-9)
    for got, want in zip(run.pattern, net.pattern(x)):
        np.testing.assert_array_equal(got, want)


def test_milp_without_tightening_agrees():
    problem = random_problem(4)
    assert solve_milp(problem, tighten=False).value == pytest.approx(
        solve_milp(problem).value, rel=REL)


def degenerate_network() -> Network:
    """f(x) = 5 relu(x) - 5 relu(x) + relu(x + 0.5): two identical hyperplanes."""
    return Network.from_layers([np.array([[1.0], [1.0], [1.0]]), np.array([[5.0, -5.0, 1.0]])],
                               [np.array([0.0, 0.0, 0.5]), np.zeros(1)])


def test_milp_cuts_off_patterns_without_a_full_dimensional_region():
    """Patterns (1,0,1) and (0,1,1) only meet the box at x = 0 (slopes 6 and 4); the
    true constant is 1 (f = relu(x + 0.5))."""
    problem = make_problem(degenerate_network(), Box([-1.0], [1.3]), "linf")
    res = solve_milp(problem)
    assert res.value == pytest.approx(1.0, rel=1e-9)
    assert_sound(res, problem)
    assert solve_enumerate(problem).value == pytest.approx(1.0, rel=1e-12)


def test_milp_reports_the_gap_when_cuts_are_exhausted():
    problem = make_problem(degenerate_network(), Box([-1.0], [1.3]), "l1")
    res = solve_milp(problem, max_cuts=1)
    assert res.status is Status.INCOMPLETE  # no limit stopped it: the gap stays open
    assert res.upper_bound == pytest.approx(4.0, rel=1e-7)
    assert res.lower_bound == pytest.approx(1.0, rel=1e-12)
    assert res.value == res.upper_bound
    assert_witness(res, problem)


# ---------------------------------------------------------------- functionals
@pytest.mark.parametrize("output_norm", ["linf", "l1"])
def test_output_norm_is_the_max_over_functionals(output_norm):
    rng = np.random.default_rng(7)
    net = random_network(rng, [3, 6, 5, 3])
    box = Box(np.full(3, -0.8), np.full(3, 1.0))
    problem = make_problem(net, box, "linf", output_norm=output_norm)
    assert len(problem.functionals) == (3 if output_norm == "linf" else 4)
    singles = [solve_enumerate(problem.with_functional(c)).value for c in problem.functionals]
    best = int(np.argmax(singles))
    for solve in (solve_enumerate, solve_milp):
        res = solve(problem)
        assert res.value == pytest.approx(max(singles), rel=REL)
        np.testing.assert_array_equal(res.functional, problem.functionals[best])
        assert_sound(res, problem)


# ---------------------------------------------------------------- limits and errors
def test_milp_rejects_l2():
    problem = random_problem(0)
    problem = make_problem(problem.network, problem.box, "l2", c=problem.functionals[0])
    with pytest.raises(InputError, match="milp supports norm 'linf' and 'l1'"):
        solve_milp(problem)


def test_milp_rejects_bad_max_cuts():
    with pytest.raises(InputError, match="max_cuts"):
        solve_milp(random_problem(0), max_cuts=-1)


def test_enumeration_refuses_too_many_neurons():
    rng = np.random.default_rng(0)
    net = random_network(rng, [2, 30, 20, 1])
    problem = make_problem(net, Box([-1.0, -1.0], [1.0, 1.0]), "linf")
    with pytest.raises(TooLargeError, match="max_neurons=40"):
        solve_enumerate(problem)
    with pytest.raises(TooLargeError, match="max_neurons=10"):
        solve_enumerate(make_problem(random_network(rng, [2, 6, 5, 1]), Box([0, 0], [1, 1])),
                        max_neurons=10)


def test_enumeration_stops_after_max_regions():
    problem = make_problem(degenerate_network(), Box([-1.0], [1.3]), "linf")
    with pytest.raises(TooLargeError, match="max_regions=2"):
        solve_enumerate(problem, max_regions=2)
    assert solve_enumerate(problem, max_regions=3).stats.regions == 3


@pytest.mark.parametrize("name,value", [("max_neurons", 0), ("max_regions", 1.5),
                                        ("max_regions", True)])
def test_enumeration_rejects_bad_options(name, value):
    with pytest.raises(InputError, match=name):
        solve_enumerate(random_problem(0), **{name: value})


def wide_problem(norm="linf"):
    rng = np.random.default_rng(3)
    net = random_network(rng, [4, 12, 12, 10, 1], bias_scale=0.1)
    return make_problem(net, Box(np.full(4, -2.0), np.full(4, 2.0)), norm)


def test_enumeration_time_limit_returns_sound_bounds():
    problem = wide_problem("l2")
    res = solve_enumerate(problem, time_limit=0.2)
    assert res.status is Status.TIME_LIMIT
    assert res.value == res.upper_bound
    assert res.lower_bound <= res.upper_bound
    assert_witness(res, problem)
    assert sampled_max(problem, problem.functionals[0]) <= res.upper_bound


def test_milp_time_limit_returns_sound_bounds():
    problem = wide_problem("linf")
    res = solve_milp(problem, time_limit=0.3)
    assert res.status in (Status.TIME_LIMIT, Status.OPTIMAL)
    assert res.lower_bound <= res.upper_bound
    assert_witness(res, problem)
    assert sampled_max(problem, problem.functionals[0]) <= res.upper_bound * (1 + 1e-9)


# ---------------------------------------------------------------- Chebyshev LP
def test_chebyshev_lp_push_pop():
    lp = ChebyshevLP(Box([0.0, 0.0], [2.0, 2.0]))
    assert lp.solve().radius == pytest.approx(1.0)
    lp.push(np.array([-1.0, 0.0]), -0.5)            # x0 <= 0.5
    found = lp.solve()
    assert found.radius == pytest.approx(0.25)
    assert found.point[0] == pytest.approx(0.25)
    lp.push(np.array([1.0, 0.0]), 0.5)              # x0 >= 0.5: a line, empty interior
    assert lp.solve() is None
    lp.pop()
    lp.pop()
    assert lp.solve().radius == pytest.approx(1.0)
    with pytest.raises(IndexError):
        lp.pop()


def test_results_record_method_and_stats():
    problem = random_problem(4)
    enum = solve_enumerate(problem)
    milp = solve_milp(problem)
    assert enum.stats.regions > 1 and enum.stats.lps > 0
    assert milp.stats.lps > 0 and milp.stats.time_presolve_s > 0
    assert enum.norm is milp.norm is problem.norm
    assert enum.options["max_regions"] == 200_000
    assert milp.options["tighten"] is True


def test_lipschitz_dispatches_to_the_references():
    import bnblip

    problem = random_problem(7)
    net, box, c = problem.network, problem.box, problem.functionals[0]
    for method in ("milp", "enumerate"):
        res = bnblip.lipschitz(net, box, problem.norm.value, c, method=method)
        assert res.method is Method(method)
        assert res.value == pytest.approx(solve_enumerate(problem).value, rel=REL)
    res = bnblip.lipschitz(net, box, "l2", c, method="enumerate", max_regions=1_000)
    assert res.options["max_regions"] == 1_000
    with pytest.raises(InputError, match="milp supports"):
        bnblip.lipschitz(net, box, "l2", c, method="milp")


# ------------------------------------------------------- issue 2 regression
def _stress_problem(seed: int, widths, norm: str, radius: float):
    rng = np.random.default_rng(seed)
    net = random_network(rng, widths, bias_scale=0.3)
    box = Box.ball(rng.uniform(-1, 1, widths[0]), radius)
    return make_problem(net, box, norm, c=rng.normal(size=widths[-1]))


@pytest.mark.parametrize("widen", [0.0, 2e-12, 1e-10])
def test_issue2_milp_tolerance_regression(widen):
    """HiGHS with mip_feasibility_tolerance=1e-9 reported 1.4563 as optimal here; the
    model admits 1.5403 (enumeration's value).  The MILP must not depend on 1e-12
    changes of the bound widening."""
    problem = _stress_problem(2004, [6, 5, 6, 2], "linf", 0.6)
    exact = solve_enumerate(problem).value
    tol = Tolerances(bound_rel_widen=widen)
    assert solve_milp(problem, tol=tol).value == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_issue2_milp_equals_enumeration_deeper(seed):
    norm = ("linf", "l1")[seed % 2]
    widths = [4 + seed % 3, 5, 6, 2] if seed % 3 else [6, 5, 6, 2]
    problem = _stress_problem(3000 + seed, widths, norm, 0.6)
    exact = solve_enumerate(problem).value
    for widen in (0.0, 2e-12):
        value = solve_milp(problem, tol=Tolerances(bound_rel_widen=widen)).value
        assert value == pytest.approx(exact, rel=1e-6), (widen, value, exact)


@pytest.mark.parametrize("norm", ["linf", "l1", "l2"])
def test_affine_network_without_hidden_layers(norm):
    """One linear region: the constant is the dual norm of ``W^T c`` (both references
    used to fail with an IndexError here)."""
    rng = np.random.default_rng(11)
    w = rng.normal(size=(3, 4))
    net = Network.from_layers([w], [rng.normal(size=3)])
    box = Box(-np.ones(4), np.ones(4))
    c = np.array([1.0, -1.0, 0.5])
    g = w.T @ c
    expected = {"linf": np.abs(g).sum(), "l1": np.abs(g).max(), "l2": np.linalg.norm(g)}[norm]
    for method in ("bnb", "enumerate", "milp"):
        if method == "milp" and norm == "l2":
            continue
        res = bnblip.lipschitz(net, box, norm, c=c, method=method)
        assert res.status is Status.OPTIMAL, method
        assert res.value == pytest.approx(expected, rel=1e-12), method
        assert res.witness is not None and np.all(box.lower <= res.witness) and \
            np.all(res.witness <= box.upper)


def test_milp_solver_error_becomes_an_incomplete_result(monkeypatch, caplog):
    """A HiGHS MIP failure ("Solve error") used to escape as a RuntimeError; it is now
    a result with the interval bound, a re-checked witness and status 'incomplete'."""
    from scipy.optimize import OptimizeResult

    from bnblip import reference_milp

    def failing_milp(*args, **kwargs):
        return OptimizeResult(status=4, message="Solve error", x=None, fun=None,
                              mip_node_count=3)

    rng = np.random.default_rng(5)
    net = random_network(rng, [3, 6, 5, 1])
    problem = make_problem(net, Box(-np.ones(3), np.ones(3)), "linf", c=np.ones(1))
    exact = solve_enumerate(problem)
    monkeypatch.setattr(reference_milp, "milp", failing_milp)
    with caplog.at_level(logging.WARNING, logger="bnblip.reference"):
        res = solve_milp(problem)
    assert res.status is Status.INCOMPLETE
    assert "Solve error" in caplog.text
    assert res.upper_bound >= exact.value * (1 - 1e-9)
    assert res.lower_bound <= exact.value * (1 + 1e-9)
    assert res.value == res.upper_bound
    assert res.witness is not None


@pytest.mark.parametrize(("method", "options", "message"), [
    ("milp", {"progress": print}, "unknown milp option.s. progress; known: max_cuts, tighten"),
    ("enumerate", {"progress": print},
     "unknown enumerate option.s. progress; known: max_neurons, max_regions"),
    ("milp", {"max_regions": 3}, "unknown milp option.s. max_regions"),
    ("enumerate", {"tighten": False}, "unknown enumerate option.s. tighten"),
    ("milp", {"node_limit": 5}, "node_limit applies to method 'bnb' only"),
    ("enumerate", {"node_limit": 5}, "node_limit applies to method 'bnb' only"),
])
def test_reference_methods_reject_options_they_do_not_take(method, options, message):
    # an InputError naming the option, not a TypeError from the solver's signature
    problem = random_problem(0)
    with pytest.raises(InputError, match=message):
        bnblip.lipschitz(problem.network, problem.box, "linf", problem.functionals[0],
                         method=method, **options)


def test_reference_methods_take_their_own_options():
    problem = random_problem(1)
    args = (problem.network, problem.box, "linf", problem.functionals[0])
    milp = bnblip.lipschitz(*args, method="milp", tighten=False, max_cuts=2)
    enum = bnblip.lipschitz(*args, method="enumerate", max_regions=10_000)
    assert milp.value == pytest.approx(enum.value, rel=1e-6)


@pytest.mark.parametrize(("statuses", "expected"), [
    ((Status.INCOMPLETE, Status.TIME_LIMIT), Status.TIME_LIMIT),
    ((Status.TIME_LIMIT, Status.INCOMPLETE), Status.TIME_LIMIT),
    ((Status.OPTIMAL, Status.INCOMPLETE), Status.INCOMPLETE),
    ((Status.INCOMPLETE, Status.INCOMPLETE), Status.INCOMPLETE),
])
def test_assemble_reports_a_limit_before_incomplete(statuses, expected):
    # several functionals: when a limit stopped any of them, the result says so
    from bnblip.reference_common import Outcome, assemble
    from bnblip.result import Stats

    problem = make_problem(random_network(np.random.default_rng(2), [2, 4, 2]),
                           Box(-np.ones(2), np.ones(2)), "linf", output_norm="linf")
    outcomes = [Outcome(c, 5.0 + k, None, s, Stats())
                for k, (c, s) in enumerate(zip(problem.functionals, statuses))]
    res = assemble(problem, outcomes, Method.MILP, Tolerances(), 1.0, {})
    assert res.status is expected and res.upper_bound == 6.0
