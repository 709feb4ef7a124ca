"""Bound propagation: pre-activation and gradient bounds.

NumPy references live in :mod:`bnblip.bounds.interval` (interval bounds, backward
bounds) and :mod:`bnblip.bounds.linear` (back-substituted linear bounds); their
Numba twins and the flat-array kernel API for the solver are in
:mod:`bnblip.bounds.kernels` (imported on demand, it loads Numba).
"""

from bnblip.bounds.interval import (
    BackwardBounds,
    ForwardBounds,
    backward_interval,
    derivative_bounds,
    forward_interval,
)
from bnblip.bounds.linear import forward_linear

__all__ = ["ForwardBounds", "BackwardBounds", "forward_interval", "backward_interval",
           "derivative_bounds", "forward_linear"]
