"""Bilinear resize against torch.nn.functional.interpolate (align_corners=False, antialias)."""

from __future__ import annotations

import numpy as np
import pytest

from colorrt.errors import InputError
from colorrt.kernels.resize import resize_bilinear, resize_bilinear_bands, resize_weights

torch = pytest.importorskip("torch")

SHAPES = [
    ((37, 53), (16, 9)),  # downscale, odd factors
    ((1080, 1920), (144, 256)),  # full-HD frame to the default render size
    ((64, 64), (256, 256)),  # upscale x4 (ab back to full resolution)
    ((37, 53), (100, 120)),  # upscale, odd factors
    ((50, 40), (50, 17)),  # one axis kept, one downscaled
    ((10, 10), (7, 13)),  # one axis down, one up
    ((7, 9), (1, 1)),  # to a single pixel
    ((1, 5), (4, 3)),  # from a single row
]


def _torch_resize(planes: np.ndarray, out_hw: tuple[int, int], antialias: bool) -> np.ndarray:
    batch = torch.from_numpy(planes.reshape(-1, 1, *planes.shape[-2:]))
    out = torch.nn.functional.interpolate(
        batch, size=out_hw, mode="bilinear", align_corners=False, antialias=antialias
    )
    return out.numpy().reshape(*planes.shape[:-2], *out_hw)


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize(("in_hw", "out_hw"), SHAPES)
def test_matches_torch(in_hw: tuple[int, int], out_hw: tuple[int, int], antialias: bool) -> None:
    planes = np.random.default_rng(0).random((2, *in_hw))
    expected = _torch_resize(planes, out_hw, antialias)
    ours64 = resize_bilinear(planes, out_hw, antialias=antialias)
    assert ours64.dtype == np.float64 and ours64.shape == (2, *out_hw)
    assert np.abs(ours64 - expected).max() <= 1e-10
    ours32 = resize_bilinear(planes.astype(np.float32), out_hw, antialias=antialias)
    assert ours32.dtype == np.float32
    # Against torch's float64 result: torch in float32 rounds its source coordinates (up to 2e-5
    # off at 1920 px), so float64 is the sharper reference for our float32 output.
    assert np.abs(ours32 - expected).max() <= 1e-5


def test_matches_torch_float32_directly() -> None:
    planes = np.random.default_rng(1).random((2, 64, 64), dtype=np.float32)
    for out_hw in [(16, 16), (256, 256), (200, 300)]:
        assert np.abs(resize_bilinear(planes, out_hw) - _torch_resize(planes, out_hw, True)).max() <= 1e-5


def test_batch_and_channel_axes_are_independent() -> None:
    planes = np.random.default_rng(2).random((3, 2, 20, 30))
    together = resize_bilinear(planes, (11, 7))
    one_by_one = np.stack([[resize_bilinear(p, (11, 7)) for p in item] for item in planes])
    np.testing.assert_allclose(together, one_by_one, atol=1e-12)


def test_constant_plane_stays_constant_and_weights_sum_to_one() -> None:
    plane = np.full((33, 47), 42.5, dtype=np.float32)
    for out_hw in [(5, 6), (100, 90), (33, 47)]:
        np.testing.assert_allclose(resize_bilinear(plane, out_hw), 42.5, rtol=1e-6)
    for in_size, out_size in [(100, 7), (7, 100), (1920, 256), (5, 5)]:
        weights = resize_weights(in_size, out_size)
        assert weights.shape == (out_size, in_size)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
        assert weights.min() >= 0.0


def test_antialias_removes_aliasing() -> None:
    # A one-pixel checkerboard averages to grey only with the antialiasing filter.
    # With a factor of 3 plain bilinear lands exactly on pixels and returns the pattern itself.
    checker = (np.indices((60, 60)).sum(axis=0) % 2).astype(np.float32)
    assert np.abs(resize_bilinear(checker, (20, 20), antialias=True) - 0.5).max() < 0.01
    assert np.abs(resize_bilinear(checker, (20, 20), antialias=False) - 0.5).max() > 0.4


@pytest.mark.parametrize(("in_hw", "out_hw"), SHAPES)
@pytest.mark.parametrize("band_rows", [1, 3, 32])
def test_bands_equal_the_whole_resize_bit_for_bit(
    in_hw: tuple[int, int], out_hw: tuple[int, int], band_rows: int
) -> None:
    planes = np.random.default_rng(3).standard_normal((2, *in_hw)).astype(np.float32)
    whole = resize_bilinear(planes, out_hw)
    joined = np.full_like(whole, np.nan)
    for rows, values in resize_bilinear_bands(planes, out_hw, band_rows):
        assert values.shape[-2] <= band_rows
        joined[..., rows, :] = values
    np.testing.assert_array_equal(joined, whole)


def test_same_size_is_a_copy() -> None:
    plane = np.random.default_rng(3).random((8, 9)).astype(np.float32)
    out = resize_bilinear(plane, (8, 9))
    np.testing.assert_array_equal(out, plane)
    assert not np.shares_memory(out, plane)


@pytest.mark.parametrize(
    ("planes", "out_hw", "message"),
    [
        (np.zeros(5, dtype=np.float32), (2, 2), "shaped"),
        (np.zeros((4, 4), dtype=np.uint8), (2, 2), "float32 or float64"),
        (np.zeros((4, 4), dtype=np.float32), (0, 2), "positive"),
        (np.zeros((4, 4), dtype=np.float32), (2,), "height, width"),
        (np.zeros((0, 4), dtype=np.float32), (2, 2), "empty"),
    ],
)
def test_bad_arguments(planes: np.ndarray, out_hw: tuple[int, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        resize_bilinear(planes, out_hw)
