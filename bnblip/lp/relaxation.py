"""LP relaxation of a node (LipMIP formulation), built once, updated per node.

Variables: the input ``x``; per hidden layer the pre-activation ``z``, output
``a``, relaxed phase ``d`` in ``[0, 1]``, backward product ``u = d * y`` and backward
quantity ``y`` (gradient with respect to ``a``); the input gradient ``g``; and one
objective term ``t_j`` per input coordinate.

Rows (``l, u`` the node's pre-activation bounds, ``yl, yu`` its backward bounds):

* forward: ``z_k = W_k a_{k-1} + b_k``; ``a >= z``; ``a <= z - l (1 - d)``;
  ``a <= u d`` (big-M; with ``d`` fixed to 0 or 1 these are exact);
* backward: ``y_k = W_{k+1}^T u_{k+1}`` (``y`` of the last hidden layer is the
  constant ``W_L^T c``); McCormick switch ``yl d <= u <= yu d``,
  ``y - yu (1 - d) <= u <= y - yl (1 - d)``; ``g = W_1^T u_1``;
* objective: ``t_j <= s_j g_j + o_j``, maximise ``sum t``: ``t_j <= v_j g_j`` for a
  fixed direction coordinate, the chord of ``|g_j|`` over ``[gl_j, gu_j]`` for a free
  one, ``t_j = 0`` for a coordinate outside the direction.

Neurons whose phase is known for every node (``phases`` of :func:`build_layout`, from
bounds valid over the whole box) are substituted out: an active one has ``a = z`` and
``u = y``, an inactive one ``a = u = 0`` (only its ``z`` is kept, bounded by the
node), so the LP holds ``a, d, u`` and the ReLU / McCormick rows of the ambiguous
neurons only and ``y`` of the live (active or ambiguous) ones.

Entries below ``Tolerances.lp_small_entry`` (which HiGHS would drop silently) are
folded into the row bounds over the node's column bounds, so the LP stays a
relaxation.  The structure (sparsity pattern) never changes: a node changes column bounds, row
bounds and the coefficients listed in :class:`RelaxationLayout` only, so a retained
solver model is modified and re-solved warm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from bnblip.lp.sanitize import fold_small_entries
from bnblip.network import Network
from bnblip.options import DEFAULT_TOLERANCES

INF = np.inf


@dataclass(frozen=True, eq=False)
class RelaxationLayout:
    """The constant part of the relaxation.

    A forward layout (``build_layout(..., forward_layers=m)``) covers the first
    ``m`` hidden layers (``widths`` has ``m`` entries) and has no ``u, y, g, t``
    columns and no backward or objective rows: ``col_u``, ``col_y`` and ``row_mc``
    are empty, ``col_g``, ``col_t`` and ``row_t`` hold no index, ``cost`` is 0.

    Attributes
    ----------
    matrix : scipy.sparse.csc_matrix
        Constraint matrix with placeholder values at the variable coefficients.
    num_cols, num_rows : int
    cost : ndarray
        Minimisation cost (``-1`` on every ``t``).
    x_cols : ndarray
        Columns of the input variables.
    ambiguous, live : tuple of ndarray
        Per hidden layer, the neurons with ``a, d, u`` columns (phase not known in
        advance) and those with ``z`` and ``y`` columns (not known inactive);
        ``col_a``, ``col_d``, ``col_u`` follow ``ambiguous``, ``col_z`` and
        ``col_y`` follow ``live``.
    coef_rows, coef_cols : ndarray
        Positions of the node-dependent coefficients, in the order of
        :attr:`NodeData.coefs`.
    small_rows, small_cols, small_values : ndarray
        Constant entries below ``small_entry`` in magnitude, kept out of
        ``matrix`` (HiGHS would drop them silently) and folded into the row bounds
        of every node over its column bounds (:mod:`bnblip.lp.sanitize`).
    """

    matrix: sparse.csc_matrix
    num_cols: int
    num_rows: int
    cost: np.ndarray
    x_cols: np.ndarray
    coef_rows: np.ndarray
    coef_cols: np.ndarray
    widths: tuple[int, ...]
    input_dim: int
    col_z: tuple[np.ndarray, ...]
    col_a: tuple[np.ndarray, ...]
    col_d: tuple[np.ndarray, ...]
    col_u: tuple[np.ndarray, ...]
    col_y: tuple[np.ndarray, ...]
    col_g: np.ndarray
    col_t: np.ndarray
    row_fwd_b: tuple[np.ndarray, ...]
    row_mc: tuple[np.ndarray, ...]
    row_t: np.ndarray
    row_lower_base: np.ndarray
    row_upper_base: np.ndarray
    small_rows: np.ndarray
    small_cols: np.ndarray
    small_values: np.ndarray
    small_entry: float
    ambiguous: tuple[np.ndarray, ...] = ()
    live: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True, eq=False)
class NodeData:
    """What a node sets: column bounds, row bounds and the variable coefficients."""

    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    coefs: np.ndarray


class _Builder:
    def __init__(self):
        self.rows, self.cols, self.vals = [], [], []
        self.num_rows = 0
        self.num_cols = 0
        self.row_lower, self.row_upper = [], []

    def new_cols(self, count: int) -> np.ndarray:
        idx = np.arange(self.num_cols, self.num_cols + count)
        self.num_cols += count
        return idx

    def new_rows(self, count: int, lower: float, upper: float) -> np.ndarray:
        idx = np.arange(self.num_rows, self.num_rows + count)
        self.num_rows += count
        self.row_lower.extend([lower] * count)
        self.row_upper.extend([upper] * count)
        return idx

    def add(self, rows, cols, vals) -> None:
        rows, cols, vals = np.broadcast_arrays(np.asarray(rows), np.asarray(cols),
                                               np.asarray(vals, dtype=np.float64))
        self.rows.append(rows.ravel())
        self.cols.append(cols.ravel())
        self.vals.append(vals.ravel())

    def add_dense(self, rows: np.ndarray, cols: np.ndarray, mat: np.ndarray) -> None:
        rr, cc = np.nonzero(mat)
        self.add(rows[rr], cols[cc], mat[rr, cc])


def build_layout(network: Network,
                 small_entry: float = DEFAULT_TOLERANCES.lp_small_entry,
                 phases: tuple[np.ndarray, ...] | None = None,
                 forward_layers: int | None = None) -> RelaxationLayout:
    """Build the constant structure of the relaxation for ``network``.

    ``phases`` (per hidden layer, +1 active, -1 inactive, 0 unknown; default all
    unknown) must hold on the whole input box: known neurons are substituted out.
    Weights below ``small_entry`` in magnitude are kept aside (see
    :class:`RelaxationLayout`).  With ``forward_layers`` the layout holds the
    forward part of the first ``forward_layers`` hidden layers only (no ``u, y, g,
    t``, no backward or objective rows): the LP that bounds the last one's
    pre-activations, filled by :func:`forward_data`."""
    widths = network.hidden_widths
    if phases is None:
        phases = tuple(np.zeros(h, dtype=np.int8) for h in widths)
    backward = forward_layers is None
    if not backward:
        widths, phases = widths[:forward_layers], phases[:forward_layers]
    amb = tuple(np.flatnonzero(p == 0) for p in phases)
    act = tuple(np.flatnonzero(p > 0) for p in phases)
    live = tuple(np.flatnonzero(p >= 0) for p in phases)
    bld = _Builder()
    n = network.input_dim
    x = bld.new_cols(n)
    cz, ca, cd, cu = [], [], [], []
    for k in range(len(widths)):
        cz.append(bld.new_cols(live[k].size))
        ca.append(bld.new_cols(amb[k].size))
        cd.append(bld.new_cols(amb[k].size))
        if backward:
            cu.append(bld.new_cols(amb[k].size))
    cy = [bld.new_cols(lv.size) for lv in live] if backward else []
    cg = bld.new_cols(n if backward else 0)
    ct = bld.new_cols(n if backward else 0)
    neurons = _Neurons(amb, act, live, tuple(cz), tuple(ca), tuple(cd), tuple(cu), tuple(cy))
    coef_rows, coef_cols = [], []
    row_b = []
    for k in range(len(widths)):
        _forward_rows(bld, network, neurons, k, x, coef_rows, coef_cols, row_b)
    row_mc: list[np.ndarray] = []
    rt = np.zeros(0, dtype=np.int64)
    if backward:
        rt = _backward_rows(bld, network, neurons, cg, ct, coef_rows, coef_cols, row_mc)
    rows = np.concatenate(bld.rows) if bld.rows else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(bld.cols) if bld.cols else np.zeros(0, dtype=np.int64)
    vals = np.concatenate(bld.vals) if bld.vals else np.zeros(0)
    small = np.abs(vals) < small_entry
    small_rows, small_cols, small_vals = rows[small], cols[small], vals[small]
    rows, cols, vals = rows[~small], cols[~small], vals[~small]
    matrix = sparse.csc_matrix((vals, (rows, cols)), shape=(bld.num_rows, bld.num_cols))
    matrix.sum_duplicates()
    cost = np.zeros(bld.num_cols)
    cost[ct] = -1.0
    return RelaxationLayout(
        matrix, bld.num_cols, bld.num_rows, cost, x,
        _joined(coef_rows), _joined(coef_cols), tuple(widths), n,
        tuple(cz), tuple(ca), tuple(cd), tuple(cu), tuple(cy), cg, ct, tuple(row_b),
        tuple(row_mc), rt, np.array(bld.row_lower), np.array(bld.row_upper), small_rows,
        small_cols, small_vals, float(small_entry), amb, live)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class _Neurons:
    """Per hidden layer, the neuron kinds of a layout and their columns."""

    amb: tuple[np.ndarray, ...]
    act: tuple[np.ndarray, ...]
    live: tuple[np.ndarray, ...]
    cz: tuple[np.ndarray, ...]
    ca: tuple[np.ndarray, ...]
    cd: tuple[np.ndarray, ...]
    cu: tuple[np.ndarray, ...]
    cy: tuple[np.ndarray, ...]

    def z_of(self, k: int, which: np.ndarray) -> np.ndarray:
        """Columns ``z`` of layer ``k``'s neurons ``which`` (live ones)."""
        return self.cz[k][np.searchsorted(self.live[k], which)]

    def y_of(self, k: int, which: np.ndarray) -> np.ndarray:
        """Columns ``y`` of layer ``k``'s neurons ``which`` (live ones)."""
        return self.cy[k][np.searchsorted(self.live[k], which)]


