"""NumPy reference of interval bound propagation.

Phases encode a node's fixed ReLU decisions: one int8 array per hidden layer with
``+1`` (active, ``z >= 0``), ``-1`` (inactive, ``z <= 0``) or ``0`` (free).
Every bound is widened by ``bound_rel_widen`` times the magnitude of the terms
summed into it (DESIGN.md section 7).  The ``check_*`` helpers validate the
arguments shared with :mod:`bnblip.bounds.linear` and :mod:`bnblip.bounds.kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnblip.errors import InputError
from bnblip.network import Network
from bnblip.options import DEFAULT_TOLERANCES, Tolerances

ACTIVE = 1
INACTIVE = -1
FREE = 0


@dataclass(frozen=True, eq=False)
class ForwardBounds:
    """Bounds of every hidden pre-activation ``z_i`` over the (restricted) box.

    Attributes
    ----------
    lower, upper : tuple of ndarray
        One array per hidden layer.
    infeasible : bool
        True when a fixed phase contradicts the bounds (the node is empty).
    """

    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]
    infeasible: bool = False


@dataclass(frozen=True, eq=False)
class BackwardBounds:
    """Bounds of the gradient quantities ``y_i = d(c^T f)/d a_i``.

    ``lower[0]`` / ``upper[0]`` bound the input gradient ``y_0``; entry ``i`` bounds
    the gradient with respect to the post-activation of hidden layer ``i``.
    """

    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]


def free_phases(network: Network) -> tuple[np.ndarray, ...]:
    """All-free phases for ``network``."""
    return tuple(np.zeros(h, dtype=np.int8) for h in network.hidden_widths)


@dataclass(frozen=True, eq=False)
class ExactSigns:
    """Exact signs of bias-free neurons beyond the first hidden layer, where widened
    bounds straddle zero.

    Beyond the first hidden layer every input is a ReLU output (``>= 0``).  So a
    neuron with ``b_i = 0`` has ``z_i <= 0`` on a node where every input it weighs
    positively is inactive, and ``z_i >= 0`` where every input it weighs negatively
    is: a sum of terms of one sign has that sign in floating point and in exact
    arithmetic alike.  Interval and linear bounds reach that only up to their
    widening (DESIGN.md section 7), so in a bias-free network they leave such a
    neuron ambiguous at every depth.  Rows with a nonzero bias are left to the
    bounds, which decide them the same way unless the bias is below the widening.

    Attributes
    ----------
    rows : tuple of ndarray
        Per hidden layer ``k >= 1`` (entry ``k - 1``), the indices of its neurons with
        zero bias.
    positive, negative : tuple of ndarray
        Per hidden layer ``k >= 1``, float masks ``W_k > 0`` and ``W_k < 0`` of those
        rows, shape ``(len(rows), in)``.
    """

    rows: tuple[np.ndarray, ...]
    positive: tuple[np.ndarray, ...]
    negative: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, network: Network) -> ExactSigns:
        """The zero-bias rows of ``network``'s hidden layers after the first."""
        rows = tuple(np.flatnonzero(b == 0) for b in network.biases[1:-1])
        weights = [w[r] for w, r in zip(network.weights[1:-1], rows)]
        return cls(rows, tuple((w > 0).astype(np.float64) for w in weights),
                   tuple((w < 0).astype(np.float64) for w in weights))

    def applies(self, layer: int) -> bool:
        """Whether hidden layer ``layer >= 1`` has a zero-bias neuron."""
        return self.rows[layer - 1].size > 0

    def decide(self, layer: int, phases: np.ndarray, inputs: np.ndarray) -> None:
        """Fix, in place, the free ``phases`` of hidden layer ``layer >= 1`` whose sign
        the previous layer's phases ``inputs`` decide exactly.

        A neuron that gets both signs (every input with a nonzero weight is inactive)
        is constant zero: it becomes inactive, the phase a concrete point gives it.
        """
        rows = self.rows[layer - 1]
        free = phases[rows] == FREE
        if not free.any():
            return
        live = (inputs != INACTIVE).astype(np.float64)
        up = (self.positive[layer - 1] @ live) > 0
        down = (self.negative[layer - 1] @ live) > 0
        phases[rows[free & ~up]] = INACTIVE
        phases[rows[free & up & ~down]] = ACTIVE


