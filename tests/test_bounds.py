"""Bound propagation: soundness by sampling, NumPy == Numba, linear vs interval."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bnblip.bounds import kernels
from bnblip.bounds.interval import (
    ACTIVE,
    INACTIVE,
    BackwardBounds,
    ExactSigns,
    ForwardBounds,
    backward_interval,
    check_phases,
    derivative_bounds,
    forward_interval,
)
from bnblip.bounds.linear import forward_linear, relu_relaxation
from bnblip.errors import InputError
from bnblip.network import Network
from bnblip.problem import Box
from tests.conftest import bias_free_network, public_cases, random_network, requires_shared

FORWARD = {
    "interval": forward_interval,
    "interval_numba": kernels.forward_interval_numba,
    "linear": forward_linear,
    "linear_numba": kernels.forward_linear_numba,
}
BACKWARD = {
    "numpy": (forward_interval, derivative_bounds, backward_interval),
    "numba": (kernels.forward_interval_numba, kernels.derivative_bounds_numba,
              kernels.backward_interval_numba),
    "linear_numpy": (forward_linear, derivative_bounds, backward_interval),
    "linear_numba": (kernels.forward_linear_numba, kernels.derivative_bounds_numba,
                     kernels.backward_interval_numba),
}


# ---------------------------------------------------------------------- helpers
def _problem(seed: int, widths=None):
    """Random network, box and a point of the box."""
    rng = np.random.default_rng(seed)
    if widths is None:
        depth = int(rng.integers(1, 5))
        widths = [int(v) for v in rng.integers(2, 9, size=depth + 2)]
    net = random_network(rng, widths)
    center = rng.uniform(-1, 1, widths[0])
    radius = rng.uniform(0.05, 1.0, widths[0])
    lo, hi = center - radius, center + radius
    return rng, net, lo, hi, rng.uniform(lo, hi)


def _phases_at(net: Network, x, rng, fraction: float):
    """Fix a random ``fraction`` of neurons to their sign at ``x`` (a feasible node)."""
    out = []
    for z in net.preactivations(x):
        fixed = rng.random(z.shape) < fraction
        out.append(np.where(fixed, np.where(z > 0, 1, -1), 0).astype(np.int8))
    return tuple(out)


def _agrees(net: Network, xs, phases) -> np.ndarray:
    """Rows of ``xs`` whose pre-activations have the fixed signs of ``phases``."""
    keep = np.ones(xs.shape[0], dtype=bool)
    for z, ph in zip(net.preactivations(xs), phases):
        keep &= np.all(np.where(ph == 1, z >= 0, True) & np.where(ph == -1, z <= 0, True),
                       axis=1)
    return keep


def _restricted_samples(net, lo, hi, phases, x, rng, count=3000):
    """Box points (uniform and near ``x``) that agree with ``phases`` (rejection)."""
    near = np.clip(x + rng.uniform(-0.1, 0.1, (count, x.size)) * (hi - lo), lo, hi)
    xs = np.vstack([rng.uniform(lo, hi, (count, x.size)), near, x[None, :], lo, hi])
    return xs[_agrees(net, xs, phases)]


def _backward_at(net: Network, xs, c):
    """``y_i = d(c^T f)/d a_i`` at each row of ``xs`` (``i = 0`` is the input)."""
    y = np.tile(net.weights[-1].T @ c, (xs.shape[0], 1))
    ys = [y]
    for w, z in zip(reversed(net.weights[:-1]), reversed(net.preactivations(xs))):
        y = (y * (z > 0)) @ w
        ys.append(y)
    return ys[::-1]


def _ulps(a) -> np.ndarray:
    return 4 * np.spacing(np.abs(a))


def _assert_close(got, ref, magnitudes=None):
    """Twins agree to 1e-12 of each layer's largest value or, entrywise, of ``magnitudes``.

    ``magnitudes`` are the sums of absolute terms behind each entry: where the terms
    cancel, two summation orders may differ by rounding far above the result itself.
    """
    if magnitudes is None:
        magnitudes = [np.zeros_like(r) for r in ref]
    for g, r, m in zip(got, ref, magnitudes, strict=True):
        g = np.asarray(g)
        scale = np.maximum(max(float(np.max(np.abs(r), initial=0.0)), 1e-300), m)
        with np.errstate(invalid="ignore"):
            ok = (g == r) | (np.isnan(g) & np.isnan(r)) | \
                (np.abs(g - r) <= 1e-12 * (np.abs(r) + scale))
        assert np.all(ok), f"twins differ: {g[~ok]} vs {r[~ok]} (scale {scale[~ok]})"


def _backward_magnitudes(net: Network, c) -> list[np.ndarray]:
    """``|W_k|^T ... |W_L|^T |c|`` per layer: a bound on the absolute terms the
    backward pass sums at each entry, rounding passed on from later layers included."""
    mag = np.abs(net.weights[-1]).T @ np.abs(c)
    out = [mag]
    for w in reversed(net.weights[:-1]):
        mag = np.abs(w).T @ mag
        out.append(mag)
    return out[::-1]


# ---------------------------------------------------------------------- soundness
@pytest.mark.parametrize("method", list(FORWARD))
@pytest.mark.parametrize("seed", range(10))
def test_forward_bounds_contain_samples(method, seed):
    rng, net, lo, hi, x = _problem(seed)
    phases = _phases_at(net, x, rng, fraction=0.0 if seed % 3 == 0 else 0.25)
    fb = FORWARD[method](net, lo, hi, phases)
    assert not fb.infeasible
    xs = _restricted_samples(net, lo, hi, phases, x, rng)
    assert xs.shape[0] > 1
    for z, zl, zu in zip(net.preactivations(xs), fb.lower, fb.upper):
        assert np.all(z >= zl) and np.all(z <= zu)


@pytest.mark.parametrize("method", list(FORWARD))
@pytest.mark.parametrize("seed", range(6))
def test_prior_bounds_are_intersected_and_stay_sound(method, seed):
    """A child node given its parent's bounds: inside them and around its samples."""
    rng, net, lo, hi, x = _problem(300 + seed)
    parent_phases = _phases_at(net, x, rng, fraction=0.2)
    parent = FORWARD[method](net, lo, hi, parent_phases)
    child_phases = tuple(np.where(p != 0, p, q) for p, q in
                         zip(parent_phases, _phases_at(net, x, rng, fraction=0.3)))
    child = FORWARD[method](net, lo, hi, child_phases, prior=parent)
    alone = FORWARD[method](net, lo, hi, child_phases)
    assert not child.infeasible
    xs = _restricted_samples(net, lo, hi, child_phases, x, rng)
    for z, cl, cu, pl, pu, al, au in zip(net.preactivations(xs), child.lower, child.upper,
                                         parent.lower, parent.upper, alone.lower, alone.upper):
        assert np.all(z >= cl) and np.all(z <= cu)
        assert np.all(cl >= pl) and np.all(cu <= pu)
        if method.startswith("interval"):
            # interval bounds are monotone in the input bounds (linear ones are not:
            # a tighter bound can flip an adaptive lower slope)
            assert np.all(cl >= al - _ulps(al)) and np.all(cu <= au + _ulps(au))


