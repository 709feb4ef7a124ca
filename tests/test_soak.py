"""Issue 3: a deterministic slice of the randomized soak of the three exact methods.

Every case is an adversarial random problem (weight-decayed networks with entries far
below HiGHS's drop threshold, duplicated and zero neurons, tiny, large and degenerate
boxes, large weights, several outputs).  The branch-and-bound engine is held to the
references (region enumeration on small networks, the MILP for ``linf`` / ``l1``), to
its own re-checked witness, and to gradients sampled in the box and computed here by
back-propagation, independently of the library.
"""

from __future__ import annotations

import numpy as np
import pytest

import bnblip
from bnblip.incumbent import check_witness
from bnblip.network import Network
from bnblip.problem import Box, make_problem
from bnblip.result import Status

REL = 1e-6
SAMPLES = 2000
TIME_LIMIT = 30.0


# ---------------------------------------------------------------- problem generators
def _gaussian(rng, widths, bias_scale, weight_scale=1.0):
    weights = [weight_scale * rng.normal(0, 1 / np.sqrt(widths[k]), (widths[k + 1], widths[k]))
               for k in range(len(widths) - 1)]
    biases = [bias_scale * rng.normal(0, 1, widths[k + 1]) for k in range(len(widths) - 1)]
    return weights, biases


def _decay(rng, weights, biases):
    """Scale many weights to 1e-17..1e-8, biases to 1e-9..1e-5, kill some neurons."""
    for k in range(len(weights)):
        mask = rng.random(weights[k].shape) < rng.uniform(0.2, 0.7)
        weights[k][mask] *= 10 ** rng.uniform(-17, -8, mask.sum())
        small = rng.random(biases[k].shape) < 0.5
        biases[k][small] = rng.choice([-1, 1], small.sum()) * 10 ** rng.uniform(-9, -5, small.sum())
        if k < len(weights) - 1:
            dead = rng.random(weights[k].shape[0]) < 0.2
            weights[k][dead] *= 1e-12
            biases[k][dead] = -np.abs(biases[k][dead]) - 1.0


def _duplicate(rng, weights, biases):
    """Copy (or rescale, or negate) one neuron onto another in each hidden layer and
    sometimes zero a third neuron's weights."""
    for k in range(len(weights) - 1):
        n = weights[k].shape[0]
        i, j = rng.choice(n, 2, replace=False)
        s = rng.choice([1.0, -1.0, 2.0])
        weights[k][j] = s * weights[k][i]
        biases[k][j] = s * biases[k][i]
        others = np.setdiff1d(np.arange(n), [i, j])
        if others.size and rng.random() < 0.5:
            z = int(rng.choice(others))
            weights[k][z] = 0.0
            biases[k][z] = rng.choice([0.0, 0.3, -0.3])


def soak_problem(kind: str, seed: int):
    """The soak's random problem of class ``kind``: (network, box, functional kwargs)."""
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 5))
    dim = int(rng.integers(1, 7))
    hidden = [int(rng.integers(2, 7)) for _ in range(depth)]
    while sum(hidden) > 14:
        hidden[int(np.argmax(hidden))] -= 1
    widths = [dim, *hidden, int(rng.integers(2, 6)) if kind == "multi" else 1]
    bias_scale = float(10 ** rng.uniform(-4, 0.5))
    radius = float(10 ** rng.uniform(-2, 0))
    centre = rng.normal(0, 1, dim)
    weights, biases = _gaussian(rng, widths, bias_scale, 1000.0 if kind == "bigw" else 1.0)
    if kind == "bigw":
        biases = [1000.0 * b for b in biases]
    if kind == "decay":
        _decay(rng, weights, biases)
    if kind == "dup":
        _duplicate(rng, weights, biases)
    if kind == "smallbox":
        radius = 1e-6
        w0 = weights[0][0]
        centre = centre - (w0 @ centre + biases[0][0]) / (w0 @ w0) * w0 + rng.normal(0, 3e-7, dim)
    if kind == "largebox":
        radius = float(10 ** rng.uniform(0.5, 2))
    lower, upper = centre - radius, centre + radius
    if kind == "degen":
        flat = rng.random(dim) < 0.5
        flat[0] = False if dim > 1 and flat.all() else flat[0]
        upper[flat] = lower[flat]
    functional = {}
    if widths[-1] > 1:
        choice = rng.choice(["linf", "l1", "ld", "c"])
        if choice in ("linf", "l1"):
            functional["output_norm"] = str(choice)
        elif choice == "ld":
            i, j = rng.choice(widths[-1], 2, replace=False)
            functional["logit_diff"] = (int(i), int(j))
        else:
            functional["c"] = rng.normal(0, 1, widths[-1])
    return Network.from_layers(weights, biases), Box(lower, upper), functional


