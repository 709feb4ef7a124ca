"""C kernels (bnblip._ckernels via bnblip.bounds.ckernels) against Numba and NumPy."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import itertools
import logging
import sys
import threading

import numpy as np
import pytest

import bnblip
from bnblip.bounds import ckernels, kernels
from bnblip.bounds.interval import backward_interval, derivative_bounds, forward_interval
from bnblip.bounds.linear import forward_linear
from bnblip.errors import InputError
from bnblip.network import Network
from bnblip.options import DEFAULT_TOLERANCES
from tests.conftest import random_network

REL = DEFAULT_TOLERANCES.bound_rel_widen
ABSW = DEFAULT_TOLERANCES.bound_abs_widen

requires_c = pytest.mark.skipif(
    not ckernels.HAVE_C,
    reason="bnblip._ckernels is not built (run `python setup.py build_ext --inplace`)")

SHAPES = [[3, 1], [4, 5, 2], [6, 8, 8, 3], [10, 10, 10, 10, 10, 2], [5, 13, 9, 17, 7, 1],
          [12, 33, 21, 4], [64, 24, 24, 10], [2, 1, 1, 1, 1]]


# ---------------------------------------------------------------------- helpers
@dataclasses.dataclass(frozen=True)
class Node:
    """One kernel input: a packed network, a box, phases and prior bounds (flat)."""

    network: Network
    net: kernels.PackedNetwork
    lo: np.ndarray
    hi: np.ndarray
    phases: np.ndarray
    prior_lo: np.ndarray
    prior_hi: np.ndarray

    def split(self, flat):
        """Flat hidden array -> one array per hidden layer."""
        return tuple(flat[self.net.b_off[k]:self.net.b_off[k + 1]]
                     for k in range(len(self.net.hidden_widths)))


@dataclasses.dataclass(frozen=True)
class Outputs:
    """Everything one backend computes on a node."""

    interval: tuple[bool, np.ndarray, np.ndarray]
    linear: tuple[bool, np.ndarray, np.ndarray]
    derivative: tuple[np.ndarray, np.ndarray]
    backward: tuple[np.ndarray, np.ndarray]


def _dead_network(rng, widths) -> Network:
    """A random network whose first hidden layers carry dead neurons (weights ~1e-17)."""
    network = random_network(rng, widths)
    weights = [w.copy() for w in network.weights]
    biases = [b.copy() for b in network.biases]
    for k in range(len(weights) - 1):
        dead = rng.random(weights[k].shape[0]) < 0.4
        weights[k][dead] = rng.normal(0, 1e-17, (int(dead.sum()), weights[k].shape[1]))
        biases[k][dead] = -rng.uniform(1e-9, 1e-5, int(dead.sum()))
    return Network.from_layers(weights, biases)


def _random_node(seed: int, widths, *, kind: str = "random", fraction: float = 0.3,
                 use_prior: bool = False) -> Node:
    rng = np.random.default_rng(seed)
    network = _dead_network(rng, widths) if kind == "dead" else random_network(rng, widths)
    lo = rng.uniform(-1, 1, widths[0])
    hi = lo + rng.uniform(0, 1, widths[0])
    if kind == "degenerate":
        hi = lo.copy()
    elif kind == "partly_degenerate":
        hi = np.where(rng.random(widths[0]) < 0.5, lo, hi)
    net = kernels.pack_network(network)
    total = kernels.num_hidden(net)
    if kind == "infeasible":
        phases = rng.choice(np.array([-1, 1], dtype=np.int8), total)
    else:
        x = rng.uniform(lo, hi)
        signs = np.concatenate([np.where(z > 0, 1, -1) for z in network.preactivations(x)]
                               or [np.zeros(0)])
        phases = np.where(rng.random(total) < fraction, signs, 0).astype(np.int8)
    prior_lo, prior_hi = np.full(total, -np.inf), np.full(total, np.inf)
    if use_prior and total:
        ref = forward_interval(network, lo, hi)
        prior_lo = np.concatenate(ref.lower) + 0.1 * rng.random(total)
        prior_hi = np.concatenate(ref.upper) - 0.1 * rng.random(total)
    return Node(network, net, lo, hi, phases, prior_lo, prior_hi)


def _run(ks: ckernels.KernelSet, node: Node, c: np.ndarray) -> Outputs:
    net = node.net
    total = kernels.num_hidden(net)
    args = (net, node.lo, node.hi, node.phases, node.prior_lo, node.prior_hi, REL, ABSW)
    zi = np.full(total, np.nan), np.full(total, np.nan)
    zl = np.full(total, np.nan), np.full(total, np.nan)
    f_int = ks.interval_forward(*args, *zi)
    f_lin = ks.linear_forward(*args, *zl, kernels.linear_workspace(net))
    d = np.full(total, np.nan), np.full(total, np.nan)
    ks.derivative(zl[0], zl[1], node.phases, *d)
    grads = int(net.g_off[-1])
    y = np.full(grads, np.nan), np.full(grads, np.nan)
    ks.backward_interval(net, c, d[0], d[1], REL, ABSW, *y)
    return Outputs((f_int, *zi), (f_lin, *zl), d, y)


def _assert_close(got, ref, rtol=1e-12):
    """Equal up to ``rtol`` relative to the largest magnitude of ``ref``."""
    scale = max(float(np.max(np.abs(ref), initial=0.0)), 1e-300)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale)


def _assert_same(a: Outputs, b: Outputs):
    """``a`` and ``b`` bit-equal except the linear bounds (equal up to rounding)."""
    assert a.interval[0] == b.interval[0]
    np.testing.assert_array_equal(a.interval[1], b.interval[1])
    np.testing.assert_array_equal(a.interval[2], b.interval[2])
    assert a.linear[0] == b.linear[0]
    _assert_close(a.linear[1], b.linear[1])
    _assert_close(a.linear[2], b.linear[2])
    np.testing.assert_array_equal(a.derivative[0], b.derivative[0])
    np.testing.assert_array_equal(a.derivative[1], b.derivative[1])


def _cases():
    kinds = ["random", "dead", "degenerate", "partly_degenerate", "infeasible"]
    out = []
    for s, widths in enumerate(SHAPES):
        for kind in kinds:
            for fraction, use_prior in ((0.0, False), (0.4, True), (1.0, False)):
                out.append(pytest.param(100 * s + len(out), widths, kind, fraction, use_prior,
                                        id=f"{'-'.join(map(str, widths))}-{kind}-{fraction}"
                                           f"-{'prior' if use_prior else 'noprior'}"))
    return out


# ---------------------------------------------------------------------- C == Numba == NumPy
@requires_c
@pytest.mark.parametrize("seed,widths,kind,fraction,use_prior", _cases())
def test_c_equals_numba_and_numpy(seed, widths, kind, fraction, use_prior):
    node = _random_node(seed, widths, kind=kind, fraction=fraction, use_prior=use_prior)
    c = np.random.default_rng(seed + 1).normal(size=widths[-1])
    out_c = _run(ckernels.kernel_backend("c"), node, c)
    out_nb = _run(ckernels.kernel_backend("numba"), node, c)
    _assert_same(out_c, out_nb)
    # same derivative bounds in, bit-equal backward bounds out
    y = np.empty_like(out_nb.backward[0]), np.empty_like(out_nb.backward[0])
    kernels.backward_interval_kernel(node.net, c, *out_c.derivative, REL, ABSW, *y)
    np.testing.assert_array_equal(out_c.backward[0], y[0])
    np.testing.assert_array_equal(out_c.backward[1], y[1])

    # the NumPy references (independent code)
    phases = node.split(node.phases)
    prior = None
    if use_prior and node.phases.size:
        from bnblip.bounds.interval import ForwardBounds
        prior = ForwardBounds(node.split(node.prior_lo), node.split(node.prior_hi))
    for ref, (flag, z_lo, z_hi) in ((forward_interval, out_c.interval),
                                    (forward_linear, out_c.linear)):
        fb = ref(node.network, node.lo, node.hi, phases, prior=prior)
        assert fb.infeasible == flag
        for got, want in zip(node.split(z_lo) + node.split(z_hi), fb.lower + fb.upper):
            _assert_close(got, want)
    d_lo, d_hi = derivative_bounds(
        forward_linear(node.network, node.lo, node.hi, phases, prior=prior), phases)
    np.testing.assert_array_equal(out_c.derivative[0], np.concatenate(d_lo or [np.zeros(0)]))
    np.testing.assert_array_equal(out_c.derivative[1], np.concatenate(d_hi or [np.zeros(0)]))
    bb = backward_interval(node.network, c, node.split(out_c.derivative[0]),
                           node.split(out_c.derivative[1]))
    g_off = node.net.g_off
    for k, (want_lo, want_hi) in enumerate(zip(bb.lower, bb.upper)):
        _assert_close(out_c.backward[0][g_off[k]:g_off[k + 1]], want_lo)
        _assert_close(out_c.backward[1][g_off[k]:g_off[k + 1]], want_hi)


def _exact_product_node(seed: int, fraction: float) -> Node:
    """A node whose back-substitution products are exact in any summation order.

    The layers multiplied during back-substitution (all hidden layers but the last)
    are signed permutations scaled by powers of two, so every product entry is
    one exact term; the relaxation slopes, intercepts and sums are arbitrary.
    Linear bounds must then be bit-identical whatever the product's order or
    fusion (BLAS, the AVX tile, the portable loop).
    """
    rng = np.random.default_rng(seed)
    n, h, m = 6, 9, 3
    weights, biases = [], []
    for _ in range(2):
        perm = np.eye(n)[rng.permutation(n)]
        weights.append(perm * rng.choice([-1.0, 1.0], n)[:, None] *
                       2.0 ** rng.integers(-2, 3, n)[:, None])
        biases.append(rng.normal(0, 0.1, n))
    weights += [rng.normal(0, 0.5, (h, n)), rng.normal(0, 0.5, (m, h))]
    biases += [rng.normal(0, 0.1, h), rng.normal(0, 0.1, m)]
    network = Network.from_layers(weights, biases)
    lo = rng.uniform(-1.5, 0, n)
    hi = rng.uniform(0, 1.5, n)
    net = kernels.pack_network(network)
    total = kernels.num_hidden(net)
    x = rng.uniform(lo, hi)
    signs = np.concatenate([np.where(z > 0, 1, -1) for z in network.preactivations(x)])
    phases = np.where(rng.random(total) < fraction, signs, 0).astype(np.int8)
    return Node(network, net, lo, hi, phases, np.full(total, -np.inf), np.full(total, np.inf))


def _linear(kernel, node: Node):
    total = kernels.num_hidden(node.net)
    z_lo, z_hi = np.full(total, np.nan), np.full(total, np.nan)
    flag = kernel(node.net, node.lo, node.hi, node.phases, node.prior_lo, node.prior_hi, REL,
                  ABSW, z_lo, z_hi, kernels.linear_workspace(node.net))
    return flag, z_lo, z_hi


@requires_c
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("fraction", [0.0, 0.3])
def test_c_linear_bit_equal_when_products_are_exact(seed, fraction):
    node = _exact_product_node(seed, fraction)
    want = _linear(kernels.linear_forward_kernel, node)
    relaxed = slice(0, 2 * node.lo.size)   # the layers whose relaxations are substituted
    assert np.any((want[1][relaxed] < 0) & (want[2][relaxed] > 0)), "nothing ambiguous"
    for kernel in (ckernels.kernel_backend("c").linear_forward,
                   ckernels._EXTENSION._linear_forward_portable):
        got = _linear(kernel, node)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[2], want[2])


@requires_c
@pytest.mark.parametrize("seed,widths", [(s, w) for s, w in enumerate(SHAPES)])
def test_c_portable_path_matches_default_path(seed, widths):
    """The portable C99 loops (run on CPUs without AVX2/FMA) agree with the default."""
    for kind in ("random", "dead", "partly_degenerate"):
        node = _random_node(seed, widths, kind=kind, fraction=0.2)
        fast = _linear(ckernels.kernel_backend("c").linear_forward, node)
        portable = _linear(ckernels._EXTENSION._linear_forward_portable, node)
        assert fast[0] == portable[0]
        _assert_close(portable[1], fast[1])
        _assert_close(portable[2], fast[2])


@requires_c
@pytest.mark.parametrize("seed", range(6))
def test_c_bounds_contain_sampled_preactivations(seed):
    """Soundness checked directly: every sampled point lies inside the C bounds."""
    node = _random_node(seed, [8, 30, 20, 20, 3], kind="random", fraction=0.0)
    ks = ckernels.kernel_backend("c")
    total = kernels.num_hidden(node.net)
    for linear in (False, True):
        z_lo, z_hi = np.empty(total), np.empty(total)
        args = (node.net, node.lo, node.hi, node.phases, node.prior_lo, node.prior_hi,
                REL, ABSW, z_lo, z_hi)
        empty = (ks.linear_forward(*args, kernels.linear_workspace(node.net)) if linear
                 else ks.interval_forward(*args))
        assert not empty
        xs = np.random.default_rng(seed).uniform(node.lo, node.hi, (2000, node.lo.size))
        z = np.hstack(node.network.preactivations(xs))
        assert np.all(z >= z_lo) and np.all(z <= z_hi)


@requires_c
def test_c_linear_tighter_than_interval_on_deep_net():
    node = _random_node(7, [10, 10, 10, 10, 10, 2], fraction=0.0)
    out = _run(ckernels.kernel_backend("c"), node, np.ones(2))
    assert np.all(out.linear[1] >= out.interval[1])
    assert np.all(out.linear[2] <= out.interval[2])
    assert np.sum(out.linear[2] - out.linear[1]) < 0.9 * np.sum(out.interval[2] - out.interval[1])


@requires_c
def test_c_contradicted_phase_and_dead_neuron():
    # z = x on [1, 2] fixed inactive: infeasible; a dead neuron stays inactive
    network = Network.from_layers([np.array([[1.0], [1e-17]]), np.array([[1.0, 1.0]])],
                                  [np.array([0.0, -1e-7]), np.array([0.0])])
    net = kernels.pack_network(network)
    ks = ckernels.kernel_backend("c")
    lo, hi = np.array([1.0]), np.array([2.0])
    inf = np.full(2, np.inf)
    for kernel, extra in ((ks.interval_forward, ()),
                          (ks.linear_forward, (kernels.linear_workspace(net),))):
        z_lo, z_hi = np.empty(2), np.empty(2)
        phases = np.array([-1, 0], dtype=np.int8)
        assert kernel(net, lo, hi, phases, -inf, inf, REL, ABSW, z_lo, z_hi, *extra) is True
        phases = np.zeros(2, dtype=np.int8)
        assert kernel(net, lo, hi, phases, -inf, inf, REL, ABSW, z_lo, z_hi, *extra) is False
        assert z_hi[1] < 0.0
        d_lo, d_hi = np.empty(2), np.empty(2)
        ks.derivative(z_lo, z_hi, phases, d_lo, d_hi)
        np.testing.assert_array_equal(d_lo, [1.0, 0.0])
        np.testing.assert_array_equal(d_hi, [1.0, 0.0])


@requires_c
def test_c_workspace_reuse_and_threads():
    """Reused outputs and workspaces give the same answer; calls in threads agree."""
    nodes = [_random_node(s, [12, 33, 21, 4], fraction=0.2) for s in range(4)]
    ks = ckernels.kernel_backend("c")
    expected = [_run(ks, node, np.ones(4)) for node in nodes]
    work = kernels.linear_workspace(nodes[0].net)
    results = [None] * len(nodes)

    def job(i):
        node = nodes[i]
        total = kernels.num_hidden(node.net)
        z_lo, z_hi = np.empty(total), np.empty(total)
        for _ in range(50):
            flag = ks.linear_forward(node.net, node.lo, node.hi, node.phases, node.prior_lo,
                                     node.prior_hi, REL, ABSW, z_lo, z_hi,
                                     work if i == 0 else kernels.linear_workspace(node.net))
        results[i] = (flag, z_lo, z_hi)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(len(nodes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        assert got[0] == want.linear[0]
        np.testing.assert_array_equal(got[1], want.linear[1])
        np.testing.assert_array_equal(got[2], want.linear[2])


@requires_c
def test_c_accepts_plain_tuple_of_packed_fields():
    node = _random_node(11, [6, 8, 8, 3], fraction=0.3)
    kernel = ckernels.kernel_backend("c").linear_forward
    want = _linear(kernel, node)
    got = _linear(lambda net, *args: kernel(tuple(net), *args), node)
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])


# ---------------------------------------------------------------------- argument checks
def _valid_args():
    node = _random_node(3, [4, 5, 6, 2])
    total = kernels.num_hidden(node.net)
    return [node.net, node.lo, node.hi, node.phases, node.prior_lo, node.prior_hi, REL, ABSW,
            np.empty(total), np.empty(total), kernels.linear_workspace(node.net)]


def _readonly(a):
    a = a.copy()
    a.setflags(write=False)
    return a


BAD_ARGS = [
    (1, lambda a: a.astype(np.float32), TypeError, "x_lo must have dtype float64"),
    (2, lambda a: list(a), TypeError, "x_hi must be a numpy.ndarray"),
    (1, lambda a: np.repeat(a, 2)[::2], ValueError, "x_lo must be C-contiguous"),
    (1, lambda a: a[:-1], ValueError, "x_lo must have 4 elements"),
    (1, lambda a: a.reshape(2, 2), ValueError, "x_lo must be one-dimensional"),
    (3, lambda a: a.astype(np.int64), TypeError, "phases must have dtype int8"),
    (4, lambda a: a[:-1], ValueError, "prior_lo must have 11 elements"),
    (6, lambda a: "small", TypeError, "rel must be a real number"),
    (8, _readonly, ValueError, "z_lo must be writable"),
    (9, lambda a: np.empty(12), ValueError, "z_hi must have 11 elements"),
    (10, lambda a: a[:-1], ValueError, "work must have at least"),
    (0, lambda a: (1, 2, 3), TypeError, "net must be a PackedNetwork"),
    (0, lambda a: a._replace(w_off=a.w_off + 1), ValueError, "net.w_off"),
    (0, lambda a: a._replace(b_off=a.b_off[::-1].copy()), ValueError, "net.b_off"),
    (0, lambda a: a._replace(weights=a.weights[1:]), ValueError, "net.weights must have"),
    (0, lambda a: a._replace(widths=a.widths.astype(np.int32)), TypeError,
     "net.widths must have dtype int64"),
]


@requires_c
@pytest.mark.parametrize("index,mutate,error,message", BAD_ARGS)
def test_c_linear_kernel_rejects_bad_arguments(index, mutate, error, message):
    args = _valid_args()
    args[index] = mutate(args[index])
    with pytest.raises(error, match=message):
        ckernels.kernel_backend("c").linear_forward(*args)


@requires_c
def test_c_other_kernels_reject_bad_arguments():
    ks = ckernels.kernel_backend("c")
    args = _valid_args()
    with pytest.raises(TypeError, match="takes 10 positional arguments"):
        ks.interval_forward(*args)
    with pytest.raises(TypeError, match="phases must have dtype int8"):
        ks.interval_forward(*args[:3], args[3].astype(np.float64), *args[4:10])
    z = np.zeros(11)
    with pytest.raises(TypeError, match="phases must have dtype int8"):
        ks.derivative(z, z, z, np.empty(11), np.empty(11))
    with pytest.raises(ValueError, match="d_hi must have 11 elements"):
        ks.derivative(z, z, args[3], np.empty(11), np.empty(10))
    with pytest.raises(TypeError, match="z_lo must be a numpy.ndarray"):
        ks.derivative([0.0], z, args[3], z, z)
    net = args[0]
    y = np.empty(int(net.g_off[-1]))
    with pytest.raises(ValueError, match="c must have 2 elements"):
        ks.backward_interval(net, np.ones(3), z, z, REL, ABSW, y, y.copy())
    with pytest.raises(ValueError, match="y_hi must have 15 elements"):
        ks.backward_interval(net, np.ones(2), z, z, REL, ABSW, y, y[:-1])
    with pytest.raises(TypeError, match="absw must be a real number"):
        ks.backward_interval(net, np.ones(2), z, z, REL, None, y, y.copy())


# ---------------------------------------------------------------------- backend choice
def test_kernel_sets_and_names():
    numba_set = ckernels.kernel_backend("numba")
    assert numba_set.backend is ckernels.Backend.NUMBA
    assert numba_set.linear_forward is kernels.linear_forward_kernel
    assert ckernels.select_kernels("numba") is numba_set
    assert ckernels.available_backends()[-1] is ckernels.Backend.NUMBA
    with pytest.raises(InputError, match="kernel backend must be one of"):
        ckernels.select_kernels("fortran")
    with pytest.raises(dataclasses.FrozenInstanceError):
        numba_set.linear_forward = None
    best = ckernels.select_kernels("c")
    assert best.backend is (ckernels.Backend.C if ckernels.HAVE_C else ckernels.Backend.NUMBA)
    assert ckernels.linear_forward_kernel is best.linear_forward


@pytest.fixture
def without_extension(monkeypatch):
    """A fresh copy of ``bnblip.bounds.ckernels`` imported as if the extension were missing.

    The copy is a separate module object; the real module is left untouched.
    """
    monkeypatch.setitem(sys.modules, "bnblip._ckernels", None)
    monkeypatch.delattr(bnblip, "_ckernels", raising=False)
    spec = importlib.util.find_spec("bnblip.bounds.ckernels")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fallback_to_numba_without_extension(without_extension, caplog):
    module = without_extension
    assert module.HAVE_C is False
    assert module.C_KERNELS is None
    assert module.available_backends() == (module.Backend.NUMBA,)
    with caplog.at_level(logging.DEBUG, logger="bnblip.bounds.ckernels"):
        chosen = module.select_kernels("c")
    assert chosen.backend is module.Backend.NUMBA
    assert any("Numba" in rec.getMessage() for rec in caplog.records)
    with pytest.raises(InputError, match="'c' is not available"):
        module.kernel_backend("c")
    assert module.linear_forward_kernel is kernels.linear_forward_kernel
    node = _random_node(5, [6, 8, 8, 3], fraction=0.3)
    out = _run(chosen, node, np.ones(3))
    fb = forward_linear(node.network, node.lo, node.hi, node.split(node.phases))
    assert out.linear[0] == fb.infeasible
    _assert_close(out.linear[2], np.concatenate(fb.upper))


def test_fallback_copy_leaves_real_module_alone(without_extension):
    assert without_extension is not ckernels
    assert ckernels.HAVE_C == (ckernels.C_KERNELS is not None)


# ---------------------------------------------------------------------- solver wrappers
@pytest.mark.parametrize("backend",
                         [ckernels.Backend.NUMBA] + [ckernels.Backend.C] * ckernels.HAVE_C)
@pytest.mark.parametrize("seed,widths", [(s, w) for s, w in enumerate(SHAPES)])
@pytest.mark.parametrize("use_prior", [False, True])
def test_unchecked_wrappers_equal_the_checked_ones(backend, seed, widths, use_prior):
    # the solver's forward/backward skip validation; their results must be the
    # validated entry points' bit for bit (same kernel, same inputs)
    node = _random_node(500 + seed, widths, fraction=0.4, use_prior=use_prior)
    if not len(node.net.hidden_widths):
        pytest.skip("no hidden layer")
    ks = ckernels.kernel_backend(backend)
    phases = node.split(node.phases)
    prior = (bnblip.bounds.ForwardBounds(node.split(node.prior_lo), node.split(node.prior_hi),
                                         False) if use_prior else None)
    want = ckernels.forward_linear_with(ks)(node.network, node.lo, node.hi, phases,
                                            DEFAULT_TOLERANCES, prior)
    got = ckernels.unchecked_forward_linear_with(ks)(node.net, node.lo, node.hi, phases,
                                                     DEFAULT_TOLERANCES, prior)
    assert got.infeasible == want.infeasible
    for a, b in zip(got.lower + got.upper, want.lower + want.upper, strict=True):
        np.testing.assert_array_equal(a, b)
    dlo, dhi = derivative_bounds(want, phases)
    c = np.random.default_rng(seed).normal(size=widths[-1])
    y = np.full(int(node.net.g_off[-1]), np.nan), np.full(int(node.net.g_off[-1]), np.nan)
    ks.backward_interval(node.net, c, np.concatenate(dlo), np.concatenate(dhi), REL, ABSW, *y)
    back = ckernels.unchecked_backward_interval_with(ks)(node.net, c, dlo, dhi,
                                                        DEFAULT_TOLERANCES)
    np.testing.assert_array_equal(np.concatenate(back.lower), y[0])
    np.testing.assert_array_equal(np.concatenate(back.upper), y[1])
    ref = backward_interval(node.network, c, dlo, dhi)  # the NumPy twin: close
    for a, b in zip(back.lower + back.upper, ref.lower + ref.upper, strict=True):
        _assert_close(a, b)


# ---------------------------------------------------------------------- weak duality
def _dual_cases(seed):
    """A node LP's weak-duality objects (C and NumPy twin) and (data, multipliers)
    pairs: the parent's optimal duals, noisy and zero ones, a NaN, a column that
    must be bounded and is not, and a row unbounded on both sides."""
    from bnblip.lp.duality import WeakDuality
    from bnblip.lp.relaxation import constant_part
    from tests.lp_data import root_children

    layout, _, parent, kids = root_children(8360 + seed)
    rng = np.random.default_rng(seed)
    unbounded = kids[0].col_lower.copy()
    unbounded[layout.col_g[0]] = -np.inf
    free_row = kids[1]
    lower, upper = free_row.row_lower.copy(), free_row.row_upper.copy()
    lower[0], upper[0] = -np.inf, np.inf
    nan = parent.basis.row_dual.copy()
    nan[3] = np.nan
    datas = kids + [dataclasses.replace(kids[0], col_lower=unbounded),
                    dataclasses.replace(free_row, row_lower=lower, row_upper=upper)]
    ys = [parent.basis.row_dual, rng.normal(size=layout.num_rows) * 5.0,
          np.zeros(layout.num_rows), nan]
    pairs = [(d, y) for d in datas for y in ys]
    return (WeakDuality(layout, constant_part(layout)),
            WeakDuality(layout, constant_part(layout), compiled=False), pairs)


@requires_c
@pytest.mark.parametrize("seed", range(4))
def test_c_weak_duality_equals_numpy_twin(seed):
    compiled, twin, pairs = _dual_cases(seed)
    assert compiled.compiled and not twin.compiled
    bounded = 0
    unit = np.zeros(compiled.layout.num_cols)  # a tightening LP's cost (t costs 0)
    unit[compiled.layout.col_g[0]] = -1.0
    for (data, y), cost in itertools.product(pairs, (None, unit)):
        a, b = compiled.sums(data, y, cost), twin.sums(data, y, cost)
        if b.low == -np.inf:
            assert a.low == -np.inf and compiled.bound(data, y) == np.inf
            continue
        bounded += 1
        assert abs(a.low - b.low) <= b.allowance
        assert a.allowance == pytest.approx(b.allowance, rel=1e-12)
        np.testing.assert_allclose(a.reduced, b.reduced, rtol=1e-12, atol=1e-12)
        if cost is not None:
            continue
        pa, pb = compiled.bound_with_phases(data, y), twin.bound_with_phases(data, y)
        assert abs(pa.value - pb.value) <= 2 * b.allowance
        for x, z in zip(pa.phases.if_inactive + pa.phases.if_active,
                        pb.phases.if_inactive + pb.phases.if_active):
            np.testing.assert_allclose(x, z, rtol=0, atol=2 * b.allowance)
    assert 0 < bounded < 2 * len(pairs)  # both outcomes are exercised


ROWS_OF_DUAL_ARGS = 117
"""Rows of the LP of :func:`_dual_args` (checked there)."""


def _dual_args(seed=0):
    compiled, _, pairs = _dual_cases(seed)
    data, y = pairs[0]
    values = compiled._values.copy()
    values[compiled._slots] = data.coefs
    assert compiled.layout.num_rows == ROWS_OF_DUAL_ARGS
    return [compiled._indptr, compiled._indices, values, compiled.layout.cost,
            compiled._bounded_i8, compiled._row_t, compiled._col_t, y, data.col_lower,
            data.col_upper, data.row_lower, data.row_upper, np.empty(compiled.layout.num_cols)]


def _out_of_range(a):
    a = a.copy()
    a[-1] = 10**6
    return a


def _not_monotone(indptr):
    a = indptr.copy()
    a[1], a[2] = a[2], a[1] - 1  # the end entry (the count) is kept
    return a


def _one_past_the_rows(indices):
    a = indices.copy()
    a[0] = ROWS_OF_DUAL_ARGS
    return a


def _negative(a):
    a = a.copy()
    a[0] = -1
    return a


DUAL_BAD_ARGS = [
    (0, lambda a: a.astype(np.int32), TypeError, "indptr must have dtype int64"),
    (1, lambda a: a[:-1], ValueError, "indices must have"),
    (2, lambda a: list(a), TypeError, "values must be a numpy.ndarray"),
    (4, lambda a: a.astype(bool), TypeError, "bounded must have dtype int8"),
    (6, lambda a: np.zeros(a.size + 1, dtype=np.int64), ValueError, "col_t must have"),
    (7, lambda a: a[:-1], ValueError, "row_dual must have"),
    (11, lambda a: a.reshape(1, -1), ValueError, "row_upper must be one-dimensional"),
    (12, _readonly, ValueError, "reduced must be writable"),
    (1, _out_of_range, ValueError, "index out of range"),
    (5, _out_of_range, ValueError, "index out of range"),
    (0, _not_monotone, ValueError, "index out of range"),
    (1, _one_past_the_rows, ValueError, "index out of range"),
    (6, _negative, ValueError, "index out of range"),
    (6, _out_of_range, ValueError, "index out of range"),
    (3, lambda a: list(a), TypeError, "cost must be a numpy.ndarray"),
    (10, lambda a: a.astype(np.float32), TypeError, "row_lower must have dtype float64"),
]


@requires_c
@pytest.mark.parametrize("index,mutate,error,message", DUAL_BAD_ARGS)
def test_c_weak_duality_rejects_bad_arguments(index, mutate, error, message):
    from bnblip import _ckernels

    args = _dual_args()
    low, _ = _ckernels.weak_duality_kernel(*args)
    assert np.isfinite(low)
    args[index] = mutate(args[index])
    with pytest.raises(error, match=message):
        _ckernels.weak_duality_kernel(*args)
    with pytest.raises(TypeError, match="takes 13 positional arguments"):
        _ckernels.weak_duality_kernel(*args[:12])


def test_weak_duality_without_extension_uses_the_numpy_twin(monkeypatch, caplog):
    from bnblip.lp.duality import WeakDuality

    compiled, twin, pairs = _dual_cases(1)
    monkeypatch.setitem(sys.modules, "bnblip._ckernels", None)
    with caplog.at_level(logging.DEBUG, logger="bnblip.lp.duality"):
        fallback = WeakDuality(compiled.layout, twin._transposed.T)
    assert not fallback.compiled
    assert any("NumPy twin" in rec.getMessage() for rec in caplog.records)
    for data, y in pairs[:4]:
        assert fallback.bound(data, y) == twin.bound(data, y)
