"""Compiled (C) twins of the Numba bound kernels, with a Numba fallback.

The optional extension ``bnblip._ckernels`` (built from ``csrc/`` by ``setup.py``)
holds C versions of the kernels of :mod:`bnblip.bounds.kernels` with the same
arguments, the same output arrays and the same algorithm: the interval,
derivative and backward kernels give bit-identical results; the linear kernel
differs only by the rounding inside its matrix products (the Numba kernel calls
BLAS there), which the widening covers.  Unlike the Numba kernels, the C kernels
check their arguments (dtype, C-contiguity, lengths, writable outputs, a
consistent :class:`~bnblip.bounds.kernels.PackedNetwork`, or a plain tuple of
its seven fields in order) and raise ``TypeError`` / ``ValueError``; they take
positional arguments only and release the GIL while computing.  On x86-64 the
back-substitution products use AVX2 with fused multiply-add when the CPU has it
(chosen at run time; the portable C99 loops otherwise).

When the extension is missing (no compiler at install time) every name here
falls back to the Numba kernel, logged at debug level.

Use
---
Pick a backend once per solve and call through the record::

    kernels = select_kernels("c")          # C if built, else Numba
    net = pack_network(network)
    work = linear_workspace(net)
    empty = kernels.linear_forward(net, box_lo, box_hi, phases, prior_lo, prior_hi,
                                   tol.bound_rel_widen, tol.bound_abs_widen,
                                   z_lo, z_hi, work)

:func:`kernel_backend` returns one backend exactly (and fails when it is not
available).  The module-level functions (``linear_forward_kernel`` ...) are the
kernels of the best available backend under the Numba kernels' names.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from bnblip.bounds import kernels as _numba
from bnblip.errors import InputError

logger = logging.getLogger(__name__)


class Backend(enum.Enum):
    """Implementations of the bound kernels."""

    C = "c"
    NUMBA = "numba"


@dataclass(frozen=True)
class KernelSet:
    """The bound kernels of one backend (signatures of :mod:`bnblip.bounds.kernels`).

    Attributes
    ----------
    backend : Backend
    interval_forward : callable
        ``(net, x_lo, x_hi, phases, prior_lo, prior_hi, rel, absw, z_lo, z_hi) -> bool``
    linear_forward : callable
        ``(net, x_lo, x_hi, phases, prior_lo, prior_hi, rel, absw, z_lo, z_hi, work)
        -> bool``
    derivative : callable
        ``(z_lo, z_hi, phases, d_lo, d_hi) -> None``
    backward_interval : callable
        ``(net, c, d_lo, d_hi, rel, absw, y_lo, y_hi) -> None``
    """

    backend: Backend
    interval_forward: Callable[..., bool]
    linear_forward: Callable[..., bool]
    derivative: Callable[..., None]
    backward_interval: Callable[..., None]


def _load_extension() -> ModuleType | None:
    """The compiled module, or ``None`` when it was not built."""
    try:
        from bnblip import _ckernels
    except ImportError as exc:
        logger.debug("bnblip._ckernels is not available (%s); using the Numba kernels", exc)
        return None
    return _ckernels


def _kernel_set(backend: Backend, module) -> KernelSet:
    return KernelSet(
        backend=backend,
        interval_forward=module.interval_forward_kernel,
        linear_forward=module.linear_forward_kernel,
        derivative=module.derivative_kernel,
        backward_interval=module.backward_interval_kernel,
    )


_EXTENSION = _load_extension()

HAVE_C: bool = _EXTENSION is not None
"""Whether the compiled kernels are available."""

NUMBA_KERNELS = _kernel_set(Backend.NUMBA, _numba)
C_KERNELS: KernelSet | None = _kernel_set(Backend.C, _EXTENSION) if HAVE_C else None


def _backend(name) -> Backend:
    if isinstance(name, Backend):
        return name
    try:
        return Backend(name)
    except ValueError:
        choices = ", ".join(repr(b.value) for b in Backend)
        raise InputError(f"kernel backend must be one of {choices}, got {name!r}") from None


def available_backends() -> tuple[Backend, ...]:
    """The backends that can be used in this installation, fastest first."""
    return (Backend.C, Backend.NUMBA) if HAVE_C else (Backend.NUMBA,)


def kernel_backend(name: str | Backend) -> KernelSet:
    """The kernels of exactly the backend ``name`` (``"c"`` or ``"numba"``).

    Raises
    ------
    InputError
        When ``name`` is not a backend, or is ``"c"`` and the extension is not built.
    """
    backend = _backend(name)
    if backend is Backend.NUMBA:
        return NUMBA_KERNELS
    if C_KERNELS is None:
        raise InputError("kernel backend 'c' is not available: bnblip._ckernels was not "
                         "built (install with a C compiler); use 'numba'")
    return C_KERNELS


def select_kernels(prefer: str | Backend = Backend.C) -> KernelSet:
    """The kernels of ``prefer`` when available, else the Numba kernels.

    Raises
    ------
    InputError
        When ``prefer`` is not a backend name.
    """
    backend = _backend(prefer)
    if backend is Backend.C and C_KERNELS is None:
        logger.debug("C kernels requested but not built; using the Numba kernels")
        return NUMBA_KERNELS
    return kernel_backend(backend)


_BEST = select_kernels(Backend.C)

interval_forward_kernel = _BEST.interval_forward
"""Interval forward kernel of the best backend (see :mod:`bnblip.bounds.kernels`)."""
linear_forward_kernel = _BEST.linear_forward
"""Linear forward kernel of the best backend."""
derivative_kernel = _BEST.derivative
"""Derivative kernel of the best backend."""
backward_interval_kernel = _BEST.backward_interval
"""Backward interval kernel of the best backend."""


def forward_linear_with(kernels: KernelSet):
    """``forward_linear``-compatible function (network, lower, upper, phases, tol,
    prior) running ``kernels.linear_forward``."""
    from bnblip.bounds.kernels import _forward, linear_workspace

    def forward(network, lower, upper, phases=None, tol=None, prior=None):
        from bnblip.options import DEFAULT_TOLERANCES

        return _forward(kernels.linear_forward, network, lower, upper, phases,
                        DEFAULT_TOLERANCES if tol is None else tol, prior, linear_workspace)

    return forward


def unchecked_forward_linear_with(kernels: KernelSet):
    """Like :func:`forward_linear_with` for a ``PackedNetwork`` and arguments known
    to fit it (the solver's nodes: int8 phases, float64 box, ``prior`` bounds of the
    same widths), without validating them
    (:func:`bnblip.bounds.kernels.forward_unchecked`)."""
    from bnblip.bounds.kernels import forward_unchecked, linear_workspace

    def forward(net, lower, upper, phases, tol, prior=None):
        return forward_unchecked(kernels.linear_forward, net, lower, upper, phases, tol,
                                 prior, linear_workspace)

    return forward


def unchecked_backward_interval_with(kernels: KernelSet):
    """``backward_interval``-compatible function (packed network, c, dlo, dhi, tol)
    running ``kernels.backward_interval`` without validation (the solver's nodes:
    float64 ``c`` and derivative bounds of the network's widths, at least one
    hidden layer; :func:`bnblip.bounds.kernels.backward_unchecked`)."""
    from bnblip.bounds.kernels import backward_unchecked

    def backward(net, c, dlo, dhi, tol):
        return backward_unchecked(kernels.backward_interval, net, c, dlo, dhi, tol)

    return backward