def _forward_rows(bld: _Builder, network: Network, nr: _Neurons, k: int, x: np.ndarray,
                  coef_rows: list[np.ndarray], coef_cols: list[np.ndarray],
                  row_b: list[np.ndarray]) -> None:
    """Layer ``k``'s affine rows and the ReLU rows of its ambiguous neurons."""
    amb, act, live = nr.amb, nr.act, nr.live
    r = bld.new_rows(live[k].size, 0.0, 0.0)  # z - W a_prev = b  (bounds set per node)
    bld.add(r, nr.cz[k], 1.0)
    w = network.weights[k][live[k]]
    if k == 0:
        bld.add_dense(r, x, -w)
    else:
        bld.add_dense(r, nr.z_of(k - 1, act[k - 1]), -w[:, act[k - 1]])
        bld.add_dense(r, nr.ca[k - 1], -w[:, amb[k - 1]])
    m = amb[k].size
    z_amb = nr.z_of(k, amb[k])
    ra = bld.new_rows(m, 0.0, INF)  # a - z >= 0
    bld.add(ra, nr.ca[k], 1.0)
    bld.add(ra, z_amb, -1.0)
    rb = bld.new_rows(m, -INF, 0.0)  # a - z - l d <= -l
    bld.add(rb, nr.ca[k], 1.0)
    bld.add(rb, z_amb, -1.0)
    rc = bld.new_rows(m, -INF, 0.0)  # a - u d <= 0
    bld.add(rc, nr.ca[k], 1.0)
    row_b.append(np.concatenate([r, rb]))
    for rows in (rb, rc):
        bld.add(rows, nr.cd[k], 1.0)
        coef_rows.append(rows)
        coef_cols.append(nr.cd[k])


