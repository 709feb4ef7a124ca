"""The ReLU network: validated, immutable float64 affine layers.

``f(x) = W_L relu(W_{L-1} ... relu(W_1 x + b_1) ...) + b_L``.  Hidden layer ``i``
(1-based) has pre-activation ``z_i`` and post-activation ``a_i = relu(z_i)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bnblip.errors import InputError

Pattern = tuple[np.ndarray, ...]
"""Activation pattern: one boolean array per hidden layer (True = active)."""


def same_pattern(a: Pattern, b: Pattern) -> bool:
    """Whether two activation patterns are equal, layer by layer."""
    return all(np.array_equal(p, q) for p, q in zip(a, b))


def _frozen(array: np.ndarray) -> np.ndarray:
    out = np.array(array, dtype=np.float64, copy=True)
    out.setflags(write=False)
    return out


def _validate_layers(weights: Sequence, biases: Sequence) -> None:
    if len(weights) == 0:
        raise InputError("network must have at least one affine layer")
    if len(weights) != len(biases):
        raise InputError(
            f"network has {len(weights)} weight matrices but {len(biases)} bias vectors")
    previous = None
    for k, (w, b) in enumerate(zip(weights, biases)):
        try:
            w = np.asarray(w)
            b = np.asarray(b)
        except ValueError:  # numpy refuses nested sequences of unequal lengths
            raise InputError(f"layer {k}: weight and bias must be rectangular arrays "
                             f"(rows of equal length)") from None
        if np.iscomplexobj(w) or np.iscomplexobj(b):
            raise InputError(f"layer {k}: weights and biases must be real, got complex")
        if w.ndim != 2:
            raise InputError(f"layer {k}: weight must be 2-D (out, in), got shape {w.shape}")
        if b.ndim != 1 or b.shape[0] != w.shape[0]:
            raise InputError(
                f"layer {k}: bias shape {b.shape} does not match weight shape {w.shape}")
        if w.size == 0:
            raise InputError(f"layer {k}: weight has an empty dimension {w.shape}")
        if not (np.issubdtype(w.dtype, np.number) and np.issubdtype(b.dtype, np.number)):
            raise InputError(f"layer {k}: weights and biases must be numeric")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise InputError(f"layer {k}: weights or biases contain NaN or inf")
        if previous is not None and w.shape[1] != previous:
            raise InputError(
                f"layer {k}: takes {w.shape[1]} inputs but layer {k - 1} gives {previous}")
        previous = w.shape[0]


@dataclass(frozen=True, eq=False)
class Network:
    """Feed-forward ReLU network with float64 weights.

    Parameters
    ----------
    weights : tuple of ndarray
        ``weights[k]`` has shape ``(out_k, in_k)``.
    biases : tuple of ndarray
        ``biases[k]`` has shape ``(out_k,)``.

    Notes
    -----
    Build instances with :meth:`from_layers`, which validates and copies; the
    arrays are read-only.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    @classmethod
    def from_layers(cls, weights: Sequence, biases: Sequence) -> Network:
        """Validate and copy ``weights`` / ``biases`` into a network.

        Raises
        ------
        InputError
            On empty networks, mismatched shapes, non-numeric or non-finite values.
        """
        _validate_layers(weights, biases)
        return cls(tuple(_frozen(w) for w in weights), tuple(_frozen(b) for b in biases))

    @classmethod
    def from_torch(cls, module) -> Network:
        """Convert a ``torch.nn`` module (Sequential of Linear/ReLU/Flatten)."""
        from bnblip.io.torch_io import network_from_module

        return network_from_module(module)

    # ------------------------------------------------------------------ shape
    @property
    def input_dim(self) -> int:
        """Number of inputs ``n``."""
        return int(self.weights[0].shape[1])

    @property
    def output_dim(self) -> int:
        """Number of outputs ``m``."""
        return int(self.weights[-1].shape[0])

    @property
    def num_hidden_layers(self) -> int:
        """Number of ReLU layers (affine layers minus one)."""
        return len(self.weights) - 1

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """Widths of the hidden (ReLU) layers."""
        return tuple(int(w.shape[0]) for w in self.weights[:-1])

    @property
    def widths(self) -> tuple[int, ...]:
        """All layer widths ``(n, h_1, ..., h_{L-1}, m)``."""
        return (self.input_dim,) + self.hidden_widths + (self.output_dim,)

    @property
    def num_neurons(self) -> int:
        """Total number of hidden ReLU neurons."""
        return int(sum(self.hidden_widths))

    # ------------------------------------------------------------------ eval
    def _batch(self, x) -> tuple[np.ndarray, bool]:
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise InputError(
                f"x must have shape ({self.input_dim},) or (batch, {self.input_dim}), "
                f"got {np.shape(x)}")
        return x, single

    def preactivations(self, x) -> tuple[np.ndarray, ...]:
        """Pre-activations ``z_1, ..., z_{L-1}`` of every hidden layer.

        Returns arrays shaped ``(batch, h_i)`` (or ``(h_i,)`` for a single point).
        """
        xb, single = self._batch(x)
        zs = []
        a = xb
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            z = a @ w.T + b
            zs.append(z[0] if single else z)
            a = np.maximum(z, 0.0)
        return tuple(zs)

    def forward(self, x) -> np.ndarray:
        """Network output ``f(x)``, shape ``(m,)`` or ``(batch, m)``."""
        xb, single = self._batch(x)
        a = xb
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            a = np.maximum(a @ w.T + b, 0.0)
        out = a @ self.weights[-1].T + self.biases[-1]
        return out[0] if single else out

    def pattern(self, x) -> Pattern:
        """Activation pattern (``z > 0``) at ``x``; batched like :meth:`preactivations`."""
        return tuple(z > 0 for z in self.preactivations(x))

    def _check_c(self, c) -> np.ndarray:
        c = np.asarray(c, dtype=np.float64)
        if c.shape != (self.output_dim,):
            raise InputError(f"c must have length {self.output_dim} (the number of "
                             f"outputs), got shape {c.shape}")
        return c

    def gradient_for_pattern(self, pattern: Pattern, c) -> np.ndarray:
        """Gradient of ``c^T f`` inside the region of ``pattern``.

        ``pattern`` holds one array per hidden layer, shaped ``(h_i,)`` or
        ``(batch, h_i)``; the result is ``(n,)`` or ``(batch, n)``.
        """
        c = self._check_c(c)
        if len(pattern) != self.num_hidden_layers:
            raise InputError(f"pattern must have {self.num_hidden_layers} layers, "
                             f"got {len(pattern)}")
        single = np.ndim(pattern[0]) == 1 if pattern else True
        y = np.broadcast_to(self.weights[-1].T @ c, (1, self.weights[-1].shape[1]))
        for w, d in zip(reversed(self.weights[:-1]), reversed(pattern)):
            d = np.atleast_2d(np.asarray(d, dtype=np.float64))
            y = (y * d) @ w
        return y[0] if single else y

    def gradient(self, x, c) -> np.ndarray:
        """Exact gradient of ``c^T f`` at ``x`` (convention ``relu'(0) = 0``)."""
        return self.gradient_for_pattern(self.pattern(x), c)

    def __repr__(self) -> str:
        return f"Network(widths={list(self.widths)})"
