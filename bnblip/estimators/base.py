"""Records shared by every estimator: the kind of a number, the estimate, the descriptor.

An estimator maps a :class:`~bnblip.problem.Problem` (network, box, input norm,
output functionals) to one number.  Its descriptor says whether that number is a
proven upper bound, an attained lower bound or a heuristic estimate, and which input
norms it supports.  :meth:`EstimatorSpec.run` is the single entry point: it refuses
unsupported norms and unknown options, times the computation and wraps the number
in an :class:`Estimate`.
"""

from __future__ import annotations

import enum
import importlib.util
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bnblip.errors import InputError
from bnblip.problem import Norm, Problem

logger = logging.getLogger("bnblip.estimators")


class Kind(enum.Enum):
    """What an estimator's number promises about the exact constant ``L``."""

    UPPER = "upper"
    """Proven: ``value >= L``."""
    LOWER = "lower"
    """Attained by a point in the box: ``value <= L``."""
    ESTIMATE = "estimate"
    """Heuristic: no guarantee in either direction."""


@dataclass(frozen=True)
class Estimate:
    """One estimator's number for one problem.

    Attributes
    ----------
    name : str
        Estimator name (e.g. ``'FastLip'``).
    kind : Kind
    norm : Norm
        Input norm ``p`` of the problem.
    value : float
        The number; ``inf`` for an upper bound that could not be certified.
    time_s : float
        Wall time of the computation.
    """

    name: str
    kind: Kind
    norm: Norm
    value: float
    time_s: float


@dataclass(frozen=True)
class EstimatorSpec:
    """Descriptor of an estimator.

    Attributes
    ----------
    name : str
    kind : Kind
    norms : frozenset of Norm
        Input norms the estimator supports.
    compute : callable
        ``compute(problem, **options) -> float``; keyword-only options with defaults.
    summary : str
        One line for tables and documentation.
    requires : tuple of str
        Importable modules the estimator needs (optional extras).
    """

    name: str
    kind: Kind
    norms: frozenset
    compute: Callable[..., float]
    summary: str
    requires: tuple[str, ...] = ()

    def supports(self, norm) -> bool:
        """Whether input norm ``norm`` is supported."""
        return Norm.parse(norm) in self.norms

    @property
    def available(self) -> bool:
        """Whether every module in :attr:`requires` can be imported."""
        return all(importlib.util.find_spec(mod) is not None for mod in self.requires)

    @property
    def option_names(self) -> tuple[str, ...]:
        """Names of the options :attr:`compute` accepts."""
        params = inspect.signature(self.compute).parameters.values()
        return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)

    def _check(self, problem: Problem, options: dict) -> None:
        if not isinstance(problem, Problem):
            raise InputError(f"problem must be a bnblip.Problem, got {type(problem).__name__}")
        if problem.norm not in self.norms:
            allowed = ", ".join(sorted(n.value for n in self.norms))
            raise InputError(f"estimator {self.name} does not support input norm "
                             f"'{problem.norm.value}' (supported: {allowed})")
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            allowed = ", ".join(self.option_names) or "none"
            raise InputError(f"estimator {self.name} has no option {unknown[0]!r} "
                             f"(options: {allowed})")
        if not self.available:
            raise InputError(f"estimator {self.name} needs the module(s) "
                             f"{', '.join(self.requires)}; install them first")

    def run(self, problem: Problem, **options) -> Estimate:
        """Compute the estimate for ``problem``.

        Raises
        ------
        InputError
            If the problem's input norm is not supported, an option is unknown or a
            required module is missing.
        """
        self._check(problem, options)
        start = time.perf_counter()
        value = float(self.compute(problem, **options))
        elapsed = time.perf_counter() - start
        logger.debug("%s: %s = %.6g in %.3f s", self.name, self.kind.value, value, elapsed)
        return Estimate(self.name, self.kind, problem.norm, value, elapsed)


def max_over_functionals(problem: Problem, per_functional: Callable[[np.ndarray], float]) -> float:
    """``max`` of ``per_functional(c)`` over the problem's output functionals."""
    return max(float(per_functional(np.asarray(c, dtype=np.float64)))
               for c in problem.functionals)


def check_positive_int(value, name: str, estimator: str) -> int:
    """Validate an integer option ``>= 1``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"estimator {estimator}: option {name} must be an integer >= 1, "
                         f"got {value!r}")
    return int(value)
