"""Competing Lipschitz estimators: proven upper bounds, attained lower bounds, estimates.

Every estimator lives in its own module (``naive``, ``random_lb``, ``clever``,
``fastlip``, ``liplp``, ``seqlip``, ``lipsdp``), is described by an
:class:`EstimatorSpec` in :data:`REGISTRY` and returns an :class:`Estimate`::

    from bnblip.estimators import run_estimator
    est = run_estimator("FastLip", problem)
"""

from bnblip.estimators.base import Estimate, EstimatorSpec, Kind
from bnblip.estimators.registry import REGISTRY, applicable, find_estimator, run_estimator

__all__ = ["Estimate", "EstimatorSpec", "Kind", "REGISTRY", "applicable", "find_estimator",
           "run_estimator"]
