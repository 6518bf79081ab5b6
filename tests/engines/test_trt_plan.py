"""The TensorRT path's pure logic (no TensorRT needed): profiles, cache keys, the inspector
precision check on recorded-layout samples, the facts sidecar, and the no-TensorRT errors."""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
from pathlib import Path

import pytest

from colorrt.contract import PRESETS
from colorrt.engines import trt_plan as plan
from colorrt.engines.trt_plan import (
    BufferPlan,
    EngineFacts,
    PrecisionError,
    Profile,
    TensorRange,
    check_layer_precisions,
    derive_profiles,
    parse_shape_ranges,
)
from colorrt.errors import BackendError, ContractError, InputError, MissingDependencyError, ModelError
from tests import zoo

DATA = Path(__file__).parent / "data"
CYCLEGAN = PRESETS["cyclegan-rgb"]  # gray_rgb (3 ch), sizes a multiple of 4, render 256
DEFAULT = PRESETS["colorrt-default"]  # L (1 ch), sizes a multiple of 16
FIXED = PRESETS["pix2pix-colorization"]  # L (1 ch), fixed 256x256
HAVE_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def sample(name: str) -> dict:
    return json.loads((DATA / name).read_text())


# --- shape ranges and profiles ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("1:4:16", (1, 4, 16)), ("8", (1, 8, 8)), (" 2:2:2 ", (2, 2, 2)), (4, (1, 4, 4))]
)
def test_parse_batch(text, expected):
    assert parse_shape_ranges(text).batch == expected


@pytest.mark.parametrize("text", ["4:1:16", "0:1:2", "a:b:c", "1:2", "1:2:3:4", "-1", ""])
def test_bad_batch_is_rejected_with_usage(text):
    with pytest.raises(InputError, match="--batch") as err:
        parse_shape_ranges(text)
    assert "MIN:OPT:MAX" in err.value.hint


def test_parse_size_single_and_triple():
    assert parse_shape_ranges(size="256x256").size == ((256, 256),) * 3
    assert parse_shape_ranges(size="256x256:512X512:1088x1920").size == ((256, 256), (512, 512), (1088, 1920))


@pytest.mark.parametrize(
    "text", ["256", "256x", "x256", "0x256", "512x512:256x256:1088x1920", "1x1:2x2", "axb"]
)
def test_bad_size_is_rejected(text):
    with pytest.raises(InputError, match="--size"):
        parse_shape_ranges(size=text)


def test_sizes_round_up_to_the_contracts_multiple():
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges("1:4:16", "250x250:510x510:1081x1918"))
    rng = profile.tensor()
    assert rng.name == CYCLEGAN.input_name
    assert rng.min == (1, 3, 252, 252)
    assert rng.opt == (4, 3, 512, 512)
    assert rng.max == (16, 3, 1084, 1920)


def test_film_size_rounds_to_multiple_of_16_and_channels_follow_the_contract():
    [profile] = derive_profiles(DEFAULT, parse_shape_ranges("2:8:8", "1080x1920"))
    rng = profile.tensor()
    assert rng.min == (2, 1, 1088, 1920)
    assert rng.opt == rng.max == (8, 1, 1088, 1920)


def test_default_sizes_span_a_quarter_to_the_full_render_size():
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges())
    rng = profile.tensor()
    assert (rng.min, rng.opt, rng.max) == ((1, 3, 64, 64), (4, 3, 256, 256), (16, 3, 256, 256))
    odd = DEFAULT.replace(render_size=250)  # 250 is not a multiple of 16: the max rounds up to 256
    assert plan.default_size_range(odd) == ((64, 64), (256, 256), (256, 256))


def test_fixed_contract_forces_its_render_size():
    [profile] = derive_profiles(FIXED, parse_shape_ranges("1:2:4"))
    assert profile.tensor().min == (1, 1, 256, 256) and profile.tensor().max == (4, 1, 256, 256)
    [same] = derive_profiles(FIXED, parse_shape_ranges("1:2:4", "256x256"))
    assert same == profile


def test_fixed_contract_rejects_other_sizes():
    with pytest.raises(ContractError, match="fixed 256x256") as err:
        derive_profiles(FIXED, parse_shape_ranges("1:2:4", "256x256:512x512:512x512"))
    assert "--size 256x256" in err.value.hint