def _backward_rows(bld: _Builder, network: Network, nr: _Neurons, cg: np.ndarray,
                   ct: np.ndarray, coef_rows: list[np.ndarray],
                   coef_cols: list[np.ndarray], row_mc: list[np.ndarray]) -> np.ndarray:
    """The backward pass, the input gradient and the objective rows; returns the
    objective rows."""
    amb, act, live = nr.amb, nr.act, nr.live
    layers = len(live)
    for k in range(layers):
        if k + 1 < layers:
            w = network.weights[k + 1]
            r = bld.new_rows(live[k].size, 0.0, 0.0)  # y_k - W_{k+1}^T u_{k+1} = 0
            bld.add(r, nr.cy[k], 1.0)
            bld.add_dense(r, nr.y_of(k + 1, act[k + 1]), -w[act[k + 1]][:, live[k]].T)
            bld.add_dense(r, nr.cu[k + 1], -w[amb[k + 1]][:, live[k]].T)
        m = amb[k].size
        m5 = bld.new_rows(m, 0.0, INF)     # u - yl d >= 0
        m6 = bld.new_rows(m, -INF, 0.0)    # u - yu d <= 0
        m7 = bld.new_rows(m, 0.0, INF)     # u - y - yu d >= -yu
        m8 = bld.new_rows(m, -INF, 0.0)    # u - y - yl d <= -yl
        for rows in (m5, m6, m7, m8):
            bld.add(rows, nr.cu[k], 1.0)
            bld.add(rows, nr.cd[k], 1.0)
            coef_rows.append(rows)
            coef_cols.append(nr.cd[k])
        for rows in (m7, m8):
            bld.add(rows, nr.y_of(k, amb[k]), -1.0)
        row_mc.append(np.concatenate([m7, m8]))
    n = cg.size
    rg = bld.new_rows(n, 0.0, 0.0)  # g - W_1^T u_1 = 0
    bld.add(rg, cg, 1.0)
    if layers:
        w = network.weights[0]
        bld.add_dense(rg, nr.y_of(0, act[0]), -w[act[0]].T)
        bld.add_dense(rg, nr.cu[0], -w[amb[0]].T)
    rt = bld.new_rows(n, -INF, 0.0)  # t - s g <= o
    bld.add(rt, ct, 1.0)
    bld.add(rt, cg, 1.0)
    coef_rows.append(rt)
    coef_cols.append(cg)
    return rt


