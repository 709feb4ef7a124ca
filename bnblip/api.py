"""Top-level entry point :func:`lipschitz`: validation and dispatch to a method."""

from __future__ import annotations

import inspect
import logging
import numbers

from bnblip.errors import InputError
from bnblip.network import Network
from bnblip.options import DEFAULT_ABS_GAP, DEFAULT_REL_GAP, Tolerances
from bnblip.problem import Box, Problem, make_problem
from bnblip.result import LipschitzResult, Method
from bnblip.scaling import (
    ProgressRelay,
    normalize,
    progress_in_original_units,
    restore,
    scaled_tolerances,
)

logger = logging.getLogger("bnblip")

DEFAULT_METHOD = Method.BNB


def _validate(network, domain, norm, c, logit_diff, output_norm, method, time_limit,
              node_limit, rel_gap, abs_gap,
              method_options: dict) -> tuple[Problem, Method, Tolerances]:
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(
            time_limit, numbers.Real) or not time_limit > 0):
        raise InputError(f"time_limit must be a positive number or None, got {time_limit!r}")
    if node_limit is not None and (isinstance(node_limit, bool) or not isinstance(
            node_limit, numbers.Integral) or not node_limit > 0):
        raise InputError(f"node_limit must be a positive integer or None, got {node_limit!r}")
    for name, value in (("rel_gap", rel_gap), ("abs_gap", abs_gap)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise InputError(f"{name} must be a number in [0, 1), got {value!r}")
    if not isinstance(network, Network):
        raise InputError(f"network must be a bnblip.Network, got {type(network).__name__}")
    if not isinstance(domain, Box):
        raise InputError(f"domain must be a bnblip.Box, got {type(domain).__name__}")
    problem = make_problem(network, domain, norm, c=c, logit_diff=logit_diff,
                           output_norm=output_norm)
    meth = Method.parse(method)
    if meth is not Method.BNB:
        _check_reference_options(meth, node_limit, method_options)
    return problem, meth, Tolerances(rel_gap=float(rel_gap), abs_gap=float(abs_gap))


def _check_reference_options(meth: Method, node_limit, method_options: dict) -> None:
    """``node_limit`` and ``method_options`` against what ``meth`` (milp or enumerate)
    takes; the bnb engine checks its own options (``BnbOptions.from_kwargs``)."""
    if node_limit is not None:
        raise InputError(f"node_limit applies to method 'bnb' only, got method "
                         f"{meth.value!r} with node_limit={node_limit!r}")
    known = _reference_options(meth)
    unknown = sorted(set(method_options) - known)
    if unknown:
        raise InputError(f"unknown {meth.value} option(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")


def _reference_options(meth: Method) -> frozenset[str]:
    """Keyword options of a reference solver, from its signature."""
    from bnblip.reference import solve_enumerate, solve_milp

    solver = solve_milp if meth is Method.MILP else solve_enumerate
    return frozenset(inspect.signature(solver).parameters) - {"problem", "time_limit", "tol"}


def lipschitz(network: Network, domain: Box, norm="linf", c=None, *, logit_diff=None,
              output_norm=None, method=None, time_limit: float | None = None,
              node_limit: int | None = None, rel_gap: float = DEFAULT_REL_GAP,
              abs_gap: float = DEFAULT_ABS_GAP, **method_options) -> LipschitzResult:
    """Exact local Lipschitz constant of ``c^T f`` over ``domain``.

    Parameters
    ----------
    network : Network
    domain : Box
    norm : {'linf', 'l1', 'l2'}
        Input norm; the gradient is measured in the dual norm.
    c : array_like, optional
        Output functional; exclusive with ``logit_diff`` and ``output_norm``.
    logit_diff : (int, int), optional
        ``c = e_i - e_j``.
    output_norm : {'linf', 'l1'}, optional
        Constant of the vector-valued output in this norm.
    method : {'bnb', 'milp', 'enumerate'}, optional
        Solver; the default is the fastest exact one available.
    time_limit : float, optional
        Seconds; on expiry the proven bounds so far are returned.
    node_limit : int, optional
        Branch-and-bound nodes (method bnb only; an ``InputError`` otherwise).
    rel_gap, abs_gap : float
        Optimality gap: ``upper - lower <= max(abs_gap, rel_gap * |upper|)``.
    **method_options
        Passed to the method (see its documentation); a name the method does not
        take is an ``InputError``.  bnb's ``progress`` callback receives bounds in
        this problem's units.

    Returns
    -------
    LipschitzResult

    Raises
    ------
    InputError
        On any invalid argument, naming it.
    """
    problem, meth, tol = _validate(network, domain, norm, c, logit_diff, output_norm,
                                   DEFAULT_METHOD if method is None else method,
                                   time_limit, node_limit, rel_gap, abs_gap,
                                   method_options)
    logger.info("solving %s with method %s, norm %s", network, meth.value, problem.norm.value)
    scaled, scaling = normalize(problem)
    relay = None
    if "progress" in method_options:
        relay = progress_in_original_units(method_options["progress"], scaling)
        method_options = dict(method_options, progress=relay)
    inner = scaled_tolerances(tol, scaling)
    result = restore(_dispatch(scaled, meth, inner, time_limit, node_limit, method_options),
                     problem, scaling, tol)
    if isinstance(relay, ProgressRelay):
        relay.settle(result)  # the last record shows the re-checked bounds
    return result


def _dispatch(problem: Problem, meth: Method, tol: Tolerances, time_limit, node_limit,
              method_options: dict) -> LipschitzResult:
    if meth is Method.MILP:
        from bnblip.reference import solve_milp

        return solve_milp(problem, time_limit=time_limit, tol=tol, **method_options)
    if meth is Method.ENUMERATE:
        from bnblip.reference import solve_enumerate

        return solve_enumerate(problem, time_limit=time_limit, tol=tol, **method_options)
    from bnblip.solver import solve_bnb

    return solve_bnb(problem, time_limit=time_limit, node_limit=node_limit, tol=tol,
                     **method_options)
