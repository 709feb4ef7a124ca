"""One entry point for every model file: dispatch on the file suffix."""

from __future__ import annotations

import os
from pathlib import Path

from bnblip.errors import InputError
from bnblip.network import Network

SUFFIXES = (".onnx", ".pt", ".pth", ".npz")
"""File suffixes :func:`load` understands (case-insensitive)."""


def _model_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: model file does not exist")
    if not p.is_file():
        raise InputError(f"{p}: model path is not a regular file")
    if p.suffix.lower() not in SUFFIXES:
        raise InputError(f"{p}: unknown model file suffix {p.suffix!r}; expected one of "
                         f"{', '.join(SUFFIXES)}")
    return p


def load(path) -> Network:
    """Load a ReLU network from a model file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.onnx``: a graph of Gemm / MatMul (+ Add) / Relu / Flatten / Identity
        nodes, e.g. what ``torch.onnx.export`` writes for an MLP.
        ``.pt`` / ``.pth``: a whole ``nn.Sequential`` saved with ``torch.save(model)``
        or its ``state_dict`` (see :func:`bnblip.io.torch_io.load_torch`).
        ``.npz``: arrays ``W0, b0, W1, b1, ...`` with ``W`` shaped ``(out, in)``.

    Returns
    -------
    Network
        Float64 network; consecutive affine layers are merged.

    Raises
    ------
    InputError
        When the file is missing, has an unknown suffix, cannot be read, or holds
        invalid weights (the message names the path, the layer and the rule).
    UnsupportedModelError
        When the model contains an operator or layer bnblip cannot represent.
    """
    p = _model_path(path)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from bnblip.io.onnx_io import load_onnx

        return load_onnx(p)
    if suffix == ".npz":
        from bnblip.io.npz_io import load_npz

        return load_npz(p)
    from bnblip.io.torch_io import load_torch

    return load_torch(p)
