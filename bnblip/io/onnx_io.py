"""ONNX graphs of Gemm / MatMul / Add / Relu / Flatten / Reshape / Identity.

The graph must be a chain from its single input to its single output.  Weights
come from initializers or ``Constant`` nodes.  Supported nodes:

* ``Gemm`` -- ``alpha * x @ B' + beta * C`` with ``B' = B`` (``transB=0``, B shaped
  ``(in, out)``) or ``B^T`` (``transB=1``, B shaped ``(out, in)``); ``C`` optional.
  ``transA=1`` (a transposed data input) is rejected.
* ``MatMul`` with a constant 2-D right operand, usually followed by
* ``Add`` of a constant bias (either operand order);
* ``Relu``;
* ``Flatten`` (``axis=1``), ``Reshape`` to ``(batch, features)`` and ``Identity``: no-ops
  on the per-sample feature vector (the dynamo exporter writes Flatten as Reshape).

What ``torch.onnx.export`` writes for an ``nn.Sequential`` MLP is covered by both
its TorchScript exporter (``dynamo=False``: Flatten, Gemm, MatMul without bias)
and its dynamo exporter (Reshape, Gemm with or without ``C``).  A leading batch
dimension in the input shape is expected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np

from bnblip.errors import InputError, UnsupportedModelError
from bnblip.io.layers import Op, ReluOp, affine, network_from_ops
from bnblip.network import Network

logger = logging.getLogger(__name__)

SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Relu", "Flatten", "Reshape", "Identity", "Constant")
"""ONNX operator types accepted by :func:`network_from_onnx`."""


@dataclass(frozen=True)
class _Features:
    """Shape of the data tensor without its batch dimension.

    ``dims`` are the per-sample dimensions (``None`` where unknown); ``batched``
    says whether a leading batch dimension is present.
    """

    dims: tuple[int | None, ...]
    batched: bool

    @property
    def size(self) -> int | None:
        return None if any(d is None for d in self.dims) else int(prod(self.dims))

    @property
    def width(self) -> int | None:
        """Feature count when the tensor is a (batch of) vector(s), else None."""
        return self.dims[0] if len(self.dims) == 1 else None


@dataclass(frozen=True)
class _Context:
    """Everything a node converter needs besides the node itself."""

    constants: dict
    source: str


def _label(node, index: int) -> str:
    name = node.name if node.name else f"#{index} (unnamed)"
    return f"{node.op_type} node {name!r}"


def _attributes(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _constant_value(node, source: str, label: str) -> np.ndarray:
    from onnx import numpy_helper

    attrs = _attributes(node)
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key in ("value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            return np.asarray(attrs[key])
    raise UnsupportedModelError(f"{source}: {label}: only Constant nodes holding a numeric "
                                "tensor ('value', 'value_float(s)', 'value_int(s)') are supported")


def _collect_constants(graph, source: str) -> dict:
    from onnx import numpy_helper

    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            constants[node.output[0]] = _constant_value(node, source, _label(node, index))
    return constants


def _check_operators(graph, source: str) -> None:
    for index, node in enumerate(graph.node):
        if node.op_type not in SUPPORTED_OPS or node.domain not in ("", "ai.onnx"):
            domain = f" of domain {node.domain!r}" if node.domain not in ("", "ai.onnx") else ""
            raise UnsupportedModelError(
                f"{source}: unsupported ONNX operator {node.op_type!r}{domain} in "
                f"{_label(node, index)}; supported operators: {', '.join(SUPPORTED_OPS)}")


def _input_features(value_info) -> _Features:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return _Features((None,), True)
    dims = tuple(d.dim_value if d.HasField("dim_value") else None
                 for d in tensor_type.shape.dim)
    if len(dims) <= 1:
        return _Features(dims or (None,), False)
    return _Features(dims[1:], True)


def _graph_input(graph, constants: dict, source: str):
    inputs = [v for v in graph.input if v.name not in constants]
    if len(inputs) != 1:
        raise InputError(f"{source}: the graph must have exactly one data input, found "
                         f"{len(inputs)} ({', '.join(v.name for v in inputs) or 'none'})")
    return inputs[0]


def _graph_output(graph, source: str) -> str:
    if len(graph.output) != 1:
        raise InputError(f"{source}: the graph must have exactly one output, found "
                         f"{len(graph.output)}")
    return graph.output[0].name


def _constant(ctx: _Context, name: str, label: str, role: str) -> np.ndarray:
    if name not in ctx.constants:
        raise UnsupportedModelError(f"{ctx.source}: {label}: the {role} {name!r} is not a "
                                    "constant (initializer or Constant node)")
    value = np.asarray(ctx.constants[name])
    if value.dtype.kind not in "iuf":
        raise InputError(f"{ctx.source}: {label}: the {role} {name!r} must be a real numeric "
                         f"tensor, got dtype {value.dtype}")
    return value


def _require_data_first(node, data: str, ctx: _Context, label: str) -> None:
    if len(node.input) < 2 or node.input[0] != data or node.input[1] == data:
        raise UnsupportedModelError(f"{ctx.source}: {label}: the data tensor must be the "
                                    "first input and a constant weight the second")


def _require_vector(features: _Features, ctx: _Context, label: str) -> None:
    if len(features.dims) != 1:
        raise InputError(f"{ctx.source}: {label}: receives per-sample shape "
                         f"{features.dims}; an affine layer needs a vector (add a Flatten)")


def _bias_vector(value: np.ndarray, out: int, ctx: _Context, label: str) -> np.ndarray:
    value = np.asarray(value)
    if value.size == 1:
        return np.full(out, value.reshape(()).item(), dtype=np.float64)
    if value.shape in ((out,), (1, out)):
        return value.reshape(out)
    raise InputError(f"{ctx.source}: {label}: bias shape {value.shape} is not a per-output "
                     f"bias of the {out} outputs (expected ({out},) or (1, {out}))")


def _gemm(node, data, features, ctx, label) -> tuple[list[Op], _Features]:
    attrs = _attributes(node)
    if int(attrs.get("transA", 0)) != 0:
        raise UnsupportedModelError(f"{ctx.source}: {label}: transA=1 (transposed data "
                                    "input) is not supported")
    _require_data_first(node, data, ctx, label)
    _require_vector(features, ctx, label)
    b_matrix = _constant(ctx, node.input[1], label, "weight input B")
    if b_matrix.ndim != 2:
        raise InputError(f"{ctx.source}: {label}: weight B must be 2-D, got shape "
                         f"{b_matrix.shape}")
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    weight = b_matrix.astype(np.float64)
    weight = alpha * (weight if int(attrs.get("transB", 0)) else weight.T)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c_value = _constant(ctx, node.input[2], label, "bias input C")
        bias = beta * _bias_vector(c_value.astype(np.float64), weight.shape[0], ctx, label)
    op = affine(weight, bias, label, ctx.source)
    return [op], _Features((op.out_dim,), features.batched)


def _matmul(node, data, features, ctx, label) -> tuple[list[Op], _Features]:
    _require_data_first(node, data, ctx, label)
    _require_vector(features, ctx, label)
    b_matrix = _constant(ctx, node.input[1], label, "weight input")
    if b_matrix.ndim != 2:
        raise UnsupportedModelError(f"{ctx.source}: {label}: only a 2-D constant weight "
                                    f"(in, out) is supported, got shape {b_matrix.shape}")
    op = affine(np.asarray(b_matrix).T, None, label, ctx.source)
    return [op], _Features((op.out_dim,), features.batched)


def _add(node, data, features, ctx, label) -> tuple[list[Op], _Features]:
    others = [name for name in node.input if name != data]
    if len(node.input) != 2 or len(others) != 1:
        raise UnsupportedModelError(f"{ctx.source}: {label}: only the addition of a constant "
                                    "bias to the data tensor is supported")
    value = _constant(ctx, others[0], label, "bias input")
    _require_vector(features, ctx, label)
    width = features.width
    if width is None:
        width = value.shape[-1] if value.ndim >= 1 and value.size > 1 else None
    if width is None:
        raise InputError(f"{ctx.source}: {label}: cannot tell the width of the data tensor "
                         "to add a scalar to; declare the input shape")
    bias = _bias_vector(value.astype(np.float64), width, ctx, label)
    return [affine(np.eye(width), bias, label, ctx.source)], _Features((width,), features.batched)


def _flatten(node, data, features, ctx, label) -> tuple[list[Op], _Features]:
    rank = len(features.dims) + int(features.batched)
    axis = int(_attributes(node).get("axis", 1))
    axis = axis + rank if axis < 0 else axis
    if axis != 1 or not features.batched:
        raise UnsupportedModelError(f"{ctx.source}: {label}: only Flatten with axis=1 on a "
                                    "batched tensor is supported (keeps the batch dimension)")
    return [], _Features((features.size,), True)


def _keeps_batch(first: int, allowzero: int) -> bool:
    return (first == 0 and not allowzero) or first == -1 or first >= 1


def _reshape(node, data, features, ctx, label) -> tuple[list[Op], _Features]:
    if len(node.input) != 2 or node.input[0] != data:
        raise UnsupportedModelError(f"{ctx.source}: {label}: expected inputs (data, shape)")
    target = [int(v) for v in _constant(ctx, node.input[1], label, "shape input").ravel()]
    allowzero = int(_attributes(node).get("allowzero", 0))
    size = features.size
    flattens = (features.batched and len(target) == 2
                and _keeps_batch(target[0], allowzero)
                and (target[1] == size or (target[1] == -1 and target[0] != -1)
                     or (size is None and target[1] >= 1)))
    if not flattens:
        raise UnsupportedModelError(
            f"{ctx.source}: {label}: only a Reshape that flattens each sample to "
            f"(batch, features) is supported, got target shape {tuple(target)} for "
            f"per-sample shape {features.dims}")
    width = size if target[1] == -1 else target[1]
    return [], _Features((width,), True)


def _relu(node, data, features, ctx, label) -> tuple[list[Op], _Features]:
    return [ReluOp(label)], features


def _identity(node, data, features, ctx, label) -> tuple[list[Op], _Features]:
    return [], features


_CONVERTERS = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Relu": _relu,
    "Flatten": _flatten, "Reshape": _reshape, "Identity": _identity,
}


def _consumers(graph) -> dict[str, list[tuple[int, object]]]:
    users: dict[str, list[tuple[int, object]]] = {}
    for index, node in enumerate(graph.node):
        for name in dict.fromkeys(node.input):
            if name:
                users.setdefault(name, []).append((index, node))
    return users


def _next_node(users, tensor: str, output: str, source: str):
    """The single node consuming ``tensor``, or None at the graph output."""
    found = users.get(tensor, [])
    names = ", ".join(_label(node, index) for index, node in found)
    if tensor == output:
        if found:
            raise UnsupportedModelError(f"{source}: the graph output {output!r} is also used "
                                        f"by {names}; only a chain of nodes is supported")
        return None
    if not found:
        raise InputError(f"{source}: tensor {tensor!r} is not used by any node and is not "
                         f"the graph output {output!r}")
    if len(found) > 1:
        raise UnsupportedModelError(f"{source}: tensor {tensor!r} feeds several nodes "
                                    f"({names}); only a chain of nodes is supported")
    return found[0]


def network_from_onnx(model, source: str = "ONNX model") -> Network:
    """Convert an ``onnx.ModelProto`` into a :class:`Network`.

    Parameters
    ----------
    model : onnx.ModelProto
        A chain of supported nodes (see the module docstring).
    source : str
        Prefix of error messages (the file name when loading from disk).

    Raises
    ------
    UnsupportedModelError
        Naming the operator type and node of anything outside the supported set.
    InputError
        On non-finite weights or shapes that do not chain (naming the node).
    """
    graph = model.graph
    _check_operators(graph, source)
    constants = _collect_constants(graph, source)
    data_input = _graph_input(graph, constants, source)
    output = _graph_output(graph, source)
    ctx = _Context(constants, source)
    users = _consumers(graph)
    features = _input_features(data_input)
    input_dim = features.size
    tensor, ops = data_input.name, []
    for _ in range(len(graph.node) + 1):
        step = _next_node(users, tensor, output, source)
        if step is None:
            return network_from_ops(ops, source, input_dim=input_dim)
        index, node = step
        new_ops, features = _CONVERTERS[node.op_type](
            node, tensor, features, ctx, _label(node, index))
        ops.extend(new_ops)
        tensor = node.output[0]
    raise InputError(f"{source}: the graph does not reach its output {output!r} as a chain")


def load_onnx(path: str | Path) -> Network:
    """Load an ``.onnx`` file (see the module docstring for what is accepted).

    Raises
    ------
    InputError
        When the file cannot be parsed as ONNX, or its weights are invalid.
    UnsupportedModelError
        When the graph contains an unsupported operator or is not a chain.
    """
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is a hard dependency
        raise InputError(f"{path}: reading .onnx files needs the 'onnx' package") from exc
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise InputError(f"{path}: cannot read as an ONNX model ({exc})") from exc
    logger.debug("loaded ONNX graph %r from %s with %d nodes", model.graph.name, path,
                 len(model.graph.node))
    return network_from_onnx(model, source=str(path))