@pytest.mark.parametrize("method", list(BACKWARD))
@pytest.mark.parametrize("seed", range(8))
def test_sampled_gradients_inside_backward_bounds(method, seed):
    forward, derivative, backward = BACKWARD[method]
    rng, net, lo, hi, x = _problem(100 + seed)
    phases = _phases_at(net, x, rng, fraction=0.0 if seed % 2 == 0 else 0.3)
    c = rng.normal(size=net.output_dim)
    fb = forward(net, lo, hi, phases)
    bb = backward(net, c, *derivative(fb, phases))
    xs = _restricted_samples(net, lo, hi, phases, x, rng)
    ys = _backward_at(net, xs, c)
    np.testing.assert_allclose(ys[0], net.gradient(xs, c), rtol=1e-12, atol=1e-12)
    for y, yl, yh in zip(ys, bb.lower, bb.upper):
        assert np.all(y >= yl) and np.all(y <= yh)


def test_relu_relaxation_encloses_relu():
    rng = np.random.default_rng(7)
    zl = rng.uniform(-2, 1, 200)
    zu = zl + rng.uniform(0, 2, 200)
    phase = rng.integers(-1, 2, 200).astype(np.int8)
    zl = np.where(phase == 1, np.maximum(zl, 0), zl)
    zu = np.where(phase == -1, np.minimum(zu, 0), zu)
    keep = zl <= zu
    zl, zu, phase = zl[keep], zu[keep], phase[keep]
    up_s, up_i, lo_s = relu_relaxation(zl, zu, phase)
    t = np.linspace(0, 1, 101)[:, None]
    z = zl + t * (zu - zl)
    a = np.maximum(z, 0.0)
    slack = 1e-12 * (np.abs(zl) + np.abs(zu))
    assert np.all(lo_s * z <= a + slack)
    assert np.all(a <= up_s * z + up_i + slack)
    ambiguous = (phase == 0) & (zl < 0) & (zu > 0)
    # the triangle is tight at both ends of an ambiguous neuron
    np.testing.assert_allclose((up_s * zu + up_i)[ambiguous], zu[ambiguous], rtol=1e-12)
    np.testing.assert_allclose((up_s * zl + up_i)[ambiguous], 0.0, atol=1e-12)


