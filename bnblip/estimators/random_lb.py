"""RandomLB: the largest gradient norm realised at random points of the box.

Points are drawn uniformly (seeded) together with the box centre.  A point counts
only when :func:`bnblip.incumbent.check_witness` confirms it lies in the interior of
its activation region, so every counted gradient is attained and the maximum is a
lower bound of the exact constant.
"""

from __future__ import annotations

import numpy as np

from bnblip.estimators.base import (
    Estimate,
    EstimatorSpec,
    Kind,
    check_positive_int,
    max_over_functionals,
)
from bnblip.incumbent import check_witness
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Norm, Problem


def sample_points(problem: Problem, n_samples: int, seed: int) -> np.ndarray:
    """The box centre followed by ``n_samples - 1`` uniform points."""
    rng = np.random.default_rng(seed)
    box = problem.box
    return np.vstack([box.center[None, :], box.sample(n_samples - 1, rng)])


def best_witness_value(problem: Problem, c: np.ndarray, points: np.ndarray,
                       tol: Tolerances) -> float:
    """Largest re-checked gradient norm among ``points`` (``0.0`` if none passes).

    Candidates are tried in decreasing order of their batched gradient norm, so the
    first one that passes the witness check is the maximum.
    """
    net = problem.network
    grads = net.gradient(points, c)
    norms = problem.norm.dual_value(grads)
    for idx in np.argsort(-norms, kind="stable"):
        wit = check_witness(net, problem.box, problem.norm, c, points[idx], tol)
        if wit is not None:
            return wit.value
    return 0.0


def _compute(problem: Problem, *, n_samples: int = 2000, seed: int = 0,
             tol: Tolerances = DEFAULT_TOLERANCES) -> float:
    n_samples = check_positive_int(n_samples, "n_samples", SPEC.name)
    points = sample_points(problem, n_samples, seed)
    return max_over_functionals(problem, lambda c: best_witness_value(problem, c, points, tol))


SPEC = EstimatorSpec(
    name="RandomLB", kind=Kind.LOWER, norms=frozenset(Norm), compute=_compute,
    summary="max gradient norm at random interior points")


def random_lb(problem: Problem, **options) -> Estimate:
    """RandomLB of ``problem``; options ``n_samples`` (2000), ``seed`` (0), ``tol``."""
    return SPEC.run(problem, **options)
