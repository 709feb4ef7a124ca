"""The exact branch-and-bound engine (``method="bnb"``).

The search space of a scalar problem ``max ||grad c^T f||_q`` is the set of ReLU
phases and a direction set ``V`` with ``||g||_q = max over v in V of v^T g``
(:mod:`bnblip.bounds.gradient`).  Each node fixes some phases and shrinks ``V``.
Per node: forward bounds under the fixed phases (stable neurons get fixed), backward
bounds, an objective upper bound by propagation, then the node LP (:mod:`bnblip.lp`)
for infeasibility and a tighter bound; a node with every neuron decided is a *leaf*
whose gradient is exact and which counts only if its region is full-dimensional.
LPs tighten the root's pre-activation and backward bounds, which every node evaluated
afterwards inherits: before the search, or (by default) once the search has run
about as long as the tightening is estimated to take, so that easy problems skip it.
The search is best-first on the upper bound with depth-first dives from every few
nodes it pops; the split is chosen by a score rule of :mod:`bnblip.branching`
(optionally strong branching over its best few candidates), and on low-dimensional
inputs input bisections compete with it by strong branching; incumbents come from
samples, LP solution points, leaves and a local ascent across neighbouring regions.

This is the only module that knows the order of these steps.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np

from bnblip.bounds.backward import backward_symbolic
from bnblip.bounds.gradient import DirectionSet, objective_bound
from bnblip.bounds.interval import (
    ACTIVE,
    INACTIVE,
    BackwardBounds,
    ExactSigns,
    ForwardBounds,
    backward_interval,
    derivative_bounds,
    forward_interval,
)
from bnblip.branching import (
    SCORE_RULES,
    BranchInfo,
    Candidate,
    Kind,
    ScoreHistory,
    input_candidates,
    observed_drop,
    product_score,
    score_floor,
    select,
)
from bnblip.errors import InputError
from bnblip.incumbent import (
    Witness,
    best_witness,
    check_witness,
    local_ascent,
    matches,
    preactivation_scales,
)
from bnblip.lp.backend import BACKENDS, Extremes, LPStatus
from bnblip.lp.duality import PhaseBounds
from bnblip.lp.relaxation import (
    NodeData,
    RelaxationLayout,
    SolutionCheck,
    build_layout,
    forward_data,
    node_data,
)
from bnblip.network import Network, Pattern, same_pattern
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Norm, Problem
from bnblip.regions import interior_point, pattern_halfspaces
from bnblip.result import LipschitzResult, Method, Stats, Status

logger = logging.getLogger("bnblip.solver")


@dataclass(frozen=True)
class Progress:
    """Anytime state of a solve, passed to the ``progress`` callback.

    Attributes
    ----------
    lower, upper : float
        Current proven bounds (``lower`` is attained by a witness).
    nodes : int
        Nodes processed so far.
    nodes_per_s : float
    elapsed_s : float
    """

    lower: float
    upper: float
    nodes: int
    nodes_per_s: float
    elapsed_s: float


@dataclass(frozen=True)
class BnbOptions:
    """Options of :func:`solve_bnb` (all keyword arguments).

    Attributes
    ----------
    score : str
        Branching score rule, a key of :data:`bnblip.branching.SCORE_RULES`.
    strong : int
        Number of best-scored candidates whose children are evaluated (strong
        branching); 1 branches on the top-scored candidate directly.
    dive : bool
        From every :data:`DIVE_EVERY`-th node popped best-first, continue
        depth-first with the best child after each branching, to the end of the path.
    forward : {'auto', 'linear', 'interval'}
        Forward bound propagation ('auto' = linear when available).
    samples : int
        Random points evaluated for the initial incumbent (per functional).
    starts : int
        Local ascents started from the best distinct samples (0: the best sample
        is taken as it is).
    ascent_steps : int
        Maximal steps of the local ascent run from each new incumbent.
    restart_share : float
        Once the search has run :data:`RESTART_AFTER_S`, about this share of its
        time goes to further local ascents, each from the best of fresh samples
        (half uniform in the box, half mostly on its faces); 0 turns them off.
    seed : int
        Seed of the sampling.
    check_monotone : bool
        Debug: assert that no child's bound exceeds its parent's.
    progress : callable or None
        Called with a :class:`Progress` record at most every ``progress_interval_s``
        seconds and once at the end (:func:`bnblip.lipschitz` may add one more
        record, with the result's bounds, when re-checking the witness on the
        original network changes them).
    progress_interval_s : float
    lp : {'auto', 'always', 'never'}
        When to solve the node LP relaxation (infeasibility, tighter bound).
    lp_backend : {'highspy', 'linprog'}
        LP backend (:mod:`bnblip.lp.backend`).
    tighten : {'auto', 'root', 'never'}
        LP tightening of the root's pre-activation and backward bounds (when LPs are
        on): 'root' before the search; 'auto' deferred until the search has spent
        :data:`TIGHTEN_DEFER_SHARE` of the tightening's estimated cost.
    kernels : {'auto', 'c', 'numba'}
        Bound kernels: the compiled C extension ('auto' uses it when built) or Numba.
    inputs : {'auto', 'always', 'never'}
        Input splits (bisecting the node's box) as branching candidates: 'always'
        at every branching; 'auto' when the input dimension is at most
        :data:`INPUT_SPLIT_MAX_DIM` and, once they rarely win, only at every few
        branchings (:data:`INPUT_MIN_WIN_RATE`).  Input and neuron/sign candidates
        are compared by strong branching on the children's propagated bounds; on
        inputs of dimension at most :data:`EAGER_INPUT_MAX_DIM`, nodes with most
        neurons ambiguous are split on their inputs only.  After
        :data:`INPUT_STALL_LIMIT` input splits in a row that decided no neuron, a
        node and its subtree are split on neurons and signs only.
    input_candidates : int
        Input coordinates compared per branching (the widest by
        :func:`bnblip.branching.input_candidates`).
    gradient : {'never', 'always'}
        'always': LP tightening of the input gradient's bounds at every node popped
        best-first (linf input norm; the node's subtree inherits them).  It pays on
        long searches (it closed indim_16 r0.02 linf in about 100 s; without it the
        upper bound is still 3x the value there after 120 s) but made searches of
        0.4-2 s 2-15x slower (most on 784 inputs), so it is off by default.
    history : bool
        Learn from each neuron or sign split how far the children's bounds (after
        their LPs, where one ran) fell against the score rule's prediction, and
        scale later scores by each candidate's record
        (:class:`bnblip.branching.ScoreHistory`; pseudocost branching seeded by the
        score rule).  It matters most where many search trees share neurons (the
        l1 input norm has one per signed coordinate).
    """

    score: str = "gradient"
    strong: int = 1
    dive: bool = True
    forward: str = "auto"
    samples: int = 1024
    starts: int = 2
    ascent_steps: int = 50
    restart_share: float = 0.03
    seed: int = 0
    check_monotone: bool = False
    progress: Callable[[Progress], None] | None = None
    progress_interval_s: float = 1.0
    lp: str = "auto"
    lp_backend: str = "highspy"
    tighten: str = "auto"
    kernels: str = "auto"
    inputs: str = "auto"
    input_candidates: int = 1
    gradient: str = "never"
    history: bool = True

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> BnbOptions:
        """Validate keyword options; unknown names raise :class:`InputError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise InputError(f"unknown bnb option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        opts = cls(**kwargs)
        if opts.score not in SCORE_RULES:
            raise InputError(f"score must be one of {sorted(SCORE_RULES)}, got {opts.score!r}")
        if opts.forward not in ("auto", "linear", "interval"):
            raise InputError(f"forward must be 'auto', 'linear' or 'interval', got "
                             f"{opts.forward!r}")
        for name in ("strong", "samples", "ascent_steps", "starts", "input_candidates"):
            value = getattr(opts, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{name} must be a non-negative integer, got {value!r}")
        if opts.tighten not in ("auto", "root", "never"):
            raise InputError(f"tighten must be 'auto', 'root' or 'never', got {opts.tighten!r}")
        for name in ("dive", "check_monotone", "history"):
            if not isinstance(getattr(opts, name), bool):
                raise InputError(f"{name} must be True or False, got {getattr(opts, name)!r}")
        if opts.lp not in ("auto", "always", "never"):
            raise InputError(f"lp must be 'auto', 'always' or 'never', got {opts.lp!r}")
        if opts.lp_backend not in BACKENDS:
            raise InputError(f"lp_backend must be one of {sorted(BACKENDS)}, got "
                             f"{opts.lp_backend!r}")
        if opts.strong < 1:
            raise InputError(f"strong must be >= 1, got {opts.strong}")
        if opts.inputs not in ("auto", "always", "never"):
            raise InputError(f"inputs must be 'auto', 'always' or 'never', got {opts.inputs!r}")
        if opts.gradient not in ("always", "never"):
            raise InputError(f"gradient must be 'always' or 'never', got {opts.gradient!r}")
        if opts.kernels not in ("auto", "c", "numba"):
            raise InputError(f"kernels must be 'auto', 'c' or 'numba', got {opts.kernels!r}")
        if isinstance(opts.restart_share, bool) or \
                not isinstance(opts.restart_share, (int, float)) or \
                not 0.0 <= opts.restart_share < 1.0:
            raise InputError(f"restart_share must be a number in [0, 1), got "
                             f"{opts.restart_share!r}")
        if opts.progress is not None and not callable(opts.progress):
            raise InputError("progress must be callable or None")
        return opts


class NodeState(enum.Enum):
    """Outcome of evaluating a node."""

    OPEN = "open"
    LEAF = "leaf"
    INFEASIBLE = "infeasible"
    DOMINATED = "dominated"


@dataclass(frozen=True, eq=False)
class NodeParts:
    """Bounds an open node keeps for its LP: derivative and backward bounds."""

    dlo: tuple[np.ndarray, ...]
    dhi: tuple[np.ndarray, ...]
    backward: BackwardBounds


@dataclass(frozen=True, eq=False)
class Node:
    """An evaluated branch-and-bound node.

    Attributes
    ----------
    state : NodeState
    bound : float
        Upper bound of the objective over the node (exact value for a leaf).
    depth : int
    functional : int
        Index into ``problem.functionals``.
    phases : tuple of ndarray
        Fixed phases including those decided by the bounds.
    directions : DirectionSet
    forward : ForwardBounds or None
    info : BranchInfo or None
        Set for open nodes.
    lower, upper : ndarray
        The node's input box (a sub-box of the problem's after input splits).
    propagated : float
        The node's own propagated bound before the parent's bound and the LP
        (``-inf`` for closed nodes); strong branching compares these.
    pattern : tuple of ndarray or None
        Activation pattern of a leaf.
    """

    state: NodeState
    bound: float
    depth: int
    functional: int
    phases: tuple[np.ndarray, ...]
    directions: DirectionSet
    forward: ForwardBounds | None = None
    info: BranchInfo | None = None
    pattern: Pattern | None = None
    parts: NodeParts | None = None
    lp_done: bool = False
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    propagated: float = -math.inf
    warm: object | None = None
    """LP basis to start this node's LP from: its own after its LP, else the
    nearest ancestor's (best-first pops unrelated nodes; the parent's basis
    saves most simplex iterations)."""
    lp_point: LPPoint | None = None
    """Optimal point of this node's LP, else of the nearest ancestor's: when it is
    feasible for this node's LP, that LP is skipped (its value could not be lower)."""
    input_stall: int = 0
    """Input splits in a row on the path to this node that decided no neuron (reset
    by one that does, carried by other splits); at :data:`INPUT_STALL_LIMIT` the node's
    inputs are not split, nor those of its subtree."""


@dataclass(frozen=True, eq=False)
class Split:
    """A branching: the candidate split on and the two children it made."""

    cand: Candidate
    left: Node
    right: Node


@dataclass(frozen=True, eq=False)
class NodeLP:
    """Outcome of a node LP: ``bound`` (``None`` when infeasible, ``inf`` when
    unusable), the final basis (``None`` when none) and the optimal point
    (``None`` unless optimal)."""

    bound: float | None
    basis: object | None
    point: LPPoint | None = None
    fix: tuple[np.ndarray, ...] | None = None
    """Per hidden layer, phases the LP's duals decide (0: none), or ``None``."""


@dataclass(frozen=True, eq=False)
class BackwardPlan:
    """A backward tightening deferred by the root tightening: the tightened root
    bounds it starts from, the LPs it solves, and the seconds per LP measured on a
    probe (``None`` until measured: the probe is solved only once the search has
    run as long as the plan would take at the node LPs' speed, so that short
    searches skip it; a probe is two LPs of the whole model, the first cold)."""

    forward: ForwardBounds
    dlo: tuple[np.ndarray, ...]
    dhi: tuple[np.ndarray, ...]
    lps: int
    per_lp_s: float | None = None


@dataclass(frozen=True, eq=False)
class RegionPoints:
    """Where an activation region's interior-point LPs got.

    Attributes
    ----------
    centre : ndarray or None
        A point deeper than ``tol.interior_margin`` (the region is full-dimensional).
    thin : ndarray or None
        Without a centre, the deepest point the full LP found at a positive depth
        at most the margin (a witness candidate only).
    """

    centre: np.ndarray | None
    thin: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class LPPoint:
    """An optimal solution (every column) of a node LP built on ``layout``."""

    layout: RelaxationLayout
    values: np.ndarray


@dataclass
class _Counters:
    nodes: int = 0
    evaluations: int = 0
    lps: int = 0
    node_lps: int = 0  # of ``lps``, the node LPs (``time_lp_s`` is their time)
    lps_reused: int = 0
    lps_dual_cut: int = 0
    phases_fixed: int = 0
    pruned_bound: int = 0
    pruned_infeasible: int = 0
    max_depth: int = 0
    regions: int = 0
    restarts: int = 0
    time_bounds_s: float = 0.0
    time_lp_s: float = 0.0
    time_incumbent_s: float = 0.0
    time_presolve_s: float = 0.0
    time_restarts_s: float = 0.0  # of ``time_incumbent_s``


LP_POINT_ZERO_REL = 1e-7
"""Pre-activations this small relative to their scale count as zero at LP points."""
LP_USEFUL_GAP_SHARE = 0.05
"""An LP is useful when it prunes the node or closes this share of its gap."""
LP_MIN_USEFUL_RATE = 0.1
"""Below this smoothed share of useful LPs, 'auto' only probes."""
PROBE_EVERY = 8
"""A policy below its minimum rate (LPs, input splits) still tries every this-th time."""
PROBE_SMOOTHING = 0.05
"""Weight of the newest outcome in a policy's smoothed rate."""
INPUT_MIN_WIN_RATE = 0.1
"""Below this smoothed share of branchings an input split wins, ``inputs='auto'``
compares input splits only every :data:`PROBE_EVERY`-th branching (measured: they
win about half the time on 2-input nets, 3-5 % on the 8- to 16-input ones and never
on the 10-input cube, where trying them cost a quarter of the time)."""


INPUT_SPLIT_MAX_DIM = 16
"""``inputs='auto'`` considers input splits up to this input dimension."""
INPUT_MIN_SHARE = 2.0 ** -30
"""Input coordinates narrower than this share of the problem box are not split."""
EAGER_INPUT_MAX_DIM = 3
"""Up to this input dimension, a node with more than
:data:`EAGER_INPUT_AMBIGUOUS_SHARE` of its neurons ambiguous is split on its inputs
only (when input splits are on).  One neuron split then decides one of many; strong
branching sees no gain from either kind of split and picked neuron splits, while
bisecting the box decides many neurons within a few levels.  Measured: width_32 (2
inputs, all 96 neurons ambiguous) linf and l1, open after 30 s, closed in 4.6 and
6.4 s.  On 16 random 2-input nets (2-4 layers of 16-40, radius 0.2-1) with a 20 s
limit, 6 more closed, one closed 7x faster, the gaps of the 3 still open shrank
10-100x and the others did not change.  On 8 3-input nets 1 more closed and 1 open
gap widened; on 4-input nets it lost more than it won."""
EAGER_INPUT_AMBIGUOUS_SHARE = 0.5
"""See :data:`EAGER_INPUT_MAX_DIM`."""
INPUT_STALL_LIMIT = 8
"""A node reached by this many input splits in a row that each left as many neurons
ambiguous as their parent is not split on its inputs, nor is its subtree (neuron
and sign splits carry the count; only an input split resets it).  Bisection cannot
decide neurons whose zero sets coincide (a duplicated neuron, or two with
proportional weights and biases): the sub-boxes along that set keep the same bound
at every depth.  Without the limit, random [3, 2, 3] networks with a duplicated
neuron stayed open with default options (one of them after 10 s in every input
norm, 25-32 thousand nodes); with it they close in a few hundred to about a
thousand nodes (5-26 with input splits off).  Since the number of ambiguous
neurons never grows along a path, a path holds at most this many input splits per
neuron decided, plus this many."""


RESTART_AFTER_S = 2.0
"""Search seconds before the local ascents from fresh samples start
(``restart_share``), so that short solves never pay for them.  The ascents from the
initial samples end in local maxima that depend on the samples: on the cube cases
(10 inputs on [0, 1]^10) two ascents reached 0.515-0.830 (l1) and 1.90-2.34 (linf)
over four seeds, eight from face and uniform samples 0.832-0.841 and 2.11-2.48.
Measured at 10 s (share 0.03): lower bounds cube l1 0.815 -> 0.832, cube linf 2.387
-> 2.672, indim_16 r0.05 linf 2.188 -> 2.562, l1 0.356 -> 0.419, upper bounds within
run-to-run spread; solves that close in 2-10 s keep their node counts."""
SAMPLES_PER_RESTART = 256
"""Fresh points drawn per restart; the ascent starts from the best of them that
re-checks as a witness (:func:`bnblip.incumbent.best_witness`)."""


TIGHTEN_TIME_SHARE = 0.25
"""Root tightening stops after this share of the (remaining) time limit."""
TIGHTEN_DEFER_SHARE = 1.0
"""``tighten='auto'`` tightens once the search has taken this share of the
tightening's estimated time (its LP count times the mean node LP time so far): at 1
it is paid once the search has run as long as it would take, the break-even rule.
Measured against 0.5 in two paired runs (min of 3, alternating processes) on the 30
cases where HiGHS's MIP needs a second and bnb closes in 9 s: time 0.935x alone on
the machine, 0.965x beside the test suite; short searches gain most (pub_rand_12 l1
0.51x, depth_7 l1 0.81x, digits_100x100 r0.02 l1 0.77x), the worst single case was
pub_rand_8 r0.6 linf at 1.26x and 1.03x."""
TIGHTEN_MAX_FUNCTIONALS = 4
"""Backward bounds are LP-tightened for at most this many output functionals."""
TIGHTEN_BACKWARD_MAX_LPS = 128
"""Backward tightening runs with the forward one up to this many LPs per functional.
Above it only the input gradient's bounds are tightened, and only once the search
has run as long as that is estimated to take (:meth:`_Search.maybe_tighten_backward`;
not for the l1 input norm, whose fixed directions make the LP objective linear in
the gradient).  Measured: the whole backward tightening paid at once on the public
8-input nets and the 10-input cube net; on the 64-input digits nets (176-328 LPs,
about 40 ms each on [100,100]) it slowed every case solved within 10 s, but on
digits [100,100] r0.1 linf the gradient's bounds alone halved in width and the 60 s
upper bound fell from 196 to 150."""


DIVE_EVERY = 4
"""With ``dive=True``, the search dives from every this-many-th node it pops
best-first and branches the others without diving.  Dives run to the end of their
path: capped at 3 steps (from every pop) they took 24,042 nodes on cube l1, more
than no dives, and capped at 10 steps 11,600 on l1 and 105,765 on linf.  Measured
on the cube net (single runs, node counts): linf 97,053 and 98,289 nodes with a
dive from every pop, 77,007 with none, 92,011 every 2nd, 86,127 every 3rd, 87,245
every 4th, 87,861 every 8th; l1 11,396-12,826 every pop, 20,088-23,196 none,
10,822-11,060 every 2nd, 10,932-11,904 every 3rd to 5th, 13,630 every 8th, 20,656
every 16th.  Every 4th against every pop, in the same process (alternating, two runs
each): cube l1 44.2 s against 50.0 s; 0.97x the time on 17 cases that close in 0.5-9 s,
and 1.00x (0.99x the nodes) on the 27 of the full bench that take 0.3-10 s."""


class _Probe:
    """A smoothed share of useful tries of something optional (an LP, an input
    split): wanted while the share stays at ``minimum`` or above, else every
    ``every``-th request, so that the share keeps being measured."""

    def __init__(self, minimum: float, every: int = PROBE_EVERY,
                 smoothing: float = PROBE_SMOOTHING):
        self.minimum, self.every, self.smoothing = minimum, every, smoothing
        self.rate = 1.0
        self.requests = 0

    def wanted(self) -> bool:
        self.requests += 1
        return self.rate >= self.minimum or self.requests % self.every == 0

    def record(self, useful: bool) -> None:
        self.rate += self.smoothing * (float(useful) - self.rate)


class _LimitReached(Exception):
    def __init__(self, status: Status):
        super().__init__(status.value)
        self.status = status


def _kernel_set(kernels: str):
    """The bound kernels for option ``kernels`` ('auto': the compiled C ones when
    built, else Numba), or ``None`` when the kernel modules do not import."""
    try:
        from bnblip.bounds.ckernels import kernel_backend, select_kernels
    except ImportError:
        return None
    return select_kernels("c") if kernels == "auto" else kernel_backend(kernels)


def _forward_function(name: str, kernels: str = "auto"):
    """The forward propagation for option ``forward`` and whether it takes ``prior``
    bounds (intersected into every layer before the next is propagated).  ``kernels``
    picks the compiled C kernel ('c', 'auto' when built) or the Numba one."""
    if name in ("auto", "linear"):
        chosen = _kernel_set(kernels)
        if chosen is not None:
            from bnblip.bounds.ckernels import unchecked_forward_linear_with

            return unchecked_forward_linear_with(chosen), True
        try:
            from bnblip.bounds.linear import forward_linear
        except ImportError:
            if name == "linear":
                raise
            return forward_interval, False
        return forward_linear, False
    return forward_interval, False


def _backward_function(network: Network, kernels: str = "auto"):
    """Interval backward propagation ``(c, dlo, dhi, tol) -> BackwardBounds`` for
    the solver's nodes: the compiled (or Numba) kernel when the network has hidden
    layers and the kernels import, else :func:`backward_interval`."""
    chosen = _kernel_set(kernels) if network.num_hidden_layers > 0 else None
    if chosen is None:
        return lambda c, dlo, dhi, tol: backward_interval(network, c, dlo, dhi, tol)
    from bnblip.bounds.ckernels import unchecked_backward_interval_with
    from bnblip.bounds.kernels import pack_network

    run, packed = unchecked_backward_interval_with(chosen), pack_network(network)
    return lambda c, dlo, dhi, tol: run(packed, c, dlo, dhi, tol)


def _intersect(a: ForwardBounds, b: ForwardBounds) -> ForwardBounds:
    """Layer-wise intersection of two sound forward bounds of the same node."""
    lows = tuple(np.maximum(x, y) for x, y in zip(a.lower, b.lower))
    ups = tuple(np.minimum(x, y) for x, y in zip(a.upper, b.upper))
    return ForwardBounds(lows, ups, a.infeasible or b.infeasible)


def _meet(bounds: BackwardBounds, prior: BackwardBounds) -> BackwardBounds:
    """Intersection of two sets of backward bounds, each valid on the node (e.g.
    the node's own and its parent's or the root's)."""
    return BackwardBounds(
        tuple(np.maximum(a, b) for a, b in zip(bounds.lower, prior.lower)),
        tuple(np.minimum(a, b) for a, b in zip(bounds.upper, prior.upper)))


def _ambiguous_count(info: BranchInfo) -> int:
    return sum(int(np.count_nonzero(a)) for a in info.ambiguous)


def _input_stall(parent: Node | None, child: Node, split: bool) -> int:
    """``child``'s :attr:`Node.input_stall`: the parent's, plus one after an input
    split (``split``) that left as many neurons ambiguous, 0 after one that decided
    some (or closed the child)."""
    if parent is None:
        return 0
    if not split:
        return parent.input_stall
    if child.info is None or parent.info is None or \
            _ambiguous_count(child.info) < _ambiguous_count(parent.info):
        return 0
    return parent.input_stall + 1


def _root_directions(norm: Norm, n: int) -> list[DirectionSet]:
    dual = norm.dual
    if dual is Norm.L2:
        return [DirectionSet(None, None)]
    if dual is Norm.L1:
        return [DirectionSet(-np.ones(n), np.ones(n))]
    roots = []
    for j in range(n):
        for s in (1.0, -1.0):
            v = np.zeros(n)
            v[j] = s
            roots.append(DirectionSet(v, v.copy()))
    return roots


def check_monotone(parent_bound: float, child_bound: float) -> None:
    """Debug check: a child's upper bound never exceeds its parent's.

    Raises
    ------
    AssertionError
        When ``child_bound > parent_bound``.
    """
    if child_bound > parent_bound:
        raise AssertionError(f"child bound {child_bound!r} exceeds parent bound "
                             f"{parent_bound!r}")


class _Search:
    """State of one solve; methods run the steps in order."""

    def __init__(self, problem: Problem, tol: Tolerances, opts: BnbOptions,
                 time_limit: float | None, node_limit: int | None):
        self.problem = problem
        self.network: Network = problem.network
        self.tol = tol
        self.opts = opts
        self.time_limit = time_limit
        self.node_limit = node_limit
        self.forward_fn, self.forward_takes_prior = _forward_function(opts.forward,
                                                                      opts.kernels)
        self.forward_net = self.network
        if self.forward_takes_prior:
            from bnblip.bounds.kernels import pack_network

            self.forward_net = pack_network(self.network)
        self.backward_fn = _backward_function(self.network, opts.kernels)
        self.exact_signs = ExactSigns.of(self.network)
        # the compiled kernels take contiguous float64 only (a Problem may hold views)
        self.functionals = tuple(np.ascontiguousarray(c, dtype=np.float64)
                                 for c in problem.functionals)
        self.rule = SCORE_RULES[opts.score]
        self.history = ScoreHistory(self.network.hidden_widths, self.network.input_dim) \
            if opts.history else None
        box = problem.box
        self.split_inputs = (opts.inputs == "always" or (
            opts.inputs == "auto" and self.network.input_dim <= INPUT_SPLIT_MAX_DIM)) and \
            self.network.num_hidden_layers > 0 and opts.input_candidates > 0
        self.min_input_width = INPUT_MIN_SHARE * (box.upper - box.lower)
        self.count = _Counters()
        self.heap: list = []
        self.tiebreak = itertools.count()
        self.branched = itertools.count(1)  # nodes branched after a best-first pop
        self.incumbent: Witness | None = None
        self.pruned_max = -math.inf
        self.unwitnessed_max = -math.inf
        self.current: Node | None = None
        self.unexplored = math.inf  # until every root is in the tree
        self.root_backward: dict[int, BackwardBounds] = {}
        self.root_forward: ForwardBounds | None = None
        self.tighten_pending = opts.tighten == "auto"
        self.search_start = 0.0  # set when the roots exist
        self.tighten_deadline: float | None = None
        self.tighten_plan = 0
        self.backward_plan: BackwardPlan | None = None  # a deferred backward tightening
        self.region_cache: dict[bytes, RegionPoints] = {}
        self.restart_rng = np.random.default_rng([opts.seed, 1])
        self.last_restart_s = 0.0
        self.root_flippable: Pattern | None = None
        self.root_active: Pattern | None = None
        self.start = time.perf_counter()
        self.last_progress = self.start
        self.lp = None  # built by build_lp once the root's known phases are known
        self.lp_enabled = opts.lp != "never" and self.network.num_hidden_layers > 0
        self.lp_probe = _Probe(LP_MIN_USEFUL_RATE)
        if opts.gradient == "always" and (problem.norm is not Norm.LINF or opts.lp == "never"):
            raise InputError("gradient='always' applies to the linf input norm with node LPs "
                             f"(norm {problem.norm.value!r}, lp={opts.lp!r})")
        self.input_probe = _Probe(INPUT_MIN_WIN_RATE)

    def build_lp(self) -> None:
        """(Re)build the LP model with the neurons whose phase the root's bounds decide
        substituted out (every node's bounds lie within the root's)."""
        if not self.lp_enabled:
            return
        t0 = time.perf_counter()
        net = self.network
        phases, empty = self._root_phases()
        if empty:
            phases = tuple(np.zeros(h, dtype=np.int8) for h in net.hidden_widths)
        layout = build_layout(net, self.tol.lp_small_entry, phases)
        self.lp = BACKENDS[self.opts.lp_backend](layout, self.tol.feas_tol)
        self.lp_check = SolutionCheck(layout)
        self.count.time_presolve_s += time.perf_counter() - t0
        logger.debug("LP model: %d columns, %d rows (%d of %d neurons ambiguous)",
                     layout.num_cols, layout.num_rows,
                     sum(a.size for a in layout.ambiguous), sum(net.hidden_widths))

    # ------------------------------------------------------------ bounds
    @property
    def lower(self) -> float:
        return self.incumbent.value if self.incumbent is not None else -math.inf

    def upper(self) -> float:
        """Proven upper bound over everything not yet closed."""
        candidates = [self.lower, self.pruned_max, self.unwitnessed_max, self.unexplored]
        if self.heap:
            candidates.append(-self.heap[0][0])
        if self.current is not None:
            candidates.append(self.current.bound)
        return max(candidates)

    def closable(self, bound: float) -> bool:
        lower = self.lower
        if lower == -math.inf:
            return False
        return bound <= lower or self.tol.gap_closed(lower, bound)

    # ------------------------------------------------------------ evaluation
    def evaluate(self, phases, directions: DirectionSet, functional: int, depth: int,
                 parent: Node | None, box: tuple[np.ndarray, np.ndarray] | None = None,
                 input_split: bool = False) -> Node:
        """Bound one node (phases and directions fixed) over the input ``box`` (default:
        the parent's box, else the problem's); ``input_split``: ``box`` is one half of
        the parent's (it counts towards :attr:`Node.input_stall`)."""
        t0 = time.perf_counter()
        self.count.evaluations += 1
        if box is None:
            box = ((parent.lower, parent.upper) if parent is not None and parent.lower is not None
                   else (self.problem.box.lower, self.problem.box.upper))
        try:
            node = self._evaluate(phases, directions, functional, depth, parent, box)
            return replace(node, lower=box[0], upper=box[1],
                           input_stall=_input_stall(parent, node, input_split))
        finally:
            self.count.time_bounds_s += time.perf_counter() - t0

    def _closed(self, state, depth, functional, phases, directions, bound=-math.inf):
        return Node(state, bound, depth, functional, phases, directions)

    def _forward(self, phases, parent: Node | None, box) -> ForwardBounds:
        lower, upper = box
        prior = parent.forward if parent is not None else None
        if self.root_forward is not None:
            prior = self.root_forward if prior is None else _intersect(prior, self.root_forward)
        if self.forward_takes_prior and prior is not None:
            fb = self.forward_fn(self.forward_net, lower, upper, phases, self.tol, prior=prior)
        else:
            fb = self.forward_fn(self.forward_net, lower, upper, phases, self.tol)
        if prior is None or fb.infeasible:
            return fb
        return _intersect(fb, prior)

    def _decide_phases(self, fb: ForwardBounds, phases) -> tuple[tuple, bool]:
        """Fix the free phases the bounds ``fb`` decide, then those the exact signs
        decide (:class:`~bnblip.bounds.interval.ExactSigns`); and whether ``fb``
        contradicts a fixed phase."""
        out, infeasible = [], fb.infeasible
        for k, (zl, zu, ph) in enumerate(zip(fb.lower, fb.upper, phases)):
            if not infeasible:  # (array methods: np.any's wrapper costs more here)
                infeasible = bool(((zl > zu) | ((ph == ACTIVE) & (zu < 0))
                                   | ((ph == INACTIVE) & (zl > 0))).any())
            new = ph.copy()
            free = ph == 0
            new[free & (zu <= 0)] = INACTIVE
            new[free & (zu > 0) & (zl >= 0)] = ACTIVE
            if k and self.exact_signs.applies(k) and (new == 0).any():
                self.exact_signs.decide(k, new, out[-1])
            out.append(new)
        return tuple(out), infeasible

    @staticmethod
    def _decide_directions(directions: DirectionSet, glo, ghi):
        """Fix free signs whose gradient sign is known; detect dominated nodes."""
        if directions.is_ball:
            return directions, False
        lo, hi = directions.lower, directions.upper
        dominated = bool((((lo == 1.0) & (ghi < 0)) | ((hi == -1.0) & (glo > 0))).any())
        free = lo < hi
        pos = free & (glo >= 0)
        neg = free & ~pos & (ghi <= 0)
        if not (pos | neg).any():
            return directions, dominated
        lo, hi = lo.copy(), hi.copy()
        lo[pos] = 1.0
        hi[neg] = -1.0
        return DirectionSet(lo, hi), dominated

    def _evaluate(self, phases, directions, functional, depth, parent, box) -> Node:
        net = self.network
        c = self.functionals[functional]
        fb = self._forward(phases, parent, box)
        phases, infeasible = self._decide_phases(fb, phases)
        if infeasible:
            return self._closed(NodeState.INFEASIBLE, depth, functional, phases, directions)
        dlo, dhi = derivative_bounds(fb, phases)
        backward = self.backward_fn(c, dlo, dhi, self.tol)
        if functional in self.root_backward:
            backward = _meet(backward, self.root_backward[functional])
        backward = backward_symbolic(net, c, dlo, dhi, backward, self.tol)
        if self.opts.gradient != "never" and parent is not None and parent.parts is not None \
                and parent.functional == functional:
            backward = _meet(backward, parent.parts.backward)  # LP-tightened gradient bounds
        directions, dominated = self._decide_directions(directions, backward.lower[0],
                                                        backward.upper[0])
        if dominated:
            return self._closed(NodeState.DOMINATED, depth, functional, phases, directions)
        parent_bound = parent.bound if parent is not None else math.inf
        ambiguous = tuple(lo != hi for lo, hi in zip(dlo, dhi))
        if not any(np.any(a) for a in ambiguous):
            pattern = tuple(h > 0 for h in dhi)
            gradient = net.gradient_for_pattern(pattern, c)
            value = directions.value(gradient)
            return Node(NodeState.LEAF, min(value, parent_bound), depth, functional, phases,
                        directions, fb, None, pattern, propagated=value)
        obj = objective_bound(net, c, dlo, dhi, directions, self.tol, backward)
        bound = min(obj.value, parent_bound)
        if self.opts.check_monotone and parent is not None:
            check_monotone(parent.bound, bound)
        sign_free = (np.zeros(net.input_dim, dtype=bool) if directions.is_ball
                     else directions.lower < directions.upper)
        info = BranchInfo(fb.lower, fb.upper, ambiguous, obj.direction_lower,
                          obj.direction_upper, backward.lower, backward.upper, sign_free)
        return Node(NodeState.OPEN, bound, depth, functional, phases, directions, fb, info,
                    None, NodeParts(dlo, dhi, backward), propagated=obj.value,
                    warm=parent.warm if parent is not None else None,
                    lp_point=parent.lp_point if parent is not None else None)

    def refine(self, node: Node) -> Node:
        """Apply the node LP to an open node (infeasibility, tighter bound)."""
        if (self.lp is None or node.state is not NodeState.OPEN or node.lp_done
                or self.closable(node.bound)):
            return node
        if not self.want_lp():
            return node
        parts = node.parts
        out = self.solve_lp(node.forward, parts.dlo, parts.dhi, parts.backward,
                            node.directions, node.functional, node.warm,
                            (node.lower, node.upper), node.lp_point)
        if out is None:  # the parent's LP optimum is feasible here: nothing to gain
            return replace(node, lp_done=True)
        if out.bound is None:
            self.record_lp(True)
            return replace(node, state=NodeState.INFEASIBLE, bound=-math.inf, lp_done=True)
        bound = min(node.bound, out.bound)
        lower = max(self.lower, 0.0)
        self.record_lp(self.closable(bound) or node.bound - bound > LP_USEFUL_GAP_SHARE
                       * max(node.bound - lower, 0.0))
        node = replace(node, bound=bound, lp_done=True,
                       warm=out.basis if out.basis is not None else node.warm,
                       lp_point=out.point)
        if out.fix is None or self.closable(bound):
            return node
        return self._fix_phases(node, out.fix)

    def _fix_phases(self, node: Node, fix: tuple[np.ndarray, ...]) -> Node:
        """``node`` re-evaluated with the phases its LP's duals decided (its region
        loses only points that cannot beat the incumbent)."""
        phases = tuple(np.where(f != 0, f, p).astype(p.dtype) for p, f in zip(node.phases, fix))
        self.count.phases_fixed += sum(int(np.count_nonzero(f)) for f in fix)
        fixed = self.evaluate(phases, node.directions, node.functional, node.depth, node)
        if fixed.state is not NodeState.OPEN:
            return fixed
        return replace(fixed, lp_done=True)  # basis and LP point come from ``node``

    def _dual_fixings(self, bounds: PhaseBounds | None, dlo: tuple[np.ndarray, ...],
                      dhi: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...] | None:
        """Phases decided by an LP's duals: a free neuron is fixed when the bound of
        the LP with its other phase, widened by the LP margin, is below the
        incumbent (reduced-cost fixing; the bounds are
        :meth:`bnblip.lp.duality.WeakDuality.bound_with_phases`)."""
        lower = self.lower
        if bounds is None or not (lower > 0.0 and math.isfinite(lower)):
            return None
        fixes = []
        for k, neurons in enumerate(self.lp.layout.ambiguous):
            free = dlo[k][neurons] != dhi[k][neurons]
            no_active = bounds.if_active[k] + self._lp_margin(bounds.if_active[k]) < lower
            no_inactive = bounds.if_inactive[k] + self._lp_margin(bounds.if_inactive[k]) < lower
            fix = np.zeros(dlo[k].size, dtype=np.int8)
            fix[neurons[free & no_active & ~no_inactive]] = INACTIVE
            fix[neurons[free & no_inactive & ~no_active]] = ACTIVE
            fixes.append(fix)
        return tuple(fixes) if any(np.any(f) for f in fixes) else None

    def want_lp(self) -> bool:
        """The LP policy: 'auto' runs the LP while the measured share of useful LPs
        stays above :data:`LP_MIN_USEFUL_RATE`, else probes every
        :data:`PROBE_EVERY`-th node to keep measuring."""
        return self.opts.lp == "always" or self.lp_probe.wanted()

    def record_lp(self, useful: bool) -> None:
        self.lp_probe.record(useful)

    def solve_lp(self, fb, dlo, dhi, backward, directions, functional: int,
                 warm: object | None, box: tuple[np.ndarray, np.ndarray],
                 reuse: LPPoint | None = None) -> NodeLP | None:
        """Node LP over the input ``box`` from basis ``warm``: bound ``None`` if
        infeasible, else an upper bound (``inf`` if unusable).  ``None`` (no LP
        solved) when ``reuse``, an ancestor's LP optimum, is feasible for this LP."""
        t0 = time.perf_counter()
        data = self._lp_data(box, fb, dlo, dhi, backward, functional, directions)
        if reuse is not None and reuse.layout is self.lp.layout and \
                self.lp_check.feasible(data, reuse.values, self.tol.lp_reuse_slack):
            self.count.lps_reused += 1
            self.count.time_lp_s += time.perf_counter() - t0
            return None
        sol = self.lp.solve(data, warm, self._lp_cutoff(directions))
        if sol.solved:
            self.count.lps += sol.runs
            self.count.node_lps += sol.runs
        else:
            self.count.lps_dual_cut += 1
        self.count.time_lp_s += time.perf_counter() - t0
        if sol.status is LPStatus.INFEASIBLE:
            return NodeLP(None, None)
        if sol.status is LPStatus.CUTOFF:
            return NodeLP(sol.value + self._lp_margin(sol.value), sol.basis)
        if sol.status is not LPStatus.OPTIMAL:
            return NodeLP(math.inf, None)
        self.try_point(sol.x, functional)
        point = LPPoint(self.lp.layout, sol.values) if sol.values is not None else None
        if directions.is_ball:
            return NodeLP(math.inf, sol.basis, point)
        return NodeLP(sol.value + self._lp_margin(sol.value), sol.basis, point,
                      self._dual_fixings(sol.phases, dlo, dhi))

    def _lp_data(self, box, fb: ForwardBounds, dlo, dhi, backward: BackwardBounds,
                 functional: int, directions: DirectionSet | None = None) -> NodeData:
        """LP data of a node over ``box``, with the root's LP-tightened bounds met in
        (nodes made before a deferred tightening lack them); ``directions`` ``None``
        leaves the objective rows free (bound tightening)."""
        if self.root_forward is not None:
            fb = _intersect(fb, self.root_forward)
        if functional in self.root_backward:
            backward = _meet(backward, self.root_backward[functional])
        lower, upper = (None, None) if directions is None else \
            (directions.lower, directions.upper)
        return node_data(self.lp.layout, self.network, box[0], box[1], fb.lower, fb.upper,
                         dlo, dhi, backward.lower, backward.upper, lower, upper)

    def _widened(self, lower: np.ndarray, upper: np.ndarray, which,
                 ext: Extremes) -> tuple[np.ndarray, np.ndarray]:
        """Copies of ``lower, upper`` with entries ``which`` met with the LP extremes
        widened by the LP margin."""
        lo, hi = ext.lower, ext.upper
        lower, upper = lower.copy(), upper.copy()
        lower[which] = np.maximum(lower[which], lo - self._lp_margin(lo))
        upper[which] = np.minimum(upper[which], hi + self._lp_margin(hi))
        return lower, upper

    def _lp_cutoff(self, directions: DirectionSet) -> float | None:
        """Value at which the LP may stop: its margin-widened bound is then at most
        the incumbent, so the node is pruned (``None`` without an incumbent)."""
        lower = self.lower
        if directions.is_ball or not lower > 0.0 or not math.isfinite(lower):
            return None
        return lower - self._lp_margin(lower)

    def _lp_margin(self, value):
        """Safety added to an LP optimum before it counts as a bound: relative
        ``tol.relaxation_safety`` plus ``tol.feas_tol`` times ten (absolute)."""
        return self.tol.relaxation_safety * np.abs(value) + 10.0 * self.tol.feas_tol

    def try_point(self, x: np.ndarray, functional: int) -> None:
        """Offer the region of a candidate point (e.g. an LP solution) as incumbent."""
        t0 = time.perf_counter()
        box = self.problem.box
        x = np.clip(x, box.lower, box.upper)
        c = self.problem.functionals[functional]
        value = float(self.problem.norm.dual_value(self.network.gradient(x, c)))
        self.count.time_incumbent_s += time.perf_counter() - t0
        if value <= self.lower:
            return
        # an LP vertex sits on region boundaries: try the pattern with the
        # (numerically) zero pre-activations inactive, then active
        zs = self.network.preactivations(x)
        slack = [LP_POINT_ZERO_REL * scale for scale in preactivation_scales(self.network, x)]
        patterns = [self.with_root_phases(tuple(z > 0 for z in zs)),
                    self.with_root_phases(tuple(z > -e for z, e in zip(zs, slack)))]
        for pattern in patterns[:1] if same_pattern(*patterns) else patterns:
            point = self.region_point(pattern)
            if point is None:
                continue
            wit = check_witness(self.network, box, self.problem.norm, c, point, self.tol)
            if wit is not None and matches(self.network, wit, pattern):
                self.offer(wit)

    # ------------------------------------------------------------ branching
    def children(self, node: Node, cand: Candidate) -> tuple[Node, Node]:
        """Evaluate both children of ``node`` split on ``cand``."""
        depth = node.depth + 1
        out = []
        if cand.kind is Kind.NEURON:
            for phase in (ACTIVE, INACTIVE):
                phases = tuple(p.copy() for p in node.phases)
                phases[cand.layer][cand.index] = phase
                out.append(self.evaluate(phases, node.directions, node.functional, depth,
                                         node))
        elif cand.kind is Kind.INPUT:
            j = cand.index
            middle = 0.5 * (node.lower[j] + node.upper[j])
            upper, lower = node.upper.copy(), node.lower.copy()
            upper[j] = middle
            lower[j] = middle
            for box in ((node.lower, upper), (lower, node.upper)):
                out.append(self.evaluate(node.phases, node.directions, node.functional, depth,
                                         node, box, input_split=True))
        else:
            for sign in (1.0, -1.0):
                lo, hi = node.directions.lower.copy(), node.directions.upper.copy()
                lo[cand.index] = hi[cand.index] = sign
                out.append(self.evaluate(node.phases, DirectionSet(lo, hi), node.functional,
                                         depth, node))
        return out[0], out[1]

    def _child_value(self, child: Node, ceiling: float, settled: bool = False) -> float:
        """A child's propagated bound (``settled``: its bound after its LP) for
        scoring, at most ``ceiling``; infeasible and dominated children count as
        the incumbent."""
        if child.state in (NodeState.INFEASIBLE, NodeState.DOMINATED):
            return self.lower
        return max(min(child.bound if settled else child.propagated, ceiling), self.lower)

    def branch(self, node: Node) -> tuple[Node, Node]:
        """Split ``node``; the chosen children get the LP refinement."""
        split = self._choose(node)
        left, right = self.refine(split.left), self.refine(split.right)
        if self.history is not None and split.cand.kind is not Kind.INPUT:
            self._learn(node, split.cand, left, right)
        return left, right

    def _learn(self, node: Node, cand: Candidate, left: Node, right: Node) -> None:
        """Tell the score history how far splitting ``cand`` lowered ``node``'s bound
        (``left``, ``right``: the children after their LPs)."""
        parent = node.bound
        values = [self._child_value(ch, parent, settled=True) for ch in (left, right)]
        base = cand.score / self.history.factor(cand)
        self.history.record(cand, base, observed_drop(parent, *values, score_floor(parent)))

    def _choose(self, node: Node) -> Split:
        """Pick the split (strong branching over the best-scored candidates)."""
        cands = self._input_candidates(node) if self._eager_inputs(node) else []
        eager = bool(cands)  # (no input wide enough to split: neurons compete)
        if not eager:
            rule = self.rule if self.history is None else self.history.rule(self.rule)
            cands = select(node.info, rule, self.opts.strong)
        with_inputs = not eager and self._inputs_open(node) and (
            self.opts.inputs == "always" or self.input_probe.wanted())
        if with_inputs:
            cands += self._input_candidates(node)
        if len(cands) == 1:
            return Split(cands[0], *self.children(node, cands[0]))
        reference = node.propagated
        floor = score_floor(reference)
        best, best_score = None, -math.inf
        for cand in cands:
            split = Split(cand, *self.children(node, cand))
            if self._done(split.left) and self._done(split.right):
                best = split
                break
            left, right = (self._child_value(ch, reference) for ch in (split.left, split.right))
            score = product_score(reference, left, right, floor)
            if score > best_score:
                best, best_score = split, score
        if with_inputs:
            self.input_probe.record(best.cand.kind is Kind.INPUT)
        return best

    def _input_candidates(self, node: Node) -> list[Candidate]:
        """Input bisections of ``node``'s box wider than the smallest split."""
        lower, upper = node.lower, node.upper
        cands = input_candidates(lower, upper, self.network.weights[0],
                                 self.opts.input_candidates)
        return [c for c in cands
                if upper[c.index] - lower[c.index] > self.min_input_width[c.index]]

    def _eager_inputs(self, node: Node) -> bool:
        """Whether ``node`` is split on its inputs only: a low-dimensional input
        with most neurons still ambiguous (:data:`EAGER_INPUT_MAX_DIM`)."""
        if not self._inputs_open(node) or self.network.input_dim > EAGER_INPUT_MAX_DIM:
            return False
        return _ambiguous_count(node.info) > \
            EAGER_INPUT_AMBIGUOUS_SHARE * self.network.num_neurons

    def _inputs_open(self, node: Node) -> bool:
        """Whether ``node`` may be split on its inputs (:data:`INPUT_STALL_LIMIT`)."""
        return self.split_inputs and node.input_stall < INPUT_STALL_LIMIT

    def _done(self, child: Node) -> bool:
        return child.state is not NodeState.OPEN or self.closable(child.bound)

    # ------------------------------------------------------------ incumbents
    def offer(self, witness: Witness | None, ascend: bool = True, force: bool = False) -> None:
        """Take ``witness`` if it beats the incumbent (then climb from it; ``force``
        climbs even when it does not beat it)."""
        if witness is None or (witness.value <= self.lower and not force):
            return
        t0 = time.perf_counter()
        if ascend and self.opts.ascent_steps > 0:
            witness = local_ascent(self.network, self.problem.box, self.problem.norm, witness,
                                   self.tol, max_steps=self.opts.ascent_steps,
                                   flippable=self.flippable(), deadline=self.end())
        self.count.time_incumbent_s += time.perf_counter() - t0
        if witness.value > self.lower:
            logger.debug("incumbent %.10g", witness.value)
            self.incumbent = witness

    def _root_phases(self) -> tuple[tuple, bool]:
        """Phases the root's forward bounds decide over the whole box (with the
        tightened root bounds once they exist), and whether they prove it empty."""
        box = self.problem.box
        zero = tuple(np.zeros(h, dtype=np.int8) for h in self.network.hidden_widths)
        return self._decide_phases(self._forward(zero, None, (box.lower, box.upper)), zero)

    def flippable(self) -> Pattern:
        """Per hidden layer, the neurons the root's forward bounds leave ambiguous
        (only they can change sign in the box); computed once."""
        if self.root_flippable is None:
            phases, _ = self._root_phases()
            self.root_flippable = tuple(p == 0 for p in phases)
            self.root_active = tuple(p == ACTIVE for p in phases)
        return self.root_flippable

    def with_root_phases(self, pattern: Pattern) -> Pattern:
        """``pattern`` with the neurons the root decides set to their root phase (a
        point on a decided neuron's zero set reads it inactive, an exact sign may
        have fixed it active)."""
        flippable = self.flippable()
        return tuple(np.where(f, p, a) for p, f, a in zip(pattern, flippable, self.root_active))

    def initial_incumbent(self) -> None:
        """Best re-checked sample points per functional, then local ascents."""
        rng = np.random.default_rng(self.opts.seed)
        box = self.problem.box
        t0 = time.perf_counter()
        points = np.vstack([box.center[None, :], box.sample(self.opts.samples, rng)])
        norm = self.problem.norm
        found = []
        for c in self.problem.functionals:
            values = norm.dual_value(self.network.gradient(points, c))
            order = np.argsort(-values)
            chunks = max(self.opts.starts, 1)
            for chunk in np.array_split(order[:8 * chunks], chunks):
                wit = best_witness(self.network, box, norm, c, points[chunk], self.tol)
                if wit is not None:
                    found.append(wit)
        self.count.time_incumbent_s += time.perf_counter() - t0
        deadline = self.deadline()
        for wit in sorted(found, key=lambda w: -w.value):
            ascend = self.opts.starts > 0 and (deadline is None or time.perf_counter() < deadline)
            self.offer(wit, ascend=ascend, force=True)

    def maybe_restart(self) -> None:
        """One more local ascent from fresh samples, once the search has run
        :data:`RESTART_AFTER_S`, while the restarts so far and one more as long as
        the last would take at most ``restart_share`` of its time (the first one
        runs regardless), and not when the time limit would pass during it."""
        if self.opts.restart_share <= 0 or self.opts.ascent_steps == 0:
            return
        now = time.perf_counter()
        spent = now - self.search_start
        expected = self.count.time_restarts_s + self.last_restart_s
        end = self.end()
        if spent < RESTART_AFTER_S or expected > self.opts.restart_share * spent or \
                (end is not None and now + self.last_restart_s >= end):
            return
        functional = self.count.restarts % len(self.problem.functionals)
        self.count.restarts += 1
        box = self.problem.box
        half = SAMPLES_PER_RESTART // 2
        points = np.vstack([box.sample(half, self.restart_rng),
                            box.sample_faces(SAMPLES_PER_RESTART - half, self.restart_rng)])
        c = self.problem.functionals[functional]
        witness = best_witness(self.network, box, self.problem.norm, c, points, self.tol)
        self.count.time_incumbent_s += time.perf_counter() - now
        self.offer(witness, force=True)
        self.last_restart_s = time.perf_counter() - now
        self.count.time_restarts_s += self.last_restart_s

    def region_point(self, pattern: Pattern) -> np.ndarray | None:
        """Interior point of ``pattern``'s region (cached), ``None`` if not full-dim."""
        return self.region_points(pattern).centre

    def region_points(self, pattern: Pattern) -> RegionPoints:
        """The interior points of ``pattern``'s region (cached): the quick inset LP,
        then, unless it proved the region deep, the full LP at any positive depth,
        whose point counts as a centre only deeper than ``tol.interior_margin``."""
        key = b"".join(np.packbits(p).tobytes() for p in pattern)
        if key not in self.region_cache:
            t0 = time.perf_counter()
            halfspaces = pattern_halfspaces(self.network, pattern, keep=self.flippable())
            centre = interior_point(halfspaces, self.problem.box, self.tol,
                                    inset=self.tol.region_inset)
            thin = None
            if centre is None or not centre.inset_bound:
                # the quick LP's failure proves nothing, and a region thinner than
                # the inset may be deeper in the full box
                full = interior_point(halfspaces, self.problem.box, self.tol, min_radius=0.0)
                if full is not None and full.radius <= self.tol.interior_margin:
                    thin, full = full.point, None
                if full is not None and (centre is None or full.radius > centre.radius):
                    centre = full
            self.count.regions += 1
            self.count.time_incumbent_s += time.perf_counter() - t0
            self.region_cache[key] = RegionPoints(None if centre is None else centre.point,
                                                  thin if centre is None else None)
        return self.region_cache[key]

    def close_leaf(self, leaf: Node) -> None:
        """A leaf counts only if its region is full-dimensional; witness it.

        A region thinner than ``tol.interior_margin`` (no centre that deep) still
        gets a witness when the deepest point its LP finds passes the re-check: a
        point where every pre-activation keeps its sign with a margin has a
        neighbourhood in the region (a fuzz case's maximum lay in a corner region
        1.4e-9 thin; dropping it left the upper bound 2.1e-4 below a re-checked
        gradient there).
        Without one such a region counts as empty, as before: keeping its bound in
        the upper bound left 2 of 320 fuzz problems open with bounds far above their
        values (the LP finds a positive depth, within its tolerance, in regions that
        are empty or lower-dimensional)."""
        points = self.region_points(leaf.pattern)
        thin = points.centre is None
        point = points.thin if thin else points.centre
        if point is None:
            self.count.pruned_infeasible += 1
            return
        c = self.problem.functionals[leaf.functional]
        wit = check_witness(self.network, self.problem.box, self.problem.norm, c, point,
                            self.tol)
        if wit is not None and matches(self.network, wit, leaf.pattern):
            self.offer(wit)
            if leaf.bound <= wit.value:
                return
        if thin:
            self.count.pruned_infeasible += 1
            return
        self.unwitnessed_max = max(self.unwitnessed_max, leaf.bound)

    # ------------------------------------------------------------ search
    def accept(self, child: Node) -> Node | None:
        """Record a freshly created child; return it if it stays open."""
        self.count.nodes += 1
        self.count.max_depth = max(self.count.max_depth, child.depth)
        if self.settle(child):
            return None
        if self.closable(child.bound):
            self.prune(child)
            return None
        return child

    def settle(self, node: Node) -> bool:
        """Close ``node`` if it is not open (empty, dominated or a leaf)."""
        if node.state in (NodeState.INFEASIBLE, NodeState.DOMINATED):
            self.count.pruned_infeasible += 1
            return True
        if node.state is NodeState.LEAF:
            self.close_leaf(node)
            return True
        return False

    def prune(self, node: Node) -> None:
        self.count.pruned_bound += 1
        self.pruned_max = max(self.pruned_max, node.bound)

    def push(self, node: Node) -> None:
        heapq.heappush(self.heap, (-node.bound, next(self.tiebreak), node))

    def check_limits(self) -> None:
        now = time.perf_counter()
        if self.opts.progress is not None and now - self.last_progress >= \
                self.opts.progress_interval_s:
            self.report_progress(now)
        end = self.end()
        if end is not None and now >= end:
            raise _LimitReached(Status.TIME_LIMIT)
        if self.node_limit is not None and self.count.nodes >= self.node_limit:
            raise _LimitReached(Status.NODE_LIMIT)

    def report_progress(self, now: float) -> None:
        self.last_progress = now
        elapsed = now - self.start
        lower = max(self.lower, 0.0)
        rate = self.count.nodes / elapsed if elapsed > 0 else 0.0
        self.opts.progress(Progress(lower, max(self.upper(), lower), self.count.nodes,
                                    rate, elapsed))

    def gap_closed(self) -> bool:
        return self.lower > -math.inf and self.tol.gap_closed(self.lower, self.upper())

    def tighten_root(self) -> Node | None:
        """LP bound tightening of every ambiguous neuron, layer by layer (from the
        second: the first layer's bounds over the box are exact).

        Returns a pseudo parent carrying the tightened forward bounds (or ``None``).
        """
        net = self.network
        phases = tuple(np.zeros(h, dtype=np.int8) for h in net.hidden_widths)
        root = self.evaluate(phases, _root_directions(self.problem.norm, net.input_dim)[0],
                             0, 0, None)
        if self.lp is None or root.state is not NodeState.OPEN:
            return None
        if self.closable(self.coarse_bound(None)):
            return None  # propagation alone already meets the incumbent: no LPs needed
        t0 = time.perf_counter()
        self._start_tightening(t0)
        lower, upper = list(root.forward.lower), list(root.forward.upper)
        dlo, dhi = list(root.parts.dlo), list(root.parts.dhi)
        for k in range(1, net.num_hidden_layers):  # layer 0's box bounds are exact
            amb = np.flatnonzero(dlo[k] != dhi[k])
            if amb.size == 0:
                continue
            if self._tighten_over():
                break
            ext = self._layer_extremes(k, lower, upper, dlo, dhi, amb)
            self.count.lps += ext.solved
            if ext.infeasible:
                break
            lower[k], upper[k] = self._widened(lower[k], upper[k], amb, ext)
            kept = root.parts.dlo[k] == root.parts.dhi[k]  # the root's (exact) decisions
            dlo[k] = np.where(kept, dlo[k], np.where(lower[k] >= 0, 1.0, 0.0) * (upper[k] > 0))
            dhi[k] = np.where(kept, dhi[k], (upper[k] > 0).astype(np.float64))
        fb = ForwardBounds(tuple(lower), tuple(upper), False)
        self.root_forward = fb
        self.build_lp()  # neurons the tightened bounds decide leave the LP
        pseudo = Node(NodeState.OPEN, math.inf, 0, 0, phases, root.directions, fb)
        if not self.closable(self.coarse_bound(pseudo)):  # else propagation suffices
            self._backward_stage(fb, tuple(dlo), tuple(dhi))
        self.count.time_presolve_s += time.perf_counter() - t0
        return pseudo

    def _layer_extremes(self, k: int, lower, upper, dlo, dhi, amb: np.ndarray) -> Extremes:
        """LP extremes of hidden layer ``k``'s pre-activations ``amb`` over the box,
        on the forward relaxation of layers ``0..k`` alone with the neurons the
        bounds decide substituted out (an LP of a fraction of the node LP's rows:
        the backward rows hardly move forward extremes)."""
        net, box = self.network, self.problem.box
        phases = tuple(np.where(lo == hi, np.where(hi > 0, ACTIVE, INACTIVE), 0).astype(np.int8)
                       for lo, hi in zip(dlo, dhi))
        layout = build_layout(net, self.tol.lp_small_entry, phases, forward_layers=k + 1)
        backend = BACKENDS[self.opts.lp_backend](layout, self.tol.feas_tol)
        data = forward_data(layout, net, box.lower, box.upper, lower, upper, dlo, dhi)
        cols = layout.col_z[k][np.searchsorted(layout.live[k], amb)]
        return backend.extremes(data, cols, self.tighten_deadline)

    def _backward_stage(self, fb: ForwardBounds, dlo, dhi) -> None:
        """After the forward tightening: the whole backward tightening when it is
        small (:data:`TIGHTEN_BACKWARD_MAX_LPS`), else a plan to tighten the input
        gradient later (not for the l1 input norm)."""
        functionals = self._tightened_functionals()
        if self._backward_lp_count() <= TIGHTEN_BACKWARD_MAX_LPS:
            for f in range(functionals):
                self.root_backward[f] = self._tighten_backward(fb, dlo, dhi, f)
        elif self.problem.norm is not Norm.L1 and not self._tighten_over():
            self.backward_plan = BackwardPlan(fb, dlo, dhi,
                                              2 * self.network.input_dim * functionals)

    def _start_tightening(self, now: float) -> None:
        """A tightening starting at ``now`` stops after :data:`TIGHTEN_TIME_SHARE` of
        the remaining time limit."""
        end = self.end()
        if end is not None:
            self.tighten_deadline = now + TIGHTEN_TIME_SHARE * max(end - now, 0.0)

    def _tighten_over(self) -> bool:
        return self.tighten_deadline is not None and time.perf_counter() > self.tighten_deadline

    def tighten_lp_count(self) -> int:
        """The number of LPs :meth:`tighten_root` would solve (its cost estimate)."""
        net = self.network
        phases = tuple(np.zeros(h, dtype=np.int8) for h in net.hidden_widths)
        root = self.evaluate(phases, _root_directions(self.problem.norm, net.input_dim)[0],
                             0, 0, None)
        if root.state is not NodeState.OPEN:
            return 0
        count = 2 * sum(int(np.count_nonzero(lo != hi)) for lo, hi in
                        zip(root.parts.dlo[1:], root.parts.dhi[1:]))
        backward = self._backward_lp_count()
        if backward <= TIGHTEN_BACKWARD_MAX_LPS:
            count += backward * self._tightened_functionals()
        return count

    def _backward_lp_count(self) -> int:
        """LPs of a whole backward tightening for one functional: two per hidden
        ``y`` below the last layer and per input-gradient coordinate."""
        return 2 * (sum(self.network.hidden_widths[:-1]) + self.network.input_dim)

    def _tightened_functionals(self) -> int:
        """How many output functionals get LP-tightened backward bounds."""
        return min(len(self.problem.functionals), TIGHTEN_MAX_FUNCTIONALS)

    def maybe_tighten(self) -> None:
        """Deferred tightening ('auto'): once the search has spent
        :data:`TIGHTEN_DEFER_SHARE` of the tightening's estimated time."""
        if not self.tighten_pending or self.lp is None or self.count.node_lps == 0:
            return
        spent = time.perf_counter() - self.search_start
        if spent < TIGHTEN_DEFER_SHARE * self._lp_seconds() * self.tighten_plan:
            return
        self.tighten_pending = False
        logger.debug("deferred root tightening after %.3f s (%d LPs planned)", spent,
                     self.tighten_plan)
        self.tighten_root()

    def _lp_seconds(self) -> float:
        """Seconds per node LP so far (``time_lp_s`` over the node LPs; the
        tightening LPs are not in ``time_lp_s``), 0 before any."""
        return self.count.time_lp_s / self.count.node_lps if self.count.node_lps else 0.0

    def _backward_lp_time(self, fb: ForwardBounds, dlo, dhi) -> float:
        """Seconds per LP of a backward tightening, measured on the input gradient's
        first coordinate, the first LP from a cold start (as the deferral rule was
        tuned: warm from a node LP's basis the probe takes a few times less, and the
        rule then runs tightenings that do not pay, e.g. x1.96 the time on
        digits_100x100 r0.02 linf)."""
        box = self.problem.box
        data = self._lp_data((box.lower, box.upper), fb, dlo, dhi,
                             self._backward_bounds(0, dlo, dhi), 0)
        self.lp.forget()
        t0 = time.perf_counter()
        ext = self.lp.extremes(data, self.lp.layout.col_g[:1])
        self.count.lps += ext.solved
        return (time.perf_counter() - t0) / max(ext.solved, 1)

    def maybe_tighten_gradient(self, node: Node) -> Node:
        """``node`` re-bounded after LP tightening of its input gradient's bounds on
        the coordinates whose sign is free and unknown (option ``gradient``, linf
        input norm; ``__init__`` refuses it for other norms): their chords in the LP
        narrow, and the node's subtree inherits the bounds.  Run on nodes popped
        best-first, those that hold the global upper bound up."""
        if self.lp is None or self.opts.gradient == "never" or \
                node.state is not NodeState.OPEN or node.parts is None:
            return node
        glo, ghi = node.parts.backward.lower[0], node.parts.backward.upper[0]
        free = (node.directions.lower < node.directions.upper) & (glo < 0) & (ghi > 0)
        if not np.any(free) or self.closable(node.bound):
            return node
        tightened = self._gradient_lp_bounds(node, free)
        if tightened is None:
            return replace(node, state=NodeState.INFEASIBLE, bound=-math.inf)
        carrier = replace(node, parts=replace(node.parts, backward=tightened))
        return self.refine(self.evaluate(node.phases, node.directions, node.functional,
                                         node.depth, carrier))

    def _gradient_lp_bounds(self, node: Node, cols: np.ndarray) -> BackwardBounds | None:
        """The node's backward bounds with ``g[cols]`` bounded by the node's LP
        (``None`` if that LP is infeasible: the node is empty)."""
        t0 = time.perf_counter()
        parts = node.parts
        bw = parts.backward
        data = self._lp_data((node.lower, node.upper), node.forward, parts.dlo, parts.dhi,
                             bw, node.functional)
        ext = self.lp.extremes(data, self.lp.layout.col_g[cols], self.end())
        self.count.lps += ext.solved
        self.count.time_lp_s += time.perf_counter() - t0
        if ext.infeasible:
            return None
        glo, ghi = self._widened(bw.lower[0], bw.upper[0], cols, ext)
        return BackwardBounds((glo,) + bw.lower[1:], (ghi,) + bw.upper[1:])

    def maybe_tighten_backward(self) -> None:
        """Run a deferred backward tightening once the search has taken as long as its
        estimated time (its LP count times a measured LP; the probe that measures it
        waits until the search has taken that count of node LPs' time); it stops
        after :data:`TIGHTEN_TIME_SHARE` of the remaining time limit."""
        plan = self.backward_plan
        if plan is None or self.count.node_lps == 0:  # nothing to time the wait by
            return
        t0 = time.perf_counter()
        spent = t0 - self.search_start
        if spent < plan.lps * self._lp_seconds():
            return
        if plan.per_lp_s is None:
            plan = replace(plan, per_lp_s=self._backward_lp_time(plan.forward, plan.dlo,
                                                                 plan.dhi))
            self.backward_plan = plan
            self.count.time_presolve_s += time.perf_counter() - t0
        if spent < plan.lps * plan.per_lp_s:
            return
        self.backward_plan = None
        t0 = time.perf_counter()
        self._start_tightening(t0)
        logger.debug("deferred backward tightening (estimated %.3f s)",
                     plan.lps * plan.per_lp_s)
        for f in range(self._tightened_functionals()):
            self.root_backward[f] = self._tighten_backward(plan.forward, plan.dlo, plan.dhi, f,
                                                           hidden=False)
        self.count.time_presolve_s += time.perf_counter() - t0

    def _backward_bounds(self, functional: int, dlo, dhi) -> BackwardBounds:
        """Symbolic backward bounds (met with the interval ones) of ``functional``."""
        c = self.problem.functionals[functional]
        return backward_symbolic(self.network, c, dlo, dhi,
                                 backward_interval(self.network, c, dlo, dhi, self.tol),
                                 self.tol)

    def _tighten_backward(self, fb: ForwardBounds, dlo, dhi, functional: int,
                          hidden: bool = True):
        """LP bounds of the backward quantities ``y_k`` (top down; unless ``hidden``
        is false) and of the input gradient ``g``."""
        net, box, layout = self.network, self.problem.box, self.lp.layout
        bw = self._backward_bounds(functional, dlo, dhi)
        ylo, yhi = list(bw.lower), list(bw.upper)
        targets = [(k + 1, layout.col_y[k], layout.live[k])
                   for k in range(net.num_hidden_layers - 2, -1, -1)] if hidden else []
        targets.append((0, layout.col_g, np.arange(net.input_dim)))
        for index, cols, which in targets:
            if self._tighten_over():
                break
            data = self._lp_data((box.lower, box.upper), fb, dlo, dhi,
                                 BackwardBounds(tuple(ylo), tuple(yhi)), functional)
            ext = self.lp.extremes(data, cols, self.tighten_deadline)
            self.count.lps += ext.solved
            if ext.infeasible:
                break
            ylo[index], yhi[index] = self._widened(ylo[index], yhi[index], which, ext)
        return BackwardBounds(tuple(ylo), tuple(yhi))

    def end(self) -> float | None:
        """``perf_counter`` time at which the time limit is reached (``None``: no limit)."""
        return None if self.time_limit is None else self.start + self.time_limit

    def deadline(self) -> float | None:
        """``perf_counter`` time at which presolve work (tightening, start
        incumbents) stops: :data:`TIGHTEN_TIME_SHARE` of the time limit."""
        if self.time_limit is None:
            return None
        return self.start + TIGHTEN_TIME_SHARE * self.time_limit

    def coarse_bound(self, pseudo: Node | None) -> float:
        """A bound over every functional before the roots exist (``||g||_1`` bounds
        ``||g||_inf``), so that a limit hit while creating roots stays sound."""
        return max((node.bound for node in self.coarse_nodes(pseudo)
                    if node.state in (NodeState.OPEN, NodeState.LEAF)), default=-math.inf)

    def coarse_nodes(self, pseudo: Node | None) -> list[Node]:
        """One root per functional with every direction allowed."""
        net = self.network
        n = net.input_dim
        full = (DirectionSet(None, None) if self.problem.norm.dual is Norm.L2
                else DirectionSet(-np.ones(n), np.ones(n)))
        phases = tuple(np.zeros(h, dtype=np.int8) for h in net.hidden_widths)
        return [self.evaluate(phases, full, f, 0, pseudo)
                for f in range(len(self.problem.functionals))]

    def _root_prefilter(self, coarse: Node, directions: DirectionSet) -> float:
        """An upper bound of the root with ``directions`` from the all-directions
        root ``coarse`` of the same functional: its bound, or for a single signed
        coordinate ``s e_j`` the bound of ``s g_j`` (``-inf``: the root is empty)."""
        if coarse.state is NodeState.LEAF:
            return coarse.bound
        if coarse.state is not NodeState.OPEN:
            return -math.inf
        if directions.is_ball or np.count_nonzero(directions.upper - directions.lower) or \
                np.count_nonzero(directions.lower) != 1:
            return coarse.bound
        j = int(np.flatnonzero(directions.lower)[0])
        glo, ghi = coarse.info.y_lower[0][j], coarse.info.y_upper[0][j]
        return float(min(ghi if directions.lower[j] > 0 else -glo, coarse.bound))

    def roots(self) -> None:
        net = self.network
        pseudo = None
        if self.opts.tighten == "root":
            self.build_lp()
            pseudo = self.tighten_root()
        if self.tighten_pending:
            self.tighten_plan = self.tighten_lp_count()
            self.tighten_pending = self.tighten_plan > 0
        if self.lp is None:
            self.build_lp()
        self.search_start = time.perf_counter()
        coarse = self.coarse_nodes(pseudo)
        self.unexplored = max((node.bound for node in coarse
                               if node.state in (NodeState.OPEN, NodeState.LEAF)),
                              default=-math.inf)
        for f in range(len(self.problem.functionals)):
            for directions in _root_directions(self.problem.norm, net.input_dim):
                self.check_limits()
                quick = self._root_prefilter(coarse[f], directions)
                if self.closable(quick):
                    self.count.nodes += 1
                    self.prune(replace(coarse[f], bound=quick))
                    continue
                phases = tuple(np.zeros(h, dtype=np.int8) for h in net.hidden_widths)
                node = self.accept(self.evaluate(phases, directions, f, 0, pseudo))
                if node is not None:
                    self.push(node)

    def dive(self, node: Node, diving: bool) -> None:
        """Branch ``node``; while ``diving``, continue with its best open child."""
        while node is not None:
            self.current = node
            self.check_limits()
            if self.closable(node.bound):
                self.prune(node)
                break
            kids = [k for k in (self.accept(ch) for ch in self.branch(node)) if k is not None]
            kids.sort(key=lambda k: -k.bound)
            nxt = kids.pop(0) if (kids and diving) else None
            for kid in kids:
                self.push(kid)
            self.current = nxt
            node = nxt
            self.maybe_restart()
        self.current = None

    def run(self) -> Status:
        self.initial_incumbent()
        self.roots()
        self.unexplored = -math.inf
        while self.heap:
            if self.gap_closed():
                break
            self.check_limits()
            self.maybe_tighten()
            self.maybe_tighten_backward()
            self.maybe_restart()
            _, _, node = heapq.heappop(self.heap)
            self.current = node  # counted in the upper bound until settled
            if self.closable(node.bound):
                self.prune(node)
                self.current = None
                continue
            if not node.lp_done:
                node = self.refine(node)
                self.current = node
                if self.settle(node):
                    self.current = None
                    continue
                if self.heap and node.bound < -self.heap[0][0]:
                    self.push(node)
                    self.current = None
                    continue
            node = self.maybe_tighten_gradient(node)
            self.current = node
            if self.settle(node):
                self.current = None
                continue
            self.dive(node, self.opts.dive and next(self.branched) % DIVE_EVERY == 0)
        return Status.OPTIMAL

    # ------------------------------------------------------------ result
    def result(self, status: Status, options: dict) -> LipschitzResult:
        wit = self.incumbent
        lower = wit.value if wit is not None else 0.0
        upper = max(self.upper(), lower)
        if status is Status.OPTIMAL and not self.tol.gap_closed(lower, upper):
            logger.warning("search finished with an unwitnessed full-dimensional region: "
                           "lower %.10g, upper %.10g", lower, upper)
            status = Status.INCOMPLETE
        value = lower if self.tol.gap_closed(lower, upper) else upper
        stats = Stats(**{f.name: getattr(self.count, f.name) for f in fields(Stats)})
        return LipschitzResult(
            value=float(value), lower_bound=float(lower), upper_bound=float(upper),
            status=status, witness=None if wit is None else wit.point,
            pattern=None if wit is None else wit.pattern,
            functional=None if wit is None else wit.functional, stats=stats,
            method=Method.BNB, norm=self.problem.norm,
            time_s=time.perf_counter() - self.start, options=options)


def solve_bnb(problem: Problem, time_limit: float | None = None,
              node_limit: int | None = None, tol: Tolerances = DEFAULT_TOLERANCES,
              **opts) -> LipschitzResult:
    """Exact local Lipschitz constant by branch and bound.

    Parameters
    ----------
    problem : Problem
        Network, box, input norm and output functional(s); several functionals
        share one search tree and incumbent.
    time_limit : float, optional
        Seconds; on expiry the proven bounds so far are returned.
    node_limit : int, optional
        Maximal number of branch-and-bound nodes.
    tol : Tolerances
        ``rel_gap`` / ``abs_gap`` decide optimality.
    **opts
        See :class:`BnbOptions`.

    Returns
    -------
    LipschitzResult
        ``status`` is optimal when the gap closed, otherwise the limit that stopped
        the search (``interrupted`` on KeyboardInterrupt).
    """
    options = BnbOptions.from_kwargs(opts)
    search = _Search(problem, tol, options, time_limit, node_limit)
    try:
        status = search.run()
    except _LimitReached as stop:
        status = stop.status
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
    if options.progress is not None:
        search.report_progress(time.perf_counter())
    record = {f.name: getattr(options, f.name) for f in fields(options) if f.name != "progress"}
    record.update(time_limit=time_limit, node_limit=node_limit, rel_gap=tol.rel_gap,
                  abs_gap=tol.abs_gap)
    result = search.result(status, record)
    logger.info("bnb %s: [%.10g, %.10g], %d nodes, %d bound evaluations, %d LPs, %.3f s",
                result.status.value, result.lower_bound, result.upper_bound,
                result.stats.nodes, search.count.evaluations, result.stats.lps, result.time_s)
    return result


__all__ = ["solve_bnb", "BnbOptions", "Progress", "Node", "NodeState", "check_monotone"]
