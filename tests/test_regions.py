"""Regions, interior points and the cheap witness steps of the local ascent."""

from __future__ import annotations

import numpy as np
import pytest

from bnblip.bounds import forward_interval
from bnblip.errors import InputError
from bnblip.incumbent import check_witness, local_ascent, matches, witness_across
from bnblip.network import Network
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Box, Norm, make_problem
from bnblip.reference import solve_enumerate
from bnblip.regions import Halfspaces, interior_point, pattern_halfspaces, ray_interval
from bnblip.solver import solve_bnb
from tests.conftest import random_network

TOL = DEFAULT_TOLERANCES


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _inside(hs: Halfspaces, box: Box, x: np.ndarray, slack: float = 0.0) -> bool:
    return bool(np.all(hs.normal @ x - hs.offset >= -slack)
                and np.all(x >= box.lower - slack) and np.all(x <= box.upper + slack))


def _first_witness(net, box, norm, rng, count):
    """A re-checked witness at the first of ``count`` samples that gives one."""
    for x in box.sample(count, rng):
        wit = check_witness(net, box, norm, np.ones(1), x, TOL)
        if wit is not None:
            return wit
    raise AssertionError("no sample is a witness")


def _ambiguous_masks(net, box):
    """Per layer, the neurons interval bounds over ``box`` leave ambiguous."""
    fb = forward_interval(net, box.lower, box.upper)
    return tuple((lo < 0) & (hi > 0) for lo, hi in zip(fb.lower, fb.upper))


@pytest.mark.parametrize("seed", range(20))
def test_ray_interval_is_the_stretch_of_the_ray_inside(seed):
    rng = np.random.default_rng(seed)
    normal = _unit(rng.normal(size=(6, 3)))
    hs = Halfspaces(normal, rng.uniform(-0.8, 0.2, size=6))
    box = Box(-np.ones(3), np.ones(3))
    x = rng.uniform(-1, 1, 3)
    d = rng.normal(size=3)
    stretch = ray_interval(hs, box, x, d)
    steps = np.linspace(-4, 4, 4001)
    inside = np.array([_inside(hs, box, x + s * d) for s in steps])
    if stretch is None:
        assert not inside.any()
        return
    low, high = stretch
    assert low < high
    assert inside.any()
    assert steps[inside].min() >= low - 1e-12 and steps[inside].max() <= high + 1e-12
    assert _inside(hs, box, x + 0.5 * (low + high) * d, slack=1e-12)
    # the grid's first and last points inside are within one grid step of the ends
    assert steps[inside].min() - low <= 2.1e-3 and high - steps[inside].max() <= 2.1e-3


def test_ray_interval_none_when_the_ray_misses():
    hs = Halfspaces(np.array([[1.0, 0.0]]), np.array([0.5]))  # x0 >= 0.5
    box = Box(-np.ones(2), np.ones(2))
    assert ray_interval(hs, box, np.array([0.0, 0.0]), np.array([0.0, 1.0])) is None
    assert ray_interval(hs, box, np.array([0.0, 0.0]), np.array([1.0, 0.0])) == \
        pytest.approx((0.5, 1.0))


@pytest.mark.parametrize("seed", range(12))
def test_inset_interior_point_is_deep_inside(seed):
    rng = np.random.default_rng(seed)
    net = random_network(rng, [4, 6, 5, 1])
    box = Box(rng.uniform(-1, 0, 4), rng.uniform(0.1, 1, 4))
    found = 0
    for x in box.sample(30, rng):
        pattern = tuple(z > 0 for z in net.preactivations(x))
        hs = pattern_halfspaces(net, pattern)
        quick = interior_point(hs, box, TOL, inset=TOL.region_inset)
        full = interior_point(hs, box, TOL)
        if quick is None:
            continue
        found += 1
        assert full is not None  # the inset box lies in the box
        margin = TOL.region_inset * (box.upper - box.lower)
        assert np.all(quick.point >= box.lower + margin * (1 - 1e-9))
        assert np.all(quick.point <= box.upper - margin * (1 - 1e-9))
        assert np.all(hs.normal @ quick.point - hs.offset >= quick.radius * (1 - 1e-6) - 1e-12)
        assert quick.radius <= full.radius * (1 + 1e-6) + 1e-12
    assert found > 0


def test_inset_interior_point_misses_a_sliver_the_full_lp_finds():
    """The documented limit: a region thinner than the inset along a face."""
    box = Box(np.zeros(2), np.ones(2))
    hs = Halfspaces(np.array([[1.0, 0.0]]), np.array([1.0 - 0.2 * TOL.region_inset]))
    assert interior_point(hs, box, TOL, inset=TOL.region_inset) is None
    full = interior_point(hs, box, TOL)
    assert full is not None and full.point[0] > 1.0 - 0.2 * TOL.region_inset