def test_fixed_batch_of_the_model_is_used_or_enforced():
    shape = (1, 3, None, None)
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges(None), input_shape=shape)
    assert profile.tensor().min[0] == profile.tensor().max[0] == 1
    with pytest.raises(ContractError, match="fixed batch of 1") as err:
        derive_profiles(CYCLEGAN, parse_shape_ranges("1:4:16"), input_shape=shape)
    assert "--batch 1:1:1" in err.value.hint


def test_model_channels_must_match_the_contract():
    with pytest.raises(ContractError, match="1 channels"):
        derive_profiles(CYCLEGAN, parse_shape_ranges(), input_shape=("N", 1, "H", "W"))


def test_fixed_model_size_is_used_when_no_size_is_asked():
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges("1:1:2"), input_shape=("N", 3, 96, 128))
    assert profile.tensor().min == (1, 3, 96, 128) and profile.tensor().max == (2, 3, 96, 128)
    with pytest.raises(ContractError, match="fixed height of 96"):
        derive_profiles(CYCLEGAN, parse_shape_ranges("1:1:2", "64x64:96x128:128x128"), ("N", 3, 96, 128))


def test_shape_inside_and_outside_the_profile():
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges("1:4:16", "64x64:256x256:256x256"))
    plan.check_shape_in_profile((16, 3, 64, 256), profile)
    with pytest.raises(InputError, match=r"batch 32 is outside 1\.\.16") as err:
        plan.check_shape_in_profile((32, 3, 128, 128), profile)
    assert "colorrt build --batch" in err.value.hint
    with pytest.raises(InputError, match=r"size 512x128 is outside 64x64\.\.256x256"):
        plan.check_shape_in_profile((2, 3, 512, 128), profile)
    with pytest.raises(InputError, match="3 channels"):
        plan.check_shape_in_profile((2, 1, 128, 128), profile)
    with pytest.raises(InputError, match="4 dims"):
        plan.check_shape_in_profile((3, 128, 128), profile)


def test_select_profile_picks_the_first_that_fits():
    small = Profile((TensorRange("x", (1, 3, 64, 64), (1, 3, 64, 64), (4, 3, 128, 128)),))
    large = Profile((TensorRange("x", (1, 3, 128, 128), (1, 3, 512, 512), (2, 3, 512, 512)),))
    assert plan.select_profile((2, 3, 96, 96), [small, large]) == 0
    assert plan.select_profile((1, 3, 256, 512), [small, large]) == 1
    with pytest.raises(InputError, match="outside"):
        plan.select_profile((8, 3, 512, 512), [small, large])


def test_profile_round_trips_through_json():
    [profile] = derive_profiles(CYCLEGAN, parse_shape_ranges())
    assert Profile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    assert "batch 1..16 (opt 4)" in profile.describe() and "64x64..256x256" in profile.describe()


# --- cache keys -------------------------------------------------------------------------------

PROFILES = derive_profiles(CYCLEGAN, parse_shape_ranges("1:4:16"))
KEY_ARGS = {
    "onnx_sha256": "ab" * 32,
    "precision": "fp16",
    "profiles": PROFILES,
    "trt_version": "11.0.0.1",
    "gpu_name": "NVIDIA H100 80GB HBM3",
    "compute_capability": "9.0",
    "opt_level": 3,
    "workspace_gb": 4.0,
    "extra": {"colorrt": "0.1.0"},
}


def test_cache_key_is_a_stable_hex_digest():
    key = plan.cache_key(**KEY_ARGS)
    assert key == plan.cache_key(**copy.deepcopy(KEY_ARGS))
    assert len(key) == 64 and int(key, 16) >= 0
    # golden value: a change here silently invalidates every cached engine, so make it on purpose
    assert key == "92c3761efcc74d717acd3513ff6a0ac3b232d9685d471726d2bb72317a005ab0"
    assert plan.cache_key(**{**KEY_ARGS, "workspace_gb": 4}) == key


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("onnx_sha256", "cd" * 32),
        ("precision", "int8"),
        ("profiles", derive_profiles(CYCLEGAN, parse_shape_ranges("1:8:16"))),
        ("profiles", derive_profiles(CYCLEGAN, parse_shape_ranges("1:4:16", "64x64:256x256:512x512"))),
        ("trt_version", "11.1.0.3"),
        ("gpu_name", "NVIDIA H200"),
        ("compute_capability", "8.9"),
        ("opt_level", 5),
        ("workspace_gb", 8.0),
        ("extra", {"colorrt": "0.1.0", "calib_sha256": "ef" * 32}),
    ],
)
def test_every_build_input_changes_the_cache_key(field, value):
    assert plan.cache_key(**{**KEY_ARGS, field: value}) != plan.cache_key(**KEY_ARGS)


