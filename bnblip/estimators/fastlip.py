"""FastLip (Weng et al. 2018): interval bound on the gradient over the box.

Interval bounds of the pre-activations (:func:`bnblip.bounds.forward_interval`) fix
the derivative of every stable ReLU and leave the others in ``[0, 1]``
(:func:`bnblip.bounds.derivative_bounds`); the backward pass is then bounded by
interval arithmetic (:func:`bnblip.bounds.backward_interval`).  Every gradient in the
box satisfies ``l <= grad <= u`` coordinatewise, so ``|grad_j| <= max(|l_j|, |u_j|)``
and, all three dual norms being monotone in ``|grad|``, the dual norm of that vector
is a proven upper bound.
"""

from __future__ import annotations

import numpy as np

from bnblip.bounds import backward_interval, derivative_bounds, forward_interval
from bnblip.estimators.base import Estimate, EstimatorSpec, Kind, max_over_functionals
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Norm, Problem


def gradient_magnitude_bound(problem: Problem, c: np.ndarray,
                             tol: Tolerances = DEFAULT_TOLERANCES) -> np.ndarray:
    """Coordinatewise bound ``max(|l|, |u|)`` of the input gradient of ``c^T f``."""
    net = problem.network
    fwd = forward_interval(net, problem.box.lower, problem.box.upper, tol=tol)
    dlo, dhi = derivative_bounds(fwd)
    back = backward_interval(net, c, dlo, dhi, tol=tol)
    return np.maximum(np.abs(back.lower[0]), np.abs(back.upper[0]))


def _compute(problem: Problem, *, tol: Tolerances = DEFAULT_TOLERANCES) -> float:
    return max_over_functionals(
        problem, lambda c: float(problem.norm.dual_value(gradient_magnitude_bound(problem, c,
                                                                                   tol))))


SPEC = EstimatorSpec(
    name="FastLip", kind=Kind.UPPER, norms=frozenset(Norm), compute=_compute,
    summary="interval bound of the gradient over the box")


def fastlip(problem: Problem, **options) -> Estimate:
    """FastLip upper bound; option ``tol``."""
    return SPEC.run(problem, **options)
