"""Branching scores and the one shared selection routine.

A branch-and-bound node can split on an ambiguous ReLU (phase active / inactive), for
the l1 dual norm on the sign of an input-gradient coordinate, or on an input
coordinate (bisecting the node's input box; :func:`input_candidates`).  A *score rule*
maps a node's bound information to a score per candidate (higher = split first);
:func:`select` ranks the candidates of any rule.  Strong branching (evaluating both
children) is scored with :func:`product_score` on the children's bounds.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Kind(enum.Enum):
    """What a branching candidate splits."""

    NEURON = "neuron"
    SIGN = "sign"
    INPUT = "input"


@dataclass(frozen=True)
class Candidate:
    """A split: neuron ``index`` of hidden ``layer``, input-gradient sign ``index``
    or input coordinate ``index``.

    ``layer`` is ``-1`` for sign and input splits.
    """

    kind: Kind
    layer: int
    index: int
    score: float


@dataclass(frozen=True, eq=False)
class BranchInfo:
    """What a score rule may look at.

    Attributes
    ----------
    z_lower, z_upper : tuple of ndarray
        Pre-activation bounds per hidden layer.
    ambiguous : tuple of ndarray of bool
        Neurons that can be split (free phase, bounds straddle 0).
    t_lower, t_upper : tuple of ndarray
        Bounds of the direction factor ``t_k`` at each hidden layer.
    y_lower, y_upper : tuple of ndarray
        Backward bounds; entry 0 is the input gradient, entry ``k+1`` the gradient
        with respect to hidden layer ``k``'s output.
    sign_free : ndarray of bool
        Input-gradient coordinates whose sign may be split.
    """

    z_lower: tuple[np.ndarray, ...]
    z_upper: tuple[np.ndarray, ...]
    ambiguous: tuple[np.ndarray, ...]
    t_lower: tuple[np.ndarray, ...]
    t_upper: tuple[np.ndarray, ...]
    y_lower: tuple[np.ndarray, ...]
    y_upper: tuple[np.ndarray, ...]
    sign_free: np.ndarray


class ScoreRule(Protocol):
    """A branching score: one array per hidden layer and one for the signs."""

    def __call__(self, info: BranchInfo) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        ...


def _magnitude(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(lo), np.abs(hi))


SIGN_WEIGHT = 3.0
"""Weight of sign splits against neuron splits in :func:`gradient_score`; measured in
``bench/bench_branching.py`` (1 under-splits signs on 8-input nets, 30 over-splits
them on 64-input nets, 3 was best on every public case)."""


def _gradient_parts(info: BranchInfo) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    neuron = []
    for k, amb in enumerate(info.ambiguous):
        ymag = _magnitude(info.y_lower[k + 1], info.y_upper[k + 1])
        tmag = _magnitude(info.t_lower[k], info.t_upper[k])
        zl, zu = info.z_lower[k], info.z_upper[k]
        width = np.where(amb, zu - zl, 1.0)
        area = np.where(amb, -zl * zu / width, 0.0)
        neuron.append(np.where(amb, tmag * ymag + area * ymag, -np.inf))
    lo, hi = info.y_lower[0], info.y_upper[0]
    sign = np.where(info.sign_free & (lo < 0) & (hi > 0), np.minimum(-lo, hi), -np.inf)
    return tuple(neuron), sign


def gradient_score(info: BranchInfo) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Estimated drop of the objective bound from a split.

    For a neuron: the backward uncertainty it carries (``|t| |y|``: its derivative
    in ``[0, 1]`` scales that much of the objective) plus its forward relaxation
    area ``-l u / (u - l)`` weighted by the gradient magnitude through it.  For a
    sign: :data:`SIGN_WEIGHT` times the smaller of the two one-sided gradient
    magnitudes (a fixed sign also turns the relaxed ``|g_j|`` into a linear term).
    """
    neuron, sign = _gradient_parts(info)
    return neuron, np.where(np.isfinite(sign), SIGN_WEIGHT * sign, sign)


def gradient_unweighted_score(info: BranchInfo) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """:func:`gradient_score` with sign weight 1."""
    return _gradient_parts(info)


def relaxation_score(info: BranchInfo) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Forward-only score (BaBSR-like): relaxation area ``-l u / (u - l)``; signs
    are ranked after every neuron by their one-sided magnitude."""
    neuron = []
    for k, amb in enumerate(info.ambiguous):
        zl, zu = info.z_lower[k], info.z_upper[k]
        width = np.where(amb, zu - zl, 1.0)
        neuron.append(np.where(amb, -zl * zu / width, -np.inf))
    lo, hi = info.y_lower[0], info.y_upper[0]
    sign = np.where(info.sign_free & (lo < 0) & (hi > 0), np.minimum(-lo, hi), -np.inf)
    return tuple(neuron), sign


def signs_first_score(info: BranchInfo) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The gradient score with every splittable sign ranked before every neuron."""
    neuron, sign = _gradient_parts(info)
    finite = np.isfinite(sign)
    top = max((float(np.max(s[np.isfinite(s)])) for s in neuron if np.isfinite(s).any()),
              default=0.0)
    sign = np.where(finite, sign + abs(top) + 1.0, sign)
    return neuron, sign


SCORE_RULES: dict[str, ScoreRule] = {
    "gradient": gradient_score,
    "gradient_unweighted": gradient_unweighted_score,
    "relaxation": relaxation_score,
    "signs_first": signs_first_score,
}
"""Named score rules (for options and benchmarks)."""