def test_workspace_must_be_positive():
    with pytest.raises(InputError, match="--workspace"):
        plan.workspace_bytes(0)
    assert plan.workspace_bytes(0.5) == 1 << 29


@pytest.mark.parametrize(
    ("version", "needed"),
    [
        ("10.0.1.6", True),
        ("10.13.3.9", True),
        ("11.0.0.12", False),
        ("11.4.1", False),
        ("12.1.0", False),
        ("9.3.0.1", True),
        ("garbled", True),  # unknown: keep the flag, ignored where it is deprecated
    ],
)
def test_strongly_typed_flag_only_before_tensorrt_11(version, needed):
    # 10.x needs the flag for ONNX dtypes to bind; 11.x is always strongly typed and deprecates it
    assert plan.strongly_typed_flag_needed(version) is needed


# --- precision check on inspector JSON -------------------------------------------------------


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
    assert plan.dtype_from_text(text) == dtype


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
    kept = plan.kept_fp32_nodes(path)
    report = check_layer_precisions({"Layers": layers}, "fp16", fp32_nodes=kept)
    assert report.heavy_counts == {"fp16": len(convs) - 1, "fp32": 1}  # only the head conv stays FP32
    assert [h.name for h in report.kept_fp32] == [convs[-1].name]
    with pytest.raises(PrecisionError, match=f"1 of {len(convs)} heavy layers"):
        check_layer_precisions({"Layers": layers}, "fp16")
    assert plan.kept_fp32_nodes(helpers.tiny_resnet(tmp_path / "plain.onnx")) == ()


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


# --- facts sidecar ----------------------------------------------------------------------------


def make_facts(**changes) -> EngineFacts:
    facts = EngineFacts(
        contract=CYCLEGAN,
        precision="fp16",
        profiles=tuple(PROFILES),
        trt_version="11.0.0.1",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        onnx_sha256="ab" * 32,
        build_options={"batch": "1:4:16", "size": None, "workspace_gb": 4.0, "opt_level": 3},
        requested_precision="best",
        precision_counts={"fp16": 10},
        precision_verified=True,
        colorrt_version="0.1.0",
        created="2026-01-01T00:00:00+00:00",
    )
    return facts.replace(**changes)


def test_facts_round_trip_through_the_sidecar(tmp_path):
    plan_path = tmp_path / "model.plan"
    facts = make_facts()
    written = plan.write_facts(plan_path, facts)
    assert written == tmp_path / "model.plan.json"
    assert json.loads(written.read_text())["facts_version"] == plan.FACTS_VERSION
    assert plan.read_facts(plan_path) == facts
    assert [p.name for p in tmp_path.iterdir()] == ["model.plan.json"]  # no temporary files left