def _objective_rows(gl, gu, dir_lower, dir_upper):
    """Slope, offset and ``t`` upper bound per coordinate for ``t <= s g + o``."""
    if dir_lower is None:
        return np.zeros_like(gl), np.zeros_like(gl), np.zeros_like(gl)
    fixed = dir_lower == dir_upper
    slope = np.where(fixed, dir_lower, 0.0)
    offset = np.zeros_like(gl)
    free = ~fixed
    pos = free & (gl >= 0)
    neg = free & ~pos & (gu <= 0)
    amb = free & ~pos & ~neg
    width = np.where(amb, gu - gl, 1.0)
    chord = (gu + gl) / width
    slope = np.where(pos, 1.0, np.where(neg, -1.0, np.where(amb, chord, slope)))
    offset = np.where(amb, -gl - chord * gl, 0.0)
    t_upper = np.where(fixed & (dir_lower == 0), 0.0, INF)
    return slope, offset, t_upper


def node_data(layout: RelaxationLayout, network: Network, box_lower, box_upper,
              forward_lower, forward_upper, phase_lower, phase_upper, backward_lower,
              backward_upper, dir_lower, dir_upper) -> NodeData:
    """Bounds and coefficients of one node.

    Parameters
    ----------
    layout : RelaxationLayout
    network : Network
    box_lower, box_upper : ndarray
        Input box.
    forward_lower, forward_upper : tuple of ndarray
        Pre-activation bounds per hidden layer (sound for the node).
    phase_lower, phase_upper : tuple of ndarray
        Bounds of the ReLU derivative ``d`` (0/1) per hidden layer.
    backward_lower, backward_upper : tuple of ndarray
        Backward bounds (entry 0 the input gradient, ``k+1`` hidden layer ``k``).
    dir_lower, dir_upper : ndarray or None
        Direction box of the objective (``None``: feasibility only).
    """
    bounds = _Bounds.of(layout, box_lower, box_upper)
    col_lo, col_hi, row_lo, row_hi = bounds.col_lo, bounds.col_hi, bounds.row_lo, bounds.row_hi
    fwd_coefs, bwd_coefs = [], []
    for k in range(len(layout.widths)):
        amb, live = layout.ambiguous[k], layout.live[k]
        fwd_coefs.append(_forward_layer(layout, network, k, bounds, forward_lower,
                                        forward_upper, phase_lower, phase_upper))
        dl, du = phase_lower[k][amb], phase_upper[k][amb]
        col_lo[layout.col_y[k]] = backward_lower[k + 1][live]
        col_hi[layout.col_y[k]] = backward_upper[k + 1][live]
        yl, yu = backward_lower[k + 1][amb], backward_upper[k + 1][amb]
        cand = (dl * yl, dl * yu, du * yl, du * yu)
        col_lo[layout.col_u[k]] = np.minimum.reduce(cand)
        col_hi[layout.col_u[k]] = np.maximum.reduce(cand)
        m7, m8 = layout.row_mc[k][:amb.size], layout.row_mc[k][amb.size:]
        row_lo[m7] = -yu
        row_hi[m8] = -yl
        bwd_coefs.append(np.concatenate([-yl, -yu, -yu, -yl]))
    gl, gu = backward_lower[0], backward_upper[0]
    col_lo[layout.col_g], col_hi[layout.col_g] = gl, gu
    slope, offset, t_upper = _objective_rows(gl, gu, dir_lower, dir_upper)
    col_hi[layout.col_t] = t_upper
    row_hi[layout.row_t] = offset
    coefs = np.concatenate(fwd_coefs + bwd_coefs + [-slope])
    return _folded(layout, NodeData(col_lo, col_hi, row_lo, row_hi, coefs))