@pytest.mark.parametrize("seed", range(10))
def test_rows_of_decided_neurons_do_not_change_full_dimensionality(seed):
    """Leaving out the rows of neurons the box decides keeps every region's verdict:
    patterns seen at samples, and random flips of them (often empty)."""
    rng = np.random.default_rng(100 + seed)
    net = random_network(rng, [3, 7, 6, 1])
    centre = rng.uniform(-1, 1, 3)
    box = Box(centre - 0.4, centre + 0.4)
    keep = _ambiguous_masks(net, box)
    flat_keep = np.concatenate(keep)
    patterns = [tuple(z > 0 for z in net.preactivations(x)) for x in box.sample(20, rng)]
    for base in list(patterns):
        flat = np.concatenate(base)
        free = np.flatnonzero(flat_keep)
        if free.size:
            flat = flat.copy()
            flat[rng.choice(free, size=min(2, free.size), replace=False)] ^= True
        patterns.append(tuple(np.split(flat, np.cumsum(net.hidden_widths)[:-1])))
    verdicts = set()
    for pattern in patterns:
        full = interior_point(pattern_halfspaces(net, pattern), box, TOL)
        kept = interior_point(pattern_halfspaces(net, pattern, keep=keep), box, TOL)
        assert (full is None) == (kept is None)
        verdicts.add(full is None)
    assert False in verdicts  # the sampled patterns are full-dimensional


@pytest.mark.parametrize("seed", range(10))
def test_witness_across_lands_in_the_flipped_region(seed):
    rng = np.random.default_rng(200 + seed)
    net = random_network(rng, [3, 8, 6, 1])
    box = Box(-np.ones(3), np.ones(3))
    c = np.ones(1)
    start = _first_witness(net, box, Norm.LINF, rng, 20)
    landed = 0
    for layer, width in enumerate(net.hidden_widths):
        for neuron in range(width):
            wit = witness_across(net, box, Norm.LINF, start, layer, neuron, TOL)
            if wit is None:
                continue
            landed += 1
            again = check_witness(net, box, Norm.LINF, c, wit.point, TOL)
            assert again is not None
            for k, (p, q) in enumerate(zip(again.pattern, start.pattern)):
                expect = np.asarray(q).copy()
                if k == layer:
                    expect[neuron] = not expect[neuron]
                assert np.array_equal(p, expect)
            assert wit.value == pytest.approx(again.value, rel=1e-12)
    assert landed > 0


@pytest.mark.parametrize("seed", range(6))
def test_local_ascent_with_flippable_mask_only_climbs_to_checked_witnesses(seed):
    rng = np.random.default_rng(300 + seed)
    net = random_network(rng, [4, 10, 8, 1])
    centre = rng.uniform(-1, 1, 4)
    box = Box(centre - 0.5, centre + 0.5)
    c = np.ones(1)
    start = _first_witness(net, box, Norm.L1, rng, 50)
    keep = _ambiguous_masks(net, box)
    top = local_ascent(net, box, Norm.L1, start, TOL, flippable=keep)
    assert top.value >= start.value
    again = check_witness(net, box, Norm.L1, c, top.point, TOL)
    assert again is not None and again.value == pytest.approx(top.value, rel=1e-12)
    for p, q, mask in zip(top.pattern, start.pattern, keep):
        assert np.array_equal(np.asarray(p)[~mask], np.asarray(q)[~mask])


def _sliver_network() -> Network:
    """Output ``10 relu(zB) + x0`` where, on the unit square, ``zB = x0 - 0.999``
    (plus 5e-9): active only on a band 1e-3 wide along the face ``x0 = 1``, within
    the quick LP's inset of that face."""
    w1 = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0]])
    b1 = np.array([1000.0, 1000.0, 0.0])
    w2 = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    b2 = np.array([-2000.999 + 5e-9, 0.0])
    return Network.from_layers([w1, w2, np.array([[10.0, 1.0]])], [b1, b2, np.zeros(1)])


def test_inset_point_of_a_sliver_is_not_taken_as_deep():
    box = Box(np.zeros(2), np.ones(2))
    net = _sliver_network()
    pattern = (np.array([True, True, True]), np.array([True, True]))
    hs = pattern_halfspaces(net, pattern)
    quick = interior_point(hs, box, TOL, inset=TOL.region_inset)
    full = interior_point(hs, box, TOL)
    assert full is not None and full.radius > 1e-4
    assert quick is None or (not quick.inset_bound and quick.radius < full.radius)
    wide = interior_point(pattern_halfspaces(net, (pattern[0], np.array([False, True]))),
                          box, TOL, inset=TOL.region_inset)
    assert wide is not None and wide.inset_bound


