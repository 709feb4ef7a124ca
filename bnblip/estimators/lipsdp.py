"""LipSDP-Neuron (Fazlyab et al. 2019), l2 only: a global upper bound by an SDP.

Stack ``v = (x, a_1, ..., a_K)`` (input and hidden post-activations, ``N`` hidden
neurons).  ``A`` maps ``v`` to the pre-activations ``(z_1, ..., z_K)`` without biases
and ``B`` selects ``(a_1, ..., a_K)``.  ReLU is slope-restricted in ``[0, 1]``, so for
any diagonal ``T >= 0`` the increments satisfy
``2 dz^T T da - 2 da^T T da >= 0``.  With ``w = W_L^T c`` and ``E`` selecting ``a_K``,
if

    M(rho, T) = A^T T B + B^T T A - 2 B^T T B - rho E_x^T E_x + E^T w w^T E  <<  0

then ``|c^T f(x) - c^T f(x')| <= sqrt(rho) ||x - x'||_2`` everywhere, so ``sqrt(rho)``
bounds the l2 Lipschitz constant of ``c^T f`` globally (hence over any box).  One
hidden layer is the case ``K = 1`` of the same matrix.

The SDP ``min rho s.t. M << 0, T >= 0`` is solved with cvxpy: Clarabel (interior
point) for matrices up to :data:`CLARABEL_MAX_DIM` rows, SCS (first order, much
faster on large cones) above, each falling back to the other.
Solver output is not trusted: the returned ``T`` (clipped at 0) is re-certified in
float64.  ``x`` enters ``M`` only through the block ``-rho I`` and the coupling
``C = (M)_{hidden, x}``, so with the hidden block ``H`` (independent of ``rho``) the
Schur complement gives ``M << 0`` if ``H < 0`` and ``rho >= lambda_max(C^T (-H)^{-1} C)``.
Before solving, an input layer wider than the first hidden layer is replaced by an
``h_1 x h_1`` factor with the same ``W_1 W_1^T`` (:func:`reduced_input_layer`), which
leaves the SDP unchanged and shrinks the matrix.  The smallest certified ``rho`` is
computed with a Cholesky factor of ``-H`` (``T`` is scaled up a little when ``-H`` is
not numerically positive definite), inflated by
``tol.relaxation_safety`` and checked once more with ``numpy.linalg.eigvalsh``.  If
no certificate is found the bound is reported as ``inf``.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg

from bnblip.estimators.base import Estimate, EstimatorSpec, Kind, max_over_functionals
from bnblip.options import DEFAULT_TOLERANCES, Tolerances
from bnblip.problem import Norm, Problem

logger = logging.getLogger("bnblip.estimators")

#: Largest LMI dimension solved with Clarabel by default (its cost grows steeply).
CLARABEL_MAX_DIM = 80
#: Scalings of ``T`` tried when the solver's ``T`` does not certify ``H < 0``.
_T_SCALES = (1.0, 1.0 + 1e-6, 1.0 + 1e-4, 1.01, 1.1)


def lmi_blocks(weights, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A, B, L)`` with ``L = E^T w w^T E``; ``weights`` are the hidden layers' ``W``."""
    n = weights[0].shape[1]
    widths = [wk.shape[0] for wk in weights]
    total = n + sum(widths)
    a_mat = np.zeros((sum(widths), total))
    row, col = 0, 0
    for wk in weights:
        h, fan_in = wk.shape
        a_mat[row:row + h, col:col + fan_in] = wk
        row += h
        col += fan_in
    b_mat = np.hstack([np.zeros((sum(widths), n)), np.eye(sum(widths))])
    last = np.zeros((total, total))
    last[total - widths[-1]:, total - widths[-1]:] = np.outer(w, w)
    return a_mat, b_mat, last


def lmi_matrix(a_mat, b_mat, last, t: np.ndarray, rho: float, n: int) -> np.ndarray:
    """``M(rho, T)`` in float64."""
    tb = t[:, None] * b_mat
    mat = a_mat.T @ tb + tb.T @ a_mat - 2.0 * b_mat.T @ tb + last
    mat[np.arange(n), np.arange(n)] -= rho
    return 0.5 * (mat + mat.T)


def certified_rho(a_mat, b_mat, last, t: np.ndarray, n: int, tol: Tolerances) -> float:
    """Smallest ``rho`` (inflated) with ``M(rho, t) << 0`` certified, or ``inf``."""
    t = np.maximum(t, 0.0)
    for scale in _T_SCALES:
        base = lmi_matrix(a_mat, b_mat, last, scale * t, 0.0, n)
        hidden, coupling = base[n:, n:], base[n:, :n]
        try:
            factor = linalg.cholesky(-hidden, lower=True)
        except linalg.LinAlgError:
            continue
        solved = linalg.solve_triangular(factor, coupling, lower=True)
        rho = float(np.linalg.norm(solved, ord=2) ** 2)
        rho = rho * (1.0 + tol.relaxation_safety) + tol.relaxation_safety * np.abs(base).max()
        if np.linalg.eigvalsh(lmi_matrix(a_mat, b_mat, last, scale * t, rho, n)).max() <= 0:
            return rho
    return float("inf")