def forward_data(layout: RelaxationLayout, network: Network, box_lower, box_upper,
                 forward_lower, forward_upper, phase_lower, phase_upper) -> NodeData:
    """Bounds and coefficients of a layout built with ``forward_layers``: the
    forward part of :func:`node_data` (same parameters)."""
    bounds = _Bounds.of(layout, box_lower, box_upper)
    coefs = [_forward_layer(layout, network, k, bounds, forward_lower, forward_upper,
                            phase_lower, phase_upper) for k in range(len(layout.widths))]
    return _folded(layout, NodeData(bounds.col_lo, bounds.col_hi, bounds.row_lo,
                                    bounds.row_hi, _joined(coefs).astype(np.float64)))


@dataclass(frozen=True, eq=False)
class _Bounds:
    """Column and row bounds of a node being filled in (arrays written in place)."""

    col_lo: np.ndarray
    col_hi: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray

    @classmethod
    def of(cls, layout: RelaxationLayout, box_lower, box_upper) -> _Bounds:
        """Free columns but the input box; the layout's constant row bounds."""
        col_lo = np.full(layout.num_cols, -INF)
        col_hi = np.full(layout.num_cols, INF)
        col_lo[layout.x_cols], col_hi[layout.x_cols] = box_lower, box_upper
        return cls(col_lo, col_hi, layout.row_lower_base.copy(),
                   layout.row_upper_base.copy())