def check_box(network: Network, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """Validate an input box for ``network`` and return it as float64 arrays.

    Raises
    ------
    InputError
        Unless ``lower`` and ``upper`` are finite vectors of length ``input_dim``
        with ``lower <= upper``.
    """
    n = network.input_dim
    out = []
    for name, value in (("lower", lower), ("upper", upper)):
        arr = np.ascontiguousarray(value, dtype=np.float64)
        if arr.shape != (n,):
            raise InputError(f"{name} must have shape ({n},), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{name} must be finite (no NaN or inf)")
        out.append(arr)
    if np.any(out[0] > out[1]):
        raise InputError("lower must be <= upper elementwise")
    return out[0], out[1]


def check_flat_phases(network: Network, phases) -> np.ndarray:
    """Validate phases for ``network`` and return them concatenated (int8).

    ``None`` means all free.

    Raises
    ------
    InputError
        Unless there is one array of length ``h_i`` per hidden layer with values
        in ``{-1, 0, +1}``.
    """
    widths = network.hidden_widths
    if phases is None:
        return np.zeros(sum(widths), dtype=np.int8)
    if len(phases) != len(widths):
        raise InputError(f"phases must have {len(widths)} arrays (one per hidden layer), "
                         f"got {len(phases)}")
    arrays = [np.asarray(ph) for ph in phases]
    for k, (arr, h) in enumerate(zip(arrays, widths)):
        if arr.shape != (h,):
            raise InputError(f"phases[{k}] must have shape ({h},), got {arr.shape}")
    flat = np.concatenate(arrays) if arrays else np.zeros(0)
    if not np.all((flat == ACTIVE) | (flat == INACTIVE) | (flat == FREE)):
        raise InputError("phases must hold only -1 (inactive), 0 (free) and +1 (active)")
    return flat.astype(np.int8)


def check_phases(network: Network, phases) -> tuple[np.ndarray, ...]:
    """Validate phases for ``network`` (``None`` means all free) as int8 arrays.

    Raises
    ------
    InputError
        As :func:`check_flat_phases`.
    """
    flat = check_flat_phases(network, phases)
    ends = np.cumsum(network.hidden_widths)
    return tuple(flat[end - h:end] for end, h in zip(ends, network.hidden_widths))


def _affine_interval(w, b, lo, hi, tol: Tolerances):
    mid = 0.5 * (lo + hi)
    rad = 0.5 * (hi - lo)
    aw = np.abs(w)
    center = w @ mid + b
    radius = aw @ rad
    widen = tol.bound_rel_widen * (aw @ np.abs(mid) + radius + np.abs(b)) + tol.bound_abs_widen
    return center - radius - widen, center + radius + widen


def check_prior(network: Network, prior) -> ForwardBounds | None:
    """Validate ``prior`` (bounds known to hold on the node, or ``None``).

    Raises
    ------
    InputError
        Unless ``prior`` is a :class:`ForwardBounds` with one array of length
        ``h_i`` per hidden layer in ``lower`` and ``upper``.
    """
    if prior is None:
        return None
    if not isinstance(prior, ForwardBounds):
        raise InputError(f"prior must be ForwardBounds or None, got {type(prior).__name__}")
    widths = network.hidden_widths
    for side in (prior.lower, prior.upper):
        if len(side) != len(widths) or any(np.shape(a) != (h,) for a, h in zip(side, widths)):
            raise InputError(f"prior must hold one array per hidden layer of widths {widths}")
    return prior


def settle_layer(zl, zu, phase, prior: ForwardBounds | None, k: int):
    """Intersect layer ``k`` with ``prior``, apply its fixed ``phase``, flag emptiness.

    Returns
    -------
    zl, zu : ndarray
        Bounds with a fixed active neuron's lower bound raised to 0 and a fixed
        inactive neuron's upper bound lowered to 0.
    infeasible : bool
        A fixed phase is contradicted or some lower bound exceeds its upper bound.
    """
    if prior is not None:
        zl = np.maximum(zl, prior.lower[k])
        zu = np.minimum(zu, prior.upper[k])
    act = phase == ACTIVE
    ina = phase == INACTIVE
    infeasible = bool(np.any(zu[act] < 0) or np.any(zl[ina] > 0) or np.any(zl > zu))
    zl = np.where(act, np.maximum(zl, 0.0), zl)
    zu = np.where(ina, np.minimum(zu, 0.0), zu)
    return zl, zu, infeasible


def post_activation(zl, zu, phase):
    """Bounds of ``a = relu(z)`` (0 for a fixed inactive neuron)."""
    ina = phase == INACTIVE
    return np.where(ina, 0.0, np.maximum(zl, 0.0)), np.where(ina, 0.0, np.maximum(zu, 0.0))


def forward_interval(network: Network, lower, upper, phases=None,
                     tol: Tolerances = DEFAULT_TOLERANCES,
                     prior: ForwardBounds | None = None) -> ForwardBounds:
    """Interval bounds of each hidden pre-activation under fixed ``phases``.

    A neuron fixed active has its lower bound raised to 0, one fixed inactive has
    its upper bound lowered to 0 and output 0.  ``prior`` (e.g. the parent node's
    bounds) is intersected into every layer before it is propagated further.
    ``infeasible`` is set when a fixed phase is contradicted or a lower bound
    exceeds its upper bound.

    Raises
    ------
    InputError
        When the phases or ``prior`` do not fit the network.
    """
    phases = check_phases(network, phases)
    prior = check_prior(network, prior)
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    los, his = [], []
    infeasible = False
    for k, (w, b, ph) in enumerate(zip(network.weights[:-1], network.biases[:-1], phases)):
        zl, zu = _affine_interval(w, b, lo, hi, tol)
        zl, zu, empty = settle_layer(zl, zu, ph, prior, k)
        infeasible |= empty
        los.append(zl)
        his.append(zu)
        lo, hi = post_activation(zl, zu, ph)
    return ForwardBounds(tuple(los), tuple(his), infeasible)


def derivative_bounds(forward: ForwardBounds, phases=None):
    """Bounds ``(dlo, dhi)`` of each ReLU derivative: 1 when active, 0 when inactive.

    A neuron is active if fixed so or ``z_lower >= 0``; inactive if fixed so or
    ``z_upper <= 0``; otherwise its derivative lies in ``[0, 1]``.
    """
    dlo, dhi = [], []
    for k, (zl, zu) in enumerate(zip(forward.lower, forward.upper)):
        ph = np.asarray(phases[k]) if phases is not None else np.zeros(zl.shape, dtype=np.int8)
        inactive = (ph == INACTIVE) | (zu <= 0)
        active = ~inactive & ((ph == ACTIVE) | (zl >= 0))
        dlo.append(active.astype(np.float64))
        dhi.append((~inactive).astype(np.float64))
    return tuple(dlo), tuple(dhi)


def backward_interval(network: Network, c, dlo, dhi,
                      tol: Tolerances = DEFAULT_TOLERANCES) -> BackwardBounds:
    """Interval bounds of the backward pass with derivatives in ``[dlo, dhi]``."""
    # y_{L-1} = W_L^T c, widened for its rounding like every other layer
    c = np.asarray(c, dtype=np.float64)
    w_last = network.weights[-1]
    ylo, yhi = _affine_interval(w_last.T, np.zeros(w_last.shape[1]), c, c, tol)
    los, his = [ylo], [yhi]
    for k in range(network.num_hidden_layers - 1, -1, -1):
        # u = d * y with d in [dlo, dhi] (dlo, dhi in {0, 1})
        cand = np.stack([dlo[k] * ylo, dlo[k] * yhi, dhi[k] * ylo, dhi[k] * yhi])
        ulo, uhi = cand.min(axis=0), cand.max(axis=0)
        w = network.weights[k]
        ylo, yhi = _affine_interval(w.T, np.zeros(w.shape[1]), ulo, uhi, tol)
        los.append(ylo)
        his.append(yhi)
    return BackwardBounds(tuple(reversed(los)), tuple(reversed(his)))