def multiplier_stack(a_mat: np.ndarray, b_mat: np.ndarray):
    """Sparse ``(d*d, N)`` matrix whose column ``j`` is ``vec(d M / d t_j)``.

    ``d M / d t_j = A_j^T B_j + B_j^T A_j - 2 B_j^T B_j`` for rows ``A_j``, ``B_j``;
    each is a sum of sparse outer products, so the stack stays sparse and the cvxpy
    model is built in time linear in its size.
    """
    from scipy import sparse

    dim = a_mat.shape[1]
    rows, cols, vals = [], [], []
    for j in range(a_mat.shape[0]):
        a_nz = np.flatnonzero(a_mat[j])
        b_nz = np.flatnonzero(b_mat[j])
        for p_idx, q_idx, coef in ((a_nz, b_nz, 1.0), (b_nz, a_nz, 1.0), (b_nz, b_nz, -2.0)):
            left = a_mat[j] if p_idx is a_nz else b_mat[j]
            right = a_mat[j] if q_idx is a_nz else b_mat[j]
            pp, qq = np.meshgrid(p_idx, q_idx, indexing="ij")
            rows.append((pp + dim * qq).ravel())            # column-major vec index
            vals.append((coef * np.outer(left[p_idx], right[q_idx])).ravel())
            cols.append(np.full(pp.size, j))
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                     np.concatenate(cols))),
                             shape=(dim * dim, a_mat.shape[0]))


def _solve_sdp(a_mat, b_mat, last, n: int, solver: str | None):
    import cvxpy as cp

    dim = a_mat.shape[1]
    rho = cp.Variable()
    t = cp.Variable(a_mat.shape[0], nonneg=True)
    select = np.zeros((dim, dim))
    select[np.arange(n), np.arange(n)] = 1.0
    lmi = cp.reshape(multiplier_stack(a_mat, b_mat) @ t, (dim, dim), order="F") + last \
        - rho * select
    prob = cp.Problem(cp.Minimize(rho), [0.5 * (lmi + lmi.T) << 0])
    order = ("CLARABEL", "SCS") if dim <= CLARABEL_MAX_DIM else ("SCS", "CLARABEL")
    names = [solver] if solver else [s for s in order if s in cp.installed_solvers()]
    for name in names:
        try:
            prob.solve(solver=name)
        except cp.error.SolverError as exc:
            logger.warning("LipSDP: solver %s failed: %s", name, exc)
            continue
        if t.value is not None:
            return np.asarray(t.value, dtype=np.float64)
    return None


def reduced_input_layer(weights: list[np.ndarray]) -> list[np.ndarray]:
    """Replace ``W_1`` (``h_1 x n``, ``n > h_1``) by ``R = U S`` (``h_1 x h_1``) from its
    thin SVD, so that ``R R^T = W_1 W_1^T``.

    ``x`` enters the LMI only through ``C C^T = E T_1 W_1 W_1^T T_1 E^T`` (Schur
    complement of the ``-rho I`` block), so the SDP and its certificate are unchanged
    while the matrix shrinks from ``n + N`` to ``h_1 + N`` rows.
    """
    first = weights[0]
    if first.shape[1] <= first.shape[0]:
        return weights
    u, s, _ = np.linalg.svd(first, full_matrices=False)
    return [u * s[None, :]] + weights[1:]


def lipsdp_value(problem: Problem, c: np.ndarray, solver: str | None,
                 tol: Tolerances) -> float:
    """Certified LipSDP bound for one functional."""
    net = problem.network
    w = net.weights[-1].T @ c
    if net.num_hidden_layers == 0:
        return float(np.linalg.norm(w))
    weights = reduced_input_layer(list(net.weights[:-1]))
    a_mat, b_mat, last = lmi_blocks(weights, w)
    n = weights[0].shape[1]
    t = _solve_sdp(a_mat, b_mat, last, n, solver)
    if t is None:
        logger.warning("LipSDP: no solver returned a solution; reporting inf")
        return float("inf")
    rho = certified_rho(a_mat, b_mat, last, t, n, tol)
    if not np.isfinite(rho):
        logger.warning("LipSDP: the solver's multipliers could not be certified; reporting inf")
    return float(np.sqrt(rho))


def _compute(problem: Problem, *, solver: str | None = None,
             tol: Tolerances = DEFAULT_TOLERANCES) -> float:
    return max_over_functionals(problem, lambda c: lipsdp_value(problem, c, solver, tol))


SPEC = EstimatorSpec(
    name="LipSDP", kind=Kind.UPPER, norms=frozenset({Norm.L2}), compute=_compute,
    summary="LipSDP-Neuron semidefinite bound (global, certified)", requires=("cvxpy",))


def lipsdp(problem: Problem, **options) -> Estimate:
    """LipSDP-Neuron upper bound (input norm l2); options ``solver`` (cvxpy name), ``tol``."""
    return SPEC.run(problem, **options)