# ---------------------------------------------------------------------- linear
@pytest.mark.parametrize("interval, linear", [("interval", "linear"),
                                               ("interval_numba", "linear_numba")])
def test_linear_inside_interval_and_tighter_on_deep_net(interval, linear):
    widths = [10, 10, 10, 10, 10, 2]
    amb_int = amb_lin = 0
    width_int = width_lin = 0.0
    for seed in range(6):
        net = random_network(np.random.default_rng(seed), widths)
        lo, hi = np.zeros(10), np.ones(10)
        fi = FORWARD[interval](net, lo, hi)
        fl = FORWARD[linear](net, lo, hi)
        for k, (il, iu, ll, lu) in enumerate(zip(fi.lower, fi.upper, fl.lower, fl.upper)):
            assert np.all(ll >= il - _ulps(il)) and np.all(lu <= iu + _ulps(iu))
            amb_int += int(np.sum((il < 0) & (iu > 0)))
            amb_lin += int(np.sum((ll < 0) & (lu > 0)))
            if k > 0:
                width_int += float(np.sum(iu - il))
                width_lin += float(np.sum(lu - ll))
    assert amb_lin <= amb_int
    assert width_lin < 0.9 * width_int


@pytest.mark.parametrize("method", ["linear", "linear_numba"])
@pytest.mark.parametrize("seed", range(5))
def test_linear_exact_on_fully_fixed_pattern(method, seed):
    """With every phase fixed the network is affine; linear bounds reach its box range."""
    rng, net, lo, hi, x = _problem(200 + seed)
    phases = _phases_at(net, x, rng, fraction=1.0)
    fb = FORWARD[method](net, lo, hi, phases)
    assert not fb.infeasible
    mid, rad = 0.5 * (lo + hi), 0.5 * (hi - lo)
    a_mat, a_off = np.eye(net.input_dim), np.zeros(net.input_dim)
    for w, b, ph, zl, zu in zip(net.weights, net.biases, phases, fb.lower, fb.upper):
        z_mat, z_off = w @ a_mat, w @ a_off + b
        top = z_mat @ mid + np.abs(z_mat) @ rad + z_off
        bottom = z_mat @ mid - np.abs(z_mat) @ rad + z_off
        tol = 1e-9 * (1 + np.abs(z_mat) @ (np.abs(mid) + rad) + np.abs(z_off))
        assert np.all(zu <= top + tol) and np.all(zl >= bottom - tol)
        active = (ph == 1).astype(float)
        a_mat, a_off = active[:, None] * z_mat, active * z_off


