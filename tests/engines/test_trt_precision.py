"""The precision check on engine inspector JSON, on the recorded-layout samples in data/."""

from __future__ import annotations

import copy

import pytest

from colorrt.engines.tensorrt.precision import (
    PrecisionError,
    check_layer_precisions,
    dtype_from_text,
    kept_fp32_nodes,
)
from colorrt.errors import BackendError, InputError
from tests.engines.trt_helpers import sample


@pytest.mark.parametrize(
    ("text", "dtype"),
    [
        ("Row major linear FP32", "fp32"),
        ("Row major linear FP32 format (kLINEAR)", "fp32"),
        ("Channel major FP16 format where channel % 8 == 0", "fp16"),
        ("Thirty-two wide channel vectorized row major Int8 format.", "int8"),
        ("Channel major INT8 format where column stride % 32 == 0", "int8"),
        ("Row major linear BFloat16 format", "bf16"),
        ("Row major linear UInt8 format", "uint8"),
        ("Float", "fp32"),
        ("Half", "fp16"),
        ("Int8", "int8"),
        ("Row major linear Int32", "int32"),
        ("N/A due to dynamic shapes", "unknown"),
        ("Unknown format", "unknown"),
        ("", "unknown"),
    ],
)
def test_dtype_from_format_strings(text, dtype):
    assert dtype_from_text(text) == dtype


def test_fp16_engine_passes_and_counts_datatypes():
    report = check_layer_precisions(sample("cyclegan_fp16_trt10.json"), "fp16")
    assert report.ok and report.verified
    assert report.heavy_counts == {"fp16": 10}
    assert {h.layer_type for h in report.heavy_layers} == {"CaskConvolution", "CaskDeconvolution"}
    assert report.all_counts["fp32"] == 1  # the output cast reads the FP16 tensor and writes FP32
    assert "10 heavy layers (fp16 10)" in report.summary()


def test_tensorrt11_layout_gives_the_same_report():
    old = check_layer_precisions(sample("cyclegan_fp16_trt10.json"), "fp16")
    new = check_layer_precisions(sample("cyclegan_fp16_trt11.json"), "fp16")
    assert new.heavy_counts == old.heavy_counts and new.heavy_layers == old.heavy_layers
    assert new.all_counts == old.all_counts


def test_silent_fp32_engine_fails_naming_the_fp32_layers():
    with pytest.raises(PrecisionError) as err:
        check_layer_precisions(sample("cyclegan_silent_fp32_trt10.json"), "fp16")
    message = str(err.value)
    assert "8 of 10 heavy layers" in message and "8 in fp32" in message
    assert "/model/model.1/Conv" in message and "/model/model.11/conv_block/conv_block.5/Conv" in message
    assert "ConvTranspose" not in message  # the two FP16 deconvolutions are fine
    assert "convert_fp16" in err.value.hint
    report = err.value.report
    assert {h.precision for h in report.mismatched} == {"fp32"} and len(report.mismatched) == 8
    assert report.heavy_counts == {"fp32": 8, "fp16": 2}


def test_silent_engine_report_without_raising():
    report = check_layer_precisions(
        sample("cyclegan_silent_fp32_trt10.json"), "fp16", raise_on_mismatch=False
    )
    assert not report.ok and len(report.mismatched) == 8


def test_fp32_engine_passes_as_fp32_but_not_as_fp16():
    assert check_layer_precisions(sample("cyclegan_fp32_trt10.json"), "fp32").heavy_counts == {"fp32": 10}
    with pytest.raises(PrecisionError, match="10 of 10"):
        check_layer_precisions(sample("cyclegan_fp32_trt10.json"), "fp16")


HEAD = "/model/model.19/Conv + /model/model.20/Tanh"  # the CycleGAN's last conv (its colours)
HEAD_NODES = ("/model/model.19/Conv", "/model/model.20/Tanh")  # kept in FP32 by convert_fp16


def _in_fp32(data: dict, name: str) -> dict:
    """The inspector JSON with layer ``name`` running in FP32 (what TensorRT builds from FP32 nodes)."""
    data = copy.deepcopy(data)
    layer = next(layer for layer in data["Layers"] if layer["Name"] == name)
    for tensor in [*layer["Inputs"], *layer["Outputs"]]:
        tensor["Format/Datatype"] = "Row major linear FP32"
    layer["Weights"]["Type"] = layer["Bias"]["Type"] = "Float"
    return data


