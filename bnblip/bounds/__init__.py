"""Bound propagation: interval bounds of pre-activations and gradient quantities."""

from bnblip.bounds.interval import (
    BackwardBounds,
    ForwardBounds,
    backward_interval,
    derivative_bounds,
    forward_interval,
)

__all__ = ["ForwardBounds", "BackwardBounds", "forward_interval", "backward_interval",
           "derivative_bounds"]