def test_linear_bounds_on_hand_example():
    """``relu(x) + relu(-x) - 1.5 <= -0.5`` on [-1, 1]: interval sees only ``<= 0.5``."""
    net = Network.from_layers([[[1.0], [-1.0]], [[1.0, 1.0]], [[1.0]]],
                              [[0.0, 0.0], [-1.5], [0.0]])
    for name, method in FORWARD.items():
        fb = method(net, [-1.0], [1.0])
        expected_upper = 0.5 if name.startswith("interval") else -0.5
        np.testing.assert_allclose(fb.upper[1], [expected_upper], atol=1e-9)
        np.testing.assert_allclose(fb.lower[1], [-1.5], atol=1e-9)
        infeasible = method(net, [-1.0], [1.0], (np.zeros(2, np.int8), np.ones(1, np.int8)))
        assert infeasible.infeasible == name.startswith("linear")


@pytest.mark.parametrize("method", list(FORWARD))
def test_contradicted_phase_is_infeasible(method):
    net = Network.from_layers([[[1.0], [2.0]], [[1.0, 1.0]]], [[0.0, -1.0], [0.0]])
    # on [1, 2]: z = (x, 2x - 1) lies in [1, 2] x [1, 3], both active
    forward = FORWARD[method]
    assert not forward(net, [1.0], [2.0], ([1, 1],)).infeasible
    assert forward(net, [1.0], [2.0], ([-1, 0],)).infeasible
    assert forward(net, [1.0], [2.0], ([0, -1],)).infeasible


@pytest.mark.parametrize("method", list(FORWARD))
def test_dead_neuron_stays_inactive(method):
    """DESIGN.md section 7: widening is relative, so a 1e-17 weight stays dead."""
    net = Network.from_layers([[[1e-17, -1e-17], [1.0, 1.0]], [[1.0, 1e-17]], [[1.0]]],
                              [[-1e-9, 0.0], [-1e-9], [0.0]])
    fb = FORWARD[method](net, [0.5, 0.5], [1.0, 1.0])
    assert fb.upper[0][0] < 0
    dlo, dhi = derivative_bounds(fb)
    assert dhi[0][0] == 0.0 and dlo[0][1] == 1.0


@requires_shared
def test_public_cases_sound_and_twins_agree():
    """Trained nets (one with weight decay) on the shared benchmark boxes."""
    rng = np.random.default_rng(3)
    for case in public_cases():
        net, lo, hi = case.network, case.box.lower, case.box.upper
        xs = np.vstack([rng.uniform(lo, hi, (1000, lo.size)), lo, hi])
        zs = net.preactivations(xs)
        ys = _backward_at(net, xs, case.c)
        fi = forward_interval(net, lo, hi)
        for name, method in FORWARD.items():
            fb = method(net, lo, hi)
            assert not fb.infeasible
            for z, zl, zu, il, iu in zip(zs, fb.lower, fb.upper, fi.lower, fi.upper):
                assert np.all(z >= zl) and np.all(z <= zu), (case.name, name)
                assert np.all(zl >= il - 1e-12 * np.abs(il)), (case.name, name)
                assert np.all(zu <= iu + 1e-12 * np.abs(iu)), (case.name, name)
            bb = kernels.backward_interval_numba(net, case.c, *derivative_bounds(fb))
            for y, yl, yh in zip(ys, bb.lower, bb.upper):
                assert np.all(y >= yl) and np.all(y <= yh), (case.name, name)
        _assert_close(kernels.forward_linear_numba(net, lo, hi).upper,
                      forward_linear(net, lo, hi).upper)


