"""What is maximised: input domain, input norm and output functional(s)."""

from __future__ import annotations

import enum
import itertools
import numbers
from dataclasses import dataclass

import numpy as np

from bnblip.errors import InputError
from bnblip.network import Network


class Norm(enum.Enum):
    """Input norm ``p``; the gradient is measured in its dual norm ``q``."""

    LINF = "linf"
    L1 = "l1"
    L2 = "l2"

    @property
    def dual(self) -> Norm:
        """The dual norm ``q`` with ``1/p + 1/q = 1``."""
        return {Norm.LINF: Norm.L1, Norm.L1: Norm.LINF, Norm.L2: Norm.L2}[self]

    def dual_value(self, gradient: np.ndarray) -> np.ndarray:
        """``||gradient||_q`` along the last axis."""
        q = self.dual
        if q is Norm.L1:
            return np.abs(gradient).sum(axis=-1)
        if q is Norm.LINF:
            return np.abs(gradient).max(axis=-1)
        return np.sqrt((gradient * gradient).sum(axis=-1))

    @classmethod
    def parse(cls, value, name: str = "norm") -> Norm:
        """Accept a :class:`Norm` or one of ``'linf'``, ``'l1'``, ``'l2'``."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise InputError(f"{name} must be one of 'linf', 'l1', 'l2', got {value!r}") from None


class OutputNorm(enum.Enum):
    """Norm on a vector-valued output."""

    LINF = "linf"
    L1 = "l1"

    @classmethod
    def parse(cls, value, name: str = "output_norm") -> OutputNorm:
        """Accept an :class:`OutputNorm` or ``'linf'`` / ``'l1'``."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise InputError(f"{name} must be 'linf' or 'l1', got {value!r}") from None