def test_leaf_in_a_sliver_near_the_box_face_is_witnessed():
    """Without samples or ascents only the leaf's region point can witness the
    sliver; the quick LP's shallow point there used to fail the re-check and leave
    the solve 'incomplete'."""
    problem = make_problem(_sliver_network(), Box(np.zeros(2), np.ones(2)), "linf",
                           c=np.ones(1))
    res = solve_bnb(problem, samples=1, starts=0, ascent_steps=0)
    assert res.status.value == "optimal"
    assert res.value == pytest.approx(solve_enumerate(problem).value, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_solver_flippable_masks_are_sound(seed):
    """Neurons the solver treats as decided on the box never change sign there."""
    from bnblip import solver

    rng = np.random.default_rng(400 + seed)
    net = random_network(rng, [3, 12, 10, 1], bias_scale=0.5)
    centre = rng.uniform(-1, 1, 3)
    box = Box(centre - 0.3, centre + 0.3)
    search = solver._Search(make_problem(net, box, "linf", c=np.ones(1)), TOL,
                            solver.BnbOptions(), None, None)
    masks = search.flippable()
    signs = [z > 0 for z in net.preactivations(box.sample(4000, rng))]
    decided = 0
    for sign, mask in zip(signs, masks):
        fixed = ~np.asarray(mask)
        decided += int(fixed.sum())
        assert np.all(sign[:, fixed] == sign[0, fixed])
    assert decided > 0


def test_keep_masks_must_cover_every_layer_and_inset_range():
    net = _sliver_network()
    pattern = (np.array([True, True, True]), np.array([True, True]))
    with pytest.raises(ValueError, match="keep has 1 masks"):
        pattern_halfspaces(net, pattern, keep=(np.ones(3, dtype=bool),))
    for bad in (0.0, 0.5):
        with pytest.raises(InputError, match="region_inset must be in"):
            Tolerances(region_inset=bad)


@pytest.mark.parametrize("seed", range(20))
def test_small_lp_front_end_matches_linprog(seed):
    """``lp.small.minimise`` (highspy, no presolve) reaches linprog's optimum on
    random bounded LPs, feasible or not."""
    from scipy import sparse
    from scipy.optimize import linprog

    from bnblip.lp.small import minimise

    rng = np.random.default_rng(seed)
    m, n = rng.integers(1, 15), rng.integers(1, 40)
    a = rng.normal(size=(m, n)) * (rng.random((m, n)) < 0.7)
    b = rng.normal(size=m) * (3.0 if seed % 2 else 0.2)
    lower = -rng.random(n)
    upper = rng.random(n)
    cost = rng.normal(size=n)
    ref = linprog(cost, A_ub=a, b_ub=b, bounds=np.column_stack([lower, upper]),
                  method="highs")
    x = minimise(cost, sparse.csr_matrix(a), b, lower, upper)
    assert (x is None) == (ref.status != 0)
    if x is not None:
        assert np.all(a @ x <= b + 1e-7) and np.all(x >= lower - 1e-9) and np.all(x <= upper + 1e-9)
        assert cost @ x == pytest.approx(ref.fun, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_affine_preactivations_give_the_network_on_its_region(seed):
    # z_i = A_i x + beta_i at points of the pattern's region, layer by layer (the
    # first layer's map is the weights themselves, not formed through an identity)
    from bnblip.regions import affine_preactivations

    rng = np.random.default_rng(seed)
    net = random_network(rng, [4, 7, 6, 5, 2])
    for _ in range(5):
        x = rng.uniform(-1.0, 1.0, 4)
        mats = affine_preactivations(net, net.pattern(x))
        assert len(mats) == net.num_hidden_layers
        for (z_mat, z_off), z in zip(mats, net.preactivations(x)):
            np.testing.assert_allclose(z_mat @ x + z_off, z, rtol=1e-12, atol=1e-12)
        first, _ = mats[0]
        before = net.weights[0].copy()
        first += 1.0  # a copy: the network's weights stay as they were
        np.testing.assert_array_equal(net.weights[0], before)


def test_issue3_patterns_match_a_witness_up_to_its_constant_zero_neurons():
    # layer 2: neuron 0 reads only the dead neuron (constant zero near every point),
    # neuron 1 reads relu(x1); either phase of the constant-zero neuron gives the
    # witness's gradient, a different phase anywhere else does not match
    net = Network.from_layers(
        [np.eye(2), np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[1.0, 1.0]])],
        [np.array([0.0, -10.0]), np.zeros(2), np.zeros(1)])
    box = Box(-np.ones(2), np.ones(2))
    wit = check_witness(net, box, Norm.LINF, np.ones(1), np.array([0.5, 0.3]), TOL)
    assert wit is not None
    as_seen = (np.array([True, False]), np.array([False, True]))
    zero_on = (np.array([True, False]), np.array([True, True]))
    dead_on = (np.array([True, True]), np.array([False, True]))
    first_off = (np.array([False, False]), np.array([False, True]))
    assert [np.array_equal(p, q) for p, q in zip(wit.pattern, as_seen)] == [True, True]
    assert matches(net, wit, as_seen) and matches(net, wit, zero_on)
    np.testing.assert_array_equal(net.gradient_for_pattern(zero_on, np.ones(1)), wit.gradient)
    assert not matches(net, wit, dead_on) and not matches(net, wit, first_off)
