"""Format-independent layer chain: affine maps and ReLUs folded into a :class:`Network`.

Every loader turns its model into a list of :class:`AffineOp` / :class:`ReluOp`
in evaluation order (no-ops such as Flatten or Identity are simply left out) and
calls :func:`network_from_ops`, which checks the chain and merges consecutive
affine maps.  Each op carries a human-readable ``label`` (e.g. ``Gemm node
'/0/Gemm'`` or ``layer 2 (Linear)``) so that errors name the offending layer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from bnblip.errors import InputError
from bnblip.network import Network

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class AffineOp:
    """The map ``x -> weight @ x + bias``.

    Attributes
    ----------
    weight : ndarray
        Shape ``(out, in)``, float64, finite.
    bias : ndarray
        Shape ``(out,)``, float64, finite.
    label : str
        Name of the layer (or layers, once merged) used in error messages.
    """

    weight: np.ndarray
    bias: np.ndarray
    label: str

    @property
    def in_dim(self) -> int:
        """Number of inputs of the map."""
        return int(self.weight.shape[1])

    @property
    def out_dim(self) -> int:
        """Number of outputs of the map."""
        return int(self.weight.shape[0])


@dataclass(frozen=True)
class ReluOp:
    """An element-wise ReLU.

    Attributes
    ----------
    label : str
        Name of the layer used in error messages.
    """

    label: str


Op = Union[AffineOp, ReluOp]


def _numeric_array(value, what: str, source: str, label: str) -> np.ndarray:
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputError(f"{source}: {label}: {what} must be a real numeric array, "
                         f"got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{source}: {label}: {what} contains NaN or inf")
    return array


def affine(weight, bias, label: str, source: str) -> AffineOp:
    """Validate ``weight`` ``(out, in)`` and ``bias`` ``(out,)`` (or ``None``) into an op.

    Raises
    ------
    InputError
        Naming ``source`` and ``label``, when the arrays are not numeric, not
        finite, or their shapes do not form an affine layer.
    """
    w = _numeric_array(weight, "weight", source, label)
    if w.ndim != 2 or w.size == 0:
        raise InputError(f"{source}: {label}: weight must be a non-empty 2-D array "
                         f"(out, in), got shape {w.shape}")
    if bias is None:
        b = np.zeros(w.shape[0])
    else:
        b = _numeric_array(bias, "bias", source, label)
        if b.shape != (w.shape[0],):
            raise InputError(f"{source}: {label}: bias shape {b.shape} does not match "
                             f"the {w.shape[0]} outputs of weight shape {w.shape}")
    return AffineOp(w, b, label)


def _compose(first: AffineOp, second: AffineOp) -> AffineOp:
    """``second(first(x))`` as one affine map (shapes already checked)."""
    weight = second.weight @ first.weight
    bias = second.weight @ first.bias + second.bias
    logger.debug("merging %s into %s (no ReLU between them)", first.label, second.label)
    return AffineOp(weight, bias, f"{first.label} + {second.label}")


def _check_width(op: AffineOp, width: int | None, producer: str, source: str) -> None:
    if width is not None and op.in_dim != width:
        raise InputError(f"{source}: {op.label}: takes {op.in_dim} inputs but "
                         f"{producer} gives {width}")


def network_from_ops(ops: Sequence[Op], source: str, input_dim: int | None = None) -> Network:
    """Fold a chain of affine maps and ReLUs into a :class:`Network`.

    Consecutive affine maps (no ReLU between them) are merged into one layer
    (``W2 W1``, ``W2 b1 + b2``); consecutive ReLUs collapse into one (ReLU is
    idempotent).

    Parameters
    ----------
    ops : sequence of AffineOp or ReluOp
        The model in evaluation order.
    source : str
        What is being loaded (a path or a description), prefixed to error messages.
    input_dim : int, optional
        Input width declared by the model, checked against the first affine map.

    Raises
    ------
    InputError
        When widths do not chain, the chain starts or ends with a ReLU, or has no
        affine map at all.
    """
    layers: list[AffineOp] = []
    pending: AffineOp | None = None
    width, producer = input_dim, "the model input"
    last_relu: ReluOp | None = None
    for op in ops:
        if isinstance(op, ReluOp):
            if pending is None and not layers:
                raise InputError(f"{source}: {op.label}: the model starts with a ReLU; the "
                                 "first operation must be an affine layer")
            if pending is not None:
                layers.append(pending)
            pending, last_relu = None, op
            continue
        _check_width(op, width, producer, source)
        width, producer = op.out_dim, op.label
        pending = op if pending is None else _compose(pending, op)
    if pending is None:
        if last_relu is None:
            raise InputError(f"{source}: the model has no affine layer")
        raise InputError(f"{source}: {last_relu.label}: the model ends with a ReLU; the "
                         "output must come from an affine layer (Linear / Gemm / MatMul)")
    layers.append(pending)
    return Network.from_layers([op.weight for op in layers], [op.bias for op in layers])
