"""NaiveUB: product of the layers' induced operator norms (a global upper bound).

Inside any activation region ``grad (c^T f) = W_1^T D_1 W_2^T ... D_{L-1} (W_L^T c)``
with ``D_i`` diagonal 0/1, so ``||D_i||_{q->q} <= 1`` for every ``q`` and

    ||grad||_q <= ||W_1^T||_{q->q} ... ||W_{L-1}^T||_{q->q} * ||W_L^T c||_q .

The induced norms of a transpose, in terms of ``W`` itself:

* ``q = l1`` (input ``linf``): ``||W^T||_{1->1}`` is the largest absolute column sum
  of ``W^T``, i.e. the largest absolute *row* sum of ``W`` (``= ||W||_{inf->inf}``);
* ``q = linf`` (input ``l1``): ``||W^T||_{inf->inf}`` is the largest absolute *column*
  sum of ``W`` (``= ||W||_{1->1}``);
* ``q = l2``: the spectral norm (largest singular value) of ``W``.

So the bound is the usual product of ``||W_i||_{p->p}`` with the last layer replaced
by the exact dual norm of ``W_L^T c``.  It ignores the box, hence holds globally.
"""

from __future__ import annotations

import numpy as np

from bnblip.estimators.base import Estimate, EstimatorSpec, Kind, max_over_functionals
from bnblip.problem import Norm, Problem


def transpose_operator_norm(weight: np.ndarray, dual: Norm) -> float:
    """``||W^T||_{q->q}`` for the dual (gradient) norm ``q``."""
    w = np.abs(np.asarray(weight, dtype=np.float64))
    if dual is Norm.L1:
        return float(w.sum(axis=1).max())
    if dual is Norm.LINF:
        return float(w.sum(axis=0).max())
    return float(np.linalg.norm(np.asarray(weight, dtype=np.float64), ord=2))


def _compute(problem: Problem) -> float:
    net = problem.network
    dual = problem.norm.dual
    factor = 1.0
    for w in net.weights[:-1]:
        factor *= transpose_operator_norm(w, dual)
    last = net.weights[-1]
    return factor * max_over_functionals(problem, lambda c: dual_vector_norm(last.T @ c, dual))


def dual_vector_norm(vector: np.ndarray, dual: Norm) -> float:
    """``||vector||_q``."""
    if dual is Norm.L1:
        return float(np.abs(vector).sum())
    if dual is Norm.LINF:
        return float(np.abs(vector).max())
    return float(np.linalg.norm(vector))


SPEC = EstimatorSpec(
    name="NaiveUB", kind=Kind.UPPER, norms=frozenset(Norm), compute=_compute,
    summary="product of layer operator norms (global)")


def naive_ub(problem: Problem) -> Estimate:
    """NaiveUB of ``problem`` (see the module documentation)."""
    return SPEC.run(problem)
