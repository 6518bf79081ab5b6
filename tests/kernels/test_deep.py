"""16-bit merge (colorrt.kernels.deep): checked against scikit-image's lab2rgb like the uint8 merge."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import lab2rgb

from colorrt.kernels import pipeline
from colorrt.kernels.deep import merge_u16, postprocess_u16, widen_u8
from tests import zoo

RNG = np.random.default_rng(16)


def _planes(height: int = 37, width: int = 53) -> tuple[np.ndarray, np.ndarray]:
    lightness = RNG.uniform(0, 100, (height, width)).astype(np.float32)
    ab = RNG.uniform(-90, 90, (2, height, width)).astype(np.float32)  # plenty out of gamut
    return lightness, ab


@pytest.mark.filterwarnings("ignore:Conversion from CIE-LAB")  # skimage on the negative Z it clips
def test_merge_u16_matches_skimage_within_one_code():
    lightness, ab = _planes()
    got = merge_u16(lightness, ab)
    lab = np.stack([lightness, ab[0], ab[1]], axis=-1).astype(np.float64)
    want = np.rint(lab2rgb(lab) * 65535)
    assert got.dtype == np.uint16 and got.shape == (37, 53, 3)
    assert np.abs(got.astype(np.int64) - want).max() <= 1
    assert len(np.unique(got)) > 1000  # really 16 bits, not 8 bits widened


def test_merge_u16_agrees_with_the_uint8_merge_and_resizes_ab_the_same_way():
    lightness, _ = _planes(40, 60)
    small_ab = RNG.uniform(-40, 40, (2, 10, 15)).astype(np.float32)
    deep, eight = merge_u16(lightness, small_ab), pipeline.merge(lightness, small_ab)
    narrowed = (deep.astype(np.int64) * 255 + 32767) // 65535
    assert np.abs(narrowed - eight).max() <= 1
    np.testing.assert_array_equal(widen_u8(np.array([0, 1, 255], np.uint8)), [0, 257, 65535])


def test_postprocess_u16_is_postprocess_in_16_bits(tmp_path):
    from colorrt.engines.onnxruntime import OnnxRuntimeEngine

    engine = OnnxRuntimeEngine(zoo.ab_model(tmp_path / "ab.onnx"))
    lightness = [RNG.uniform(0, 100, (30, 40)).astype(np.float32) for _ in range(2)]
    output = engine.infer(pipeline.preprocess(lightness, engine.contract))
    deep = postprocess_u16(output, lightness, engine.contract, strength=1.5)
    eight = pipeline.postprocess(output, lightness, engine.contract, strength=1.5)
    for d, e in zip(deep, eight, strict=True):
        assert d.dtype == np.uint16 and np.abs((d.astype(np.int64) * 255 + 32767) // 65535 - e).max() <= 1