def _vector(value, name: str, length: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric, got {value!r}") from None
    if arr.ndim == 0 and length is not None:
        arr = np.full(length, float(arr))
    if arr.ndim != 1:
        raise InputError(f"{name} must be a vector, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise InputError(f"{name} must have length {length}, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite (no NaN or inf)")
    return arr


@dataclass(frozen=True, eq=False)
class Box:
    """Axis-aligned input box ``lower <= x <= upper``.

    Parameters
    ----------
    lower, upper : array_like
        Bounds of equal length; ``lower <= upper`` elementwise.
    """

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        lower = _vector(self.lower, "lower")
        upper = _vector(self.upper, "upper")
        if lower.shape != upper.shape:
            if lower.size == 1:
                lower = np.full(upper.shape, lower[0])
            elif upper.size == 1:
                upper = np.full(lower.shape, upper[0])
            else:
                raise InputError(f"lower and upper must have the same length, got "
                                 f"{lower.size} and {upper.size}")
        bad = np.flatnonzero(lower > upper)
        if bad.size:
            raise InputError(f"lower must be <= upper elementwise; violated at index "
                             f"{int(bad[0])} ({lower[bad[0]]} > {upper[bad[0]]})")
        # own copies (the caller's arrays stay writeable) with -0.0 made +0.0: an
        # upper end -0.0 above a lower end 0.0 passes the check but is "below" it
        # for code that looks at signs (numpy's sampling refused it)
        lower, upper = lower + 0.0, upper + 0.0
        lower.setflags(write=False)
        upper.setflags(write=False)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @classmethod
    def ball(cls, center, radius, clip=None) -> Box:
        """The l-inf ball ``center +- radius``, optionally clipped to ``clip=(lo, hi)``."""
        center = _vector(center, "center")
        try:
            radius = float(radius)
        except (TypeError, ValueError):
            raise InputError(f"radius must be a number, got {radius!r}") from None
        if not (np.isfinite(radius) and radius >= 0):
            raise InputError(f"radius must be finite and >= 0, got {radius}")
        lower, upper = center - radius, center + radius
        if clip is not None:
            if not isinstance(clip, (tuple, list)) or len(clip) != 2:
                raise InputError(f"clip must be a pair (lo, hi), got {clip!r}")
            lo = _vector(clip[0], "clip lo", center.size)
            hi = _vector(clip[1], "clip hi", center.size)
            if np.any(lo > hi):
                raise InputError("clip must satisfy lo <= hi")
            lower, upper = np.clip(lower, lo, hi), np.clip(upper, lo, hi)
        return cls(lower, upper)

    @property
    def dim(self) -> int:
        """Number of coordinates."""
        return int(self.lower.size)

    @property
    def center(self) -> np.ndarray:
        """Midpoint of the box."""
        return 0.5 * (self.lower + self.upper)

    def contains(self, x, tol: float = 0.0) -> bool:
        """Whether ``x`` lies in the box up to ``tol``."""
        x = np.asarray(x, dtype=np.float64)
        return bool(np.all(x >= self.lower - tol) and np.all(x <= self.upper + tol))

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` uniform points, shape ``(count, dim)``."""
        return rng.uniform(self.lower, self.upper, size=(count, self.dim))

    def sample_faces(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` points mostly on the box's faces, shape ``(count, dim)``: each
        coordinate is, with probability 1/2, at its lower or upper end (equally
        likely), else uniform in between (so a point is interior with probability
        ``2**-dim``)."""
        points = self.sample(count, rng)
        ends = np.where(rng.random((count, self.dim)) < 0.5, self.lower, self.upper)
        return np.where(rng.random((count, self.dim)) < 0.5, ends, points)


@dataclass(frozen=True, eq=False)
class Problem:
    """A local Lipschitz problem: maximise ``||grad c^T f(x)||_q`` over the box.

    Build with :func:`make_problem`, which validates every argument.

    Attributes
    ----------
    network : Network
    box : Box
    norm : Norm
        Input norm ``p``.
    functionals : tuple of ndarray
        The output functionals ``c``; the constant is the max over them (one for a
        scalar objective, ``e_k`` for output norm linf, sign vectors for l1).
    output_norm : OutputNorm or None
        Set when the objective came from a vector-valued output norm.
    """

    network: Network
    box: Box
    norm: Norm
    functionals: tuple[np.ndarray, ...]
    output_norm: OutputNorm | None = None

    @property
    def is_scalar(self) -> bool:
        """Whether there is a single output functional."""
        return len(self.functionals) == 1

    def with_functional(self, c: np.ndarray) -> Problem:
        """The scalar sub-problem for one functional ``c``."""
        return Problem(self.network, self.box, self.norm, (np.asarray(c, dtype=float),), None)


def _functionals(network: Network, c, logit_diff, output_norm) -> tuple:
    given = [name for name, v in (("c", c), ("logit_diff", logit_diff),
                                  ("output_norm", output_norm)) if v is not None]
    if len(given) > 1:
        raise InputError(f"give at most one of c, logit_diff, output_norm; got {', '.join(given)}")
    m = network.output_dim
    if logit_diff is not None:
        pair = logit_diff if isinstance(logit_diff, (tuple, list, np.ndarray)) else None
        if pair is None or len(pair) != 2 or \
                not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair):
            raise InputError(
                f"logit_diff must be a pair of integer output indices, got {logit_diff!r}")
        i, j = (int(v) for v in pair)
        for name, k in (("logit_diff[0]", i), ("logit_diff[1]", j)):
            if not 0 <= k < m:
                raise InputError(f"{name} must be an output index in [0, {m - 1}], got {k}")
        if i == j:
            raise InputError("logit_diff indices must differ")
        vec = np.zeros(m)
        vec[i], vec[j] = 1.0, -1.0
        return (vec,), None
    if output_norm is not None:
        onorm = OutputNorm.parse(output_norm)
        if onorm is OutputNorm.LINF:
            return tuple(np.eye(m)[k] for k in range(m)), onorm
        if m > 16:
            raise InputError(f"output_norm 'l1' enumerates 2^(m-1) sign vectors; m={m} > 16")
        signs = [np.array((1.0,) + s) for s in itertools.product((1.0, -1.0), repeat=m - 1)]
        return tuple(signs), onorm
    if c is None:
        if m != 1:
            raise InputError(f"network has {m} outputs: give c, logit_diff or output_norm")
        return (np.ones(1),), None
    return (_vector(c, "c", m),), None


def make_problem(network: Network, box: Box, norm="linf", c=None, logit_diff=None,
                 output_norm=None) -> Problem:
    """Validate arguments into a :class:`Problem`.

    Parameters
    ----------
    network : Network
    box : Box
        Input domain; its dimension must equal ``network.input_dim``.
    norm : {'linf', 'l1', 'l2'} or Norm
        Input norm.
    c : array_like, optional
        Output functional (length ``m``); a scalar broadcasts.
    logit_diff : (int, int), optional
        Use ``c = e_i - e_j``.
    output_norm : {'linf', 'l1'}, optional
        Lipschitz constant of the vector output in this norm.

    Raises
    ------
    InputError
        Naming the bad argument.
    """
    if not isinstance(network, Network):
        raise InputError(f"network must be a bnblip.Network, got {type(network).__name__}")
    if not isinstance(box, Box):
        raise InputError(f"domain must be a bnblip.Box, got {type(box).__name__}")
    if box.dim != network.input_dim:
        raise InputError(f"domain has dimension {box.dim} but the network takes "
                         f"{network.input_dim} inputs")
    functionals, onorm = _functionals(network, c, logit_diff, output_norm)
    return Problem(network, box, Norm.parse(norm), functionals, onorm)
