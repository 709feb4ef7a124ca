"""The registry of estimators: an immutable tuple of descriptors."""

from __future__ import annotations

from bnblip.errors import InputError
from bnblip.estimators import clever, fastlip, liplp, lipsdp, naive, random_lb, seqlip
from bnblip.estimators.base import Estimate, EstimatorSpec
from bnblip.problem import Norm, Problem

REGISTRY: tuple[EstimatorSpec, ...] = (
    naive.SPEC, fastlip.SPEC, liplp.SPEC, lipsdp.SPEC, seqlip.SPEC, clever.SPEC,
    random_lb.SPEC,
)
"""Every estimator, in the order tables list them."""


def find_estimator(name: str) -> EstimatorSpec:
    """The descriptor called ``name`` (case-insensitive).

    Raises
    ------
    InputError
        If there is no such estimator.
    """
    for spec in REGISTRY:
        if spec.name.lower() == str(name).lower():
            return spec
    names = ", ".join(spec.name for spec in REGISTRY)
    raise InputError(f"unknown estimator {name!r} (known: {names})")


def applicable(norm) -> tuple[EstimatorSpec, ...]:
    """Estimators that support input norm ``norm`` and whose dependencies are installed."""
    norm = Norm.parse(norm)
    return tuple(spec for spec in REGISTRY if norm in spec.norms and spec.available)


def run_estimator(name: str, problem: Problem, **options) -> Estimate:
    """Run the estimator called ``name`` on ``problem`` with ``options``."""
    return find_estimator(name).run(problem, **options)
