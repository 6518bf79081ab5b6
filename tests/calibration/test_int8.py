"""INT8 Q/DQ: zero points and types per target, per-channel weights, exclusions, real ONNX Runtime runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from colorrt.calibration import (
    FACTS_KEY,
    PRECISION_KEY,
    TARGET_KEY,
    QuantizationError,
    check_quantized,
    load_calibration_set,
    quantize_int8,
)
from colorrt.contract import read_from_onnx, write_to_onnx
from colorrt.errors import ContractError, InputError, ModelError
from tests.calibration import helpers


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _qdq_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _weight_dq(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    """Conv / ConvTranspose name -> the DequantizeLinear feeding its weight."""
    dq = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {
        n.name: dq[n.input[1]] for n in model.graph.node if n.op_type.startswith("Conv") and n.input[1] in dq
    }


def test_tensorrt_form_is_symmetric_int8_with_zero_points_zero(int8_models):
    model = onnx.load(str(int8_models["tensorrt"]))
    constants = _constants(model)
    nodes = _qdq_nodes(model)
    assert len(nodes) > 10
    for node in nodes:
        zero = constants[node.input[2]]
        assert zero.dtype == np.int8 and not zero.any(), node.name
        assert np.all(constants[node.input[1]] > 0)
    assert not [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT32]  # float biases
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    for node in nodes:  # Q/DQ only in front of the weighted layers (TensorRT's recommended placement)
        if node.op_type == "DequantizeLinear":
            assert set(consumers[node.output[0]]) <= {"Conv", "ConvTranspose"}, node.name


def test_weights_are_int8_per_channel(int8_models):
    model = onnx.load(str(int8_models["tensorrt"]))
    constants = _constants(model)
    weights = _weight_dq(model)
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert len(weights) == len(convs) - 1  # all but the head
    for dq in weights.values():
        weight, scale = constants[dq.input[0]], constants[dq.input[1]]
        axis = next(a.i for a in dq.attribute if a.name == "axis")
        assert weight.dtype == np.int8 and np.abs(weight).max() <= 127
        assert axis == 0  # ConvTranspose too: TensorRT's deconvolutions take per-input-channel scales
        assert scale.shape == (weight.shape[axis],)
        assert not constants[dq.input[2]].any()


def test_cpu_form_scales_conv_transpose_per_output_channel(int8_models):
    model = onnx.load(str(int8_models["cpu"]))
    constants = _constants(model)
    layer = next(n.name for n in model.graph.node if n.op_type == "ConvTranspose")
    dq = _weight_dq(model)[layer]
    assert next(a.i for a in dq.attribute if a.name == "axis") == 1
    assert constants[dq.input[1]].shape == (constants[dq.input[0]].shape[1],)


def test_metadata_and_contract(int8_models, assets):
    for target, path in int8_models.items():
        model = onnx.load(str(path))
        props = {p.key: p.value for p in model.metadata_props}
        assert props[PRECISION_KEY] == "int8" and props[TARGET_KEY] == target
        facts = json.loads(props[FACTS_KEY])
        assert (
            facts["method"] == "percentile"
            and facts["samples"] == 8
            and facts["fingerprint"].startswith("sha256:")
        )
        assert read_from_onnx(model) == read_from_onnx(onnx.load(str(assets["resnet"])))


def test_cpu_form_fuses_into_qlinearconv_and_runs(int8_models, tmp_path):
    model = onnx.load(str(int8_models["cpu"]))
    check_quantized(model, "cpu")
    constants = _constants(model)
    activation_zero_types = {
        constants[n.input[2]].dtype for n in _qdq_nodes(model) if n.input[0] not in constants
    }
    assert activation_zero_types == {np.dtype(np.uint8)}
    weights = [constants[dq.input[0]] for dq in _weight_dq(model).values()]
    assert weights and all(w.dtype == np.int8 and -64 <= w.min() and w.max() <= 64 for w in weights)  # 7-bit
    with pytest.raises(QuantizationError, match="expected int8"):  # not the form TensorRT takes
        check_quantized(model, "tensorrt")
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(int8_models["cpu"]), options, providers=["CPUExecutionProvider"])
    fused = [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    assert fused.count("QLinearConv") >= 4


def test_int8_runs_close_to_fp32(int8_models, assets):
    x = load_calibration_set(assets["pictures"], helpers.RGB_CONTRACT, max_samples=2, seed=9).samples[0].input
    reference = _run(assets["resnet"], x)
    for path in int8_models.values():
        out = _run(path, x)
        assert out.shape == reference.shape and out.dtype == np.float32
        assert 0 < np.abs(out - reference).mean() < 0.05  # quantized, and close (tanh output in [-1, 1])


@pytest.mark.parametrize("method", ["minmax", "entropy"])
def test_calibration_methods_give_valid_and_different_ranges(method, int8_models, assets, tmp_path):
    path = quantize_int8(
        assets["resnet"], tmp_path / f"{method}.onnx", calib=assets["pictures"], method=method, max_samples=8
    )
    model = onnx.load(str(path))
    check_quantized(model, "tensorrt")
    entropy = onnx.load(str(int8_models["tensorrt"]))
    ranges = {
        n.input[0]: float(_constants(model)[n.input[1]])
        for n in _qdq_nodes(model)
        if n.op_type == "QuantizeLinear"
    }
    baseline = {
        n.input[0]: float(_constants(entropy)[n.input[1]])
        for n in _qdq_nodes(entropy)
        if n.op_type == "QuantizeLinear"
    }
    assert ranges.keys() == baseline.keys()
    assert any(not np.isclose(ranges[k], baseline[k]) for k in ranges)
    assert json.loads({p.key: p.value for p in model.metadata_props}[FACTS_KEY])["method"] == method


def test_head_and_exclusions_stay_float(assets, tmp_path):
    model = onnx.load(str(assets["resnet"]))
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    path = quantize_int8(
        assets["resnet"],
        tmp_path / "excluded.onnx",
        calib=assets["pictures"],
        max_samples=6,
        exclude_nodes=[convs[1]],
        exclude_op_types=["ConvTranspose"],
    )
    quantized = onnx.load(str(path))
    weights = _weight_dq(quantized)
    assert convs[1] not in weights and convs[-1] not in weights  # excluded, and the head
    assert not any(n.op_type == "ConvTranspose" for n in quantized.graph.node if n.name in weights)
    assert {convs[0], convs[2]} <= weights.keys()
    facts = json.loads({p.key: p.value for p in quantized.metadata_props}[FACTS_KEY])
    assert convs[-1] in facts["float_layers"] and "Tanh_head" in facts["float_nodes"]
    with_head = quantize_int8(
        assets["resnet"],
        tmp_path / "head.onnx",
        calib=assets["pictures"],
        max_samples=6,
        keep_head_fp32=False,
    )
    assert convs[-1] in _weight_dq(onnx.load(str(with_head)))


def test_unknown_or_total_exclusions(assets, tmp_path):
    convs = [n.name for n in onnx.load(str(assets["resnet"])).graph.node if n.op_type == "Conv"]
    with pytest.raises(InputError, match=rf"did you mean '{convs[0]}'"):
        quantize_int8(
            assets["resnet"], tmp_path / "a.onnx", calib=assets["pictures"], exclude_nodes=[convs[0] + "x"]
        )
    with pytest.raises(InputError, match="nothing would be quantized"):
        quantize_int8(
            assets["resnet"],
            tmp_path / "b.onnx",
            calib=assets["pictures"],
            exclude_op_types=["Conv", "ConvTranspose"],
        )
    from tests import zoo

    plain = zoo.rgb_model(tmp_path / "plain.onnx", contract=helpers.RGB_CONTRACT)
    with pytest.raises(InputError, match="no layers with weights"):
        quantize_int8(plain, tmp_path / "c.onnx", calib=assets["pictures"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.onnx"]


def test_check_quantized_refuses_nonzero_or_wrong_typed_zero_points(int8_models):
    model = onnx.load(str(int8_models["tensorrt"]))
    activation_q = next(n for n in _qdq_nodes(model) if n.op_type == "QuantizeLinear")
    zero = next(t for t in model.graph.initializer if t.name == activation_q.input[2])
    zero.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), zero.name))
    with pytest.raises(QuantizationError, match=r"zero point \[3\], expected 0"):
        check_quantized(model, "tensorrt")
    zero.CopyFrom(numpy_helper.from_array(np.array(128, np.uint8), zero.name))
    with pytest.raises(QuantizationError, match="zero point type uint8, expected int8"):
        check_quantized(model, "tensorrt")


def test_check_quantized_refuses_per_tensor_weights(int8_models):
    model = onnx.load(str(int8_models["tensorrt"]))
    dq = next(iter(_weight_dq(model).values()))
    scale = next(t for t in model.graph.initializer if t.name == dq.input[1])
    scale.CopyFrom(numpy_helper.from_array(np.array(0.01, np.float32), scale.name))
    with pytest.raises(QuantizationError, match="one scale per output channel"):
        check_quantized(model, "tensorrt")


def test_calibration_set_and_video_sources(assets, tmp_path):
    calib = load_calibration_set(assets["video"], helpers.RGB_CONTRACT, max_samples=6)
    path = quantize_int8(assets["resnet"], tmp_path / "video.onnx", calib=calib)
    facts = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}[FACTS_KEY])
    assert (
        facts["samples"] == 6
        and facts["fingerprint"] == calib.fingerprint()
        and "video" in facts["calibration"]
    )


def test_bad_inputs_leave_nothing_behind(assets, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    text = tmp_path / "model.onnx"
    text.write_text("this is not a model")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        quantize_int8(text, out / "a.onnx", calib=assets["pictures"])
    with pytest.raises(ModelError, match="not an .onnx file"):
        quantize_int8(tmp_path, out / "a.onnx", calib=assets["pictures"])
    with pytest.raises(ContractError, match="carries no colour contract"):
        quantize_int8(assets["no_contract"], out / "b.onnx", calib=assets["pictures"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no images"):
        quantize_int8(assets["resnet"], out / "c.onnx", calib=empty)
    with pytest.raises(InputError, match="is the source model itself"):
        quantize_int8(assets["resnet"], assets["resnet"], calib=assets["pictures"])
    with pytest.raises(InputError, match="target must be one of"):
        quantize_int8(assets["resnet"], out / "d.onnx", calib=assets["pictures"], target="tensorrtt")
    assert not list(out.iterdir())


def test_already_quantized_source_is_refused(int8_models, assets, tmp_path):
    with pytest.raises(ModelError, match="already converted"):
        quantize_int8(int8_models["cpu"], tmp_path / "twice.onnx", calib=assets["pictures"])


def test_contract_for_a_model_without_one(assets, tmp_path):
    source = shutil.copy(assets["no_contract"], tmp_path / "plain.onnx")
    path = quantize_int8(
        source, tmp_path / "plain.int8.onnx", calib=assets["pictures"], contract=helpers.RGB_CONTRACT
    )
    stored = read_from_onnx(onnx.load(str(path)))
    assert stored.input_space == "gray_rgb" and stored.output_kind == "rgb"


def _skip_connection_model(path: Path) -> Path:
    """Grey RGB -> RGB with a U-Net skip: the input plus its down- and up-sampled copy. Symbolic shape
    inference cannot tell that ``2 * floor((H + 1) / 2)`` equals ``H`` and stops short on the Add."""
    from onnx import helper

    rng = np.random.default_rng(3)
    weights = {
        "w_down": rng.standard_normal((4, 3, 3, 3)) * 0.3,
        "b_down": np.zeros(4),
        "w_up": rng.standard_normal((4, 3, 2, 2)) * 0.3,
        "b_up": np.zeros(3),
        "w_head": rng.standard_normal((3, 3, 1, 1)) * 0.5,
        "b_head": np.zeros(3),
    }
    nodes = [
        helper.make_node("Conv", ["input", "w_down", "b_down"], ["down"], strides=[2, 2], pads=[1] * 4),
        helper.make_node("Relu", ["down"], ["relu"]),
        helper.make_node("ConvTranspose", ["relu", "w_up", "b_up"], ["up"], strides=[2, 2]),
        helper.make_node("Add", ["up", "input"], ["skip"]),
        helper.make_node("Conv", ["skip", "w_head", "b_head"], ["head"]),
        helper.make_node("Tanh", ["head"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "skip",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["N", 3, "H", "W"])],
        initializer=[numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", helpers.OPSET)])
    write_to_onnx(model, helpers.RGB_CONTRACT)
    onnx.save(model, str(path))
    return path


def test_conversions_write_nothing_in_the_working_directory(assets, tmp_path, monkeypatch):
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from colorrt.calibration import convert_fp16

    model = _skip_connection_model(tmp_path / "skip.onnx")
    probe = tmp_path / "probe"
    probe.mkdir()
    monkeypatch.chdir(probe)
    with pytest.raises(Exception, match="Incomplete symbolic shape inference"):
        quant_pre_process(str(model), str(tmp_path / "pre.onnx"))
    assert (probe / "sym_shape_infer_temp.onnx").is_file()  # what ONNX Runtime leaves behind on its own

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    quantize_int8(model, tmp_path / "skip.int8.onnx", calib=assets["pictures"], max_samples=4)
    convert_fp16(model, tmp_path / "skip.fp16.onnx")
    assert list(work.iterdir()) == []
