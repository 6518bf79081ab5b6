"""OnnxRuntimeEngine on the synthetic zoo: closed-form outputs, contract checks, bad model files."""

from __future__ import annotations

import numpy as np
import pytest

from colorrt.contract import PRESETS
from colorrt.engines.onnxruntime import OnnxRuntimeEngine, describe_onnx, physical_cores
from colorrt.errors import BackendError, ContractError, InputError, ModelError
from tests import zoo

RNG = np.random.default_rng(1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo")
    return {
        "ab": zoo.ab_model(d / "ab.onnx"),
        "fp16": zoo.ab_model(d / "fp16.onnx", float16=True),
        "batch1": zoo.ab_model(d / "batch1.onnx", batch=1),
        "fixed32": zoo.ab_model(
            d / "fixed32.onnx", zoo.AB_CONTRACT.replace(size_rule="fixed", render_size=32), size=(32, 32)
        ),
        "bare": zoo.ab_model(d / "bare.onnx", None, names=("x", "y")),
        "rgb": zoo.rgb_model(d / "rgb.onnx"),
        "flat": zoo.flat_model(d / "flat.onnx"),
    }


def _batch(n=3, h=8, w=12):
    return (RNG.random((n, 1, h, w), dtype=np.float32) * 2 - 1).astype(np.float32)


def test_ab_model_matches_closed_form(models):
    with OnnxRuntimeEngine(models["ab"]) as engine:
        x = _batch()
        out = engine.infer(x)
    assert out.shape == (3, 2, 8, 12) and out.dtype == np.float32
    lightness = (x[:, 0] + 1) * 50
    np.testing.assert_allclose(out.transpose(0, 2, 3, 1) * 110, zoo.expected_ab(lightness), atol=1e-3)
    assert engine.contract == zoo.AB_CONTRACT


def test_float16_model_input_is_cast(models):
    x = _batch()
    with OnnxRuntimeEngine(models["ab"]) as fp32, OnnxRuntimeEngine(models["fp16"]) as fp16:
        assert fp16.precision == "fp16" and fp32.precision == "fp32"
        reference, half = fp32.infer(x), fp16.infer(x)
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, reference, atol=2e-3)


def test_precision_of_a_converted_model_is_its_stamped_one(tmp_path):
    from colorrt.calibration import convert_fp16
    from tests.calibration import helpers

    source = helpers.tiny_resnet(tmp_path / "resnet.onnx")
    converted = convert_fp16(source, tmp_path / "resnet.fp16.onnx")
    with OnnxRuntimeEngine(source) as fp32, OnnxRuntimeEngine(converted) as fp16:
        assert fp16.input_dtype == np.float32  # FP16 weights and layers behind a float32 interface
        assert fp16.precision == "fp16" and fp32.precision == "fp32"


def test_fixed_batch_model_runs_any_batch(models):
    x = _batch(n=3)
    with OnnxRuntimeEngine(models["ab"]) as dynamic, OnnxRuntimeEngine(models["batch1"]) as fixed:
        assert fixed.batch_size == 1 and dynamic.batch_size is None
        np.testing.assert_array_equal(fixed.infer(x), dynamic.infer(x))


def test_no_contract_names_the_flag_and_presets(models):
    with pytest.raises(ContractError) as info:
        OnnxRuntimeEngine(models["bare"])
    message = str(info.value)
    assert "--contract" in message and "bare.onnx" in message
    assert all(name in message for name in PRESETS)


def test_preset_override_adopts_model_tensor_names(models):
    with OnnxRuntimeEngine(models["bare"], contract="pix2pix-colorization") as engine:
        assert engine.contract.name == "pix2pix-colorization"
        assert (engine.contract.input_name, engine.contract.output_name) == ("x", "y")
        assert engine.infer(_batch()).shape == (3, 2, 8, 12)


def test_unknown_preset_suggests_closest(models):
    with pytest.raises(ContractError, match="did you mean 'pix2pix-rgb'"):
        OnnxRuntimeEngine(models["bare"], contract="pix2pix-rbg")


def test_contract_channel_mismatch(models):
    with pytest.raises(ContractError, match="1 channels but contract 'cyclegan-rgb'"):
        OnnxRuntimeEngine(models["ab"], contract="cyclegan-rgb")
    with pytest.raises(ContractError, match="3 channels"):
        OnnxRuntimeEngine(models["rgb"], contract="pix2pix-colorization")


def test_fixed_size_model_needs_matching_render_size(models):
    with OnnxRuntimeEngine(models["fixed32"]) as engine:
        assert engine.infer(_batch(h=32, w=32)).shape == (3, 2, 32, 32)
    with pytest.raises(ContractError, match="fixed size 32x32"):
        OnnxRuntimeEngine(models["fixed32"], contract=zoo.AB_CONTRACT)


def test_non_image_model_rejected(models):
    with pytest.raises(ContractError, match="NCHW"):
        OnnxRuntimeEngine(models["flat"])


def test_bad_model_files(tmp_path, models):
    with pytest.raises(ModelError, match="no such model file"):
        OnnxRuntimeEngine(tmp_path / "missing.onnx")
    text = tmp_path / "text.onnx"
    text.write_text("definitely not protobuf " * 20)
    with pytest.raises(ModelError, match="text.onnx"):
        OnnxRuntimeEngine(text)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(models["ab"].read_bytes()[:-40])
    with pytest.raises(ModelError, match="cut.onnx"):
        OnnxRuntimeEngine(cut)


def test_session_options(models):
    with OnnxRuntimeEngine(models["ab"]) as engine:
        assert engine.threads == physical_cores() >= 1
        options = engine._session.get_session_options()
        assert options.intra_op_num_threads == engine.threads
        assert options.enable_mem_pattern
        assert engine._session.get_providers() == ["CPUExecutionProvider"]
    with OnnxRuntimeEngine(models["ab"], threads=1) as engine:
        assert engine._session.get_session_options().intra_op_num_threads == 1


def test_infer_checks_input_and_state(models):
    engine = OnnxRuntimeEngine(models["ab"])
    with pytest.raises(InputError, match="1 channels"):
        engine.infer(np.zeros((1, 3, 8, 8), np.float32))
    engine.close()
    with pytest.raises(BackendError, match="closed"):
        engine.infer(_batch())


def test_cuda_and_unknown_device_are_clear(models):
    with pytest.raises(BackendError, match="CPU"):
        OnnxRuntimeEngine(models["ab"], device="cuda")
    with pytest.raises(BackendError, match="unknown device"):
        OnnxRuntimeEngine(models["ab"], device="tpu")


def test_describe_onnx(models):
    d = describe_onnx(models["fp16"])
    assert d.contract == zoo.AB_CONTRACT and d.contract_problem is None
    assert d.opset == zoo.OPSET and d.producer == "colorrt-tests-zoo"
    assert [(t.name, t.dtype, t.shape) for t in d.inputs] == [("input", "float16", ("N", 1, "H", "W"))]
    assert d.outputs[0].shape == ("N", 2, "H", "W")
    assert d.precision == "fp32"  # weights; the interface is float16
    bare = describe_onnx(models["bare"])
    assert bare.contract is None and "--contract" in bare.contract_problem
