"""PyTorch models: ``nn.Sequential`` MLPs and their ``.pt`` / ``.pth`` files.

Two kinds of file are accepted by :func:`load_torch`:

* a whole module saved with ``torch.save(model)``: an ``nn.Sequential`` (possibly
  nested) of ``Linear`` (with or without bias), ``ReLU``, ``Flatten`` and
  ``Identity``.  Such a file is first read with ``weights_only=True``, allowing
  exactly those classes, so a plain MLP is loaded without running pickled code.
  Any other pickle is read with ``weights_only=False`` -- that executes code stored
  in the file, so only load files you trust -- and its layers are then checked.
* a ``state_dict`` of an ``nn.Sequential`` MLP (``torch.save(model.state_dict())``),
  keys like ``0.weight, 0.bias, 2.weight, ...``.  Layers are taken in index order
  (insertion order when the keys are not numbered).  Linear layers whose indices
  are adjacent (``0`` then ``1``: nothing can sit between them) are merged; between
  any other two consecutive Linear layers the parameterless modules in the gap are
  taken to be one ``ReLU``, as in ``Sequential(Linear, ReLU, Linear, ...)``.  A
  state_dict cannot record activation types: if the gap held anything but a ReLU
  (and no-ops), save the whole module instead.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bnblip.errors import InputError, UnsupportedModelError
from bnblip.io.layers import Op, ReluOp, affine, network_from_ops
from bnblip.network import Network

logger = logging.getLogger(__name__)

_SUPPORTED = "nn.Sequential (possibly nested) of Linear, ReLU, Flatten and Identity"


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise InputError("torch models need the 'torch' package "
                         "(pip install 'bnblip[torch]')") from exc
    return torch


def _leaves(module, path: str, source: str) -> list[tuple[str, object]]:
    """Leaf layers of a (nested) Sequential with their dotted index paths."""
    from torch import nn

    if not isinstance(module, nn.Sequential):
        return [(path, module)]
    leaves: list[tuple[str, object]] = []
    for name, child in module.named_children():
        leaves.extend(_leaves(child, f"{path}.{name}" if path else name, source))
    return leaves


def _to_numpy(tensor) -> np.ndarray:
    return tensor.detach().to("cpu").double().numpy()


def _layer_op(path: str, layer, source: str) -> Op | None:
    from torch import nn

    label = f"layer {path} ({type(layer).__name__})" if path else type(layer).__name__
    if isinstance(layer, nn.Linear):
        bias = None if layer.bias is None else _to_numpy(layer.bias)
        return affine(_to_numpy(layer.weight), bias, label, source)
    if isinstance(layer, nn.ReLU):
        return ReluOp(label)
    if isinstance(layer, nn.Identity):
        return None
    if isinstance(layer, nn.Flatten):
        if layer.start_dim == 1 and layer.end_dim == -1:
            return None
        raise UnsupportedModelError(f"{source}: {label}: only Flatten(start_dim=1, "
                                    f"end_dim=-1) is supported, got start_dim="
                                    f"{layer.start_dim}, end_dim={layer.end_dim}")
    raise UnsupportedModelError(f"{source}: {label}: layer class {type(layer).__name__} is not "
                                f"supported; bnblip accepts an {_SUPPORTED}")


def network_from_module(module, *, source: str = "torch module") -> Network:
    """Convert an ``nn.Sequential`` MLP (or a single ``nn.Linear``) into a :class:`Network`.

    Parameters
    ----------
    module : torch.nn.Module
        ``nn.Sequential``, possibly nested, of ``Linear`` / ``ReLU`` / ``Flatten`` /
        ``Identity``; it must end on a ``Linear`` layer.  Consecutive Linear layers
        are merged.
    source : str
        Prefix of error messages (the file name when loading from disk).

    Raises
    ------
    UnsupportedModelError
        Naming the index path (``"3"`` or ``"3.1"`` when nested) and the class of the
        first unsupported layer.
    InputError
        When ``module`` is not a torch module, or on non-finite weights or widths
        that do not chain (naming the layer).
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"{source}: module must be a torch.nn.Module, got "
                         f"{type(module).__name__}")
    ops = [op for path, layer in _leaves(module, "", source)
           if (op := _layer_op(path, layer, source)) is not None]
    return network_from_ops(ops, source)


# ---------------------------------------------------------------- state_dict
def _split_key(key, source: str) -> tuple[str, str]:
    prefix, _, kind = str(key).rpartition(".")
    if kind not in ("weight", "bias") or not prefix:
        raise UnsupportedModelError(
            f"{source}: state_dict key {key!r} is not the weight or bias of a Linear layer; "
            "only state_dicts of an nn.Sequential of Linear/ReLU layers are supported")
    return prefix, kind


