"""Exact power-of-two rescaling of a problem to order-one magnitudes.

Solvers with absolute tolerances (HiGHS's LPs and MIPs) lose accuracy when weights,
inputs or the constant itself are far from 1.  For a ReLU network, positive scaling
commutes with the activations: dividing layer ``k``'s weights by ``s_k``, its bias by
``s_1 ... s_k``, the functional by ``s_c`` and the input by ``r`` (``x = r u``) gives a
network whose gradient norm is the original one divided by
``factor = s_c * prod(s_k) * ... / r``.  With powers of two these operations are exact in
floating point, so patterns, regions and witnesses are unchanged and the constant
scales exactly.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from bnblip.errors import InputError
from bnblip.incumbent import check_witness
from bnblip.network import Network
from bnblip.options import Tolerances
from bnblip.problem import Box, Problem
from bnblip.result import LipschitzResult, Status


@dataclasses.dataclass(frozen=True, eq=False)
class Scaling:
    """How a problem was rescaled.

    Attributes
    ----------
    factor : float
        Constant of the original problem = ``factor`` * constant of the scaled one.
    input_scale : float
        ``x = input_scale * u`` (a power of two).
    functional_scale : float
        Every functional was divided by it (a power of two).
    """

    factor: float
    input_scale: float
    functional_scale: float


def _pow2(value: float) -> float:
    """The power of two nearest to ``value`` (1 for 0 or non-finite values)."""
    if not (value > 0 and math.isfinite(value)):
        return 1.0
    return math.ldexp(1.0, round(math.log2(value)))


def _check_range(value: float, what: str) -> None:
    """Refuse a problem whose scale leaves float64: a product of powers of two that
    underflowed to 0 or overflowed to inf would divide the biases into inf or NaN
    (reported as such though the input had none) or make every bound inf."""
    if not 0.0 < value < math.inf:
        raise InputError(f"network: the product of {what} is outside float64's range "
                         f"({'underflow' if value == 0.0 else 'overflow'}); rescale the "
                         f"network's weights")


def normalize(problem: Problem) -> tuple[Problem, Scaling]:
    """An exactly rescaled copy of ``problem`` with weights, inputs and functionals
    of magnitude about 1, and the :class:`Scaling` that maps its constant back."""
    net, box = problem.network, problem.box
    r = _pow2(float(np.max(np.maximum(np.abs(box.lower), np.abs(box.upper)), initial=0.0)))
    weights, biases = [], []
    cumulative = 1.0
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        w = w * r if k == 0 else w
        s = _pow2(float(np.max(np.abs(w), initial=0.0)))
        cumulative *= s
        _check_range(cumulative, f"the magnitudes of layers 0..{k}")
        weights.append(w / s)
        biases.append(b / cumulative)
    sc = _pow2(max(float(np.max(np.abs(c), initial=0.0)) for c in problem.functionals))
    factor = cumulative * sc / r
    _check_range(factor, "the gradient's scale (layer magnitudes, functional and box)")
    scaled_net = Network.from_layers(weights, biases)
    scaled_box = Box(box.lower / r, box.upper / r)
    funcs = tuple(c / sc for c in problem.functionals)
    scaled = Problem(scaled_net, scaled_box, problem.norm, funcs, problem.output_norm)
    return scaled, Scaling(factor, r, sc)


def scaled_tolerances(tol: Tolerances, scaling: Scaling) -> Tolerances:
    """``tol`` for the scaled problem: ``abs_gap`` never looser in the original units.

    A gap of ``g`` in the scaled problem is ``factor * g`` in the original one, so for
    ``factor > 1`` (large weights) the scaled search must close to ``abs_gap / factor``
    or it stops early and :func:`restore` reports ``incomplete``.  For ``factor <= 1`` the
    scaled ``abs_gap`` stays as given (stricter than asked, as before).
    """
    if scaling.factor <= 1.0:
        return tol
    return dataclasses.replace(tol, abs_gap=tol.abs_gap / scaling.factor)


def restore(result: LipschitzResult, problem: Problem, scaling: Scaling,
            tol: Tolerances) -> LipschitzResult:
    """Map a result of the scaled problem back to ``problem``, re-checking the witness
    on the original network (the lower bound is the re-checked value)."""
    f = scaling.factor
    witness = None if result.witness is None else result.witness * scaling.input_scale
    upper = result.upper_bound * f
    lower, status, functional = 0.0, result.status, None
    if witness is not None:
        index = _functional_index(problem, result.functional, scaling)
        functional = problem.functionals[index]
        wit = check_witness(problem.network, problem.box, problem.norm, functional, witness,
                            tol)
        if wit is None:
            witness, functional = None, None
        else:
            lower = wit.value
    upper = max(upper, lower)
    if status is Status.OPTIMAL and not tol.gap_closed(lower, upper):
        status = Status.INCOMPLETE
    value = lower if tol.gap_closed(lower, upper) else upper
    options = dict(result.options)
    if "abs_gap" in options:  # the solver saw it in scaled units (scaled_tolerances)
        options["abs_gap"] = tol.abs_gap
    return dataclasses.replace(result, value=float(value), lower_bound=float(lower),
                               upper_bound=float(upper), status=status, witness=witness,
                               functional=functional, options=options)


class ProgressRelay:
    """Passes a solver's ``progress`` records to ``callback`` in the original
    problem's units (the solver sees the scaled problem) and remembers the last.

    Parameters
    ----------
    callback : callable
        Receives each record.
    factor : float
        :attr:`Scaling.factor`.

    Attributes
    ----------
    last : bnblip.solver.Progress or None
        The last record passed on (``None`` before the first).
    """

    def __init__(self, callback, factor: float):
        self.callback = callback
        self.factor = factor
        self.last = None

    def __call__(self, progress) -> None:
        if self.factor != 1.0:
            progress = dataclasses.replace(progress, lower=float(progress.lower * self.factor),
                                           upper=float(progress.upper * self.factor))
        self._send(progress)

    def settle(self, result: LipschitzResult) -> None:
        """Send one more record, with ``result``'s bounds, when the last one sent
        differs from them (:func:`restore` re-checks the witness on the original
        network, which may lower the lower bound)."""
        last = self.last
        if last is None or (last.lower, last.upper) == (result.lower_bound, result.upper_bound):
            return
        self._send(dataclasses.replace(last, lower=result.lower_bound, upper=result.upper_bound))

    def _send(self, progress) -> None:
        self.last = progress
        self.callback(progress)


def progress_in_original_units(callback, scaling: Scaling):
    """The ``progress`` option to hand the solver of the scaled problem.

    Parameters
    ----------
    callback : object
        The user's ``progress`` option.
    scaling : Scaling

    Returns
    -------
    ProgressRelay or object
        A relay for a callable ``callback``; anything else as it is, for the
        solver's own validation to reject.
    """
    if not callable(callback):
        return callback
    return ProgressRelay(callback, scaling.factor)


def _functional_index(problem: Problem, scaled_c, scaling: Scaling) -> int:
    """Index of the original functional whose scaled copy is ``scaled_c``."""
    if scaled_c is None:
        return 0
    for k, c in enumerate(problem.functionals):
        if np.array_equal(c / scaling.functional_scale, scaled_c):
            return k
    return 0