# ---------------------------------------------------------------------- twins
@settings(max_examples=40, deadline=None)
@given(widths=st.lists(st.integers(1, 12), min_size=2, max_size=6),
       seed=st.integers(0, 2**32 - 1),
       fraction=st.sampled_from([0.0, 0.3, 1.0]),
       from_point=st.booleans(),
       use_prior=st.booleans())
@example(widths=[4, 2, 1, 3, 3, 5], seed=0, fraction=0.0, from_point=False, use_prior=False)
def test_numba_equals_numpy(widths, seed, fraction, from_point, use_prior):
    rng = np.random.default_rng(seed)
    net = random_network(rng, widths)
    lo = rng.uniform(-1, 1, widths[0])
    hi = lo + rng.uniform(0, 1, widths[0])
    if from_point:
        phases = _phases_at(net, rng.uniform(lo, hi), rng, fraction)
    else:
        phases = tuple(np.where(rng.random(h) < fraction, rng.choice([-1, 1], h), 0)
                       for h in net.hidden_widths)
    prior = forward_linear(net, lo, hi) if use_prior else None
    for ref, twin in ((forward_interval, kernels.forward_interval_numba),
                      (forward_linear, kernels.forward_linear_numba)):
        a = ref(net, lo, hi, phases, prior=prior)
        b = twin(net, lo, hi, phases, prior=prior)
        assert a.infeasible == b.infeasible
        _assert_close(b.lower, a.lower)
        _assert_close(b.upper, a.upper)
    d_ref = derivative_bounds(a, check_phases(net, phases))
    d_twin = kernels.derivative_bounds_numba(a, phases)
    for p, q in zip(d_ref[0] + d_ref[1], d_twin[0] + d_twin[1]):
        np.testing.assert_array_equal(p, q)
    c = rng.normal(size=widths[-1])
    ba = backward_interval(net, c, *d_ref)
    bb = kernels.backward_interval_numba(net, c, *d_ref)
    magnitudes = _backward_magnitudes(net, c)
    _assert_close(bb.lower, ba.lower, magnitudes)
    _assert_close(bb.upper, ba.upper, magnitudes)


def test_kernel_api_reuses_workspace_and_matches_wrapper():
    rng, net, lo, hi, x = _problem(5, widths=[6, 9, 7, 8, 3])
    packed = kernels.pack_network(net)
    work = kernels.linear_workspace(packed)
    z_lo = np.empty(kernels.num_hidden(packed))
    z_hi = np.empty_like(z_lo)
    no_lo, no_hi = np.full(z_lo.size, -np.inf), np.full(z_lo.size, np.inf)
    for fraction in (0.0, 0.5, 1.0):
        phases = _phases_at(net, x, rng, fraction)
        flat = np.concatenate(phases)
        infeasible = kernels.linear_forward_kernel(packed, lo, hi, flat, no_lo, no_hi, 1e-12,
                                                   1e-300, z_lo, z_hi, work)
        ref = forward_linear(net, lo, hi, phases)
        assert infeasible == ref.infeasible
        _assert_close(np.split(z_lo, packed.b_off[1:-2]), ref.lower)
        _assert_close(np.split(z_hi, packed.b_off[1:-2]), ref.upper)
    with pytest.raises(ValueError, match="work"):
        kernels.linear_forward_kernel(packed, lo, hi, flat, no_lo, no_hi, 1e-12, 1e-300,
                                      z_lo, z_hi, work[:10])


def test_packed_layout_matches_network():
    _, net, _, _, _ = _problem(11, widths=[3, 5, 4, 2])
    packed = kernels.pack_network(net)
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        out, inp = w.shape
        start = packed.w_off[k]
        np.testing.assert_array_equal(packed.weights[start:start + w.size].reshape(out, inp), w)
        np.testing.assert_array_equal(packed.weights_t[start:start + w.size].reshape(inp, out),
                                      w.T)
        np.testing.assert_array_equal(packed.biases[packed.b_off[k]:packed.b_off[k + 1]], b)
    assert list(packed.g_off) == [0, 3, 8, 12]
    assert kernels.num_hidden(packed) == 9


