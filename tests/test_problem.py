"""Problem specification: domains, norms, output functionals and their errors."""

import numpy as np
import pytest

from bnblip.errors import InputError
from bnblip.problem import Box, Norm, OutputNorm, make_problem
from tests.conftest import random_network


@pytest.fixture
def net():
    return random_network(np.random.default_rng(0), [3, 5, 4])


def test_dual_norms():
    g = np.array([3.0, -4.0])
    assert Norm.LINF.dual_value(g) == 7.0
    assert Norm.L1.dual_value(g) == 4.0
    assert Norm.L2.dual_value(g) == 5.0


def test_ball_clip_and_broadcast():
    box = Box.ball([0.05, 0.5, 0.98], 0.1, clip=(0, 1))
    np.testing.assert_allclose(box.lower, [0.0, 0.4, 0.88])
    np.testing.assert_allclose(box.upper, [0.15, 0.6, 1.0])
    assert Box([0.0], [1.0, 2.0]).dim == 2


def test_box_leaves_the_callers_arrays_writeable_and_its_own_read_only():
    lower, upper = np.zeros(2), np.ones(2)
    box = Box(lower, upper)
    assert lower.flags.writeable and upper.flags.writeable
    lower[0] = -5.0  # the box does not follow the caller's later edits
    assert box.lower[0] == 0.0
    assert not box.lower.flags.writeable and not box.upper.flags.writeable


@pytest.mark.parametrize("method", ["bnb", "milp", "enumerate"])
def test_box_with_a_negative_zero_upper_end_solves_like_a_positive_zero(method):
    # 0.0 <= -0.0 holds, so the box is valid; the degenerate coordinate is flat
    import bnblip

    rng = np.random.default_rng(5)
    net = random_network(rng, [2, 3, 1])
    flat = Box(np.array([-1.0, 0.0]), np.array([1.0, -0.0]))
    assert not np.signbit(flat.upper).any()
    same = Box(np.array([-1.0, 0.0]), np.array([1.0, 0.0]))
    got = bnblip.lipschitz(net, flat, "linf", method=method)
    want = bnblip.lipschitz(net, same, "linf", method=method)
    assert got.status.value == "optimal"
    assert got.value == pytest.approx(want.value, rel=1e-9)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lower": [1.0, 0.0], "upper": [0.0, 1.0]}, "lower must be <= upper .* index 0"),
    ({"lower": [0.0, 0.0], "upper": [1.0, 1.0, 1.0]}, "same length"),
    ({"lower": [np.nan], "upper": [1.0]}, "lower must be finite"),
    ({"lower": [["a"]], "upper": [1.0]}, "lower must be numeric"),
    ({"lower": [[0.0]], "upper": [[1.0]]}, "lower must be a vector"),
])
def test_box_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        Box(**kwargs)


@pytest.mark.parametrize(("args", "message"), [
    (([0.0], -1.0), "radius must be finite and >= 0"),
    (([0.0], "x"), "radius must be a number"),
])
def test_ball_errors(args, message):
    with pytest.raises(InputError, match=message):
        Box.ball(*args)


def test_ball_clip_errors():
    with pytest.raises(InputError, match="clip must be a pair"):
        Box.ball([0.0], 1.0, clip=(0.0,))
    with pytest.raises(InputError, match="lo <= hi"):
        Box.ball([0.0], 1.0, clip=(1.0, 0.0))


def test_functionals(net):
    box = Box(np.zeros(3), np.ones(3))
    assert make_problem(net, box, c=2.0).functionals[0].tolist() == [2.0] * 4
    ld = make_problem(net, box, logit_diff=(1, 3)).functionals[0]
    assert ld.tolist() == [0.0, 1.0, 0.0, -1.0]
    linf = make_problem(net, box, output_norm="linf")
    assert len(linf.functionals) == 4 and linf.output_norm is OutputNorm.LINF
    l1 = make_problem(net, box, output_norm="l1")
    # one representative per +-pair of sign vectors
    assert len(l1.functionals) == 8
    assert len({tuple(v) for v in l1.functionals} | {tuple(-v) for v in l1.functionals}) == 16


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"norm": "l3", "c": np.ones(4)}, "norm must be one of 'linf', 'l1', 'l2', got 'l3'"),
    ({"c": [1.0, 2.0]}, "c must have length 4"),
    ({"c": [1.0, np.nan, 0, 0]}, "c must be finite"),
    ({"logit_diff": (0, 4)}, r"logit_diff\[1\] must be an output index in \[0, 3\]"),
    ({"logit_diff": (2, 2)}, "logit_diff indices must differ"),
    ({"logit_diff": "ab"}, "logit_diff must be a pair"),
    ({"logit_diff": "01"}, "logit_diff must be a pair of integer output indices"),
    ({"logit_diff": (0.5, 1)}, "logit_diff must be a pair of integer output indices"),
    ({"logit_diff": (True, 0)}, "logit_diff must be a pair of integer output indices"),
    ({"output_norm": "l2"}, "output_norm must be 'linf' or 'l1'"),
    ({"c": [1, 0, 0, 0], "output_norm": "l1"}, "at most one of c, logit_diff, output_norm"),
    ({}, "network has 4 outputs: give c"),
])
def test_problem_errors(net, kwargs, message):
    with pytest.raises(InputError, match=message):
        make_problem(net, Box(np.zeros(3), np.ones(3)), **kwargs)


def test_logit_diff_takes_numpy_integers(net):
    problem = make_problem(net, Box(np.zeros(3), np.ones(3)),
                           logit_diff=np.array([3, 0], dtype=np.int64))
    np.testing.assert_array_equal(problem.functionals[0], [-1.0, 0.0, 0.0, 1.0])


def test_ball_clip_that_is_not_a_pair_is_named():
    with pytest.raises(InputError, match=r"clip must be a pair \(lo, hi\), got 1"):
        Box.ball([0.0, 0.0], 0.1, clip=1)


def test_problem_dimension_and_types(net):
    with pytest.raises(InputError, match="domain has dimension 2 but the network takes 3"):
        make_problem(net, Box(np.zeros(2), np.ones(2)), c=np.ones(4))
    with pytest.raises(InputError, match="network must be a bnblip.Network"):
        make_problem("net", Box(np.zeros(3), np.ones(3)))
    with pytest.raises(InputError, match="domain must be a bnblip.Box"):
        make_problem(net, (np.zeros(3), np.ones(3)))