def test_missing_or_broken_sidecar_is_a_clear_error(tmp_path):
    plan_path = tmp_path / "model.plan"
    with pytest.raises(ModelError, match="no facts file model.plan.json") as err:
        plan.read_facts(plan_path)
    assert "colorrt build" in err.value.hint
    plan.sidecar_path(plan_path).write_text("{")
    with pytest.raises(ModelError, match="not valid JSON"):
        plan.read_facts(plan_path)
    data = make_facts().to_dict()
    plan.sidecar_path(plan_path).write_text(json.dumps({**data, "colour": 1}))
    with pytest.raises(ModelError, match="unknown fields"):
        plan.read_facts(plan_path)
    plan.sidecar_path(plan_path).write_text(json.dumps({**data, "facts_version": 99}))
    with pytest.raises(ModelError, match="newer"):
        plan.read_facts(plan_path)
    del data["profiles"]
    plan.sidecar_path(plan_path).write_text(json.dumps(data))
    with pytest.raises(ModelError, match="incomplete"):
        plan.read_facts(plan_path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "engine.plan"
    plan.atomic_write_bytes(target, b"old")
    with pytest.raises(TypeError):
        plan.atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["engine.plan"]


def test_compatibility_problems_name_what_differs():
    facts = make_facts()
    here = {"trt_version": "11.0.0.1", "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert plan.compatibility_problems(facts, **here) == []
    [problem] = plan.compatibility_problems(facts, **{**here, "trt_version": "11.1.0.3"})
    assert "TensorRT 11.0.0.1" in problem and "11.1.0.3" in problem
    [problem] = plan.compatibility_problems(
        facts, **{**here, "gpu_name": "NVIDIA L4", "compute_capability": "8.9"}
    )
    assert "compute capability 9.0" in problem and "8.9 (NVIDIA L4)" in problem
    [problem] = plan.compatibility_problems(facts, **{**here, "gpu_name": "NVIDIA H100 PCIe"})
    assert "NVIDIA H100 PCIe" in problem
    with pytest.raises(BackendError, match="cannot run here") as err:
        plan.check_compatible(facts, **{**here, "trt_version": "10.13.0"}, path="m.plan")
    assert "rebuild" in err.value.hint


# --- buffer plan ------------------------------------------------------------------------------


def test_buffer_plan_sizes():
    shapes = {"input": (4, 3, 256, 256), "output": (4, 3, 256, 256)}
    half = BufferPlan.build(shapes, {"input": "float32", "output": "float16"}, inputs=["input"])
    assert half.get("input").nbytes == 4 * 3 * 256 * 256 * 4
    assert half.get("output").nbytes == 4 * 3 * 256 * 256 * 2
    assert half.total_bytes == 4 * 3 * 256 * 256 * 6
    assert half.get("input").is_input and not half.get("output").is_input
    small = BufferPlan.build(
        {"input": (1, 3, 64, 64), "output": (1, 3, 64, 64)}, {"input": "f4", "output": "f2"}, ["input"]
    )
    assert small.fits_within(half) and not half.fits_within(small)
    with pytest.raises(BackendError, match="dynamic"):
        BufferPlan.build({"input": (-1, 3, 64, 64)}, {"input": "f4"}, ["input"])


# --- build and run entry points without TensorRT ----------------------------------------------


def test_build_options_are_checked_before_tensorrt_is_needed(tmp_path):
    from colorrt.engines.tensorrt import build

    model = zoo.rgb_model(tmp_path / "rgb.onnx")
    with pytest.raises(InputError, match="--int8 needs --calib"):
        build(model, precision="int8")
    with pytest.raises(InputError, match="unknown precision 'fp8'"):
        build(model, precision="fp8")
    with pytest.raises(InputError, match="--opt-level"):
        build(model, opt_level=7)
    with pytest.raises(InputError, match="--workspace"):
        build(model, workspace_gb=-1)
    with pytest.raises(InputError, match="--batch"):
        build(model, batch="16:4:1")
    with pytest.raises(InputError, match="not a folder"):
        build(model, precision="int8", calib=tmp_path / "missing")
    with pytest.raises(ContractError, match="fixed 32x32"):
        build(zoo.hints_model(tmp_path / "hints.onnx"), size="64x64")


@pytest.mark.skipif(HAVE_TENSORRT, reason="TensorRT is installed here; this checks the error without it")
def test_build_without_tensorrt_says_how_to_install_it_and_what_works_meanwhile(tmp_path):
    from colorrt.engines.tensorrt import TensorRTUnavailableError, build

    model = zoo.rgb_model(tmp_path / "rgb.onnx")
    with pytest.raises(TensorRTUnavailableError) as err:
        build(model, precision="fp16", batch="1:2:4")
    assert isinstance(err.value, MissingDependencyError) and err.value.extra == "gpu"
    text = str(err.value)
    assert "colorrt build needs TensorRT" in text
    assert "pip install 'colorrt[gpu]'" in text
    assert "colorrt colorize --backend onnxruntime" in text
    assert not list(tmp_path.glob("*.plan"))


@pytest.mark.skipif(HAVE_TENSORRT, reason="TensorRT is installed here; this checks the error without it")
def test_engine_without_tensorrt_is_a_clear_error(tmp_path):
    from colorrt.engines.tensorrt import TensorRTEngine, TensorRTUnavailableError

    with pytest.raises(ModelError, match="no such TensorRT engine file"):
        TensorRTEngine(tmp_path / "missing.plan")
    with pytest.raises(ModelError, match="no such TensorRT engine file"):  # --threads is not an error
        TensorRTEngine(tmp_path / "missing.plan", threads=1)
    (tmp_path / "m.plan").write_bytes(b"plan")
    with pytest.raises(TensorRTUnavailableError, match="running a TensorRT engine"):
        TensorRTEngine(tmp_path / "m.plan")
    with pytest.raises(InputError, match="apply when building"):
        TensorRTEngine(tmp_path / "m.plan", precision="fp16")
    with pytest.raises(BackendError, match="GPU only"):
        TensorRTEngine(tmp_path / "m.plan", device="cpu")


def build_parser() -> argparse.ArgumentParser:
    from colorrt.cli.build import add_arguments as add_build_arguments

    return add_build_arguments(argparse.ArgumentParser(prog="colorrt build"))


def test_cli_flags_map_to_build_keywords(tmp_path):
    args = build_parser().parse_args(
        [
            "--model",
            "m.onnx",
            "--fp16",
            "--batch",
            "1:2:8",
            "--size",
            "256x256",
            "--workspace",
            "2",
            "--opt-level",
            "5",
        ]
    )
    assert (args.precision, args.batch, args.size, args.workspace, args.opt_level) == (
        "fp16",
        "1:2:8",
        "256x256",
        2.0,
        5,
    )
    assert build_parser().parse_args(["--model", "m.onnx"]).precision == "fp32"
    assert build_parser().parse_args(["--model", "m.onnx", "--best", "--calib", "d"]).calib == Path("d")


@pytest.mark.parametrize(
    "argv", [["--model", "m.onnx", "--fp16", "--int8"], ["--model", "m.onnx", "--opt-level", "9"], ["--fp16"]]
)
def test_cli_rejects_bad_flags(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code != 0


def test_cli_keeps_an_existing_contract_flag():
    from colorrt.cli.build import add_arguments as add_build_arguments

    parser = argparse.ArgumentParser()
    parser.add_argument("--contract", default="from-cli")
    add_build_arguments(parser)
    assert parser.parse_args(["--model", "m.onnx"]).contract == "from-cli"


@pytest.mark.skipif(HAVE_TENSORRT, reason="TensorRT is installed here; this checks the error without it")
def test_run_build_without_tensorrt_fails_cleanly(tmp_path):
    from colorrt.cli.build import run as run_build
    from colorrt.engines.tensorrt import TensorRTUnavailableError

    model = zoo.rgb_model(tmp_path / "rgb.onnx")
    args = build_parser().parse_args(["--model", str(model), "--fp16", "-o", str(tmp_path / "out.plan")])
    with pytest.raises(TensorRTUnavailableError, match="onnxruntime"):
        run_build(args)
    args = build_parser().parse_args(["--model", str(model), "--int8"])
    with pytest.raises(InputError, match="--calib"):
        run_build(args)


def test_inspect_plan_reads_the_facts_without_tensorrt(tmp_path):
    from colorrt.engines.tensorrt import inspect_plan

    plan_path = tmp_path / "m.plan"
    plan_path.write_bytes(b"x" * 10)
    info = inspect_plan(plan_path)
    assert info["facts"] is None and "no facts file" in info["facts_problem"]
    plan.write_facts(plan_path, make_facts())
    info = inspect_plan(plan_path)
    assert info["size_bytes"] == 10
    assert info["facts"]["precision"] == "fp16" and info["facts"]["contract"]["name"] == "cyclegan-rgb"
    with pytest.raises(ModelError, match="no such"):
        inspect_plan(tmp_path / "other.plan")


def test_default_plan_path_sits_beside_the_model():
    from colorrt.engines.tensorrt import default_plan_path

    assert default_plan_path("models/cyclegan.onnx", "fp16") == Path("models/cyclegan.fp16.plan")