def _forward_layer(layout: RelaxationLayout, network: Network, k: int, bounds: _Bounds,
                   forward_lower, forward_upper, phase_lower, phase_upper) -> np.ndarray:
    """Set hidden layer ``k``'s forward column and row bounds; return its
    coefficients (``-l`` then ``-u`` of the ambiguous neurons)."""
    amb, live = layout.ambiguous[k], layout.live[k]
    bounds.col_lo[layout.col_z[k]] = forward_lower[k][live]
    bounds.col_hi[layout.col_z[k]] = forward_upper[k][live]
    zl, zu = forward_lower[k][amb], forward_upper[k][amb]
    bounds.col_lo[layout.col_a[k]] = np.maximum(zl, 0.0)
    bounds.col_hi[layout.col_a[k]] = np.maximum(zu, 0.0)
    bounds.col_lo[layout.col_d[k]] = phase_lower[k][amb]
    bounds.col_hi[layout.col_d[k]] = phase_upper[k][amb]
    r_eq, r_b = layout.row_fwd_b[k][:live.size], layout.row_fwd_b[k][live.size:]
    bounds.row_lo[r_eq] = network.biases[k][live]
    bounds.row_hi[r_eq] = network.biases[k][live]
    bounds.row_hi[r_b] = -zl
    return np.concatenate([-zl, -zu])


def constant_part(layout: RelaxationLayout) -> sparse.coo_matrix:
    """``layout.matrix`` with its node-dependent coefficients (placeholders at
    ``coef_rows, coef_cols``) set to 0; the entries keep their positions."""
    coo = layout.matrix.tocoo()
    keys = coo.row.astype(np.int64) * layout.num_cols + coo.col
    coef_keys = layout.coef_rows.astype(np.int64) * layout.num_cols + layout.coef_cols
    values = np.where(np.isin(keys, coef_keys), 0.0, coo.data)
    return sparse.coo_matrix((values, (coo.row, coo.col)), shape=coo.shape)


class SolutionCheck:
    """Feasibility of a full column vector (e.g. the parent node's LP optimum) for
    a node's LP.

    A parent's optimum that is feasible for a child's LP is optimal for it too when
    the child's LP is a restriction of the parent's, and in any case the child's LP
    value is then at least the parent's: solving it cannot lower the bound.
    """

    def __init__(self, layout: RelaxationLayout):
        self.layout = layout
        self.constant = constant_part(layout).tocsr()

    def feasible(self, data: NodeData, values: np.ndarray, tol: float) -> bool:
        """Whether ``values`` meets every column and row bound of ``data`` within
        ``tol`` relative to each bound's magnitude (absolute below 1)."""
        lay = self.layout
        if not _within(values, data.col_lower, data.col_upper, tol):
            return False
        activity = self.constant @ values + np.bincount(
            lay.coef_rows, weights=data.coefs * values[lay.coef_cols], minlength=lay.num_rows)
        return _within(activity, data.row_lower, data.row_upper, tol)


def _within(values: np.ndarray, lower: np.ndarray, upper: np.ndarray, tol: float) -> bool:
    return bool(np.all(values >= lower - tol * np.maximum(np.abs(lower), 1.0))
                and np.all(values <= upper + tol * np.maximum(np.abs(upper), 1.0)))


def _folded(layout: RelaxationLayout, data: NodeData) -> NodeData:
    """Fold the tiny constant entries and tiny node coefficients into the row bounds."""
    fixed = fold_small_entries(layout.small_rows, layout.small_cols, layout.small_values,
                               data.row_lower, data.row_upper, data.col_lower,
                               data.col_upper, np.inf)
    var = fold_small_entries(layout.coef_rows, layout.coef_cols, data.coefs,
                             fixed.row_lower, fixed.row_upper, data.col_lower,
                             data.col_upper, layout.small_entry)
    if fixed.folded == 0 and var.folded == 0:
        return data
    return NodeData(data.col_lower, data.col_upper, var.row_lower, var.row_upper, var.values)
