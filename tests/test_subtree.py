"""Issue 3: LP models for subtrees (bnblip.lp.subtree) solve the node LP of the full
layout, and the engine with them stays exact."""

from __future__ import annotations

import numpy as np
import pytest

from bnblip.bounds.gradient import DirectionSet
from bnblip.bounds.interval import backward_interval, derivative_bounds, forward_interval
from bnblip.lp import subtree
from bnblip.lp.backend import HighspyBackend, LinprogBackend, LPStatus
from bnblip.lp.relaxation import build_layout, node_data, source_positions
from bnblip.problem import Box
from bnblip.reference import solve_enumerate
from bnblip.result import Status
from bnblip.solver import solve_bnb
from tests.test_solver import _random_net_box, assert_witness, close, small_problem


def _node(seed: int, widths, shrink: float):
    """A network, its root box, and a node: a random sub-box ``shrink`` times the
    root's size where one of the first layer's undecided neurons is branched
    inactive (the region is cut by ``z <= 0``, a halfspace the sub-box meets), with its interval bounds, derivative
    bounds and backward bounds."""
    rng, net, box = _random_net_box(seed, widths, 0.8)
    centre = rng.uniform(box.lower, box.upper)
    half = shrink * (box.upper - box.lower) / 2
    sub = Box(np.maximum(centre - half, box.lower), np.minimum(centre + half, box.upper))
    fb = forward_interval(net, sub.lower, sub.upper)
    phases = [np.zeros(h, dtype=np.int8) for h in net.hidden_widths]
    open_ = np.flatnonzero((fb.lower[0] < 0) & (fb.upper[0] > 0))
    phases[0][open_[:1]] = -1
    fb = forward_interval(net, sub.lower, sub.upper, phases)
    assert not fb.infeasible
    dlo, dhi = derivative_bounds(fb, phases)
    c = rng.normal(size=widths[-1])
    bw = backward_interval(net, c, dlo, dhi)
    return net, box, sub, fb, dlo, dhi, bw


def _data(layout, net, sub, fb, dlo, dhi, bw, dirs):
    return node_data(layout, net, sub.lower, sub.upper, fb.lower, fb.upper, dlo, dhi,
                     bw.lower, bw.upper, dirs.lower, dirs.upper)


def _all_kept(net):
    return tuple(np.ones(h, dtype=bool) for h in net.hidden_widths)


@pytest.mark.parametrize("seed", range(12))
def test_issue3_subtree_layout_solves_the_same_lp(seed):
    """With the node's decided phases substituted out and its inactive neurons kept,
    the LP optimum equals the full layout's (where the node fixes ``d``)."""
    widths = [3, 8, 7, 6, 2]
    net, _, sub, fb, dlo, dhi, bw = _node(9100 + seed, widths, 0.35)
    n = widths[0]
    dirs = (DirectionSet(-np.ones(n), np.ones(n)) if seed % 2
            else DirectionSet(np.array([1.0, -1.0, 0.0]), np.array([1.0, -1.0, 0.0])))
    full = build_layout(net)
    part = build_layout(net, phases=subtree.node_phases(dlo, dhi), keep=_all_kept(net))
    decided = sum(a.size for a in full.ambiguous) - sum(a.size for a in part.ambiguous)
    assert decided > 0  # the node decides some phases: the layouts differ
    assert part.num_rows < full.num_rows
    values = []
    for layout in (full, part):
        sol = HighspyBackend(layout).solve(_data(layout, net, sub, fb, dlo, dhi, bw, dirs))
        assert sol.status is LPStatus.OPTIMAL
        values.append(sol.value)
    assert values[1] == pytest.approx(values[0], rel=1e-8, abs=1e-10)


def test_issue3_dropping_inactive_neurons_loosens_the_lp():
    """Without ``keep`` the neurons a node decides inactive lose their rows
    ``z <= 0`` and ``yl <= y <= yu``: on some node the LP is then looser, which is
    what ``keep`` prevents (the test above would fail without it)."""
    gaps = []
    for seed in range(12):
        net, _, sub, fb, dlo, dhi, bw = _node(9100 + seed, [3, 8, 7, 6, 2], 0.35)
        dirs = DirectionSet(-np.ones(3), np.ones(3))
        phases = subtree.node_phases(dlo, dhi)
        kept = build_layout(net, phases=phases, keep=_all_kept(net))
        dropped = build_layout(net, phases=phases)
        a, b = (HighspyBackend(lay).solve(_data(lay, net, sub, fb, dlo, dhi, bw, dirs)).value
                for lay in (kept, dropped))
        assert b >= a - 1e-9 * max(1.0, abs(a))  # a relaxation of the kept one
        gaps.append(b - a)
    assert max(gaps) > 1e-6