def test_fp16_engine_may_keep_the_model_head_in_fp32():
    data = _in_fp32(sample("cyclegan_fp16_trt10.json"), HEAD)
    with pytest.raises(PrecisionError, match="1 of 10 heavy layers"):
        check_layer_precisions(data, "fp16")  # without the model's word, an FP32 conv is a mismatch
    report = check_layer_precisions(data, "fp16", fp32_nodes=HEAD_NODES)
    assert report.ok and report.heavy_counts == {"fp16": 9, "fp32": 1}
    assert [h.name for h in report.kept_fp32] == [HEAD]
    assert "1 kept in fp32 by the model" in report.summary()


def test_kept_fp32_nodes_do_not_hide_a_silent_fp32_build():
    with pytest.raises(PrecisionError, match="7 of 10 heavy layers") as err:
        check_layer_precisions(sample("cyclegan_silent_fp32_trt10.json"), "fp16", fp32_nodes=HEAD_NODES)
    assert HEAD not in {h.name for h in err.value.report.mismatched}


def test_the_check_accepts_what_convert_fp16_keeps_in_fp32(tmp_path):
    """An inspector JSON made from a real FP16 conversion (each conv in its weights' type, as a
    strongly typed TensorRT build runs it) passes with the nodes the file says it kept in FP32."""
    import onnx

    from colorrt.calibration import convert_fp16
    from tests.calibration import helpers

    path = convert_fp16(helpers.tiny_resnet(tmp_path / "resnet.onnx"), tmp_path / "resnet.fp16.onnx")
    model = onnx.load(str(path))
    weight_types = {t.name: t.data_type for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    layers = [
        {
            "Name": node.name,
            "LayerType": "CaskConvolution",
            "ParameterType": "Convolution",
            "Weights": {
                "Type": "Half" if weight_types[node.input[1]] == onnx.TensorProto.FLOAT16 else "Float"
            },
            "Metadata": f"[ONNX Layer: {node.name}]",
        }
        for node in convs
    ]
    kept = kept_fp32_nodes(path)
    report = check_layer_precisions({"Layers": layers}, "fp16", fp32_nodes=kept)
    assert report.heavy_counts == {"fp16": len(convs) - 1, "fp32": 1}  # only the head conv stays FP32
    assert [h.name for h in report.kept_fp32] == [convs[-1].name]
    with pytest.raises(PrecisionError, match=f"1 of {len(convs)} heavy layers"):
        check_layer_precisions({"Layers": layers}, "fp16")
    assert kept_fp32_nodes(helpers.tiny_resnet(tmp_path / "plain.onnx")) == ()


def test_int8_engine_with_fp16_edges_needs_the_int8_tolerance():
    data = sample("cyclegan_int8_trt10.json")
    with pytest.raises(PrecisionError, match="2 of 10 heavy layers"):
        check_layer_precisions(data, "int8")
    report = check_layer_precisions(data, "int8", max_mismatch_fraction=0.5)
    assert report.heavy_counts == {"int8": 8, "fp16": 2}
    assert [h.name for h in report.mismatched] == [
        "/model/model.1/Conv",
        "/model/model.19/Conv + /model/model.20/Tanh",
    ]
    with pytest.raises(PrecisionError, match="10 of 10"):  # an fp16 engine is not an int8 one
        check_layer_precisions(sample("cyclegan_fp16_trt10.json"), "int8", max_mismatch_fraction=0.5)


def test_layer_names_only_cannot_be_verified():
    report = check_layer_precisions(sample("cyclegan_names_only_trt10.json"), "fp16")
    assert not report.verified and not report.ok
    assert "ProfilingVerbosity.DETAILED" in report.note


def test_dynamic_shapes_fall_back_to_weight_types_or_stay_unverified():
    data = sample("cyclegan_dynamic_na_trt10.json")
    assert check_layer_precisions(data, "fp16").heavy_counts == {
        "fp16": 10
    }  # from "Weights": {"Type": "Half"}
    for layer in data["Layers"]:
        layer.pop("Weights", None)
    report = check_layer_precisions(data, "fp16")
    assert not report.verified and "N/A" in report.note


def test_malformed_inspector_output_is_a_clear_error():
    with pytest.raises(BackendError, match="not JSON"):
        check_layer_precisions("{not json", "fp16")
    with pytest.raises(BackendError, match="'Layers'"):
        check_layer_precisions({"Bindings": []}, "fp16")
    with pytest.raises(InputError, match="expected precision"):
        check_layer_precisions(sample("cyclegan_fp16_trt10.json"), "fp64")
    report = check_layer_precisions({"Layers": []}, "fp16")
    assert not report.verified and "no convolution" in report.note
