"""Networks stored as NumPy ``.npz`` archives of ``W0, b0, W1, b1, ...``.

``W<k>`` has shape ``(out_k, in_k)`` and ``b<k>`` shape ``(out_k,)``; a ReLU sits
between consecutive layers and the last layer is affine.  Indices start at 0 and
have no gaps; every ``W<k>`` needs its ``b<k>``; other keys are rejected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bnblip.errors import InputError
from bnblip.io.layers import Op, ReluOp, affine, network_from_ops
from bnblip.network import Network

_KEY = re.compile(r"([Wb])(0|[1-9][0-9]*)")


def _split_keys(arrays: Mapping[str, np.ndarray], source: str) -> dict[str, dict[int, object]]:
    found: dict[str, dict[int, object]] = {"W": {}, "b": {}}
    for key, value in arrays.items():
        match = _KEY.fullmatch(str(key))
        if match is None:
            raise InputError(f"{source}: unexpected array {key!r}; an npz network holds only "
                             "W0, b0, W1, b1, ... (W shaped (out, in), b shaped (out,))")
        found[match.group(1)][int(match.group(2))] = value
    return found


def _layer_count(found: dict[str, dict[int, object]], source: str) -> int:
    count = len(found["W"])
    if count == 0:
        raise InputError(f"{source}: no weight arrays; an npz network holds W0, b0, W1, b1, ...")
    for k in range(count):
        if k not in found["W"]:
            raise InputError(f"{source}: W{k} is missing but W{max(found['W'])} is present; "
                             "layer indices must run 0, 1, 2, ... without gaps")
        if k not in found["b"]:
            raise InputError(f"{source}: b{k} is missing; every weight W{k} needs a bias b{k}")
    extra = sorted(set(found["b"]) - set(found["W"]))
    if extra:
        raise InputError(f"{source}: b{extra[0]} has no weight W{extra[0]}; every bias "
                         "b<k> needs a weight W<k>")
    return count


def network_from_arrays(arrays: Mapping[str, np.ndarray], source: str = "arrays") -> Network:
    """Build a network from a mapping ``{"W0": ..., "b0": ..., "W1": ..., ...}``.

    Raises
    ------
    InputError
        On unexpected keys, a missing ``b<k>``, a gap in the numbering, bad shapes
        or non-finite values (the message names the layer).
    """
    found = _split_keys(arrays, source)
    ops: list[Op] = []
    for k in range(_layer_count(found, source)):
        if k > 0:
            ops.append(ReluOp(f"ReLU after W{k - 1}"))
        ops.append(affine(found["W"][k], found["b"][k], f"layer {k} (W{k}, b{k})", source))
    return network_from_ops(ops, source)


def load_npz(path: str | Path) -> Network:
    """Load a network from an ``.npz`` file of ``W0, b0, W1, b1, ...``.

    Raises
    ------
    InputError
        When the file is not a readable npz archive or violates the layout above.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise InputError(f"{path}: is a single .npy array, not an .npz archive of "
                                 "W0, b0, W1, b1, ...")
            arrays = {name: data[name] for name in data.files}
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot read as an .npz archive ({exc})") from exc
    return network_from_arrays(arrays, source=str(path))
