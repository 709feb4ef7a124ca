"""CLEVER (Weng et al. 2018): extreme-value estimate of the largest gradient norm.

``n_batches`` batches of ``batch_size`` uniform points of the box are drawn (seeded);
each batch contributes its largest gradient dual norm.  The batch maxima are fitted
with a reverse Weibull distribution (:data:`scipy.stats.weibull_max`, maximum
likelihood); its location parameter, the right end of its support, is the estimate.
When the maxima are (numerically) all equal -- e.g. a box inside one linear region --
the fit is degenerate and their common value is returned.  No guarantee either way.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy import stats

from bnblip.estimators.base import (
    Estimate,
    EstimatorSpec,
    Kind,
    check_positive_int,
    max_over_functionals,
)
from bnblip.problem import Norm, Problem

logger = logging.getLogger("bnblip.estimators")

#: Relative spread of the batch maxima below which the Weibull fit is skipped.
_DEGENERATE_SPREAD = 1e-9
#: Initial shape parameters of the maximum-likelihood fits (as in the CLEVER code).
_INITIAL_SHAPES = (0.1, 1.0, 5.0)


def batch_maxima(problem: Problem, c: np.ndarray, n_batches: int, batch_size: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Largest sampled gradient dual norm of each batch."""
    net = problem.network
    maxima = np.empty(n_batches)
    for k in range(n_batches):
        points = problem.box.sample(batch_size, rng)
        maxima[k] = problem.norm.dual_value(net.gradient(points, c)).max()
    return maxima


def reverse_weibull_location(maxima: np.ndarray) -> float:
    """Location of a reverse Weibull fitted to ``maxima`` (their max if degenerate).

    Maximum likelihood is started from the shapes in :data:`_INITIAL_SHAPES`.  Batch
    maxima of a ReLU network take few distinct values, and the likelihood then often
    runs off towards a huge shape and location; fits whose location exceeds the
    sample maximum by more than the sample spread are discarded as implausible.  Of
    the remaining fits the most likely wins; with none left the sample maximum is
    returned (and a warning logged).
    """
    top = float(maxima.max())
    spread = float(np.ptp(maxima))
    if spread <= _DEGENERATE_SPREAD * max(abs(top), 1.0):
        return top
    best_loc, best_nll = top, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for shape in _INITIAL_SHAPES:
            try:
                params = stats.weibull_max.fit(maxima, shape, loc=top + 0.1 * spread,
                                               scale=spread)
            except (ValueError, RuntimeError, FloatingPointError):
                continue
            loc = float(params[1])
            nll = float(stats.weibull_max.nnlf(params, maxima))
            if np.isfinite(loc) and np.isfinite(nll) and loc <= top + spread and nll < best_nll:
                best_loc, best_nll = max(loc, top), nll
    if not np.isfinite(best_nll):
        logger.warning("CLEVER: no plausible reverse Weibull fit; using the sample maximum")
    return best_loc


def _compute(problem: Problem, *, n_batches: int = 50, batch_size: int = 100,
             seed: int = 0) -> float:
    n_batches = check_positive_int(n_batches, "n_batches", SPEC.name)
    batch_size = check_positive_int(batch_size, "batch_size", SPEC.name)

    def one(c: np.ndarray) -> float:
        rng = np.random.default_rng(seed)
        return reverse_weibull_location(batch_maxima(problem, c, n_batches, batch_size, rng))

    return max_over_functionals(problem, one)


SPEC = EstimatorSpec(
    name="CLEVER", kind=Kind.ESTIMATE, norms=frozenset(Norm), compute=_compute,
    summary="reverse-Weibull fit of sampled batch maxima")


def clever(problem: Problem, **options) -> Estimate:
    """CLEVER estimate; options ``n_batches`` (50), ``batch_size`` (100), ``seed`` (0)."""
    return SPEC.run(problem, **options)