# ---------------------------------------------------------------- independent checks
def _gradients(net: Network, points: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Gradient of ``c^T f`` at each row of ``points`` by explicit back-propagation."""
    masks, h = [], points
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = h @ w.T + b
        masks.append(z > 0)
        h = np.maximum(z, 0)
    g = np.tile(net.weights[-1].T @ c, (points.shape[0], 1))
    for w, mask in zip(reversed(net.weights[:-1]), reversed(masks)):
        g = (g * mask) @ w
    return g


def _dual(norm: str, g: np.ndarray) -> np.ndarray:
    if norm == "linf":
        return np.abs(g).sum(-1)
    if norm == "l1":
        return np.abs(g).max(-1)
    return np.sqrt((g * g).sum(-1))


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 2 * REL * max(abs(a), abs(b)) + 1e-9


def _check_result(net, box, norm, functional, res, sampled):
    """Witness re-check, ordered bounds and the sampled lower bound."""
    problem = make_problem(net, box, norm, **functional)
    assert res.lower_bound <= res.upper_bound
    assert res.upper_bound >= sampled * (1 - 1e-9) - 1e-12
    if res.witness is None:
        assert res.lower_bound == 0.0
        return None
    wit = check_witness(net, box, problem.norm, res.functional, res.witness)
    assert wit is not None and box.contains(res.witness, 1e-9)
    mine = float(_dual(norm, _gradients(net, res.witness[None, :], res.functional))[0])
    assert mine == pytest.approx(res.lower_bound, rel=1e-9, abs=1e-12)
    return mine


def _sampled_max(net, box, norm, functional, seed):
    problem = make_problem(net, box, norm, **functional)
    points = box.sample(SAMPLES, np.random.default_rng(seed))
    return max(float(_dual(norm, _gradients(net, points, c)).max()) for c in problem.functionals)


def _compare(kind, seed, norm, references):
    net, box, functional = soak_problem(kind, seed)
    sampled = _sampled_max(net, box, norm, functional, seed)
    results = {m: bnblip.lipschitz(net, box, norm, method=m, time_limit=TIME_LIMIT, **functional)
               for m in ("bnb", *references)}
    witnessed = [_check_result(net, box, norm, functional, r, sampled) for r in results.values()]
    for res in results.values():
        assert res.status is Status.OPTIMAL
        for value in witnessed:
            if value is not None:
                assert res.upper_bound >= value * (1 - 1e-9) - 1e-12
    for method in references:
        assert _close(results["bnb"].value, results[method].value), (method, results)


# ---------------------------------------------------------------- cases
# (class, seed, norm): every class with all three norms against enumeration, and
# linf / l1 against the MILP; seeds are soak seeds whose problems solve in well
# under a second.
ENUM_CASES = [
    ("plain", 11, "linf"), ("plain", 12, "l2"), ("plain", 13, "l1"),
    ("decay", 21, "linf"), ("decay", 22, "l2"), ("decay", 23, "l1"), ("decay", 24, "l2"),
    ("dup", 31, "linf"), ("dup", 32, "l2"), ("dup", 33, "l1"),
    ("smallbox", 41, "linf"), ("smallbox", 42, "l2"), ("smallbox", 43, "l1"),
    ("largebox", 51, "linf"), ("largebox", 52, "l2"), ("largebox", 53, "l1"),
    ("degen", 61, "linf"), ("degen", 62, "l2"), ("degen", 63, "l1"),
    ("bigw", 71, "linf"), ("bigw", 72, "l2"), ("bigw", 73, "l1"),
    ("multi", 81, "linf"), ("multi", 82, "l2"), ("multi", 83, "l1"), ("multi", 84, "linf"),
]
MILP_CASES = [(kind, seed + 100, norm) for kind, seed, norm in ENUM_CASES
              if norm != "l2" and kind != "bigw"]


@pytest.mark.parametrize(("kind", "seed", "norm"), ENUM_CASES)
def test_issue3_soak_bnb_equals_enumeration(kind, seed, norm):
    _compare(kind, seed, norm, ("enumerate",))


@pytest.mark.parametrize(("kind", "seed", "norm"), MILP_CASES)
def test_issue3_soak_bnb_equals_milp(kind, seed, norm):
    _compare(kind, seed, norm, ("milp", "enumerate"))


def test_issue3_soak_classes_are_adversarial():
    """The generators produce what their class names promise."""
    net, _, _ = soak_problem("decay", 21)
    tiny = [np.abs(w[(w != 0)]).min() for w in net.weights]
    assert min(tiny) < 1e-9
    net, _, _ = soak_problem("dup", 31)
    assert any(_has_parallel_rows(np.hstack([w, b[:, None]]))
               for w, b in zip(net.weights[:-1], net.biases[:-1]))
    _, box, _ = soak_problem("smallbox", 41)
    assert np.all(box.upper - box.lower <= 2.1e-6)
    _, box, _ = soak_problem("degen", 61)
    assert np.any(box.upper == box.lower) or box.dim == 1
    net, _, functional = soak_problem("multi", 81)
    assert net.output_dim > 1 and functional


def _has_parallel_rows(rows: np.ndarray) -> bool:
    gram = rows @ rows.T
    norms = np.sqrt(np.diag(gram))
    off = ~np.eye(rows.shape[0], dtype=bool)
    return bool(np.any(np.isclose(np.abs(gram), np.outer(norms, norms), rtol=1e-12)[off]))


# ---------------------------------------------------------------- known MILP failures
# The soak found the MILP reference unsound when the constant is far from 1: its
# formulation is not rescaled, so HiGHS's absolute tolerances meet big-M values of
# 1e9 and more (large weights) or objective values of 1e-10 (weight decay).  The
# branch-and-bound engine and the enumeration agree on these problems; rescaling
# the network by positive per-layer factors (which scales the constant exactly)
# makes the MILP agree as well.
def _script_problem(kind: str, seed: int):
    """The soak script's generator (its random stream differs from ``soak_problem``)
    for the classes below: ``bigw``, ``decaywide`` and ``largebox``."""
    rng = np.random.default_rng(seed)
    tiny = rng.random() < 0.5 and kind != "decaywide"
    depth = int(rng.integers(1, 5)) if tiny else int(rng.integers(1, 4))
    dim = int(rng.integers(1, 7))
    widest = 6 if tiny else int(rng.integers(6, 13))
    hidden = [int(rng.integers(2, widest + 1)) for _ in range(depth)]
    while tiny and sum(hidden) > 14:
        hidden[int(np.argmax(hidden))] -= 1
    widths = [dim, *hidden, 1]
    bias_scale = float(10 ** rng.uniform(-4, 0.5))
    radius = float(10 ** rng.uniform(-2, 0))
    centre = rng.normal(0, 1, dim)
    weights, biases = _gaussian(rng, widths, bias_scale, 1000.0 if kind == "bigw" else 1.0)
    if kind == "bigw":
        biases = [1000.0 * b for b in biases]
    if kind == "decaywide":
        _decay(rng, weights, biases)
    if kind == "largebox":
        radius = float(10 ** rng.uniform(0.5, 2))
    return Network.from_layers(weights, biases), Box(centre - radius, centre + radius)


def _assert_milp_matches_enumeration(kind, seed, widths, norm):
    net, box = _script_problem(kind, seed)
    assert net.widths == widths
    exact = bnblip.lipschitz(net, box, norm, method="enumerate")
    assert exact.status is Status.OPTIMAL
    milp = bnblip.lipschitz(net, box, norm, method="milp")
    assert milp.upper_bound >= exact.lower_bound * (1 - 1e-9)
    assert _close(milp.value, exact.value)


def test_issue3_soak_milp_large_weights_regression():
    _assert_milp_matches_enumeration("bigw", 500006, (3, 5, 5, 4, 1), "l1")


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="reference_milp: upper bound 1.98e-10 below the witnessed "
                   "2.32e-10 on a weight-decayed network; the MILP is not rescaled")
def test_issue3_soak_milp_tiny_constant_regression():
    _assert_milp_matches_enumeration("decaywide", 900090, (4, 8, 7, 5, 1), "l1")


def test_issue3_soak_milp_solve_error_regression():
    _assert_milp_matches_enumeration("bigw", 1030, (1, 6, 6, 2, 1), "l1")


def test_issue3_soak_milp_solve_error_ordinary_weights_regression():
    _assert_milp_matches_enumeration("largebox", 2000416, (1, 5, 3, 1), "l1")


# ---------------------------------------------------------------- known engine failures
def _scaled(net: Network, s: float) -> Network:
    """Weights times ``s``, layer-k biases times ``s^k``: the constant scales by ``s^L``
    and the activation regions do not change."""
    return Network.from_layers([s * w for w in net.weights],
                               [s ** (k + 1) * b for k, b in enumerate(net.biases)])


def _bigw_2326(s: float):
    net, box = _script_problem("bigw", 2326)
    assert net.widths == (5, 11, 6, 9, 1)
    return _scaled(net, s), box


def test_issue3_soak_bigw_2326_scaled_enumeration_is_scale_free():
    """The reference value of the problem below is the same at every scale."""
    values = []
    for s in (1.0, 1e-3):
        net, box = _bigw_2326(s)
        res = bnblip.lipschitz(net, box, "linf", method="enumerate")
        assert res.status is Status.OPTIMAL
        values.append(res.value / s ** 4)
    assert values[0] == pytest.approx(values[1], rel=1e-9)


def test_issue3_soak_bnb_large_weights_regression():
    net, box = _script_problem("bigw", 2000648)
    assert net.widths == (5, 6, 2, 3, 1)
    exact = bnblip.lipschitz(net, box, "l1", method="enumerate")
    res = bnblip.lipschitz(net, box, "l1", method="bnb")
    assert res.upper_bound >= exact.lower_bound * (1 - 1e-9)


def test_issue3_soak_bnb_large_weights_deeper_regression():
    net, box = _bigw_2326(1.0)
    exact = bnblip.lipschitz(net, box, "linf", method="enumerate")
    res = bnblip.lipschitz(net, box, "linf", method="bnb")
    assert res.upper_bound >= exact.lower_bound * (1 - 1e-9)


def test_issue3_soak_bnb_finds_the_thin_region_regression():
    """The witness search used to miss a thin region here (witness 7837.6, upper
    8013.5, status 'incomplete'): the leaf's interior point (LP over every row and the
    box's distance rows) failed the witness re-check.  Leaving out the rows of neurons
    the box decides, or trying the inset-box LP first, each alone gives a point that
    passes it.  The region is about 1e-9 thick, below HiGHS's accuracy, so which
    vertex the LP returns decides this; the witness itself is re-checked either way."""
    net, box = _bigw_2326(1e-2)
    exact = bnblip.lipschitz(net, box, "linf", method="enumerate")
    res = bnblip.lipschitz(net, box, "linf", method="bnb")
    assert res.status is Status.OPTIMAL
    assert res.value == pytest.approx(exact.value, rel=REL)


def test_issue3_soak_optimal_status_means_gap_closed():
    """The contract: a gap left open by an unwitnessed region is status 'incomplete'
    with the proven upper bound as value, never 'optimal'."""
    net, box = _bigw_2326(1e-2)
    exact = bnblip.lipschitz(net, box, "linf", method="enumerate")
    res = bnblip.lipschitz(net, box, "linf", method="bnb")
    closed = res.upper_bound - res.lower_bound <= max(1e-9, REL * res.upper_bound)
    assert (res.status is Status.OPTIMAL) == closed
    assert res.upper_bound >= exact.lower_bound * (1 - 1e-9)
    assert res.value == (res.lower_bound if closed else res.upper_bound)


def test_issue3_soak_milp_moderate_weights_regression():
    net, box = _bigw_2326(1e-2)
    exact = bnblip.lipschitz(net, box, "linf", method="enumerate")
    milp = bnblip.lipschitz(net, box, "linf", method="milp")
    assert milp.upper_bound >= exact.lower_bound * (1 - 1e-9)
