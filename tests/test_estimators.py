"""Issue 5: competing estimators and ``compare``.

Every proven upper bound must be >= the exact constant and every attained lower bound
<= it.  Exact values come from sources independent of the estimators: a brute-force
region enumeration written here (its own Chebyshev LPs), the published values of
``shared/cases``, and hand computations.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.stats import weibull_max

import bnblip
from bnblip.errors import InputError
from bnblip.estimators import REGISTRY, Kind, applicable, find_estimator, run_estimator
from bnblip.estimators.base import Estimate
from bnblip.estimators.clever import reverse_weibull_location
from bnblip.estimators.lipsdp import certified_rho, lmi_blocks, lmi_matrix
from bnblip.estimators.seqlip import greedy_max_spectral
from bnblip.network import Network
from bnblip.problem import Box, Norm, make_problem
from tests.conftest import public_cases, random_network, requires_shared

SLACK = 1e-9
NORMS = ("linf", "l1", "l2")


# ------------------------------------------------------------ brute-force exact values
def _affine_maps(net: Network, pattern):
    """``(A_k, beta_k)`` with ``z_k = A_k x + beta_k`` for the layers ``pattern`` covers."""
    mat, off = np.eye(net.input_dim), np.zeros(net.input_dim)
    maps = []
    for k in range(len(pattern) + 1):
        if k == net.num_hidden_layers:
            break
        z_mat = net.weights[k] @ mat
        z_off = net.weights[k] @ off + net.biases[k]
        maps.append((z_mat, z_off))
        if k < len(pattern):
            d = pattern[k].astype(float)
            mat, off = z_mat * d[:, None], z_off * d
    return maps


def _full_dimensional(net: Network, box: Box, pattern) -> bool:
    """Whether the region of the partial ``pattern`` has a Chebyshev radius > 1e-9."""
    rows, rhs = [], []
    for (z_mat, z_off), p in zip(_affine_maps(net, pattern), pattern):
        sign = np.where(p, 1.0, -1.0)
        for a_row, b_val, s in zip(z_mat, z_off, sign):
            nrm = np.linalg.norm(a_row)
            if nrm < 1e-14:
                if s * b_val <= 0:
                    return False
                continue
            rows.append(np.append(-s * a_row / nrm, 1.0))   # s(a x + b)/|a| >= r
            rhs.append(s * b_val / nrm)
    n = net.input_dim
    cost = np.zeros(n + 1)
    cost[-1] = -1.0
    res = linprog(cost, A_ub=np.array(rows) if rows else None,
                  b_ub=np.array(rhs) if rows else None,
                  bounds=[(lo, hi) for lo, hi in zip(box.lower, box.upper)] + [(None, 1.0)],
                  method="highs")
    return res.status == 0 and -res.fun > 1e-9


def full_patterns(net: Network, box: Box) -> list:
    """All activation patterns with a full-dimensional region in ``box`` (layer by layer)."""
    partial = [()]
    for width in net.hidden_widths:
        grown = []
        for prefix in partial:
            for bits in itertools.product((False, True), repeat=width):
                cand = prefix + (np.array(bits),)
                if _full_dimensional(net, box, cand):
                    grown.append(cand)
        partial = grown
    return partial


def pattern_gradient(net: Network, pattern, c) -> np.ndarray:
    y = net.weights[-1].T @ np.asarray(c, dtype=float)
    for w, d in zip(reversed(net.weights[:-1]), reversed(pattern)):
        y = w.T @ (y * d)
    return y


def dual_norm(g: np.ndarray, norm: str) -> float:
    return {"linf": np.abs(g).sum(), "l1": np.abs(g).max(), "l2": np.sqrt(g @ g)}[norm]


def brute_exact(net: Network, patterns, functionals, norm: str) -> float:
    return max(dual_norm(pattern_gradient(net, p, c), norm) for p in patterns
               for c in functionals)


def check_promise(est: Estimate, exact: float) -> None:
    if est.kind is Kind.UPPER:
        assert est.value >= exact * (1 - SLACK), (est, exact)
    elif est.kind is Kind.LOWER:
        assert est.value <= exact * (1 + SLACK), (est, exact)
        assert est.value > 0 or exact == 0
    else:
        assert np.isfinite(est.value) and est.value >= 0


# ------------------------------------------------------------ networks under test
def _trained_network() -> Network:
    from sklearn.datasets import make_moons
    from sklearn.neural_network import MLPClassifier

    x, y = make_moons(200, noise=0.1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # convergence warnings do not matter here
        clf = MLPClassifier((6, 4), activation="relu", max_iter=400, random_state=0).fit(x, y)
    return Network.from_layers([w.T for w in clf.coefs_], clf.intercepts_)


def _tiny_cases():
    rng = np.random.default_rng(7)
    cases = []
    for widths, scale in (([2, 6, 5, 2], 2.0), ([3, 6, 1], 1.5), ([2, 4, 4, 3, 2], 3.0),
                          ([2, 8, 2], 2.0)):
        net = random_network(rng, widths, bias_scale=0.3)
        lo = -scale * rng.uniform(0.5, 1, widths[0])
        box = Box(lo, lo + 2 * scale * rng.uniform(0.7, 1, widths[0]))
        cases.append((f"rand{widths}", net, box))
    cases.append(("moons(6,4)", _trained_network(), Box([-1.5, -1.0], [2.5, 1.5])))
    return cases


TINY = _tiny_cases()


@pytest.fixture(scope="module")
def tiny_exact():
    """Per case: feasible patterns and random functionals (one per output count)."""
    rng = np.random.default_rng(3)
    out = {}
    for name, net, box in TINY:
        c = rng.normal(size=net.output_dim)
        out[name] = (net, box, c, full_patterns(net, box))
    return out


# ------------------------------------------------------------ soundness
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("case", [name for name, _, _ in TINY])
def test_every_estimator_keeps_its_promise_on_tiny_nets(tiny_exact, case, norm):
    net, box, c, patterns = tiny_exact[case]
    exact = brute_exact(net, patterns, [c], norm)
    problem = make_problem(net, box, norm, c=c)
    specs = applicable(norm)
    assert {s.name for s in specs} >= {"NaiveUB", "FastLip", "RandomLB", "CLEVER"}
    for spec in specs:
        check_promise(spec.run(problem), exact)


def test_estimators_take_the_max_over_functionals(tiny_exact):
    net, box, _, patterns = tiny_exact["rand[2, 6, 5, 2]"]
    functionals = [np.eye(2)[0], np.eye(2)[1]]
    for norm in NORMS:
        exact = brute_exact(net, patterns, functionals, norm)
        problem = make_problem(net, box, norm, output_norm="linf")
        for spec in applicable(norm):
            check_promise(spec.run(problem), exact)
        # the random lower bound sees both outputs: it beats the single-output one
        single = make_problem(net, box, norm, c=functionals[0])
        assert (run_estimator("RandomLB", problem).value
                >= run_estimator("RandomLB", single).value)


@requires_shared
@pytest.mark.parametrize("case", public_cases(), ids=lambda case: case.name)
def test_every_estimator_keeps_its_promise_on_public_cases(case):
    problem = make_problem(case.network, case.box, case.norm, c=case.c)
    for spec in applicable(case.norm):
        check_promise(spec.run(problem), case.exact)


# ------------------------------------------------------------ hand-computed values
HAND_W1 = np.array([[1.0, -2.0], [3.0, 0.5]])
HAND_W2 = np.array([[1.0, 1.0]])


def _hand_problem(norm: str, box=None):
    net = Network.from_layers([HAND_W1, HAND_W2], [np.zeros(2), np.zeros(1)])
    return make_problem(net, box or Box([-1.0, -1.0], [1.0, 1.0]), norm)


def test_naive_hand_computed():
    # linf input: max |row sum| of W1 = 3.5, ||W2^T||_1 = 2
    assert run_estimator("NaiveUB", _hand_problem("linf")).value == pytest.approx(7.0)
    # l1 input: max |column sum| of W1 = 4, ||W2^T||_inf = 1
    assert run_estimator("NaiveUB", _hand_problem("l1")).value == pytest.approx(4.0)
    # l2: W1^T W1 = [[10, -0.5], [-0.5, 4.25]], largest eigenvalue from the quadratic
    lam = (14.25 + math.sqrt(5.75 ** 2 + 1.0)) / 2
    expected = math.sqrt(lam) * math.sqrt(2.0)
    assert run_estimator("NaiveUB", _hand_problem("l2")).value == pytest.approx(expected)


def test_naive_equals_exact_on_a_linear_network():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 4))
    net = Network.from_layers([w], [np.zeros(3)])
    c = np.array([1.0, -2.0, 0.5])
    g = w.T @ c
    for norm in NORMS:
        problem = make_problem(net, Box(-np.ones(4), np.ones(4)), norm, c=c)
        for spec in applicable(norm):
            if spec.kind is not Kind.ESTIMATE:
                value = spec.run(problem).value
                assert value == pytest.approx(dual_norm(g, norm), rel=1e-6), spec.name


def test_bounds_are_exact_inside_one_linear_region():
    # around (1, 1) both hidden neurons of the hand net are active: z = (-1, 3.5)?
    # pick a point where W1 x > 0 componentwise: x = (-1, 0.2) gives z = (-1.4, -2.9);
    # x = (0.2, -1) gives z = (2.2, 0.1) -> both active on a small box.
    box = Box([0.19, -1.001], [0.21, -0.999])
    g = HAND_W1.T @ HAND_W2[0]
    for norm in NORMS:
        problem = _hand_problem(norm, box)
        for name in ("FastLip", "RandomLB", "CLEVER") + (("LipLP",) if norm != "l2" else ()):
            value = run_estimator(name, problem).value
            assert value == pytest.approx(dual_norm(g, norm), rel=1e-6), (name, norm)


# ------------------------------------------------------------ individual estimators
def test_clever_recovers_a_weibull_location():
    sample = weibull_max.rvs(2.0, loc=3.0, scale=1.0, size=400, random_state=1)
    assert reverse_weibull_location(sample) == pytest.approx(3.0, abs=0.05)


def test_clever_degenerate_maxima_give_their_value():
    assert reverse_weibull_location(np.full(10, 2.5)) == 2.5


def test_random_lb_centre_only():
    problem = _hand_problem("linf", Box([0.1, -1.1], [0.3, -0.9]))
    # n_samples=1 evaluates only the centre (0.2, -1): gradient W1^T W2^T, both active
    est = run_estimator("RandomLB", problem, n_samples=1)
    assert est.value == pytest.approx(np.abs(HAND_W1.T @ HAND_W2[0]).sum())


def test_seqlip_greedy_between_start_and_brute_force():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(3, 6)), rng.normal(size=(6, 4))
    brute = max(np.linalg.norm((a * np.array(s)) @ b, 2)
                for s in itertools.product((0.0, 1.0), repeat=6))
    start = np.linalg.norm(a @ b, 2)
    greedy = greedy_max_spectral(a, b, np.ones(6), 100)
    assert start - 1e-12 <= greedy <= brute + 1e-12


def test_seqlip_single_hidden_layer_bounds_the_global_constant():
    # one hidden layer: SeqLip's term is max over sigma of ||w^T diag(sigma) W1||, which
    # is >= the exact constant over any box when maximised exactly; greedy is >= start.
    rng = np.random.default_rng(11)
    net = random_network(rng, [2, 5, 1])
    box = Box([-50.0, -50.0], [50.0, 50.0])
    exact = brute_exact(net, full_patterns(net, box), [np.ones(1)], "l2")
    value = run_estimator("SeqLip", make_problem(net, box, "l2"), n_restarts=8).value
    w = net.weights[1][0]
    all_sigma = max(np.linalg.norm((w * np.array(s)) @ net.weights[0])
                    for s in itertools.product((0.0, 1.0), repeat=5))
    assert value <= all_sigma + 1e-12
    assert all_sigma >= exact * (1 - SLACK)


def test_lipsdp_single_neuron_is_tight():
    v, w = np.array([3.0, -4.0]), 2.0
    net = Network.from_layers([v[None, :], np.array([[w]])], [np.zeros(1), np.zeros(1)])
    value = run_estimator("LipSDP", make_problem(net, Box([-1.0, -1.0], [1.0, 1.0]), "l2")).value
    assert 10.0 * (1 - SLACK) <= value <= 10.0 * (1 + 1e-4)


def test_lipsdp_bounds_the_global_constant():
    rng = np.random.default_rng(2)
    net = random_network(rng, [2, 4, 3, 1], bias_scale=0.5)
    box = Box([-100.0, -100.0], [100.0, 100.0])      # covers every bounded region
    exact = brute_exact(net, full_patterns(net, box), [np.ones(1)], "l2")
    assert run_estimator("LipSDP", make_problem(net, box, "l2")).value >= exact * (1 - SLACK)


def test_lipsdp_certificate_is_checked():
    rng = np.random.default_rng(4)
    weights = [rng.normal(size=(3, 2)), rng.normal(size=(2, 3))]
    w = rng.normal(size=2)
    a_mat, b_mat, last = lmi_blocks(weights, w)
    tol = bnblip.Tolerances()
    t = np.array([100.0, 100.0, 100.0, 10.0, 10.0])    # makes the hidden block definite
    rho = certified_rho(a_mat, b_mat, last, t, 2, tol)
    assert np.isfinite(rho)
    assert np.linalg.eigvalsh(lmi_matrix(a_mat, b_mat, last, t, rho, 2)).max() <= 0
    # just below the certified rho the LMI fails (rho is the smallest, up to inflation)
    assert np.linalg.eigvalsh(lmi_matrix(a_mat, b_mat, last, t, rho * 0.999, 2)).max() > 0
    # T = 0 cannot certify anything
    assert certified_rho(a_mat, b_mat, last, np.zeros(5), 2, tol) == math.inf


# ------------------------------------------------------------ registry and refusals
def test_registry_descriptors():
    assert isinstance(REGISTRY, tuple)
    names = [s.name for s in REGISTRY]
    assert names == sorted(set(names), key=names.index)
    kinds = {s.name: s.kind for s in REGISTRY}
    assert kinds == {"NaiveUB": Kind.UPPER, "FastLip": Kind.UPPER, "LipLP": Kind.UPPER,
                     "LipSDP": Kind.UPPER, "SeqLip": Kind.ESTIMATE, "CLEVER": Kind.ESTIMATE,
                     "RandomLB": Kind.LOWER}
    assert {k.value for k in Kind} == {"upper", "lower", "estimate"}
    assert find_estimator("fastlip").name == "FastLip"
    assert {s.name for s in applicable("l2")} >= {"LipSDP", "SeqLip"}
    assert "LipLP" not in {s.name for s in applicable("l2")}


@pytest.mark.parametrize(("name", "norm"), [("LipLP", "l2"), ("LipSDP", "linf"),
                                            ("LipSDP", "l1"), ("SeqLip", "linf")])
def test_unsupported_norm_is_refused(name, norm):
    with pytest.raises(InputError, match=f"estimator {name} does not support input norm "
                                         f"'{norm}'"):
        run_estimator(name, _hand_problem(norm))


def test_option_and_name_errors():
    with pytest.raises(InputError, match="unknown estimator 'Foo'"):
        run_estimator("Foo", _hand_problem("linf"))
    with pytest.raises(InputError, match="estimator RandomLB has no option 'samples'"):
        run_estimator("RandomLB", _hand_problem("linf"), samples=3)
    with pytest.raises(InputError, match="option n_samples must be an integer >= 1"):
        run_estimator("RandomLB", _hand_problem("linf"), n_samples=0)
    with pytest.raises(InputError, match="problem must be a bnblip.Problem"):
        find_estimator("NaiveUB").run("not a problem")


def test_estimate_record_is_frozen():
    est = run_estimator("NaiveUB", _hand_problem("l1"))
    assert est.name == "NaiveUB" and est.kind is Kind.UPPER and est.norm is Norm.L1
    assert est.time_s >= 0
    with pytest.raises(AttributeError):
        est.value = 0.0


# ------------------------------------------------------------ compare
def test_compare_contract(tiny_exact):
    from bnblip.comparison import compare, format_table

    net, box, c, patterns = tiny_exact["rand[2, 6, 5, 2]"]
    exact = brute_exact(net, patterns, [c], "linf")
    result = compare(net, box, "linf", c, method="milp")
    rows = result.to_dicts()
    assert [r["name"] for r in rows][0] == "exact"
    assert sum(r["name"] == "exact" for r in rows) == 1
    assert {r["name"] for r in rows} == {"exact"} | {s.name for s in applicable("linf")}
    for row in rows:
        assert {"name", "kind", "norm", "value", "time_s"} <= set(row)
        assert row["kind"] in ("exact", "upper", "lower", "estimate")
        assert row["norm"] == "linf"
    assert rows[0]["kind"] == "exact"
    assert rows[0]["value"] == pytest.approx(exact, rel=1e-6)
    for rec in result.records[1:]:
        assert rec.consistent
        assert rec.rel_error == pytest.approx((rec.value - exact) / exact, rel=1e-5, abs=1e-9)
    table = format_table(result)
    for row in rows:
        assert row["name"] in table
    assert format_table(result.records) == table


def test_compare_estimator_selection_and_errors():
    from bnblip.comparison import compare

    net = _hand_problem("linf").network
    box = Box([-1.0, -1.0], [1.0, 1.0])
    result = compare(net, box, "l1", estimators=["FastLip", "randomlb"], method="milp")
    assert [r.name for r in result.records] == ["exact", "FastLip", "RandomLB"]
    with pytest.raises(InputError, match="estimator LipLP does not support input norm 'l2'"):
        compare(net, box, "l2", estimators=["LipLP"])
    with pytest.raises(InputError, match="unknown estimator 'nope'"):
        compare(net, box, "linf", estimators=["nope"])
    with pytest.raises(InputError, match="domain has dimension 3"):
        compare(net, Box(np.zeros(3), np.ones(3)), "linf")


def test_lipsdp_input_reduction_and_scs():
    from bnblip.estimators.lipsdp import reduced_input_layer

    rng = np.random.default_rng(8)
    net = random_network(rng, [6, 3, 2, 1], bias_scale=0.5)
    reduced = reduced_input_layer(list(net.weights[:-1]))
    assert reduced[0].shape == (3, 3)
    np.testing.assert_allclose(reduced[0] @ reduced[0].T, net.weights[0] @ net.weights[0].T,
                               atol=1e-12)
    box = Box(-np.ones(6), np.ones(6))
    exact = brute_exact(net, full_patterns(net, box), [np.ones(1)], "l2")
    problem = make_problem(net, box, "l2")
    for solver in ("CLARABEL", "SCS"):
        assert run_estimator("LipSDP", problem, solver=solver).value >= exact * (1 - SLACK)


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_liplp_survives_weights_below_the_lp_tolerance(norm):
    # issue 5 regression: weight-decayed nets have input columns of W_1 ~1e-10 (pixels
    # that are always 0).  HiGHS drops such coefficients, and an unwidened gradient
    # bound [2.7e-9, 2.7e-9] then made the relaxation "infeasible" (reported as inf).
    w0 = np.array([[9e-10, 1.0], [9e-10, -1.0], [9e-10, 0.5]])
    net = Network.from_layers([w0, np.ones((1, 3))], [np.full(3, 5.0), np.zeros(1)])
    problem = make_problem(net, Box([0.0, -1.0], [0.05, 1.0]), norm)   # all neurons active
    exact = dual_norm(w0.T @ np.ones(3), norm)
    value = run_estimator("LipLP", problem).value
    assert exact * (1 - SLACK) <= value <= exact * (1 + 1e-6)
