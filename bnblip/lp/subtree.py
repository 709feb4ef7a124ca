"""LP models for subtrees: a node's LP on a layout without the phases it decided.

The root's model (:func:`bnblip.lp.relaxation.build_layout`) substitutes out the
neurons whose phase the root's bounds decide.  Deeper in the tree most of the
remaining ones are decided too, yet their ReLU and McCormick rows stay in every LP
solved on that model.  :class:`ModelPool` gives a node whose bounds decide enough of
its model's ambiguous neurons a model of its own: those phases are substituted out
(they hold on the node's whole region, so on its whole subtree) and the neurons the
node decides inactive keep their ``z`` and ``y`` columns, so the LP is the one the
parent's model would solve, on fewer rows.  A node's descendants solve on the model
of their warm start (:class:`WarmStart`), so a subtree stays on its model.

Measured on recorded node LPs (cold solves, the same LP values within 2e-11
relative): depth_7 346 -> 198 rows, time x0.78; width_64 477 -> 260 rows, x0.72;
pub_rand_8 253 -> 211, x0.89; digits_64x32 448 -> 342, x0.87; a model costs about
one LP to build.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from bnblip.lp.backend import LPBackend
from bnblip.lp.relaxation import (
    RelaxationLayout,
    SolutionCheck,
    build_layout,
    source_positions,
)
from bnblip.network import Network

#: A node gets a model of its own when at most this share of its model's ambiguous
#: neurons is still ambiguous at the node ...
SUBTREE_SHARE = 0.3
#: ... and at least this many of them are decided.  Measured on the 26 shared cases
#: where HiGHS's MIP needs >= 1 s (time, geometric mean against no subtree models):
#: (0.5, 8) x0.99 on 8 of them, with digits networks up to x1.25 (many models, each
#: LP barely cheaper); (0.3, 32) x0.99 over all 26: depth_7 x0.78 / x0.83, width_64
#: linf x0.86, the digits networks within noise; (0.25, 48) x1.00; (0.4, 32) x1.01.
SUBTREE_MIN_DECIDED = 32
#: Subtree models alive at once at most (each holds a solver instance: about 0.6 MB
#: for depth_7's full layout, 2 MB for a [100, 100] digits network).
SUBTREE_LIVE_CAP = 64


@dataclass(frozen=True, eq=False)
class LPModel:
    """A layout with its solver instance and feasibility check."""

    layout: RelaxationLayout
    backend: LPBackend
    check: SolutionCheck


@dataclass(frozen=True, eq=False)
class WarmStart:
    """A basis and the model it belongs to."""

    model: LPModel
    basis: object


def make_model(layout: RelaxationLayout, backend_class, feas_tol: float) -> LPModel:
    """An :class:`LPModel` of ``layout`` solved by ``backend_class``."""
    return LPModel(layout, backend_class(layout, feas_tol, small_entry=layout.small_entry),
                   SolutionCheck(layout))


def node_phases(phase_lower, phase_upper) -> tuple[np.ndarray, ...]:
    """Per hidden layer, ``+1`` / ``-1`` where the ReLU derivative bounds decide the
    phase active / inactive, ``0`` where they do not (``build_layout``'s convention)."""
    return tuple(np.where(lo == hi, np.where(hi > 0, 1, -1), 0).astype(np.int8)
                 for lo, hi in zip(phase_lower, phase_upper))


def still_ambiguous(layout: RelaxationLayout, phase_lower, phase_upper) -> int:
    """How many of ``layout``'s ambiguous neurons the derivative bounds leave free."""
    return sum(int(np.count_nonzero(lo[amb] != hi[amb]))
               for amb, lo, hi in zip(layout.ambiguous, phase_lower, phase_upper))


class ModelPool:
    """Chooses the model a node's LP is solved on, building subtree models.

    Parameters
    ----------
    network : Network
    root : LPModel
        The model of nodes without a warm start.
    backend_class : type
        Backend of the subtree models (that of ``root``).
    feas_tol : float
        Their feasibility tolerance.
    """

    def __init__(self, network: Network, root: LPModel, backend_class, feas_tol: float):
        self.network = network
        self.root = root
        self.backend_class = backend_class
        self.feas_tol = feas_tol
        self.share = SUBTREE_SHARE
        self.min_decided = SUBTREE_MIN_DECIDED
        self.cap = SUBTREE_LIVE_CAP
        self.built = 0
        self._live: weakref.WeakSet = weakref.WeakSet()

    def current(self, warm: WarmStart | None) -> LPModel:
        """The model of ``warm``, or the root's when there is none or ``warm``
        belongs to another pool (a model built before the root's was rebuilt)."""
        if warm is None or not (warm.model is self.root or warm.model in self._live):
            return self.root
        return warm.model

    def choose(self, warm: WarmStart | None, phase_lower, phase_upper) -> LPModel:
        """The model for a node with ReLU derivative bounds ``phase_lower,
        phase_upper`` whose warm start is ``warm``: the warm start's model (the
        root's without one), or a new model of the node's subtree when the node
        decides enough of that model's ambiguous neurons.  Bases of other pools'
        models are moved onto the chosen model by :meth:`start`."""
        model = self.current(warm)
        layout = model.layout
        total = sum(amb.size for amb in layout.ambiguous)
        free = still_ambiguous(layout, phase_lower, phase_upper)
        if total - free < self.min_decided or free > self.share * total \
                or len(self._live) >= self.cap:
            return model
        keep = tuple(np.isin(np.arange(width), live)
                     for width, live in zip(layout.widths, layout.live))
        sub = build_layout(self.network, layout.small_entry,
                           node_phases(phase_lower, phase_upper), keep)
        new = make_model(sub, self.backend_class, self.feas_tol)
        self._live.add(new)
        self.built += 1
        return new

    def start(self, model: LPModel, warm: WarmStart | None) -> object | None:
        """The basis to start ``model``'s solve from: ``warm``'s own when it belongs
        to ``model``, else ``warm``'s moved onto ``model``'s columns and rows."""
        if warm is None or warm.basis is None:
            return None
        if warm.model is model:
            return warm.basis
        cols, rows = source_positions(model.layout, warm.model.layout)
        return model.backend.adopt(warm.basis, cols, rows)
