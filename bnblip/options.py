"""Tolerances and solver options: every numerical tolerance is defined here, once."""

from __future__ import annotations

from dataclasses import dataclass

from bnblip.errors import InputError

#: Default relative optimality gap of every exact method.
DEFAULT_REL_GAP = 1e-6
#: Default absolute optimality gap of every exact method.
DEFAULT_ABS_GAP = 1e-9


@dataclass(frozen=True)
class Tolerances:
    """Numerical tolerances shared by bounds, LPs, witnesses and solvers.

    Attributes
    ----------
    rel_gap, abs_gap : float
        A solve is optimal when ``upper - lower <= max(abs_gap, rel_gap * |upper|)``.
    bound_rel_widen : float
        Propagated bounds are widened by this factor times the magnitude of the
        summed terms (never by an absolute amount, see DESIGN.md section 7).
    bound_abs_widen : float
        Floor of the widening, far below any meaningful weight (1e-300 scale guard).
    interior_margin : float
        A region counts as full-dimensional when its Chebyshev radius (signed
        distance to every normalised hyperplane) exceeds this.
    witness_rel_margin : float
        A witness must have ``|z_j| > witness_rel_margin * scale_j`` for every
        neuron, with ``scale_j`` the magnitude of the terms summed into ``z_j``.
    box_tol : float
        Slack allowed when checking that a witness lies in the input box.
    feas_tol : float
        Primal feasibility tolerance passed to LP and MILP solvers.
    mip_rel_gap : float
        Relative gap requested from the MILP reference solver.
    lp_small_entry : float
        LP matrix entries below this magnitude are folded into the row bounds
        (HiGHS drops entries <= 1e-9 silently; see :mod:`bnblip.lp.sanitize`).
    relaxation_safety : float
        Relative inflation applied to the optimum of an LP / SDP relaxation before it
        is reported as an upper bound (guards against solver tolerances).
    lp_reuse_slack : float
        A child's LP is skipped when its parent's LP optimum satisfies every bound of
        the child's LP within this slack (relative to the bound, absolute below 1):
        the child's LP value cannot then be lower (see
        :class:`bnblip.lp.relaxation.SolutionCheck`).
    region_inset : float
        Fraction of each box width by which the quick interior-point LP shrinks the
        box (see :func:`bnblip.regions.interior_point`); its failures prove nothing,
        so every exact decision falls back to the full LP.
    """

    rel_gap: float = DEFAULT_REL_GAP
    abs_gap: float = DEFAULT_ABS_GAP
    bound_rel_widen: float = 1e-12
    bound_abs_widen: float = 1e-300
    interior_margin: float = 1e-9
    witness_rel_margin: float = 1e-10
    box_tol: float = 1e-9
    feas_tol: float = 1e-9
    mip_rel_gap: float = 1e-9
    relaxation_safety: float = 1e-7
    lp_small_entry: float = 2e-9
    lp_reuse_slack: float = 1e-9
    region_inset: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("rel_gap", "abs_gap", "bound_rel_widen", "interior_margin",
                     "witness_rel_margin", "box_tol", "feas_tol", "mip_rel_gap",
                     "relaxation_safety", "lp_small_entry", "region_inset", "lp_reuse_slack"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0 and value < 1):
                raise InputError(f"{name} must be a number in [0, 1), got {value!r}")
        if not 0 < self.region_inset < 0.5:
            raise InputError(f"region_inset must be in (0, 0.5), got {self.region_inset!r}")

    def gap_closed(self, lower: float, upper: float) -> bool:
        """Whether ``[lower, upper]`` is within the optimality gap."""
        return upper - lower <= max(self.abs_gap, self.rel_gap * abs(upper))


DEFAULT_TOLERANCES = Tolerances()
