"""Model loaders: every loaded network must compute what onnxruntime / torch compute."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import bnblip
from bnblip.errors import InputError, UnsupportedModelError
from bnblip.io.npz_io import network_from_arrays
from bnblip.io.onnx_io import network_from_onnx
from bnblip.io.torch_io import network_from_module, network_from_state_dict

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
nn = torch.nn

NETS = Path("/work/shared/cases/nets")
if not NETS.is_dir():  # CI lays shared/ beside the clone
    NETS = Path(__file__).resolve().parents[2] / "shared" / "cases" / "nets"
CASE_NETS = sorted(p.stem for p in NETS.glob("*.onnx"))

# float32 models evaluated in float32 by onnxruntime / torch: a few ulps per layer
F32 = {"rtol": 1e-5, "atol": 1e-5}
# float64 models
F64 = {"rtol": 1e-12, "atol": 1e-12}


# ------------------------------------------------------------------ helpers
def ort_forward(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: x})[0]


def make_model(nodes, inits, in_shape, dtype=TensorProto.DOUBLE, out="y", x="x"):
    """A one-input one-output graph; ``inits`` maps names to numpy arrays."""
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(x, dtype, in_shape)],
        [helper.make_tensor_value_info(out, dtype, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), name=k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def save(model: onnx.ModelProto, tmp_path: Path, name="m.onnx") -> Path:
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def numpy_mlp(weights, biases, x):
    """Independent forward pass: ReLU between every pair of affine layers."""
    a = np.asarray(x, dtype=np.float64)
    for k, (w, b) in enumerate(zip(weights, biases)):
        a = a @ np.asarray(w, dtype=np.float64).T + b
        if k < len(weights) - 1:
            a = np.maximum(a, 0.0)
    return a


def torch_forward(module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.double()(torch.from_numpy(x)).numpy()


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


# ------------------------------------------------------------------ public cases
@pytest.mark.parametrize("name", CASE_NETS)
def test_case_onnx_equals_npz_and_onnxruntime(name, rng):
    net = bnblip.load(NETS / f"{name}.onnx")
    ref = bnblip.load(NETS / f"{name}.npz")
    assert net.widths == ref.widths
    for mine, theirs in zip(net.weights + net.biases, ref.weights + ref.biases):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=0)
    x = rng.uniform(-1, 1, size=(64, net.input_dim)).astype(np.float32)
    expected = ort_forward(onnx.load(str(NETS / f"{name}.onnx")), x)
    np.testing.assert_allclose(net.forward(x), expected, **F32)
    with np.load(NETS / f"{name}.npz") as data:
        k = len(data.files) // 2
        weights = [data[f"W{i}"] for i in range(k)]
        biases = [data[f"b{i}"] for i in range(k)]
    np.testing.assert_allclose(ref.forward(x), numpy_mlp(weights, biases, x), **F64)


def test_case_count():
    assert len(CASE_NETS) >= 3
    shapes = {json.dumps([n.op_type for n in onnx.load(str(NETS / f"{c}.onnx")).graph.node])
              for c in CASE_NETS}
    assert any("MatMul" in s for s in shapes) and any("Gemm" in s for s in shapes)


# ------------------------------------------------------------------ torch.onnx.export
def _export(module, example, path, dynamic=False):
    kwargs = {"dynamic_axes": {"x": {0: "batch"}}} if dynamic else {}
    module.eval()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated in torch 2.9+
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (example,), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"], **kwargs)


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_onnx_export_mlp(tmp_path, rng, dynamic):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 5),
                           nn.ReLU(), nn.Identity(), nn.Linear(5, 3))
    path = tmp_path / "mlp.onnx"
    _export(module, torch.zeros(1, 2, 3), path, dynamic)
    net = bnblip.load(path)
    assert net.widths == (6, 7, 5, 3)
    x = rng.normal(size=(1, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x.reshape(1, 6)), ort_forward(onnx.load(path), x),
                               **F32)
    xs = rng.normal(size=(32, 6))
    np.testing.assert_allclose(net.forward(xs), torch_forward(module, xs), **F64)


def test_torch_onnx_export_merges_linear_without_relu(tmp_path, rng):
    torch.manual_seed(1)
    module = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.Linear(5, 3),
                           nn.ReLU(), nn.Linear(3, 2, bias=False))
    path = tmp_path / "merge.onnx"
    _export(module, torch.zeros(1, 4), path, dynamic=True)
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert "MatMul" in ops  # Linear without bias is exported as a bare MatMul
    net = bnblip.load(path)
    assert net.widths == (4, 6, 3, 2)
    xs = rng.normal(size=(40, 4))
    np.testing.assert_allclose(net.forward(xs), torch_forward(module, xs), **F64)
    np.testing.assert_allclose(net.forward(xs.astype(np.float32)),
                               ort_forward(onnx.load(path), xs.astype(np.float32)), **F32)


def test_torch_onnx_export_dynamo(tmp_path, rng):
    # torch 2.13's default exporter; it needs onnxscript, which is not a dependency
    pytest.importorskip("onnxscript")
    torch.manual_seed(2)
    module = nn.Sequential(nn.Flatten(), nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 5),
                           nn.Linear(5, 3, bias=False)).eval()
    path = tmp_path / "dynamo.onnx"
    batch = torch.export.Dim("batch", min=2)
    torch.onnx.export(module, (torch.zeros(2, 3, 2),), str(path), dynamo=True,
                      input_names=["x"], output_names=["y"],
                      dynamic_shapes=({0: batch},), verbose=False)
    net = bnblip.load(path)
    assert net.widths == (6, 7, 3)
    x = rng.normal(size=(9, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x.reshape(9, 6)), ort_forward(onnx.load(path), x),
                               **F32)


# ------------------------------------------------------------------ hand-built graphs
def test_gemm_trans_b0_alpha_beta(tmp_path, rng):
    w0 = rng.normal(size=(3, 5))  # transB=0: B is (in, out)
    c0 = rng.normal(size=(1, 5))  # (1, out) bias
    w1 = rng.normal(size=(4, 5))  # transB=1: B is (out, in)
    c1 = np.array(0.7)  # scalar bias broadcast
    nodes = [
        helper.make_node("Gemm", ["x", "B0", "C0"], ["z0"], name="g0", alpha=0.5, beta=-2.0),
        helper.make_node("Relu", ["z0"], ["a0"], name="r0"),
        helper.make_node("Gemm", ["a0", "B1", "C1"], ["y"], name="g1", alpha=1.5, beta=3.0,
                         transB=1),
    ]
    model = make_model(nodes, {"B0": w0, "C0": c0, "B1": w1, "C1": c1}, ["N", 3])
    net = bnblip.load(save(model, tmp_path))
    x = rng.normal(size=(50, 3))
    np.testing.assert_allclose(net.forward(x), ort_forward(model, x), **F64)
    expected = numpy_mlp([0.5 * w0.T, 1.5 * w1], [-2.0 * c0[0], np.full(4, 2.1)], x)
    np.testing.assert_allclose(net.forward(x), expected, **F64)


def test_gemm_without_c_float32(tmp_path, rng):
    w = rng.normal(size=(2, 3)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], name="only", transB=1)]
    model = make_model(nodes, {"W": w}, ["batch", 3], dtype=TensorProto.FLOAT)
    net = bnblip.load(save(model, tmp_path))
    x = rng.normal(size=(20, 3)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), ort_forward(model, x), **F32)
    np.testing.assert_array_equal(net.biases[0], np.zeros(2))


@pytest.mark.parametrize("bias_first", [False, True])
def test_matmul_add_with_constant_node(tmp_path, rng, bias_first):
    w0, b0 = rng.normal(size=(4, 6)), rng.normal(size=6)
    w1, b1 = rng.normal(size=(6, 2)), rng.normal(size=(1, 2))
    const = helper.make_node("Constant", [], ["b1"], name="const_b1",
                             value=numpy_helper.from_array(b1))
    add1_inputs = ["b1", "m1"] if bias_first else ["m1", "b1"]
    nodes = [
        helper.make_node("MatMul", ["x", "W0"], ["m0"], name="mm0"),
        helper.make_node("Add", ["b0", "m0"] if bias_first else ["m0", "b0"], ["z0"], name="a0"),
        helper.make_node("Relu", ["z0"], ["h0"], name="r0"),
        const,
        helper.make_node("MatMul", ["h0", "W1"], ["m1"], name="mm1"),
        helper.make_node("Add", add1_inputs, ["y"], name="a1"),
    ]
    model = make_model(nodes, {"W0": w0, "b0": b0, "W1": w1}, ["batch", 4])
    net = bnblip.load(save(model, tmp_path))
    assert net.widths == (4, 6, 2)
    x = rng.normal(size=(30, 4))
    np.testing.assert_allclose(net.forward(x), ort_forward(model, x), **F64)
    np.testing.assert_allclose(net.forward(x), numpy_mlp([w0.T, w1.T], [b0, b1[0]], x), **F64)


def test_flatten_identity_reshape_are_noops(tmp_path, rng):
    w0, w1 = rng.normal(size=(5, 6)), rng.normal(size=(2, 5))
    nodes = [
        helper.make_node("Identity", ["x"], ["i0"], name="id0"),
        helper.make_node("Flatten", ["i0"], ["f0"], name="flat", axis=1),
        helper.make_node("Gemm", ["f0", "W0"], ["z0"], name="g0", transB=1),
        helper.make_node("Relu", ["z0"], ["a0"], name="r0"),
        helper.make_node("Identity", ["a0"], ["i1"], name="id1"),
        helper.make_node("Gemm", ["i1", "W1"], ["y"], name="g1", transB=1),
    ]
    model = make_model(nodes, {"W0": w0, "W1": w1}, ["batch", 2, 3])
    net = bnblip.load(save(model, tmp_path))
    x = rng.normal(size=(10, 2, 3))
    np.testing.assert_allclose(net.forward(x.reshape(10, 6)), ort_forward(model, x), **F64)


def test_dynamo_style_reshape(tmp_path, rng):
    # torch's dynamo exporter writes Flatten as Reshape(x, [-1, features])
    w0, b0, w1 = rng.normal(size=(5, 6)), rng.normal(size=5), rng.normal(size=(2, 5))
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["v"], name="node_view", allowzero=1),
        helper.make_node("Gemm", ["v", "W0", "b0"], ["z0"], name="node_linear", transB=1),
        helper.make_node("Relu", ["z0"], ["a0"], name="node_relu"),
        helper.make_node("Gemm", ["a0", "W1"], ["y"], name="node_linear_1", transB=1),
    ]
    inits = {"W0": w0, "b0": b0, "W1": w1, "shape": np.array([-1, 6], dtype=np.int64)}
    model = make_model(nodes, inits, ["batch", 3, 2])
    net = bnblip.load(save(model, tmp_path))
    x = rng.normal(size=(7, 3, 2))
    np.testing.assert_allclose(net.forward(x.reshape(7, 6)), ort_forward(model, x), **F64)


def test_consecutive_affine_layers_are_merged(tmp_path, rng):
    w0, b0 = rng.normal(size=(3, 6)), rng.normal(size=6)  # MatMul (in, out)
    w1, b1 = rng.normal(size=(4, 6)), rng.normal(size=4)  # Gemm transB=1
    w2, b2 = rng.normal(size=(2, 4)), rng.normal(size=2)
    nodes = [
        helper.make_node("MatMul", ["x", "W0"], ["m0"], name="mm0"),
        helper.make_node("Add", ["m0", "b0"], ["z0"], name="add0"),
        helper.make_node("Gemm", ["z0", "W1", "b1"], ["z1"], name="g1", transB=1),
        helper.make_node("Relu", ["z1"], ["a1"], name="r1"),
        helper.make_node("Relu", ["a1"], ["a1b"], name="r1b"),  # idempotent
        helper.make_node("Gemm", ["a1b", "W2", "b2"], ["y"], name="g2", transB=1),
    ]
    model = make_model(nodes, {"W0": w0, "b0": b0, "W1": w1, "b1": b1, "W2": w2, "b2": b2},
                       ["batch", 3])
    net = bnblip.load(save(model, tmp_path))
    assert net.widths == (3, 4, 2)
    np.testing.assert_allclose(net.weights[0], w1 @ w0.T, **F64)
    np.testing.assert_allclose(net.biases[0], w1 @ b0 + b1, **F64)
    x = rng.normal(size=(25, 3))
    np.testing.assert_allclose(net.forward(x), ort_forward(model, x), **F64)


def test_network_from_onnx_model_proto(rng):
    w = rng.normal(size=(2, 2))
    model = make_model([helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)], {"W": w}, [2])
    net = network_from_onnx(model)
    np.testing.assert_array_equal(net.weights[0], w)


# ------------------------------------------------------------------ torch modules and files
def _nested_mlp():
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(),
                         nn.Sequential(nn.Linear(8, 5, bias=False), nn.ReLU()),
                         nn.Identity(), nn.Linear(5, 3))


def test_network_from_module_nested(rng):
    module = _nested_mlp()
    net = bnblip.Network.from_torch(module)
    assert net.widths == (6, 8, 5, 3)
    x = rng.normal(size=(40, 6))
    np.testing.assert_allclose(net.forward(x), torch_forward(module, x), **F64)


def test_network_from_module_float32_merges_linear(rng):
    torch.manual_seed(4)
    module = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    net = network_from_module(module)
    assert net.widths == (3, 4, 2)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.forward(x), expected, **F32)


def test_pt_whole_module(tmp_path, rng):
    module = _nested_mlp()
    torch.save(module, tmp_path / "whole.pt")
    net = bnblip.load(tmp_path / "whole.pt")
    x = rng.normal(size=(30, 6))
    np.testing.assert_allclose(net.forward(x), torch_forward(module, x), **F64)


def test_pth_whole_module_with_unsupported_layer_is_named(tmp_path):
    torch.save(nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1)), tmp_path / "t.pth")
    with pytest.raises(UnsupportedModelError, match=r"t\.pth.*layer 1 \(Tanh\)"):
        bnblip.load(tmp_path / "t.pth")


def test_pt_state_dict(tmp_path, rng):
    torch.manual_seed(5)
    module = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU(),
                           nn.Linear(6, 2, bias=False))
    torch.save(module.state_dict(), tmp_path / "sd.pth")
    net = bnblip.load(tmp_path / "sd.pth")
    assert net.widths == (5, 7, 6, 2)
    x = rng.normal(size=(30, 5))
    np.testing.assert_allclose(net.forward(x), torch_forward(module, x), **F64)


def test_state_dict_adjacent_linear_layers_merge_and_gaps_get_relu(rng):
    torch.manual_seed(6)
    module = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 6), nn.ReLU(),
                           nn.Sequential(nn.Linear(6, 3), nn.ReLU()), nn.Linear(3, 2))
    net = network_from_state_dict(module.state_dict())
    assert net.widths == (4, 6, 3, 2)
    x = rng.normal(size=(30, 4))
    np.testing.assert_allclose(net.forward(x), torch_forward(module, x), **F64)


def test_state_dict_named_layers_keep_their_order(rng):
    weights = [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))]
    biases = [rng.normal(size=4), rng.normal(size=2)]
    state = {"fc1.weight": torch.tensor(weights[0]), "fc1.bias": torch.tensor(biases[0]),
             "out.weight": torch.tensor(weights[1]), "out.bias": torch.tensor(biases[1])}
    net = network_from_state_dict(state)
    x = rng.normal(size=(10, 3))
    np.testing.assert_allclose(net.forward(x), numpy_mlp(weights, biases, x), **F64)


# ------------------------------------------------------------------ npz
def test_npz_roundtrip(tmp_path, rng):
    weights = [rng.normal(size=(5, 3)), rng.normal(size=(4, 5)), rng.normal(size=(1, 4))]
    biases = [rng.normal(size=5), rng.normal(size=4), rng.normal(size=1)]
    arrays = {f"W{k}": w for k, w in enumerate(weights)}
    arrays.update({f"b{k}": b for k, b in enumerate(biases)})
    np.savez(tmp_path / "net.npz", **arrays)
    net = bnblip.load(str(tmp_path / "net.npz"))
    x = rng.normal(size=(20, 3))
    np.testing.assert_allclose(net.forward(x), numpy_mlp(weights, biases, x), **F64)


# ------------------------------------------------------------------ error messages
def _gemm_chain(weights, names=("g0", "g1"), relu=True):
    nodes, inits, tensor = [], {}, "x"
    for k, (w, name) in enumerate(zip(weights, names)):
        out = "y" if k == len(weights) - 1 else f"z{k}"
        nodes.append(helper.make_node("Gemm", [tensor, f"W{k}"], [out], name=name, transB=1))
        inits[f"W{k}"] = w
        tensor = out
        if relu and k < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"a{k}"], name=f"relu{k}"))
            tensor = f"a{k}"
    return nodes, inits


def test_error_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.onnx: model file does not exist"):
        bnblip.load(tmp_path / "nope.onnx")


def test_error_unknown_suffix(tmp_path):
    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(InputError, match=r"model\.h5: unknown model file suffix '\.h5'"):
        bnblip.load(tmp_path / "model.h5")


def test_error_path_not_a_file(tmp_path):
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(InputError, match="not a regular file"):
        bnblip.load(tmp_path / "dir.onnx")


def test_error_path_type():
    with pytest.raises(InputError, match="path must be a str or os.PathLike"):
        bnblip.load(3)


@pytest.mark.parametrize("suffix,rule", [(".onnx", "cannot read as an ONNX model"),
                                         (".pt", "cannot read as a torch file"),
                                         (".npz", r"cannot read as an \.npz archive")])
def test_error_unreadable_file(tmp_path, suffix, rule):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(b"\x00\x01 this is not a model \xff" * 3)
    with pytest.raises(InputError, match=rf"junk\{suffix}: {rule}"):
        bnblip.load(path)


def test_error_nan_weight_names_node(tmp_path, rng):
    w1 = rng.normal(size=(2, 4))
    w1[1, 2] = np.nan
    nodes, inits = _gemm_chain([rng.normal(size=(4, 3)), w1], names=("first", "second"))
    path = save(make_model(nodes, inits, ["batch", 3]), tmp_path)
    with pytest.raises(InputError, match=r"m\.onnx: Gemm node 'second': weight contains NaN"):
        bnblip.load(path)


def test_error_inf_weight_names_torch_layer():
    module = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        module[2].bias[0] = float("inf")
    with pytest.raises(InputError, match=r"layer 2 \(Linear\): bias contains NaN or inf"):
        network_from_module(module)


def test_error_shape_mismatch_names_node(tmp_path, rng):
    nodes, inits = _gemm_chain([rng.normal(size=(4, 3)), rng.normal(size=(2, 5))],
                               names=("first", "second"))
    path = save(make_model(nodes, inits, ["batch", 3]), tmp_path)
    with pytest.raises(InputError, match=r"Gemm node 'second': takes 5 inputs but Gemm node "
                                         r"'first' gives 4"):
        bnblip.load(path)


def test_error_input_width_mismatch(tmp_path, rng):
    nodes, inits = _gemm_chain([rng.normal(size=(4, 3)), rng.normal(size=(2, 4))])
    path = save(make_model(nodes, inits, ["batch", 7]), tmp_path)
    with pytest.raises(InputError, match=r"Gemm node 'g0': takes 3 inputs but the model "
                                         r"input gives 7"):
        bnblip.load(path)


def test_error_bias_shape_names_node(tmp_path, rng):
    nodes = [helper.make_node("Gemm", ["x", "W", "C"], ["y"], name="gb", transB=1)]
    model = make_model(nodes, {"W": rng.normal(size=(2, 3)), "C": rng.normal(size=3)},
                       ["batch", 3])
    with pytest.raises(InputError, match=r"Gemm node 'gb': bias shape \(3,\)"):
        bnblip.load(save(model, tmp_path))


@pytest.mark.parametrize("op,extra", [("Sigmoid", {}), ("Conv", {"kernel_shape": [1]})])
def test_error_unsupported_operator(tmp_path, rng, op, extra):
    nodes, inits = _gemm_chain([rng.normal(size=(4, 3)), rng.normal(size=(2, 4))], relu=False)
    inputs = ["z0", "K"] if op == "Conv" else ["z0"]
    nodes.insert(1, helper.make_node(op, inputs, ["a0"], name="bad_node", **extra))
    inits["K"] = rng.normal(size=(1, 1, 1))
    model = make_model(nodes, inits, ["batch", 3])
    with pytest.raises(UnsupportedModelError,
                       match=rf"unsupported ONNX operator '{op}' in {op} node 'bad_node'"):
        bnblip.load(save(model, tmp_path))


def test_error_gemm_trans_a(tmp_path, rng):
    nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], name="ta", transA=1)]
    model = make_model(nodes, {"W": rng.normal(size=(3, 2))}, [3, 1])
    with pytest.raises(UnsupportedModelError, match=r"Gemm node 'ta': transA=1"):
        bnblip.load(save(model, tmp_path))


def test_error_weight_not_constant(tmp_path, rng):
    nodes = [helper.make_node("MatMul", ["x", "x"], ["y"], name="sq")]
    model = make_model(nodes, {}, ["batch", 3])
    with pytest.raises(UnsupportedModelError, match=r"MatMul node 'sq': the data tensor"):
        bnblip.load(save(model, tmp_path))


def test_error_graph_not_a_chain(tmp_path, rng):
    nodes = [helper.make_node("Gemm", ["x", "W"], ["z"], name="g", transB=1),
             helper.make_node("Relu", ["z"], ["a"], name="r"),
             helper.make_node("Add", ["z", "a"], ["y"], name="skip")]
    model = make_model(nodes, {"W": rng.normal(size=(3, 3))}, ["batch", 3])
    with pytest.raises(UnsupportedModelError, match=r"tensor 'z' feeds several nodes"):
        bnblip.load(save(model, tmp_path))


def test_error_onnx_ends_with_relu(tmp_path, rng):
    nodes, inits = _gemm_chain([rng.normal(size=(4, 3))])
    nodes[0].output[0] = "z"
    nodes.append(helper.make_node("Relu", ["z"], ["y"], name="final_relu"))
    model = make_model(nodes, inits, ["batch", 3])
    with pytest.raises(InputError, match=r"Relu node 'final_relu': the model ends with a ReLU"):
        bnblip.load(save(model, tmp_path))


def test_error_onnx_starts_with_relu(tmp_path, rng):
    nodes, inits = _gemm_chain([rng.normal(size=(4, 3))])
    nodes[0].input[0] = "a"
    nodes.insert(0, helper.make_node("Relu", ["x"], ["a"], name="first_relu"))
    model = make_model(nodes, inits, ["batch", 3])
    with pytest.raises(InputError, match=r"Relu node 'first_relu': the model starts with"):
        bnblip.load(save(model, tmp_path))


def test_error_sequential_with_tanh():
    module = nn.Sequential(nn.Linear(2, 3), nn.ReLU(),
                           nn.Sequential(nn.Linear(3, 3), nn.Tanh()), nn.Linear(3, 1))
    with pytest.raises(UnsupportedModelError,
                       match=r"layer 2\.1 \(Tanh\): layer class Tanh is not supported"):
        bnblip.Network.from_torch(module)


def test_error_custom_module():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(UnsupportedModelError, match="layer class Net is not supported"):
        network_from_module(Net())


def test_error_not_a_module():
    with pytest.raises(InputError, match="module must be a torch.nn.Module"):
        network_from_module([1, 2])


def test_error_torch_ends_with_relu():
    module = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    with pytest.raises(InputError, match=r"layer 1 \(ReLU\): the model ends with a ReLU"):
        network_from_module(module)


def test_error_state_dict_with_conv(tmp_path):
    module = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2, 1))
    torch.save(module.state_dict(), tmp_path / "conv.pt")
    with pytest.raises(UnsupportedModelError, match=r"0\.weight has shape \(2, 1, 3\)"):
        bnblip.load(tmp_path / "conv.pt")


def test_error_torch_file_holding_a_list(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(InputError, match=r"list\.pt: holds a list"):
        bnblip.load(tmp_path / "list.pt")


def test_error_npz_missing_bias(tmp_path, rng):
    np.savez(tmp_path / "nob.npz", W0=rng.normal(size=(3, 2)), b0=np.zeros(3),
             W1=rng.normal(size=(1, 3)))
    with pytest.raises(InputError, match=r"nob\.npz: b1 is missing"):
        bnblip.load(tmp_path / "nob.npz")


def test_error_npz_gap_in_numbering(rng):
    arrays = {"W0": rng.normal(size=(3, 2)), "b0": np.zeros(3),
              "W2": rng.normal(size=(1, 3)), "b2": np.zeros(1)}
    with pytest.raises(InputError, match="W1 is missing but W2 is present"):
        network_from_arrays(arrays)


def test_error_npz_unexpected_key(rng):
    with pytest.raises(InputError, match="unexpected array 'weights'"):
        network_from_arrays({"W0": np.ones((1, 1)), "b0": np.ones(1), "weights": np.ones(1)})


def test_error_npz_nan_and_shape(rng):
    with pytest.raises(InputError, match=r"layer 0 \(W0, b0\): bias contains NaN"):
        network_from_arrays({"W0": np.ones((2, 2)), "b0": np.array([0.0, np.nan])})
    with pytest.raises(InputError, match=r"layer 1 \(W1, b1\): takes 3 inputs but layer 0 "):
        network_from_arrays({"W0": np.ones((2, 2)), "b0": np.zeros(2),
                             "W1": np.ones((1, 3)), "b1": np.zeros(1)})
