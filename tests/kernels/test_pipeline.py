"""Pre/post-processing kernels: luminance, preprocess per contract, decode_ab, merge, postprocess."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import softmax
from skimage import data
from skimage.color import lab2rgb, rgb2lab

from colorrt.contract import PRESETS, eccv16_contract
from colorrt.errors import ContractError, InputError
from colorrt.kernels import (
    decode_ab,
    image_to_rgb_float,
    l_to_gray,
    luminance,
    merge,
    postprocess,
    preprocess,
    resize_bilinear,
    rgb_to_lab,
)
from colorrt.kernels.color import FLOAT32_LAB_ERROR

torch = pytest.importorskip("torch")


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def _grey_srgb(lightness: float) -> float:
    """Independent: CIE L -> Y = ((L+16)/116)^3 (above the knee) -> sRGB encode."""
    y = ((lightness + 16) / 116) ** 3
    return 1.055 * y ** (1 / 2.4) - 0.055


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()[::2, ::2].copy()  # 256 x 256 x 3 uint8, a real photograph


# ---------------------------------------------------------------- image_to_rgb_float / luminance


def test_image_to_rgb_float_scales_and_replicates() -> None:
    grey = np.array([[0, 128], [255, 51]], dtype=np.uint8)
    rgb = image_to_rgb_float(grey)
    assert rgb.dtype == np.float32 and rgb.shape == (2, 2, 3)
    np.testing.assert_array_equal(rgb[..., 0], grey / np.float32(255))
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    wide = np.array([[0, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(image_to_rgb_float(wide)[0, :, 1], [0.0, 1.0])
    rgba = np.dstack([np.full((2, 2, 3), 200, np.uint8), np.zeros((2, 2), np.uint8)])
    np.testing.assert_array_equal(image_to_rgb_float(rgba), np.float32(200 / 255))
    overshoot = np.array([[-0.01, 1.02]], dtype=np.float64)
    np.testing.assert_array_equal(image_to_rgb_float(overshoot)[0, :, 0], [0.0, 1.0])


def test_luminance_matches_skimage(photo: np.ndarray) -> None:
    expected = rgb2lab(photo)[..., 0]
    for image in (photo, photo / 255.0, photo.astype(np.uint16) * 257):
        got = luminance(image)
        assert got.dtype == np.float32 and got.shape == photo.shape[:2]
        assert np.abs(got - expected).max() <= FLOAT32_LAB_ERROR


def test_luminance_of_grey_is_the_greys_own_lightness() -> None:
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    own_l = rgb2lab(np.repeat(grey[..., None], 3, axis=2))[..., 0]
    for image in (grey, grey[..., None], np.repeat(grey[..., None], 3, axis=2), grey / 255.0):
        assert np.abs(luminance(image) - own_l).max() <= FLOAT32_LAB_ERROR


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((4, 4, 2), np.uint8), "grey or H x W x 3"),
        (np.zeros((2, 4, 4, 3), np.uint8), "grey or H x W x 3"),
        (np.zeros((4, 4), np.int32), "unsupported pixel type"),
        (np.full((4, 4), 200.0), "must be in 0..1"),
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
    ],
)
def test_luminance_rejects_bad_images(image: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        luminance(image)


# ---------------------------------------------------------------- preprocess


@pytest.mark.parametrize(
    ("name", "render_hw", "channels"),
    [
        ("colorrt-default", (96, 256), 1),  # 60x160 -> longest side 256, multiple of 16
        ("pix2pix-colorization", (256, 256), 1),
        ("cyclegan-rgb", (96, 256), 3),  # multiple of 4
        ("pix2pix-rgb", (256, 256), 3),
        ("siggraph17", (256, 256), 4),
    ],
)
def test_preprocess_normalizes_constant_lightness_by_hand(
    name: str, render_hw: tuple[int, int], channels: int
) -> None:
    contract = PRESETS[name]
    plane = np.full((60, 160), 30.0, dtype=np.float32)
    batch = preprocess([plane, plane], contract)
    assert batch.shape == (2, channels, *render_hw) and batch.dtype == np.float32
    expected = {
        "colorrt-default": [30 / 50 - 1],
        "pix2pix-colorization": [30 / 50 - 1],
        "cyclegan-rgb": [_grey_srgb(30) * 2 - 1] * 3,
        "pix2pix-rgb": [_grey_srgb(30) * 2 - 1] * 3,
        "siggraph17": [(30 - 50) / 100, 0.0, 0.0, 0.0],  # no hints: zero ab, mask 0 (release: raw mask)
    }[name]
    for channel, value in enumerate(expected):
        np.testing.assert_allclose(batch[:, channel], value, atol=1e-5)


def test_preprocess_eccv16_and_float16() -> None:
    contract = eccv16_contract([(0.0, 0.0), (10.0, -10.0)])
    batch = preprocess([np.full((300, 200), 75.0)], contract, dtype=np.float16)
    assert batch.shape == (1, 1, 256, 256) and batch.dtype == np.float16
    np.testing.assert_allclose(batch.astype(np.float32), (75 - 50) / 100, atol=1e-3)


def test_preprocess_resizes_like_torch_antialias(photo: np.ndarray) -> None:
    lightness = luminance(photo)
    batch = preprocess([lightness], PRESETS["pix2pix-colorization"].replace(render_size=100))
    reference = torch.nn.functional.interpolate(
        torch.from_numpy(lightness.astype(np.float64))[None, None],
        size=(100, 100),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )[0, 0].numpy()
    np.testing.assert_allclose(batch[0, 0], reference / 50 - 1, atol=1e-5)


def test_preprocess_hints_survive_downscale() -> None:
    contract = PRESETS["siggraph17"]
    size = 512
    plane = np.full((size, size), 50.0, dtype=np.float32)
    hint = np.zeros((size, size, 3), dtype=np.float32)
    hint[100:140, 300:340] = [40.0, -20.0, 1.0]  # a 40 px patch -> 20 px at render size
    hint[400, 50] = [10.0, 10.0, 1.0]  # one full-resolution click
    batch = preprocess([plane, plane], contract, hints=[hint, None])
    ab_mask = batch[0, 1:]
    np.testing.assert_allclose(ab_mask[:, 60, 160], [40 / 110, -20 / 110, 1.0], atol=1e-5)  # patch centre
    np.testing.assert_allclose(ab_mask[:, 200, 25], [10 / 110, 10 / 110, 1.0], atol=1e-5)  # the click
    np.testing.assert_allclose(ab_mask[:, 10, 10], [0.0, 0.0, 0.0])  # no hint
    covered = ab_mask[2] > 0
    assert 400 <= covered.sum() <= 22 * 22 + 9  # the patch (plus a rim of 1 px) and the click
    np.testing.assert_allclose(batch[1, 1:3], 0.0)
    np.testing.assert_allclose(batch[1, 3], 0.0)


def test_preprocess_errors() -> None:
    default = PRESETS["colorrt-default"]
    with pytest.raises(InputError, match="one render shape"):
        preprocess([np.zeros((100, 200)), np.zeros((200, 100))], default)
    with pytest.raises(InputError, match="empty batch"):
        preprocess([], default)
    with pytest.raises(InputError, match="not 'L_hints'"):
        preprocess([np.zeros((8, 8))], default, hints=[np.zeros((8, 8, 3))])
    with pytest.raises(InputError, match="a, b, mask"):
        preprocess([np.zeros((8, 8))], PRESETS["siggraph17"], hints=[np.zeros((4, 4, 3))])
    with pytest.raises(InputError, match="lightness plane"):
        preprocess([np.zeros((8, 8, 3))], default)
    # A fixed render size batches images of different sizes.
    assert preprocess([np.zeros((100, 200)), np.zeros((200, 100))], PRESETS["pix2pix-rgb"]).shape[0] == 2


# ---------------------------------------------------------------- decode_ab


def test_decode_ab_scales_ab_output() -> None:
    y = np.random.default_rng(0).uniform(-1, 1, (2, 2, 8, 8)).astype(np.float32)
    ab = decode_ab(y, PRESETS["colorrt-default"])
    assert ab.dtype == np.float32 and ab.shape == (2, 2, 8, 8)
    np.testing.assert_allclose(ab, y * 110, rtol=1e-6)


def test_decode_ab_rgb_output_takes_lab_chroma() -> None:
    y = np.random.default_rng(1).uniform(-1.2, 1.2, (2, 3, 8, 8)).astype(np.float32)  # tanh-like, overshoot
    ab = decode_ab(y, PRESETS["cyclegan-rgb"])
    rgb = np.clip(y.astype(np.float64) * 0.5 + 0.5, 0, 1).transpose(0, 2, 3, 1)
    expected = rgb2lab(rgb)[..., 1:].transpose(0, 3, 1, 2)
    assert ab.shape == (2, 2, 8, 8)
    assert np.abs(ab - expected).max() <= FLOAT32_LAB_ERROR


def test_decode_ab_bins_is_the_papers_annealed_mean() -> None:
    grid = np.array([(a, b) for a in range(-110, 111, 10) for b in range(-110, 111, 10)], dtype=np.float64)
    centers = grid[np.argsort(np.hypot(*grid.T), kind="stable")][:313]  # 313 bins, like ECCV16
    contract = eccv16_contract(centers)
    logits = np.random.default_rng(2).normal(0, 3, (2, 313, 4, 5)).astype(np.float32)
    ab = decode_ab(logits, contract)
    assert ab.shape == (2, 2, 4, 5) and ab.dtype == np.float32
    # Paper: p = softmax(logits); annealed = softmax(log(p) / T); ab = E[centre].
    p = softmax(logits.astype(np.float64), axis=1)
    annealed = softmax(np.log(p) / 0.38, axis=1)
    expected = np.einsum("nkhw,kc->nchw", annealed, centers)
    assert np.abs(ab - expected).max() <= 1e-3
    hot = np.full((1, 313, 1, 1), -50.0, dtype=np.float32)
    hot[0, 7] = 50.0  # one confident bin decodes to its own centre
    np.testing.assert_allclose(decode_ab(hot, contract)[0, :, 0, 0], centers[7], atol=1e-4)


def test_decode_ab_checks_channels_against_contract() -> None:
    with pytest.raises(ContractError, match="expects 2 output channels"):
        decode_ab(np.zeros((1, 3, 4, 4), np.float32), PRESETS["colorrt-default"])
    with pytest.raises(InputError, match="NCHW"):
        decode_ab(np.zeros((2, 4, 4), np.float32), PRESETS["colorrt-default"])


# ---------------------------------------------------------------- merge / postprocess


def test_merge_of_zero_ab_is_grey() -> None:
    lightness = np.linspace(0, 100, 64 * 48, dtype=np.float32).reshape(64, 48)
    out = merge(lightness, np.zeros((2, 8, 6), np.float32))
    assert out.dtype == np.uint8 and out.shape == (64, 48, 3)
    spread = out.max(axis=2).astype(int) - out.min(axis=2)
    assert spread.max() <= 1  # D65 white is neutral only to the sRGB matrix's 6 digits
    assert (spread == 0).mean() >= 0.95
    np.testing.assert_allclose(out[..., 1], np.rint(l_to_gray(lightness) * 255), atol=1)


def test_merge_keeps_full_resolution_lightness(photo: np.ndarray) -> None:
    lightness = luminance(photo)
    ab_full = rgb_to_lab(photo)[..., 1:].transpose(2, 0, 1)
    # Same-size ab: only uint8 rounding separates the result from the photo.
    same = merge(lightness, ab_full)
    assert np.abs(same.astype(int) - photo).max() <= 1
    # Quarter-size ab (as from a model): L is still the input's (clipping of the few out-of-gamut
    # colours the blurred chroma creates is the only loss).
    small = resize_bilinear(np.ascontiguousarray(ab_full), (64, 64))
    merged = merge(lightness, small)
    assert _psnr(rgb2lab(merged)[..., 0], lightness, peak=100) >= 40


def test_merge_matches_skimage_reference(photo: np.ndarray) -> None:
    lightness = luminance(photo).astype(np.float64)
    ab = np.random.default_rng(3).uniform(-60, 60, (2, 32, 32))
    ab_full = torch.nn.functional.interpolate(
        torch.from_numpy(ab)[None], size=lightness.shape, mode="bilinear", align_corners=False
    )[0].numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.rint(lab2rgb(np.stack([lightness, ab_full[0], ab_full[1]], axis=-1)) * 255)
    diff = np.abs(merge(lightness, ab).astype(int) - expected)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_merge_downscales_larger_ab() -> None:
    out = merge(np.full((10, 12), 60.0), np.full((2, 40, 48), 20.0))
    assert out.shape == (10, 12, 3)
    expected = np.rint(lab2rgb(np.array([[60.0, 20.0, 20.0]])) * 255)[0]
    np.testing.assert_allclose(out.reshape(-1, 3), np.broadcast_to(expected, (120, 3)), atol=1)


def test_merge_rejects_bad_shapes() -> None:
    with pytest.raises(InputError, match=r"\(2, h, w\)"):
        merge(np.zeros((4, 4)), np.zeros((4, 4, 2)))
    with pytest.raises(InputError, match="lightness plane"):
        merge(np.zeros((4, 4, 3)), np.zeros((2, 4, 4)))


def test_postprocess_round_trip_recovers_the_photo() -> None:
    contract = PRESETS["colorrt-default"]
    photo = data.astronaut()  # 512 x 512: the model renders at half size
    lightness = luminance(photo)
    # A perfect model: the true ab of the image at render size, as its tanh output would encode it.
    render_hw = contract.render_shape(*lightness.shape)
    ab_true = rgb_to_lab(image_to_rgb_float(photo))[..., 1:].transpose(2, 0, 1)
    y = resize_bilinear(np.ascontiguousarray(ab_true), render_hw)[None] / 110
    images = postprocess(np.concatenate([y, y]), [lightness, lightness], contract)
    assert len(images) == 2 and images[0].shape == photo.shape and images[0].dtype == np.uint8
    # Chroma at half resolution is the only loss (measured 38.6 dB).
    assert _psnr(images[0], photo, peak=255) >= 35
    with pytest.raises(InputError, match="2 items but 1"):
        postprocess(np.concatenate([y, y]), [lightness], contract)