def test_network_without_hidden_layers():
    net = Network.from_layers([[[1.0, -2.0]]], [[0.5]])
    for method in FORWARD.values():
        fb = method(net, [0.0, 0.0], [1.0, 1.0])
        assert fb.lower == () and not fb.infeasible
    bb = kernels.backward_interval_numba(net, [2.0], *kernels.derivative_bounds_numba(fb))
    np.testing.assert_allclose(bb.lower[0], [2.0, -4.0])
    np.testing.assert_allclose(bb.upper[0], [2.0, -4.0])


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("method", ["linear", "interval_numba", "linear_numba"])
def test_invalid_box_raises(method):
    net = random_network(np.random.default_rng(0), [3, 4, 2])
    lo, hi = np.zeros(3), np.ones(3)
    with pytest.raises(InputError, match="lower must have shape"):
        FORWARD[method](net, np.zeros(2), hi)
    with pytest.raises(InputError, match="upper must be finite"):
        FORWARD[method](net, lo, [1.0, np.nan, 1.0])
    with pytest.raises(InputError, match="lower must be <= upper"):
        FORWARD[method](net, hi, lo)


@pytest.mark.parametrize("method", list(FORWARD))
def test_invalid_phases_or_prior_raise(method):
    net = random_network(np.random.default_rng(0), [3, 4, 2])
    lo, hi = np.zeros(3), np.ones(3)
    method = FORWARD[method]
    with pytest.raises(InputError, match="one per hidden layer"):
        method(net, lo, hi, (np.zeros(4), np.zeros(2)))
    with pytest.raises(InputError, match=r"phases\[0\] must have shape"):
        method(net, lo, hi, (np.zeros(3),))
    with pytest.raises(InputError, match="only -1"):
        method(net, lo, hi, (np.array([0, 2, 0, 0]),))
    with pytest.raises(InputError, match="prior must be ForwardBounds"):
        method(net, lo, hi, prior=(np.zeros(4), np.ones(4)))
    with pytest.raises(InputError, match="prior must hold"):
        method(net, lo, hi, prior=ForwardBounds((np.zeros(3),), (np.ones(3),)))


def test_invalid_backward_arguments_raise():
    net = random_network(np.random.default_rng(0), [3, 4, 2])
    ones = (np.ones(4),)
    with pytest.raises(InputError, match="c must have shape"):
        kernels.backward_interval_numba(net, [1.0], ones, ones)
    with pytest.raises(InputError, match="dhi must hold"):
        kernels.backward_interval_numba(net, [1.0, 0.0], ones, (np.ones(3),))
    with pytest.raises(InputError, match="network must be"):
        kernels.forward_interval_numba("net", [0.0] * 3, [1.0] * 3)


# ------------------------------------------------------------- symbolic backward
def _derivative_box(rng, widths, free_share):
    """Random derivative bounds: each neuron free with ``free_share``, else fixed
    to 0 or 1 (mostly 1, so chains of active neurons occur)."""
    dlo, dhi = [], []
    for h in widths:
        free = rng.random(h) < free_share
        fixed = (rng.random(h) < 0.8).astype(np.float64)
        dlo.append(np.where(free, 0.0, fixed))
        dhi.append(np.where(free, 1.0, fixed))
    return tuple(dlo), tuple(dhi)


def _exact_backward(net, c, ds):
    """``y`` of every layer (input gradient first) for binary derivatives ``ds``."""
    y = net.weights[-1].T @ c
    out = [y]
    for k in range(net.num_hidden_layers - 1, -1, -1):
        y = net.weights[k].T @ (ds[k] * y)
        out.append(y)
    return out[::-1]


