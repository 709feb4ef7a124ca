"""Numba kernels of interval, linear and backward bound propagation.

The kernels are twins of the NumPy references (:mod:`bnblip.bounds.interval`,
:mod:`bnblip.bounds.linear`): same relaxations, same widening (relative to the
magnitude of the summed terms, DESIGN.md section 7), equal up to rounding.

Kernel-level API (for the solver; no validation, no allocation of outputs)
--------------------------------------------------------------------------
Pack the network once with :func:`pack_network`; the result is a
:class:`PackedNetwork` (a ``NamedTuple`` of flat arrays, the one record form Numba
accepts as an argument).  Hidden neurons are numbered layer after layer: neuron
``r`` of hidden layer ``k`` (0-based) sits at ``net.b_off[k] + r`` of every *flat
hidden array* (length ``net.b_off[-2]``, see :func:`num_hidden`).  Backward
arrays hold ``y_0`` (input gradient), ``y_1``, ..., ``y_{L-1}`` back to back;
``y_i`` starts at ``net.g_off[i]`` (length ``net.g_off[-1]``).

``interval_forward_kernel(net, x_lo, x_hi, phases, prior_lo, prior_hi, rel, absw, z_lo, z_hi)``
    Interval pre-activation bounds into ``z_lo`` / ``z_hi`` (flat hidden); returns
    ``infeasible`` (a fixed phase contradicted, or a lower bound above its upper
    bound).  ``phases`` is flat hidden int8 (``+1`` active, ``-1`` inactive, ``0``
    free).  ``prior_lo`` / ``prior_hi`` (flat hidden) are bounds known to hold on
    the node, e.g. the parent's, intersected into each layer before it is
    propagated; pass ``-inf`` / ``+inf`` arrays for none.  ``rel`` / ``absw`` are
    ``Tolerances.bound_rel_widen`` / ``bound_abs_widen``.
``linear_forward_kernel(net, x_lo, x_hi, phases, prior_lo, prior_hi, rel, absw, z_lo, z_hi, work)``
    Linear (back-substituted) bounds intersected with interval bounds, same
    arguments; ``work`` is a float64 scratch array from :func:`linear_workspace`
    (allocate it once per network and reuse it).
``derivative_kernel(z_lo, z_hi, phases, d_lo, d_hi)``
    ReLU derivative bounds in ``{0, 1}`` (flat hidden).
``backward_interval_kernel(net, c, d_lo, d_hi, rel, absw, y_lo, y_hi)``
    Interval bounds of the gradient quantities (flat backward arrays).

All arrays must be C-contiguous float64 (int8 for ``phases``) of the stated
lengths; the kernels do not check them.  Outputs may be reused across calls; the
kernels allocate only a few vectors of layer width.  The matrix products of the
back-substitution go to BLAS in blocks small enough for OpenBLAS to stay on one
thread (threads oversubscribe a busy machine and were measured 10-100x slower).
Typical solver use::

    net = pack_network(network)
    work = linear_workspace(net)
    z_lo, z_hi = np.empty(num_hidden(net)), np.empty(num_hidden(net))
    empty = linear_forward_kernel(net, box_lo, box_hi, phases_flat, parent_lo,
                                  parent_hi, tol.bound_rel_widen,
                                  tol.bound_abs_widen, z_lo, z_hi, work)

Python wrappers with the signatures of the references (validating, allocating,
returning :class:`ForwardBounds` / :class:`BackwardBounds`):
:func:`forward_interval_numba`, :func:`forward_linear_numba`,
:func:`derivative_bounds_numba`, :func:`backward_interval_numba`.  They accept a
:class:`~bnblip.network.Network` or a :class:`PackedNetwork`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from bnblip.bounds.interval import (
    ACTIVE,
    INACTIVE,
    BackwardBounds,
    ForwardBounds,
    check_box,
    check_flat_phases,
    check_prior,
)
from bnblip.errors import InputError
from bnblip.network import Network
from bnblip.options import DEFAULT_TOLERANCES, Tolerances

_BLAS_SINGLE_THREAD = 65536 * 4
"""Largest ``m * n * k`` OpenBLAS multiplies on one thread (its default threshold)."""


class PackedNetwork(NamedTuple):
    """A network as flat arrays for the kernels (``L`` affine layers).

    Attributes
    ----------
    widths : ndarray of int64
        ``(n, h_1, ..., h_{L-1}, m)``.
    w_off : ndarray of int64
        Start of layer ``k`` in ``weights`` and ``weights_t`` (length ``L + 1``).
    weights : ndarray of float64
        Every ``W_k`` (shape ``(out, in)``) row-major, back to back.
    weights_t : ndarray of float64
        Every ``W_k^T`` row-major, back to back.
    biases : ndarray of float64
        Every ``b_k`` back to back.
    b_off : ndarray of int64
        Start of layer ``k`` in ``biases`` and in flat hidden arrays (length ``L + 1``).
    g_off : ndarray of int64
        Start of ``y_i`` in flat backward arrays (length ``L + 1``).
    """

    widths: np.ndarray
    w_off: np.ndarray
    weights: np.ndarray
    weights_t: np.ndarray
    biases: np.ndarray
    b_off: np.ndarray
    g_off: np.ndarray

    @property
    def input_dim(self) -> int:
        """Number of inputs ``n``."""
        return int(self.widths[0])

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """Widths of the hidden layers."""
        return tuple(int(h) for h in self.widths[1:-1])

    @property
    def output_dim(self) -> int:
        """Number of outputs ``m``."""
        return int(self.widths[-1])


def _offsets(sizes) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def pack_network(network: Network) -> PackedNetwork:
    """Flatten ``network`` for the kernels (do it once per network)."""
    widths = np.array(network.widths, dtype=np.int64)
    return PackedNetwork(
        widths=widths,
        w_off=_offsets([w.size for w in network.weights]),
        weights=np.concatenate([w.ravel() for w in network.weights]),
        weights_t=np.concatenate([w.T.ravel() for w in network.weights]),
        biases=np.concatenate(network.biases),
        b_off=_offsets(widths[1:]),
        g_off=_offsets(widths[:-1]),
    )


def num_hidden(net: PackedNetwork) -> int:
    """Length of flat hidden arrays."""
    return int(net.b_off[-2])


def linear_workspace(net: PackedNetwork) -> np.ndarray:
    """Scratch array for :func:`linear_forward_kernel` (reusable across calls)."""
    if net.widths.shape[0] < 3:
        return np.empty(0, dtype=np.float64)
    rows = 2 * int(np.max(net.widths[1:-1]))
    cols = int(np.max(net.widths[:-1]))
    return np.empty(2 * rows * cols, dtype=np.float64)


# ---------------------------------------------------------------------- kernels
@njit(cache=True)
def _interval_layer(net, k, plo, phi, rel, absw, z_lo, z_hi, mag, cen, rad):
    """Interval bound of layer ``k`` from post-activation bounds ``[plo, phi]``."""
    n_in = net.widths[k]
    h = net.widths[k + 1]
    wt = net.weights_t
    wo = net.w_off[k]
    bo = net.b_off[k]
    cen[:h] = 0.0
    rad[:h] = 0.0
    mag[bo:bo + h] = 0.0
    for q in range(n_in):
        mq = 0.5 * (plo[q] + phi[q])
        rq = 0.5 * (phi[q] - plo[q])
        if mq == 0.0 and rq == 0.0:
            continue
        amq = abs(mq)
        base = wo + q * h
        for r in range(h):
            w = wt[base + r]
            aw = abs(w)
            cen[r] += w * mq
            rad[r] += aw * rq
            mag[bo + r] += aw * amq
    for r in range(h):
        b = net.biases[bo + r]
        center = cen[r] + b
        m = mag[bo + r] + rad[r] + abs(b)
        widen = rel * m + absw
        z_lo[bo + r] = center - rad[r] - widen
        z_hi[bo + r] = center + rad[r] + widen
        mag[bo + r] = m


@njit(cache=True)
def _settle_layer(net, k, phases, prior_lo, prior_hi, z_lo, z_hi, plo, phi):
    """Intersect layer ``k`` with the prior, apply its phases, set post-activation bounds.

    Returns whether a phase is contradicted or a lower bound exceeds its upper bound.
    """
    bo = net.b_off[k]
    infeasible = False
    for r in range(net.widths[k + 1]):
        i = bo + r
        ph = phases[i]
        lo = max(z_lo[i], prior_lo[i])
        hi = min(z_hi[i], prior_hi[i])
        if lo > hi or (ph == ACTIVE and hi < 0.0) or (ph == INACTIVE and lo > 0.0):
            infeasible = True
        if ph == ACTIVE:
            lo = max(lo, 0.0)
        elif ph == INACTIVE:
            hi = min(hi, 0.0)
        z_lo[i] = lo
        z_hi[i] = hi
        if ph == INACTIVE:
            plo[r] = 0.0
            phi[r] = 0.0
        else:
            plo[r] = max(lo, 0.0)
            phi[r] = max(hi, 0.0)
    return infeasible


@njit(cache=True)
def interval_forward_kernel(net, x_lo, x_hi, phases, prior_lo, prior_hi, rel, absw,
                            z_lo, z_hi):
    """Interval bounds of every hidden pre-activation (flat); returns ``infeasible``."""
    depth = net.widths.shape[0] - 2
    width = np.max(net.widths[:-1])
    plo = np.empty(width)
    phi = np.empty(width)
    cen = np.empty(width)
    rad = np.empty(width)
    mag = np.empty(net.b_off[depth])
    plo[:x_lo.shape[0]] = x_lo
    phi[:x_hi.shape[0]] = x_hi
    infeasible = False
    for k in range(depth):
        _interval_layer(net, k, plo, phi, rel, absw, z_lo, z_hi, mag, cen, rad)
        infeasible |= _settle_layer(net, k, phases, prior_lo, prior_hi, z_lo, z_hi, plo, phi)
    return infeasible


@njit(cache=True)
def _relax_layer(net, k, phases, z_lo, z_hi, up_slope, up_icpt, lo_slope):
    """ReLU relaxation of layer ``k`` (see :func:`bnblip.bounds.linear.relu_relaxation`)."""
    bo = net.b_off[k]
    for r in range(net.widths[k + 1]):
        i = bo + r
        ph = phases[i]
        lo = z_lo[i]
        hi = z_hi[i]
        up_icpt[i] = 0.0
        if ph == ACTIVE or (ph != INACTIVE and lo >= 0.0):
            up_slope[i] = 1.0
            lo_slope[i] = 1.0
        elif ph == INACTIVE or hi <= 0.0:
            up_slope[i] = 0.0
            lo_slope[i] = 0.0
        else:
            s = hi / (hi - lo)
            up_slope[i] = s
            up_icpt[i] = -s * lo
            lo_slope[i] = 1.0 if hi >= -lo else 0.0


@njit(cache=True)
def _layer_matrix(net, k):
    """``W_k`` as a read-only 2-D view of the packed weights."""
    start = net.w_off[k]
    return net.weights[start:net.w_off[k + 1]].reshape((net.widths[k + 1], net.widths[k]))


@njit(cache=True)
def _relax_rows(net, j, lam, const, err, up_slope, up_icpt, lo_slope, mag):
    """Scale ``lam`` (coefficients of ``a_j``) in place into coefficients of ``z_j``.

    Positive coefficients take the upper relaxation, negative ones the lower; the
    intercepts and ``lam @ b_j`` go into ``const``, ``|lam| @ mag_j`` into ``err``.
    """
    bo = net.b_off[j]
    for r in range(lam.shape[0]):
        c = 0.0
        e = 0.0
        for i in range(lam.shape[1]):
            value = lam[r, i]
            if value == 0.0:
                continue
            idx = bo + i
            e += abs(value) * mag[idx]
            if value > 0.0:
                scaled = value * up_slope[idx]
                c += value * up_icpt[idx]
            else:
                scaled = value * lo_slope[idx]
            c += scaled * net.biases[idx]
            lam[r, i] = scaled
        const[r] += c
        err[r] += e


@njit(cache=True)
def _product(work, src, dst, rows, w):
    """``work[dst:] = work[src:] @ w`` for ``rows`` rows, in single-threaded BLAS calls.

    OpenBLAS multithreads a product when ``m * n * k`` exceeds
    ``_BLAS_SINGLE_THREAD``; on a busy machine that is many times slower, so the
    rows are split into blocks below that size.
    """
    h, n = w.shape
    per = max(1, _BLAS_SINGLE_THREAD // (h * n))
    for r0 in range(0, rows, per):
        r1 = min(rows, r0 + per)
        block = work[src + r0 * h:src + r1 * h].reshape((r1 - r0, h))
        out = work[dst + r0 * n:dst + r1 * n].reshape((r1 - r0, n))
        np.dot(block, w, out)


@njit(cache=True)
def _back_substitute(net, k, x_lo, x_hi, rel, absw, z_lo, z_hi, mag,
                     up_slope, up_icpt, lo_slope, work):
    """Linear bound of layer ``k >= 1`` intersected into ``z_lo`` / ``z_hi``.

    The coefficient matrix ``[W_k; -W_k]`` (upper bounds of ``z_k`` and ``-z_k``)
    is relaxed and multiplied (BLAS) through the layers below, alternating
    between the two halves of ``work``.
    """
    h = net.widths[k + 1]
    n_in = net.widths[k]
    rows = 2 * h
    half = work.shape[0] // 2
    if half < rows * np.max(net.widths[:-1]):
        raise ValueError("work is smaller than linear_workspace(net)")
    lam = work[:rows * n_in].reshape((rows, n_in))
    const = np.empty(rows)
    err = np.empty(rows)
    w_k = _layer_matrix(net, k)
    bo = net.b_off[k]
    for r in range(h):
        b = net.biases[bo + r]
        const[r] = b
        const[h + r] = -b
        err[r] = mag[bo + r]
        err[h + r] = mag[bo + r]
        for q in range(n_in):
            lam[r, q] = w_k[r, q]
            lam[h + r, q] = -w_k[r, q]
    src = 0
    for j in range(k - 1, -1, -1):
        _relax_rows(net, j, lam, const, err, up_slope, up_icpt, lo_slope, mag)
        dst = half - src
        _product(work, src, dst, rows, _layer_matrix(net, j))
        lam = work[dst:dst + rows * net.widths[j]].reshape((rows, net.widths[j]))
        src = dst
    for r in range(rows):
        acc = 0.0
        e = err[r]
        for q in range(net.widths[0]):
            mq = 0.5 * (x_lo[q] + x_hi[q])
            rq = 0.5 * (x_hi[q] - x_lo[q])
            coef = lam[r, q]
            acoef = abs(coef)
            acc += coef * mq + acoef * rq
            e += acoef * (abs(mq) + rq)
        bound = acc + const[r] + (rel * e + absw)
        if r < h:
            z_hi[bo + r] = min(z_hi[bo + r], bound)
        else:
            z_lo[bo + r - h] = max(z_lo[bo + r - h], -bound)


@njit(cache=True)
def linear_forward_kernel(net, x_lo, x_hi, phases, prior_lo, prior_hi, rel, absw,
                          z_lo, z_hi, work):
    """Linear bounds intersected with interval bounds (flat); returns ``infeasible``."""
    depth = net.widths.shape[0] - 2
    total = net.b_off[depth]
    width = np.max(net.widths[:-1])
    plo = np.empty(width)
    phi = np.empty(width)
    cen = np.empty(width)
    rad = np.empty(width)
    mag = np.empty(total)
    up_slope = np.empty(total)
    up_icpt = np.empty(total)
    lo_slope = np.empty(total)
    plo[:x_lo.shape[0]] = x_lo
    phi[:x_hi.shape[0]] = x_hi
    infeasible = False
    for k in range(depth):
        _interval_layer(net, k, plo, phi, rel, absw, z_lo, z_hi, mag, cen, rad)
        if k > 0:
            _back_substitute(net, k, x_lo, x_hi, rel, absw, z_lo, z_hi, mag,
                             up_slope, up_icpt, lo_slope, work)
        infeasible |= _settle_layer(net, k, phases, prior_lo, prior_hi, z_lo, z_hi, plo, phi)
        _relax_layer(net, k, phases, z_lo, z_hi, up_slope, up_icpt, lo_slope)
        bo = net.b_off[k]
        for i in range(bo, bo + net.widths[k + 1]):
            mag[i] = max(mag[i], max(abs(z_lo[i]), abs(z_hi[i])))
    return infeasible


@njit(cache=True)
def derivative_kernel(z_lo, z_hi, phases, d_lo, d_hi):
    """ReLU derivative bounds (flat hidden): 1 active, 0 inactive, ``[0, 1]`` else."""
    for i in range(z_lo.shape[0]):
        ph = phases[i]
        if ph == INACTIVE or z_hi[i] <= 0.0:
            d_lo[i] = 0.0
            d_hi[i] = 0.0
        elif ph == ACTIVE or z_lo[i] >= 0.0:
            d_lo[i] = 1.0
            d_hi[i] = 1.0
        else:
            d_lo[i] = 0.0
            d_hi[i] = 1.0


@njit(cache=True)
def _transpose_interval(net, k, u_lo, u_hi, rel, absw, y_lo, y_hi, cen, rad, mag):
    """``y = W_k^T u`` for ``u`` in ``[u_lo, u_hi]`` into ``y_lo/y_hi[g_off[k]:]``."""
    h = net.widths[k + 1]
    n_in = net.widths[k]
    wo = net.w_off[k]
    go = net.g_off[k]
    cen[:n_in] = 0.0
    rad[:n_in] = 0.0
    mag[:n_in] = 0.0
    for r in range(h):
        mr = 0.5 * (u_lo[r] + u_hi[r])
        rr = 0.5 * (u_hi[r] - u_lo[r])
        if mr == 0.0 and rr == 0.0:
            continue
        amr = abs(mr)
        base = wo + r * n_in
        for q in range(n_in):
            w = net.weights[base + q]
            aw = abs(w)
            cen[q] += w * mr
            rad[q] += aw * rr
            mag[q] += aw * amr
    for q in range(n_in):
        widen = rel * (mag[q] + rad[q]) + absw
        y_lo[go + q] = cen[q] - rad[q] - widen
        y_hi[go + q] = cen[q] + rad[q] + widen


@njit(cache=True)
def backward_interval_kernel(net, c, d_lo, d_hi, rel, absw, y_lo, y_hi):
    """Interval bounds of ``y_i = d(c^T f)/d a_i`` with derivatives in ``[d_lo, d_hi]``."""
    layers = net.widths.shape[0] - 1
    width = np.max(net.widths)
    u_lo = np.empty(width)
    u_hi = np.empty(width)
    cen = np.empty(width)
    rad = np.empty(width)
    mag = np.empty(width)
    _transpose_interval(net, layers - 1, c, c, rel, absw, y_lo, y_hi, cen, rad, mag)
    for k in range(layers - 2, -1, -1):
        go = net.g_off[k + 1]
        bo = net.b_off[k]
        for r in range(net.widths[k + 1]):
            a = d_lo[bo + r] * y_lo[go + r]
            b = d_lo[bo + r] * y_hi[go + r]
            e = d_hi[bo + r] * y_lo[go + r]
            f = d_hi[bo + r] * y_hi[go + r]
            u_lo[r] = min(min(a, b), min(e, f))
            u_hi[r] = max(max(a, b), max(e, f))
        _transpose_interval(net, k, u_lo, u_hi, rel, absw, y_lo, y_hi, cen, rad, mag)


# ---------------------------------------------------------------------- wrappers
def _packed(network) -> PackedNetwork:
    if isinstance(network, PackedNetwork):
        return network
    if isinstance(network, Network):
        return pack_network(network)
    raise InputError(f"network must be a Network or PackedNetwork, got {type(network).__name__}")


def _split(flat: np.ndarray, offsets: np.ndarray, count: int) -> tuple[np.ndarray, ...]:
    return tuple(flat[offsets[k]:offsets[k + 1]] for k in range(count))


def _flat_prior(net: PackedNetwork, prior) -> tuple[np.ndarray, np.ndarray]:
    return _concat_prior(check_prior(net, prior), num_hidden(net))


def _concat_prior(prior: ForwardBounds | None, total: int) -> tuple[np.ndarray, np.ndarray]:
    """``prior`` as flat float64 arrays (unbounded when ``None`` or without layers)."""
    if prior is None or not prior.lower:
        return np.full(total, -np.inf), np.full(total, np.inf)
    return (np.concatenate(prior.lower).astype(np.float64, copy=False),
            np.concatenate(prior.upper).astype(np.float64, copy=False))


def _forward(kernel, network, lower, upper, phases, tol, prior, *extra) -> ForwardBounds:
    net = _packed(network)
    lo, hi = check_box(net, lower, upper)
    flat = check_flat_phases(net, phases)
    prior_lo, prior_hi = _flat_prior(net, prior)
    return _run_forward(kernel, net, lo, hi, flat, prior_lo, prior_hi, tol, extra)


def forward_unchecked(kernel, net: PackedNetwork, lower: np.ndarray, upper: np.ndarray,
                      phases: tuple[np.ndarray, ...], tol: Tolerances,
                      prior: ForwardBounds | None, *extra) -> ForwardBounds:
    """:func:`_forward` without validation, for the solver's nodes.

    Parameters
    ----------
    kernel : callable
        A forward kernel (interval or linear).
    net : PackedNetwork
    lower, upper : ndarray
        float64 input box of length ``input_dim``.
    phases : tuple of ndarray
        One int8 array per hidden layer.
    tol : Tolerances
    prior : ForwardBounds or None
        One array per hidden layer, or ``None``.
    *extra
        Workspace factories the kernel takes (as for :func:`_forward`).
    """
    flat = (np.concatenate(phases).astype(np.int8, copy=False) if phases
            else np.zeros(0, dtype=np.int8))
    prior_lo, prior_hi = _concat_prior(prior, flat.size)
    return _run_forward(kernel, net, np.ascontiguousarray(lower, dtype=np.float64),
                        np.ascontiguousarray(upper, dtype=np.float64), flat, prior_lo,
                        prior_hi, tol, extra)


def _run_forward(kernel, net: PackedNetwork, lo, hi, flat, prior_lo, prior_hi, tol,
                 extra) -> ForwardBounds:
    z_lo = np.empty(num_hidden(net))
    z_hi = np.empty(num_hidden(net))
    infeasible = kernel(net, lo, hi, flat, prior_lo, prior_hi, tol.bound_rel_widen,
                        tol.bound_abs_widen, z_lo, z_hi, *(f(net) for f in extra))
    depth = len(net.hidden_widths)
    return ForwardBounds(_split(z_lo, net.b_off, depth), _split(z_hi, net.b_off, depth),
                         bool(infeasible))


def forward_interval_numba(network, lower, upper, phases=None,
                           tol: Tolerances = DEFAULT_TOLERANCES,
                           prior: ForwardBounds | None = None) -> ForwardBounds:
    """Numba twin of :func:`bnblip.bounds.interval.forward_interval`.

    Parameters
    ----------
    network : Network or PackedNetwork
    lower, upper : array_like
        The input box.
    phases : sequence of ndarray, optional
        One int8 array per hidden layer (``+1``, ``-1``, ``0``); all free if omitted.
    tol : Tolerances
    prior : ForwardBounds, optional
        Bounds known to hold on the node, intersected into every layer.

    Raises
    ------
    InputError
        When the box, the phases or ``prior`` do not fit the network.
    """
    return _forward(interval_forward_kernel, network, lower, upper, phases, tol, prior)


def forward_linear_numba(network, lower, upper, phases=None,
                         tol: Tolerances = DEFAULT_TOLERANCES,
                         prior: ForwardBounds | None = None) -> ForwardBounds:
    """Numba twin of :func:`bnblip.bounds.linear.forward_linear` (same parameters)."""
    return _forward(linear_forward_kernel, network, lower, upper, phases, tol, prior,
                    linear_workspace)


def derivative_bounds_numba(forward: ForwardBounds, phases=None):
    """Numba twin of :func:`bnblip.bounds.interval.derivative_bounds`."""
    if len(forward.lower) == 0:
        return (), ()
    z_lo = np.concatenate(forward.lower)
    z_hi = np.concatenate(forward.upper)
    if phases is None:
        flat = np.zeros(z_lo.shape[0], dtype=np.int8)
    else:
        flat = np.concatenate([np.asarray(p) for p in phases]).astype(np.int8)
        if flat.shape != z_lo.shape:
            raise InputError("phases must match the layer widths of forward")
    d_lo = np.empty_like(z_lo)
    d_hi = np.empty_like(z_lo)
    derivative_kernel(z_lo, z_hi, flat, d_lo, d_hi)
    offsets = _offsets([z.shape[0] for z in forward.lower])
    count = len(forward.lower)
    return _split(d_lo, offsets, count), _split(d_hi, offsets, count)


def backward_interval_numba(network, c, dlo, dhi,
                            tol: Tolerances = DEFAULT_TOLERANCES) -> BackwardBounds:
    """Numba twin of :func:`bnblip.bounds.interval.backward_interval`.

    Parameters
    ----------
    network : Network or PackedNetwork
    c : array_like
        Output functional, length ``m``.
    dlo, dhi : sequence of ndarray
        Derivative bounds per hidden layer (e.g. from :func:`derivative_bounds_numba`).
    tol : Tolerances

    Raises
    ------
    InputError
        When ``c`` or the derivative bounds do not fit the network.
    """
    net = _packed(network)
    c = np.ascontiguousarray(c, dtype=np.float64)
    if c.shape != (net.output_dim,):
        raise InputError(f"c must have shape ({net.output_dim},), got {c.shape}")
    widths = net.hidden_widths
    flat = []
    for name, d in (("dlo", dlo), ("dhi", dhi)):
        if len(d) != len(widths) or any(np.shape(a) != (h,) for a, h in zip(d, widths)):
            raise InputError(f"{name} must hold one array per hidden layer of widths {widths}")
        flat.append(np.concatenate(d).astype(np.float64) if widths else np.zeros(0))
    return _run_backward(backward_interval_kernel, net, c, flat[0], flat[1], tol)


def backward_unchecked(kernel, net: PackedNetwork, c: np.ndarray, dlo, dhi,
                       tol: Tolerances) -> BackwardBounds:
    """:func:`backward_interval_numba` with ``kernel`` and without validation, for
    the solver's nodes.

    Parameters
    ----------
    kernel : callable
        A backward interval kernel.
    net : PackedNetwork
    c : ndarray
        float64 output functional of length ``output_dim``.
    dlo, dhi : tuple of ndarray
        float64 derivative bounds, one array per hidden layer (at least one).
    tol : Tolerances
    """
    return _run_backward(kernel, net, c, np.concatenate(dlo), np.concatenate(dhi), tol)


def _run_backward(kernel, net: PackedNetwork, c, d_lo, d_hi, tol) -> BackwardBounds:
    widths = net.hidden_widths
    total = int(net.g_off[-1])
    y_lo = np.empty(total)
    y_hi = np.empty(total)
    kernel(net, c, d_lo, d_hi, tol.bound_rel_widen, tol.bound_abs_widen, y_lo, y_hi)
    layers = len(widths) + 1
    return BackwardBounds(_split(y_lo, net.g_off, layers), _split(y_hi, net.g_off, layers))
