"""sRGB <-> CIE Lab kernels against scikit-image (the reference maths)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab

from colorrt.errors import InputError
from colorrt.kernels import color
from colorrt.kernels.color import (
    FLOAT32_LAB_ERROR,
    FLOAT32_RGB_ERROR,
    l_to_gray,
    lab_to_rgb,
    linear_to_srgb,
    linear_to_srgb_u8,
    rgb_to_l,
    rgb_to_lab,
    srgb_to_linear,
)

LAB_TOLERANCE = 1e-3  # max |dL|, |da|, |db| against skimage in float64 (issue 3)


def _sk_lab2rgb(lab: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about the negative-Z colours we feed on purpose
        return lab2rgb(lab)


@pytest.fixture(scope="module")
def rgb_samples() -> np.ndarray:
    """Random colours plus the extremes: black, white, primaries, secondaries, greys, near-black."""
    rng = np.random.default_rng(0)
    corners = np.array(np.meshgrid([0.0, 1.0], [0.0, 1.0], [0.0, 1.0])).reshape(3, -1).T
    greys = np.linspace(0.0, 1.0, 257)[:, None].repeat(3, axis=1)
    near_black = rng.uniform(0.0, color.SRGB_KNEE, (2000, 3))  # the linear segment of sRGB
    around_knee = color.SRGB_KNEE + rng.uniform(-1e-4, 1e-4, (2000, 3))
    dark_lab_segment = rng.uniform(0.0, 0.1, (2000, 3))  # Y below the Lab epsilon
    return np.concatenate(
        [rng.random((50_000, 3)), corners, greys, near_black, around_knee, dark_lab_segment]
    )


@pytest.fixture(scope="module")
def lab_samples() -> np.ndarray:
    """Random Lab, in and far out of the sRGB gamut, with L at 0 and 100 and Z < 0 cases."""
    rng = np.random.default_rng(1)
    n = 50_000
    lab = np.stack([rng.uniform(0, 100, n), rng.uniform(-128, 127, n), rng.uniform(-128, 127, n)], axis=-1)
    extremes = np.array(
        [
            [0, 0, 0],
            [100, 0, 0],
            [0, 127, 127],
            [100, -128, -128],
            [50, 0, 127],
            [5, 0, 120],
            [53.2, 80.1, 67.2],
        ]
    )
    dark = np.stack([rng.uniform(0, 10, 2000), rng.uniform(-20, 20, 2000), rng.uniform(-20, 20, 2000)], -1)
    return np.concatenate([lab, extremes, dark])


def test_rgb_to_lab_matches_skimage_float64(rgb_samples: np.ndarray) -> None:
    ours = rgb_to_lab(rgb_samples)
    assert ours.dtype == np.float64
    assert np.abs(ours - rgb2lab(rgb_samples)).max(axis=0).max() <= LAB_TOLERANCE


def test_rgb_to_lab_float32_within_documented_bound(rgb_samples: np.ndarray) -> None:
    ours = rgb_to_lab(rgb_samples.astype(np.float32))
    assert ours.dtype == np.float32
    error = np.abs(ours - rgb2lab(rgb_samples)).max()
    assert error <= FLOAT32_LAB_ERROR, f"float32 Lab error {error:.3g} above documented {FLOAT32_LAB_ERROR}"


def test_rgb_to_lab_known_values() -> None:
    lab = rgb_to_lab(np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(lab[0], [0, 0, 0], atol=1e-9)
    # sRGB white is D65 only to the matrix's 6 digits: a, b of white are ~5e-3 off 0, as in skimage.
    np.testing.assert_allclose(lab[1], [100, 0, 0], atol=1e-2)
    np.testing.assert_allclose(lab[2], [53.2408, 80.0925, 67.2032], atol=1e-3)  # sRGB red


def test_shapes_are_kept() -> None:
    image = np.random.default_rng(2).random((2, 5, 7, 3))
    assert rgb_to_lab(image).shape == (2, 5, 7, 3)
    assert lab_to_rgb(rgb_to_lab(image)).shape == (2, 5, 7, 3)
    assert rgb_to_l(image).shape == (2, 5, 7)
    one = rgb_to_lab([0.5, 0.2, 0.1])  # a single colour
    assert one.shape == (3,)
    np.testing.assert_allclose(one, rgb2lab(np.array([0.5, 0.2, 0.1])), atol=1e-9)
    assert lab_to_rgb(one).shape == (3,) and np.ndim(rgb_to_l([0.5, 0.2, 0.1])) == 0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_images_use_exact_lookup(dtype: type) -> None:
    top = np.iinfo(dtype).max
    image = np.random.default_rng(3).integers(0, top + 1, (64, 64, 3)).astype(dtype)
    image[0, :3] = [[0, 0, 0], [top, top, top], [top, 0, 0]]
    ours = rgb_to_lab(image)
    assert ours.dtype == np.float32
    assert np.abs(ours - rgb2lab(image)).max() <= FLOAT32_LAB_ERROR
    expected_linear = srgb_to_linear(image.astype(np.float64) / top)
    assert np.abs(srgb_to_linear(image) - expected_linear).max() <= 1e-7


def test_lab_to_rgb_matches_skimage_float64(lab_samples: np.ndarray) -> None:
    ours = lab_to_rgb(lab_samples)
    assert ours.dtype == np.float64
    assert ours.min() >= 0.0 and ours.max() <= 1.0  # clipped like skimage
    assert np.abs(ours - _sk_lab2rgb(lab_samples)).max() <= 1e-9


def test_lab_to_rgb_float32_within_documented_bound(lab_samples: np.ndarray) -> None:
    ours = lab_to_rgb(lab_samples.astype(np.float32))
    assert ours.dtype == np.float32
    error = np.abs(ours - _sk_lab2rgb(lab_samples)).max()
    assert error <= FLOAT32_RGB_ERROR, f"float32 sRGB error {error:.3g} above documented {FLOAT32_RGB_ERROR}"


def test_lab_round_trip_in_gamut(rgb_samples: np.ndarray) -> None:
    lab = rgb2lab(rgb_samples)
    assert np.abs(rgb_to_lab(lab_to_rgb(lab)) - lab).max() <= LAB_TOLERANCE


def test_rgb_to_l_equals_lab_lightness(rgb_samples: np.ndarray) -> None:
    np.testing.assert_allclose(rgb_to_l(rgb_samples), rgb_to_lab(rgb_samples)[:, 0], atol=1e-9)
    l32 = rgb_to_l(rgb_samples.astype(np.float32))
    assert l32.dtype == np.float32
    assert np.abs(l32 - rgb2lab(rgb_samples)[:, 0]).max() <= FLOAT32_LAB_ERROR


def test_l_to_gray_inverts_lightness_of_greys() -> None:
    lightness = np.linspace(0.0, 100.0, 10_001)
    grey = l_to_gray(lightness)
    assert grey[0] == 0.0 and abs(grey[-1] - 1.0) < 1e-12
    assert np.all(np.diff(grey) > 0)
    # skimage's rounded constants make f and its inverse disagree by ~4e-5 L in a sliver near L = 8.
    assert np.abs(rgb2lab(np.repeat(grey[:, None], 3, axis=1))[:, 0] - lightness).max() <= 1e-4
    # Independent value: L = 50 -> Y = (66/116)^3 -> sRGB encode.
    y = (66 / 116) ** 3
    assert abs(l_to_gray(np.array(50.0)) - (1.055 * y ** (1 / 2.4) - 0.055)) < 1e-12


def test_l_to_gray_float32(lab_samples: np.ndarray) -> None:
    lightness = lab_samples[:, 0]
    got = l_to_gray(lightness.astype(np.float32))
    assert got.dtype == np.float32
    assert np.abs(got - l_to_gray(lightness)).max() <= FLOAT32_RGB_ERROR


def test_srgb_transfer_known_points_and_round_trip() -> None:
    assert abs(srgb_to_linear(np.array(0.5)) - 0.214041140) < 1e-8
    assert abs(linear_to_srgb(np.array(color.LINEAR_KNEE)) - color.SRGB_KNEE) < 1e-6
    x = np.linspace(-0.1, 1.2, 10_001)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)


def test_linear_to_srgb_u8_is_exact_rounding() -> None:
    rng = np.random.default_rng(4)
    boundaries = srgb_to_linear((np.arange(1, 256) - 0.5) / 255)
    lin = np.concatenate(
        [rng.random(200_000) ** 3, boundaries * (1 + 1e-9), boundaries * (1 - 1e-9), [-1.0, 0.0, 1.0, 2.0]]
    )
    expected = np.rint(linear_to_srgb(np.clip(lin, 0, 1)) * 255).astype(np.uint8)
    got = linear_to_srgb_u8(lin)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    for dtype in (np.float32, np.float64):
        special = np.array([np.nan, -np.inf, np.inf, 1e30], dtype=dtype)
        np.testing.assert_array_equal(linear_to_srgb_u8(special), [0, 0, 255, 255])


def test_linear_to_srgb_u8_float32_rounds_the_float32_value_exactly() -> None:
    """float32 cells come from the float's bits: check the values right at every code boundary."""
    boundaries = srgb_to_linear((np.arange(1, 256) - 0.5) / 255).astype(np.float32)
    near = [np.nextafter(boundaries, np.float32(d)) for d in (-1, 2)]
    rng = np.random.default_rng(5)
    lin = np.concatenate([boundaries, *near, rng.random(500_000).astype(np.float32) ** 3])
    expected = np.rint(linear_to_srgb(np.clip(lin.astype(np.float64), 0, 1)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(linear_to_srgb_u8(lin), expected)
    strided = np.stack([lin, lin])[:, ::3]  # a non-contiguous view reads the same
    np.testing.assert_array_equal(linear_to_srgb_u8(strided)[1], expected[::3])


def test_bad_inputs_raise_input_error() -> None:
    with pytest.raises(InputError, match="3 channels"):
        rgb_to_lab(np.zeros((4, 4, 4)))
    with pytest.raises(InputError, match="3 channels"):
        lab_to_rgb(np.zeros((4, 2)))
    with pytest.raises(InputError, match="uint8 or uint16"):
        rgb_to_lab(np.zeros((4, 4, 3), dtype=np.int32))
    with pytest.raises(InputError, match="float32 or float64"):
        lab_to_rgb(np.zeros((4, 3), dtype=bool))
    # Integer Lab is a number, not an image: it is taken as float64.
    np.testing.assert_allclose(lab_to_rgb([[50, 0, 0]]), lab_to_rgb([[50.0, 0.0, 0.0]]))
