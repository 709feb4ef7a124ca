"""Reference solvers: the LipMIP MILP (HiGHS) and exhaustive region enumeration.

Both are independent of the branch-and-bound engine and return a
:class:`~bnblip.result.LipschitzResult`; see :mod:`bnblip.reference_milp` and
:mod:`bnblip.reference_enum`.
"""

from bnblip.reference_enum import solve_enumerate
from bnblip.reference_milp import solve_milp

__all__ = ["solve_milp", "solve_enumerate"]