def select(info: BranchInfo, rule: ScoreRule, count: int) -> list[Candidate]:
    """The ``count`` best candidates under ``rule``, best first.

    Candidates with score ``-inf`` (not splittable) are never returned.
    """
    neuron_scores, sign_scores = rule(info)
    found: list[Candidate] = []
    for layer, scores in enumerate(neuron_scores):
        for idx in np.flatnonzero(np.isfinite(scores)):
            found.append(Candidate(Kind.NEURON, layer, int(idx), float(scores[idx])))
    for idx in np.flatnonzero(np.isfinite(sign_scores)):
        found.append(Candidate(Kind.SIGN, -1, int(idx), float(sign_scores[idx])))
    found.sort(key=lambda cand: -cand.score)
    return found[:count]


def input_candidates(lower: np.ndarray, upper: np.ndarray, first_weights: np.ndarray,
                     count: int) -> list[Candidate]:
    """The ``count`` best input coordinates to bisect, best first.

    The score of coordinate ``j`` is how far the first layer's pre-activations can
    move along it: ``(upper_j - lower_j) * sum_i |W_1[i, j]|``.  Coordinates of zero
    width are never returned.

    Parameters
    ----------
    lower, upper : ndarray
        The node's input box.
    first_weights : ndarray
        First layer's weight matrix ``W_1`` (hidden x input).
    count : int
    """
    width = upper - lower
    scores = width * np.abs(first_weights).sum(axis=0)
    order = [int(j) for j in np.argsort(-scores, kind="stable") if width[j] > 0]
    return [Candidate(Kind.INPUT, -1, j, float(scores[j])) for j in order[:count]]


def product_score(parent: float, left: float, right: float, floor: float) -> float:
    """Strong-branching score of a split from its children's bounds.

    The product of the two bound decreases, each floored at ``floor`` so that a
    split improving one side only still ranks by that side.
    """
    return max(parent - left, floor) * max(parent - right, floor)


HISTORY_PRIOR = 1.0
"""Weight (in observations) of the mean over all candidates in
:class:`ScoreHistory`'s per-candidate factor."""


class ScoreHistory:
    """How far past splits lowered the bound, against what their score predicted.

    After a split on a neuron or sign, :meth:`record` takes the observed drop (the
    geometric mean of the two children's bound decreases, :func:`observed_drop`)
    over the candidate's score.  :meth:`rule` multiplies a score rule's scores by
    each candidate's mean ratio (geometric, shrunk towards the mean over all
    candidates by :data:`HISTORY_PRIOR` observations), so candidates whose splits
    paid more than predicted rank higher; candidates never split keep their order
    among themselves (pseudocost branching with the score rule as the initial
    estimate).

    Parameters
    ----------
    widths : sequence of int
        Hidden layer widths.
    input_dim : int
        Number of sign candidates.

    Attributes
    ----------
    log_sum, count : list of ndarray
        Per slot (one per hidden layer, then the signs) and candidate, the sum of
        the recorded log ratios and their number.
    total_log, total : float, int
        The same over all candidates.
    """

    def __init__(self, widths: Sequence[int], input_dim: int):
        self.log_sum = [np.zeros(w) for w in widths] + [np.zeros(input_dim)]
        self.count = [np.zeros(w) for w in widths] + [np.zeros(input_dim)]
        self.total_log = 0.0
        self.total = 0

    @staticmethod
    def _slot(cand: Candidate) -> int:
        return -1 if cand.kind is Kind.SIGN else cand.layer

    def _shrunk(self, log_sum, count):
        mean = self.total_log / self.total if self.total else 0.0
        return np.exp((log_sum + HISTORY_PRIOR * mean) / (count + HISTORY_PRIOR))

    def record(self, cand: Candidate, score: float, observed: float) -> None:
        """Note that splitting ``cand``, scored ``score`` by the base rule, dropped
        the bound by ``observed``; ignored for input splits and unless both are
        finite and positive (no incumbent yet: a closed child's drop is infinite)."""
        if cand.kind is Kind.INPUT or not (0 < score < np.inf and 0 < observed < np.inf):
            return
        ratio = float(np.log(observed / score))
        slot = self._slot(cand)
        self.log_sum[slot][cand.index] += ratio
        self.count[slot][cand.index] += 1
        self.total_log += ratio
        self.total += 1

    def factor(self, cand: Candidate) -> float:
        """The factor :meth:`rule` applies to ``cand`` now (1 for input splits)."""
        if cand.kind is Kind.INPUT or not self.total:
            return 1.0
        slot = self._slot(cand)
        return float(self._shrunk(self.log_sum[slot][cand.index], self.count[slot][cand.index]))

    def factors(self) -> list[np.ndarray]:
        """Per slot (hidden layers, then signs), each candidate's score factor."""
        return [self._shrunk(s, n) for s, n in zip(self.log_sum, self.count)]

    def rule(self, base: ScoreRule) -> ScoreRule:
        """``base`` with every finite score multiplied by its candidate's factor
        (``base`` itself while nothing is recorded)."""
        if not self.total:
            return base

        def scaled(info: BranchInfo) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
            neuron, sign = base(info)
            f = self.factors()
            return tuple(s * fk for s, fk in zip(neuron, f[:-1])), sign * f[-1]

        return scaled


def score_floor(reference: float) -> float:
    """Smallest bound decrease a split is credited with on either side (relative
    1e-9 of ``reference``, at least 1e-12), in :func:`product_score`."""
    return max(1e-9 * abs(reference), 1e-12)


def observed_drop(parent: float, left: float, right: float, floor: float) -> float:
    """Geometric mean of the two children's bound decreases (each at least ``floor``),
    in the units of a score: the square root of :func:`product_score`."""
    return float(np.sqrt(product_score(parent, left, right, floor)))
