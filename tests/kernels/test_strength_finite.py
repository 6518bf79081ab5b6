"""Chroma strength in decode_ab / postprocess, and the non-finite model output check (issue 17)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from colorrt.contract import PRESETS, eccv16_contract
from colorrt.errors import InputError, NonFiniteOutputError
from colorrt.kernels import pipeline

RNG = np.random.default_rng(11)
AB = PRESETS["pix2pix-colorization"].replace(size_rule="multiple", render_size=24, multiple=4)
AB_OFFSET = AB.replace(output_offset=3.0)
GRAY = PRESETS["cyclegan-rgb"].replace(render_size=24)
BINS = eccv16_contract(RNG.uniform(-90, 90, size=(40, 2)).round(1)).replace(render_size=16)


def _output(contract, n=2, h=6, w=9) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, contract.output_channels, h, w)).astype(np.float32)


@pytest.mark.parametrize("contract", [AB, AB_OFFSET, GRAY, BINS], ids=["ab", "ab+offset", "rgb", "bins"])
@pytest.mark.parametrize("strength", [0.0, 0.4, 1.7, 2.0])
def test_strength_scales_the_decoded_chroma(contract, strength) -> None:
    output = _output(contract)
    plain = pipeline.decode_ab(output, contract)
    scaled = pipeline.decode_ab(output, contract, strength=strength)
    np.testing.assert_allclose(scaled, plain * strength, rtol=1e-5, atol=1e-4)


def test_strength_one_is_bit_identical_and_zero_is_grey() -> None:
    output = _output(AB)
    assert np.array_equal(pipeline.decode_ab(output, AB, strength=1.0), pipeline.decode_ab(output, AB))
    lightness = [RNG.uniform(0, 100, (12, 18)).astype(np.float32) for _ in range(2)]
    for image in pipeline.postprocess(output, lightness, AB, strength=0.0):
        assert np.ptp(image.astype(int), axis=2).max() <= 1  # neutral: R = G = B (float rounding aside)


def test_stronger_chroma_is_more_colourful() -> None:
    from skimage.color import rgb2lab

    output = _output(AB) * 0.3
    lightness = [np.full((12, 18), 60.0, np.float32)] * 2
    chroma = [
        np.hypot(*rgb2lab(pipeline.postprocess(output, lightness, AB, strength=s)[0])[..., 1:].T).mean()
        for s in (0.5, 1.0, 1.5)
    ]
    assert chroma[0] < chroma[1] < chroma[2]


@pytest.mark.parametrize("strength", [-0.1, 2.01, float("nan"), float("inf"), True, "1"])
def test_strength_outside_0_to_2_is_refused(strength) -> None:
    with pytest.raises(InputError, match="strength must be a number from 0 to 2"):
        pipeline.decode_ab(_output(AB), AB, strength=strength)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_output_is_refused_with_the_model_named(bad) -> None:
    output = _output(AB)
    output[1, 0, 3, 4] = bad
    engine = SimpleNamespace(name="onnxruntime", path="/models/colour_fp16.onnx")
    with pytest.raises(NonFiniteOutputError) as caught:
        pipeline.check_finite(output, pipeline.model_label(engine))
    message = str(caught.value)
    assert "colour_fp16.onnx (onnxruntime)" in message and "NaN or infinite" in message
    assert "FP32" in message and "another model" in message


def test_finite_output_passes_even_when_large() -> None:
    output = np.full((4, 2, 64, 64), 3.0e38, np.float32)  # its float32 sum would overflow
    pipeline.check_finite(output, "m")
    pipeline.check_finite(_output(AB).astype(np.float16), "m")


def test_model_label_without_a_file() -> None:
    assert pipeline.model_label(SimpleNamespace(name="triton")) == "'triton'"
    assert pipeline.model_label(SimpleNamespace(name="torch", source="ckpt/deoldify.pth")) == (
        "deoldify.pth (torch)"
    )