@pytest.mark.parametrize("seed", range(8))
def test_symbolic_backward_bounds_hold_every_derivative_pattern_and_tighten(seed):
    from bnblip.bounds.backward import backward_symbolic

    rng = np.random.default_rng(900 + seed)
    widths = [3] + [int(w) for w in rng.integers(4, 9, 2 + seed % 4)] + [2]
    net = random_network(rng, widths)
    c = rng.normal(size=2)
    dlo, dhi = _derivative_box(rng, net.hidden_widths, 0.25)
    prior = backward_interval(net, c, dlo, dhi)
    sym = backward_symbolic(net, c, dlo, dhi, prior)
    for lo, hi, plo, phi in zip(sym.lower, sym.upper, prior.lower, prior.upper):
        assert np.all(lo >= plo) and np.all(hi <= phi) and np.all(lo <= hi)
    for _ in range(300):
        ds = [np.where(lo == hi, lo, rng.integers(0, 2, lo.size)) for lo, hi in zip(dlo, dhi)]
        for y, lo, hi in zip(_exact_backward(net, c, ds), sym.lower, sym.upper):
            assert np.all(y >= lo) and np.all(y <= hi)
    # what passes through active neurons is exact: the input gradient's bounds are
    # narrower than layer-by-layer intervals on nets with two or more hidden layers
    assert np.sum(sym.upper[0] - sym.lower[0]) < 0.9 * np.sum(prior.upper[0] - prior.lower[0])


def test_symbolic_backward_bounds_are_the_gradient_when_no_phase_is_free():
    from bnblip.bounds.backward import backward_symbolic

    rng = np.random.default_rng(950)
    net = random_network(rng, [4, 7, 7, 7, 7, 2])
    c = rng.normal(size=2)
    dlo, _ = _derivative_box(rng, net.hidden_widths, 0.0)
    sym = backward_symbolic(net, c, dlo, dlo, backward_interval(net, c, dlo, dlo))
    for y, lo, hi in zip(_exact_backward(net, c, dlo), sym.lower, sym.upper):
        assert np.all(lo <= y) and np.all(y <= hi)
        np.testing.assert_allclose(hi - lo, 0.0, atol=1e-10)


def test_symbolic_backward_bounds_without_hidden_layers_are_the_prior():
    from bnblip.bounds.backward import backward_symbolic

    net = Network.from_layers([np.array([[1.0, -2.0]])], [np.array([0.5])])
    prior = backward_interval(net, np.array([1.0]), (), ())
    assert backward_symbolic(net, np.array([1.0]), (), (), prior) is prior


def test_symbolic_backward_bounds_keep_the_prior_where_a_u_is_unbounded():
    # an infinite prior bound of a free neuron's y makes inf - inf in the affine
    # range; the layers below keep their prior bounds (finite ones stay finite)
    from bnblip.bounds.backward import backward_symbolic

    rng = np.random.default_rng(960)
    net = random_network(rng, [3, 5, 5, 5, 2])
    c = rng.normal(size=2)
    dlo = tuple(np.zeros(5) for _ in range(3))
    dhi = tuple(np.ones(5) for _ in range(3))
    prior = backward_interval(net, c, dlo, dhi)
    lower, upper = list(prior.lower), list(prior.upper)
    lower[2] = lower[2].copy()
    upper[2] = upper[2].copy()
    lower[2][0], upper[2][0] = -np.inf, np.inf
    sym = backward_symbolic(net, c, dlo, dhi, BackwardBounds(tuple(lower), tuple(upper)))
    for lo, hi, plo, phi in zip(sym.lower, sym.upper, lower, upper):
        assert not np.isnan(lo).any() and not np.isnan(hi).any()
        assert np.all(lo >= plo) and np.all(hi <= phi)