def test_issue3_source_positions_name_the_same_columns_and_rows():
    net, _, _, _, dlo, dhi, _ = _node(9200, [3, 8, 7, 6, 2], 0.35)
    full = build_layout(net)
    part = build_layout(net, phases=subtree.node_phases(dlo, dhi), keep=_all_kept(net))
    cols, rows = source_positions(part, full)
    assert np.all(cols >= 0) and np.all(rows >= 0)
    assert np.array_equal(full.col_keys[cols], part.col_keys)
    assert np.array_equal(full.row_keys[rows], part.row_keys)
    assert np.unique(full.col_keys).size == full.num_cols
    assert np.unique(full.row_keys).size == full.num_rows
    # the input columns and the first layer's forward rows hold the same weights
    first = np.arange(part.live[0].size)
    assert np.array_equal(full.matrix.toarray()[np.ix_(rows[first], cols[part.x_cols])],
                          part.matrix.toarray()[np.ix_(first, part.x_cols)])
    # the other way round, the full layout's extra columns have no source
    back, _ = source_positions(full, part)
    assert np.count_nonzero(back < 0) == full.num_cols - part.num_cols


@pytest.mark.parametrize("seed", range(4))
def test_issue3_adopted_basis_gives_the_same_optimum(seed):
    """A full layout's optimal basis moved onto a subtree layout starts a solve that
    ends at the subtree LP's optimum."""
    net, _, sub, fb, dlo, dhi, bw = _node(9300 + seed, [3, 8, 7, 6, 2], 0.35)
    dirs = DirectionSet(-np.ones(3), np.ones(3))
    full = build_layout(net)
    part = build_layout(net, phases=subtree.node_phases(dlo, dhi), keep=_all_kept(net))
    parent = HighspyBackend(full)
    first = parent.solve(_data(full, net, sub, fb, dlo, dhi, bw, dirs))
    child = HighspyBackend(part)
    basis = child.adopt(first.basis, *source_positions(part, full))
    data = _data(part, net, sub, fb, dlo, dhi, bw, dirs)
    warm = child.solve(data, basis)
    cold = HighspyBackend(part).solve(data)
    assert warm.status is LPStatus.OPTIMAL
    assert warm.value == pytest.approx(cold.value, rel=1e-9, abs=1e-12)
    assert LinprogBackend(part).adopt(first.basis, *source_positions(part, full)) is None


def test_issue3_model_pool_chooses_and_starts():
    net, _, _, _, dlo, dhi, _ = _node(9400, [3, 8, 7, 6, 2], 0.35)
    root = subtree.make_model(build_layout(net), HighspyBackend, 1e-9)
    pool = subtree.ModelPool(net, root, HighspyBackend, 1e-9)
    free = [np.zeros(h) for h in net.hidden_widths], [np.ones(h) for h in net.hidden_widths]
    assert pool.choose(None, *free) is root  # nothing decided
    pool.min_decided = 1
    pool.share = 1.0
    model = pool.choose(None, dlo, dhi)
    assert model is not root and pool.built == 1
    assert subtree.still_ambiguous(model.layout, dlo, dhi) == \
        sum(a.size for a in model.layout.ambiguous)
    assert pool.start(model, None) is None
    warm = subtree.WarmStart(model, object())
    assert pool.start(model, warm) is warm.basis
    # a node deeper in its subtree with nothing more decided stays on it
    assert pool.choose(warm, dlo, dhi) is model
    pool.cap = 1  # the model above is alive: no further model
    assert pool.choose(subtree.WarmStart(root, None), dlo, dhi) is root


def _force_subtrees(monkeypatch):
    monkeypatch.setattr(subtree, "SUBTREE_SHARE", 1.0)
    monkeypatch.setattr(subtree, "SUBTREE_MIN_DECIDED", 1)


@pytest.mark.parametrize("seed", range(16))
def test_issue3_engine_with_subtree_models_equals_enumeration(seed, monkeypatch):
    """Every node that decides a phase gets its own model: the constant still equals
    region enumeration, and the witness re-checks."""
    _force_subtrees(monkeypatch)
    norm = ("linf", "l1", "l2")[seed % 3]
    problem = small_problem(9500 + seed, [3, 7, 6, 5, 1 + seed % 2], norm, radius=0.6)
    backend = "linprog" if seed % 4 == 3 else "highspy"
    res = solve_bnb(problem, lp="always", lp_backend=backend)
    assert res.status is Status.OPTIMAL
    expected = solve_enumerate(problem).value
    assert close(res.value, expected), (res.value, expected)
    assert_witness(res, problem)
    if seed == 0:
        assert res.stats.lp_models > 0  # the path is exercised


def test_issue3_no_subtree_models_without_room(monkeypatch):
    _force_subtrees(monkeypatch)
    monkeypatch.setattr(subtree, "SUBTREE_LIVE_CAP", 0)
    problem = small_problem(9500, [3, 7, 6, 5, 1], "linf", radius=0.6)
    res = solve_bnb(problem, lp="always")
    assert res.stats.lp_models == 0
    assert close(res.value, solve_enumerate(problem).value)
