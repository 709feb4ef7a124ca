"""SeqLip (Virmaux & Scaman 2018), l2 only: a greedy per-layer spectral estimate.

Write ``c^T f`` with layers ``W_1, ..., W_{L-1}`` and the row ``w^T = c^T W_L``, take
SVDs ``W_k = U_k S_k V_k^T`` and set ``S~_k = S_k`` for the first and last layer and
``S~_k = S_k^(1/2)`` otherwise.  The paper bounds the l2 Lipschitz constant by

    prod over hidden layers k of  max over sigma in {0,1}^{h_k} of
        || S~_{k+1} V_{k+1}^T diag(sigma) U_k S~_k ||_2 .

With exact inner maximisations this is a global upper bound; the paper's Greedy
SeqLip replaces them by a local search, implemented here as the paper describes it:
start from ``sigma = 1`` and repeatedly apply the single coordinate flip of ``sigma``
that increases the spectral norm most, until no flip helps (``n_restarts - 1``
additional seeded random starts are optional).  The greedy maximum may fall short of
the true one, so the result is an estimate without guarantee.  It ignores the box (a
global quantity).
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
from bnblip.problem import Norm, Problem


def _factors(weights: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(U_k, S~_k, V_k)`` per layer with the square-root rule for inner layers."""
    out = []
    last = len(weights) - 1
    for k, w in enumerate(weights):
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        s_tilde = s if k in (0, last) else np.sqrt(s)
        out.append((u, s_tilde, vt.T))
    return out


def greedy_max_spectral(a: np.ndarray, b: np.ndarray, sigma0: np.ndarray,
                        max_iter: int) -> float:
    """Greedy ``max_sigma ||a diag(sigma) b||_2`` over ``sigma in {0,1}^h`` from ``sigma0``.

    Each round tries every single flip of ``sigma`` (a rank-one update of the product)
    and applies the one that increases the spectral norm most; it stops when no flip
    helps or after ``max_iter`` rounds.
    """
    sigma = sigma0.astype(np.float64).copy()
    mat = (a * sigma) @ b
    best = float(np.linalg.norm(mat, ord=2))
    for _ in range(max_iter):
        gain_idx, gain_val = -1, best
        for j in range(sigma.size):
            sign = 1.0 - 2.0 * sigma[j]               # +1 switches on, -1 switches off
            value = float(np.linalg.norm(mat + sign * np.outer(a[:, j], b[j]), ord=2))
            if value > gain_val:
                gain_idx, gain_val = j, value
        if gain_idx < 0:
            break
        mat = mat + (1.0 - 2.0 * sigma[gain_idx]) * np.outer(a[:, gain_idx], b[gain_idx])
        sigma[gain_idx] = 1.0 - sigma[gain_idx]
        best = gain_val
    return best


def seqlip_value(weights: list[np.ndarray], n_restarts: int, max_iter: int,
                 rng: np.random.Generator) -> float:
    """Greedy SeqLip product for the layers ``weights`` (last one a single row)."""
    if len(weights) == 1:
        return float(np.linalg.norm(weights[0], ord=2))
    factors = _factors(weights)
    product = 1.0
    for k in range(len(weights) - 1):
        u_k, s_k, _ = factors[k]
        _, s_next, v_next = factors[k + 1]
        a = s_next[:, None] * v_next.T           # S~_{k+1} V_{k+1}^T   (r_{k+1}, h_k)
        b = u_k * s_k[None, :]                   # U_k S~_k             (h_k, r_k)
        width = a.shape[1]
        starts = [np.ones(width)] + [rng.integers(0, 2, width) for _ in range(n_restarts - 1)]
        product *= max(greedy_max_spectral(a, b, s0, max_iter) for s0 in starts)
    return product


def _compute(problem: Problem, *, n_restarts: int = 1, max_iter: int = 1000,
             seed: int = 0) -> float:
    n_restarts = check_positive_int(n_restarts, "n_restarts", SPEC.name)
    max_iter = check_positive_int(max_iter, "max_iter", SPEC.name)
    net = problem.network

    def one(c: np.ndarray) -> float:
        rows = list(net.weights[:-1]) + [(net.weights[-1].T @ c)[None, :]]
        return seqlip_value(rows, n_restarts, max_iter, np.random.default_rng(seed))

    return max_over_functionals(problem, one)


SPEC = EstimatorSpec(
    name="SeqLip", kind=Kind.ESTIMATE, norms=frozenset({Norm.L2}), compute=_compute,
    summary="greedy SeqLip product of per-layer spectral terms (global)")


def seqlip(problem: Problem, **options) -> Estimate:
    """Greedy SeqLip (input norm l2); options ``n_restarts`` (1: only ``sigma = 1``),
    ``max_iter`` (1000 flip rounds per layer), ``seed`` (0)."""
    return SPEC.run(problem, **options)