# ------------------------------------------------------------- exact signs (issue 3)
def test_issue3_exact_signs_on_hand_example():
    # previous layer: neuron 0 free (live), neuron 1 inactive (dead)
    w2 = np.array([[1.0, -1.0], [-1.0, 2.0], [0.0, 0.0], [1.0, 1.0], [1.0, -1.0], [2.0, 0.0]])
    b2 = np.array([0.0, 0.0, 0.0, -1.0, 0.0, 0.0])
    net = Network.from_layers([np.eye(2), w2, np.ones((1, 6))], [np.zeros(2), b2, np.zeros(1)])
    signs = ExactSigns.of(net)
    phases = np.array([0, 0, 0, 0, 0, INACTIVE], dtype=np.int8)
    signs.decide(1, phases, np.array([0, INACTIVE], dtype=np.int8))
    # row 0: the negative weight meets a dead input, so z >= 0; row 1: the positive
    # weight meets a dead input, so z <= 0; row 2: constant zero, inactive; row 3: a
    # live positive term and a negative bias, undecided; row 5: fixed phases stay
    np.testing.assert_array_equal(phases, [ACTIVE, INACTIVE, INACTIVE, 0, ACTIVE, INACTIVE])
    live = np.array([0, 0, 0, 0, 0, 0], dtype=np.int8)
    signs.decide(1, live, np.array([0, 0], dtype=np.int8))
    np.testing.assert_array_equal(live, [0, 0, INACTIVE, 0, 0, ACTIVE])


def _exact_sign_net(seed: int):
    """Sparse random networks, bias-free or with biases of both signs and zeros,
    and the bias-free nets whose deep layers only exact signs decide."""
    rng = np.random.default_rng(seed)
    if seed % 3 == 0:
        return bias_free_network(seed)
    widths = [int(rng.integers(2, 4)), *rng.integers(3, 7, size=3).tolist(), 2]
    net = random_network(rng, widths)
    weights = [np.where(rng.random(w.shape) < 0.4, 0.0, w) for w in net.weights]
    if seed % 3 == 1:
        biases = [np.zeros_like(b) for b in net.biases]
    else:
        biases = [np.where(rng.random(b.shape) < 0.5, 0.0, b) for b in net.biases]
    centre = rng.normal(size=widths[0])
    radius = float(rng.choice([0.05, 0.5, 2.0]))
    return Network.from_layers(weights, biases), Box(centre - radius, centre + radius)


def test_issue3_exact_signs_hold_on_samples():
    # the phases the solver decides at a root (widened bounds, then exact signs
    # layer by layer): every sampled pre-activation must have the decided sign
    from bnblip.options import Tolerances
    from bnblip.problem import make_problem
    from bnblip.solver import BnbOptions, _Search

    decided_by_signs = 0
    for seed in range(30):
        net, box = _exact_sign_net(seed)
        problem = make_problem(net, box, "linf", c=np.ones(net.output_dim))
        search = _Search(problem, Tolerances(), BnbOptions(), None, None)
        phases, infeasible = search._root_phases()
        assert not infeasible
        if seed % 3 == 0:  # bias_free_network: its second layer is decided at the root
            assert np.all(phases[1] != 0), seed
        signs = search.exact_signs
        search.exact_signs = ExactSigns(tuple(r[:0] for r in signs.rows), signs.positive,
                                        signs.negative)  # no zero-bias rows: bounds alone
        by_bounds, _ = search._root_phases()
        decided_by_signs += sum(int(np.count_nonzero(p)) - int(np.count_nonzero(q))
                                for p, q in zip(phases, by_bounds))
        xs = box.sample(3000, np.random.default_rng(seed))
        for z, ph in zip(net.preactivations(xs), phases):
            assert np.all(z[:, ph == ACTIVE] >= 0), seed
            assert np.all(z[:, ph == INACTIVE] <= 0), seed
    assert decided_by_signs >= 30, decided_by_signs  # the rule fired, often
