"""FP16 mixed precision: sensitive ops stay FP32, float32 interface, runs in ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from colorrt.calibration import FACTS_KEY, PRECISION_KEY, TARGET_KEY, convert_fp16, load_calibration_set
from colorrt.calibration.fp16 import drop_cast_round_trips
from colorrt.contract import read_from_onnx
from colorrt.errors import InputError, ModelError
from tests.calibration import helpers

FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16


def _types(model: onnx.ModelProto) -> dict[str, int]:
    graph = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def _inputs(assets, contract, count=3):
    return [s.input for s in load_calibration_set(assets["pictures"], contract, max_samples=count).samples]


def test_sensitive_ops_stay_fp32_and_the_rest_is_fp16(assets, tmp_path):
    path = convert_fp16(assets["bins"], tmp_path / "bins.fp16.onnx")
    model = onnx.load(str(path))
    types = _types(model)
    nodes = {n.name: n for n in model.graph.node}
    for name in ("Softmax_5", "Conv_decode"):  # ab-bin softmax and the head's decoding conv
        assert all(types[t] == FLOAT for t in [*nodes[name].input, *nodes[name].output] if t), name
    norm = next(n for n in model.graph.node if n.op_type == "InstanceNormalization")
    assert types[norm.input[0]] == FLOAT and types[norm.output[0]] == FLOAT
    first = next(n for n in model.graph.node if n.op_type == "Conv" and n.name != "Conv_decode")
    assert types[first.input[1]] == HALF and types[first.output[0]] == HALF
    assert model.graph.input[0].type.tensor_type.elem_type == FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == FLOAT


def test_fp16_runs_in_onnxruntime_close_to_fp32(assets, tmp_path):
    for name, contract, bound in (
        ("bins", helpers.AB_CONTRACT, 2e-3),
        ("resnet", helpers.RGB_CONTRACT, 1e-2),
    ):
        path = convert_fp16(assets[name], tmp_path / f"{name}.fp16.onnx")
        for x in _inputs(assets, contract):
            reference, out = _run(assets[name], x), _run(path, x)
            assert out.dtype == np.float32 and out.shape == reference.shape
            assert 0 < np.abs(out - reference).max() < bound, name


def test_output_leaves_in_fp32_without_a_float16_round_trip(assets, tmp_path):
    model = onnx.load(str(convert_fp16(assets["resnet"], tmp_path / "resnet.fp16.onnx")))
    producers = {o: n for n in model.graph.node for o in n.output}
    last = producers["output"]
    assert last.op_type in ("Tanh", "Identity")
    if last.op_type == "Identity":
        assert producers[last.input[0]].op_type == "Tanh"
    casts = {n.output[0]: n for n in model.graph.node if n.op_type == "Cast"}
    for node in casts.values():
        first = casts.get(node.input[0])
        to = {a.name: a.i for a in node.attribute}["to"]
        assert not (
            first is not None and to == FLOAT and {a.name: a.i for a in first.attribute}["to"] == HALF
        )
    props = {p.key: p.value for p in model.metadata_props}
    assert props[PRECISION_KEY] == "fp16" and TARGET_KEY not in props
    assert read_from_onnx(model) == read_from_onnx(onnx.load(str(assets["resnet"])))
    facts = json.loads(props[FACTS_KEY])
    assert "InstanceNormalization" in facts["keep_fp32_ops"] and "Tanh_head" in facts["fp32_nodes"]


def test_keep_lists_are_options(assets, tmp_path):
    path = convert_fp16(assets["resnet"], tmp_path / "all.fp16.onnx", keep_fp32_ops=(), keep_head_fp32=False)
    model = onnx.load(str(path))
    types = _types(model)
    norm = next(n for n in model.graph.node if n.op_type == "InstanceNormalization")
    assert types[norm.input[0]] == HALF
    with pytest.raises(InputError, match="keep_fp32_nodes names nodes"):
        convert_fp16(assets["resnet"], tmp_path / "x.onnx", keep_fp32_nodes=["Conv_404"])
    with pytest.raises(ModelError, match="already"):
        convert_fp16(path, tmp_path / "twice.onnx")
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "twice.onnx").exists()


def test_drop_cast_round_trips():
    x = helper.make_tensor_value_info("x", FLOAT, [2])
    y = helper.make_tensor_value_info("y", FLOAT, [2])
    z = helper.make_tensor_value_info("z", FLOAT, [2])
    nodes = [
        helper.make_node("Tanh", ["x"], ["t"], name="tanh"),
        helper.make_node("Cast", ["t"], ["t16"], to=HALF, name="down"),
        helper.make_node("Cast", ["t16"], ["y"], to=FLOAT, name="up"),
        helper.make_node("Cast", ["x"], ["x16"], to=HALF, name="down2"),
        helper.make_node("Cast", ["x16"], ["x32"], to=FLOAT, name="up2"),
        helper.make_node("Mul", ["x32", "two"], ["z"], name="mul"),
    ]
    two = numpy_helper.from_array(np.array([2.0], np.float32), "two")
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y, z], [two]))
    assert drop_cast_round_trips(model) == 2
    ops = {n.name: n for n in model.graph.node}
    assert "down" not in ops and "down2" not in ops and "up2" not in ops
    assert ops["up"].op_type == "Identity" and list(ops["up"].input) == ["t"]
    assert list(ops["mul"].input) == ["x", "two"]
    onnx.checker.check_model(model)
    value = np.array([0.1234567, -3.3333333], np.float32)
    y_out, z_out = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": value}
    )
    np.testing.assert_allclose(y_out, np.tanh(value), rtol=1e-6)  # no float16 rounding (~5e-4) left
    np.testing.assert_array_equal(z_out, value * 2)
