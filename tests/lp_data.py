"""LP data of random networks' root nodes and their children, for the LP tests."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bnblip.bounds.gradient import DirectionSet
from bnblip.bounds.interval import backward_interval, derivative_bounds, forward_interval
from tests.conftest import random_net_box


def root_lp_data(net, box, c, directions):
    """The LP layout of ``net`` and the data of its root node over ``box`` (interval
    bounds) for functional ``c`` and input-gradient ``directions``."""
    from bnblip.lp.relaxation import build_layout, node_data

    fb = forward_interval(net, box.lower, box.upper)
    dlo, dhi = derivative_bounds(fb)
    bw = backward_interval(net, c, dlo, dhi)
    layout = build_layout(net)
    data = node_data(layout, net, box.lower, box.upper, fb.lower, fb.upper, dlo, dhi,
                     bw.lower, bw.upper, directions.lower, directions.upper)
    return layout, data


def child_lp_data(layout, net, box, c, directions, layer, neuron, phase):
    """LP data of a child of the root: one neuron's phase fixed, derivative and
    backward bounds (so the McCormick coefficients) recomputed."""
    from bnblip.lp.relaxation import node_data

    fb = forward_interval(net, box.lower, box.upper)
    dlo, dhi = derivative_bounds(fb)
    dlo, dhi = [d.copy() for d in dlo], [d.copy() for d in dhi]
    dlo[layer][neuron] = dhi[layer][neuron] = phase
    bw = backward_interval(net, c, dlo, dhi)
    return node_data(layout, net, box.lower, box.upper, fb.lower, fb.upper, dlo, dhi,
                     bw.lower, bw.upper, directions.lower, directions.upper)


def root_children(seed):
    """A random net's root LP data, solved, and the data of children that fix an
    ambiguous neuron of the first or second layer either way."""
    from bnblip.lp.backend import HighspyBackend, LPStatus

    rng, net, box = random_net_box(seed, [3, 7, 6, 2], 0.6)
    c = rng.normal(size=2)
    dirs = DirectionSet(-np.ones(3), np.ones(3))
    layout, root = root_lp_data(net, box, c, dirs)
    backend = HighspyBackend(layout)
    parent = backend.solve(root)
    assert parent.status is LPStatus.OPTIMAL
    kids = [child_lp_data(layout, net, box, c, dirs, k, int(i), phase)
            for k in (0, 1) for i in layout.ambiguous[k][:2] for phase in (0.0, 1.0)]
    assert kids
    return layout, backend, parent, kids


def infeasible_lp_data(seed):
    """A random net's layout, its root LP data, and the same data made infeasible: one
    second-layer pre-activation bounded to lie above what the layer reaches."""
    rng, net, box = random_net_box(seed, [3, 7, 6, 2], 0.6)
    layout, data = root_lp_data(net, box, rng.normal(size=2),
                                DirectionSet(-np.ones(3), np.ones(3)))
    lower, upper = data.col_lower.copy(), data.col_upper.copy()
    z = layout.col_z[1][0]
    lower[z], upper[z] = upper[z] + 1.0, upper[z] + 2.0
    return layout, data, replace(data, col_lower=lower, col_upper=upper)