def _group(state: Mapping, source: str) -> dict[str, dict[str, np.ndarray]]:
    torch = _import_torch()
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        prefix, kind = _split_key(key, source)
        if not isinstance(value, (torch.Tensor, np.ndarray)):
            raise InputError(f"{source}: state_dict entry {key!r} is a "
                             f"{type(value).__name__}, not a tensor")
        array = _to_numpy(value) if isinstance(value, torch.Tensor) else np.asarray(value)
        groups.setdefault(prefix, {})[kind] = array
    if not groups:
        raise InputError(f"{source}: the state_dict is empty")
    return groups


def _index_paths(prefixes: list[str]) -> list[tuple[int, ...]] | None:
    """Integer index paths after the common non-numeric prefix, or None if not numbered."""
    split = [p.split(".") for p in prefixes]
    common = 0
    while all(len(s) > common + 1 and s[common] == split[0][common] and not s[common].isdigit()
              for s in split):
        common += 1
    rest = [s[common:] for s in split]
    if not all(part.isdigit() for parts in rest for part in parts):
        return None
    return [tuple(int(part) for part in parts) for parts in rest]


def _adjacent(first: tuple[int, ...], second: tuple[int, ...]) -> bool:
    """Whether ``second`` is the very next module after ``first`` (nothing between)."""
    step = first[:-1] + (first[-1] + 1,)
    return second[:len(step)] == step and all(i == 0 for i in second[len(step):])


def _ordered_layers(groups, source: str) -> list[tuple[str, bool]]:
    """Layer prefixes in forward order, each with whether a ReLU precedes it."""
    prefixes = list(groups)
    paths = _index_paths(prefixes)
    if paths is None:
        logger.debug("%s: state_dict keys are not numbered; using their stored order", source)
        return [(p, k > 0) for k, p in enumerate(prefixes)]
    order = sorted(range(len(prefixes)), key=lambda k: paths[k])
    return [(prefixes[k], pos > 0 and not _adjacent(paths[order[pos - 1]], paths[k]))
            for pos, k in enumerate(order)]


def network_from_state_dict(state: Mapping, source: str = "state_dict") -> Network:
    """Convert the ``state_dict`` of an ``nn.Sequential`` MLP into a :class:`Network`.

    See the module docstring for how the layer order and the ReLUs are inferred.

    Raises
    ------
    UnsupportedModelError
        On keys that are not ``<prefix>.weight`` / ``<prefix>.bias`` or weights that
        are not 2-D (convolutions, normalisation layers).
    InputError
        On a bias without weight, non-finite values or widths that do not chain.
    """
    groups = _group(state, source)
    ops: list[Op] = []
    for prefix, relu_before in _ordered_layers(groups, source):
        params = groups[prefix]
        if "weight" not in params:
            raise InputError(f"{source}: state_dict has {prefix}.bias but no {prefix}.weight")
        if params["weight"].ndim != 2:
            raise UnsupportedModelError(
                f"{source}: {prefix}.weight has shape {params['weight'].shape}; only Linear "
                "layers (2-D weights) are supported in a state_dict")
        if relu_before:
            ops.append(ReluOp(f"ReLU assumed before layer {prefix}"))
        ops.append(affine(params["weight"], params.get("bias"), f"layer {prefix} (Linear)",
                          source))
    return network_from_ops(ops, source)


# ---------------------------------------------------------------- files
def _read(path: Path):
    torch = _import_torch()
    from torch import nn

    allowed = [nn.Sequential, nn.Linear, nn.ReLU, nn.Flatten, nn.Identity]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        logger.warning("%s: not a plain state_dict or MLP; unpickling it with "
                       "weights_only=False (runs code from the file)", path)
    except Exception as exc:
        raise InputError(f"{path}: cannot read as a torch file ({exc})") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(f"{path}: cannot read as a torch file ({exc})") from exc


def load_torch(path: str | Path) -> Network:
    """Load a ``.pt`` / ``.pth`` file: a whole ``nn.Sequential`` or its ``state_dict``.

    Raises
    ------
    InputError
        When the file cannot be read or holds neither a module nor a state_dict.
    UnsupportedModelError
        When the module or state_dict holds a layer bnblip cannot represent.
    """
    torch = _import_torch()
    obj = _read(Path(path))
    if isinstance(obj, torch.nn.Module):
        return network_from_module(obj, source=str(path))
    if isinstance(obj, Mapping):
        return network_from_state_dict(obj, source=str(path))
    raise InputError(f"{path}: holds a {type(obj).__name__}; expected a whole nn.Sequential "
                     "saved with torch.save(model) or its state_dict")
