"""The page pipeline with a real ONNX Runtime engine: lightness kept, white kept white, panels batched
across pages, colour pages passed through, and consistent character colours with a reference."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage.color import rgb2lab

from colorrt.engines.onnxruntime import OnnxRuntimeEngine
from colorrt.kernels.pipeline import luminance
from colorrt.pages.colorize import PageColorizer, PageOptions, letterbox
from colorrt.pages.palette import Palette
from colorrt.pages.tone import colour_share, is_color_page, limit_to_gamut
from tests import synth_pages, zoo


class CountingEngine(OnnxRuntimeEngine):
    """The real ONNX Runtime engine, recording the batch size of every inference call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[int] = []

    def _infer_impl(self, batch):
        self.calls.append(int(batch.shape[0]))
        return super()._infer_impl(batch)


def _lab(image: np.ndarray) -> np.ndarray:
    """skimage's Lab of a uint8 grey or RGB image: the independent reference for every check here."""
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    return rgb2lab(rgb)


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 100.0) -> float:
    return float(10 * np.log10(peak**2 / np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def colorized(engine, chapter):
    colorizer = PageColorizer(engine, batch_size=8)
    return [result for _, result in colorizer.stream(enumerate(p.image for p in chapter))]


def test_lightness_is_the_scans_own(chapter, colorized) -> None:
    for page, result in zip(chapter, colorized, strict=True):
        assert result.status == "colorized" and result.image.shape == (*page.image.shape, 3)
        L_in, L_out = _lab(page.image)[..., 0], _lab(result.image)[..., 0]
        assert _psnr(L_out, L_in) >= 40.0
        assert np.percentile(np.abs(L_out - L_in), 99.9) < 1.0


def test_white_areas_stay_neutral_and_panels_get_colour(chapter, colorized) -> None:
    for page, result in zip(chapter, colorized, strict=True):
        lab = _lab(result.image)
        chroma = np.hypot(lab[..., 1], lab[..., 2])
        white = ndimage.minimum_filter(page.image, size=7) >= 246  # gutters, margins, balloon insides
        assert white.sum() > 500
        assert np.percentile(chroma[white], 99) < 1.0
        art = ndimage.maximum_filter(page.image, size=5) < 200  # clearly non-white content
        assert np.mean(chroma[art]) > 3.0


def test_chroma_comes_from_the_model_at_full_resolution(tmp_path) -> None:
    # zoo's ab model is a closed form of L: a flat grey area must get exactly expected_ab(L).
    engine = OnnxRuntimeEngine(zoo.ab_model(tmp_path / "ab.onnx"))
    image = Image.new("L", (300, 420), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle([15, 15, 284, 200], fill=255, outline=0, width=3)
    draw.rectangle([15, 215, 284, 404], fill=255, outline=0, width=3)
    draw.rectangle([40, 40, 200, 180], fill=150)
    draw.rectangle([60, 240, 260, 380], fill=90)
    result = PageColorizer(engine).colorize(np.asarray(image))
    assert len(result.panels) == 2
    lab = _lab(result.image)
    for (y0, y1, x0, x1), grey in (((60, 160, 60, 180), 150), ((260, 360, 80, 240), 90)):
        L = luminance(np.array([[grey]], np.uint8))[0, 0]
        expected = zoo.expected_ab(np.array(L))
        region = lab[y0:y1, x0:x1, 1:].reshape(-1, 2)
        assert np.abs(region - expected).max() < 1.5, (grey, region.mean(axis=0), expected)


def test_panels_of_several_pages_share_batches(model_path, chapter) -> None:
    results = {}
    for across in (True, False):
        engine = CountingEngine(model_path, threads=2)
        colorizer = PageColorizer(engine, batch_size=8, options=PageOptions(across_pages=across))
        results[across] = [r for _, r in colorizer.stream(enumerate(p.image for p in chapter))]
        panels = sum(len(r.panels) for r in results[across])
        assert sum(engine.calls) == panels
        if across:
            assert engine.calls[:-1] == [8] * (len(engine.calls) - 1)  # full batches mixing pages
            assert len(engine.calls) == -(-panels // 8)
        else:
            per_page = [[8] * (len(r.panels) // 8) + [len(r.panels) % 8] for r in results[across]]
            assert engine.calls == [n for calls in per_page for n in calls if n]  # never two pages in one
    for a, b in zip(results[True], results[False], strict=True):
        assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1


def test_pages_already_in_colour_pass_through_unless_forced(engine) -> None:
    colour = synth_pages.make_color_page(1, (300, 220))
    grey = synth_pages.make_page(1, (300, 220)).image
    yellowed = np.clip(np.repeat(grey[..., None], 3, 2) * np.array([1.0, 0.96, 0.86]), 0, 255).astype(
        np.uint8
    )
    assert is_color_page(colour) and colour_share(colour) > 0.2
    assert not is_color_page(grey) and not is_color_page(yellowed)
    two_hues = np.repeat(grey[..., None], 3, 2) * np.where(
        np.arange(300)[:, None, None] < 150, [1, 0.6, 0.6], [0.6, 1, 1]
    )
    assert is_color_page(two_hues.astype(np.uint8))  # red and cyan: opposite hues on one axis
    colorizer = PageColorizer(engine)
    passed = colorizer.colorize(colour)
    assert passed.status == "passed" and np.array_equal(passed.image, colour)
    forced = PageColorizer(engine, options=PageOptions(force=True)).colorize(colour)
    assert forced.status == "colorized" and not np.array_equal(forced.image, colour)
    assert colorizer.colorize(yellowed).status == "colorized"


def test_16_bit_grey_and_rgba_pages(engine) -> None:
    page = synth_pages.make_page(2, (300, 220), noise=0.0).image
    deep = page.astype(np.uint16) * 257 + 100  # 16-bit scan, not just 8-bit values scaled
    result = PageColorizer(engine).colorize(deep)
    assert result.image.dtype == np.uint16 and result.image.shape == (300, 220, 3)  # 16 bits kept
    L_in = rgb2lab(np.repeat((deep / 65535.0)[..., None], 3, axis=2))[..., 0]
    assert _psnr(_lab(result.image)[..., 0], L_in) >= 40.0
    alpha = np.full(page.shape, 200, np.uint8)
    rgba = np.dstack([np.repeat(page[..., None], 3, 2), alpha])
    out = PageColorizer(engine).colorize(rgba).image
    assert out.shape == (300, 220, 4) and np.array_equal(out[..., 3], alpha)
    float_rgba = np.dstack([np.repeat(page[..., None] / 255.0, 3, 2), np.full(page.shape, 0.5)])
    out = PageColorizer(engine).colorize(float_rgba).image  # alpha scaled as the runtime does (was 0)
    assert np.all(out[..., 3] == 128)


def _character_means(pages, results) -> np.ndarray:
    """Per page, the mean a, b of each character part (hair, skin, shirt) in the output: (pages, 6)."""
    rows = []
    for page, result in zip(pages, results, strict=True):
        lab = _lab(result.image)
        row = []
        for part in ("hair", "skin", "shirt"):
            mask = ndimage.binary_erosion(page.character.get(part, np.zeros(page.image.shape, bool)))
            row += lab[mask][:, 1:].mean(axis=0).tolist() if mask.sum() > 20 else [np.nan, np.nan]
        rows.append(row)
    return np.array(rows)


def _spread(means: np.ndarray) -> float:
    """RMS distance (ab units) of each page's character colours from their mean over the pages."""
    deviation = means - np.nanmean(means, axis=0)
    return float(np.sqrt(np.nanmean(deviation**2) * 2))  # x2: per (a, b) pair, not per channel


def test_a_reference_keeps_the_characters_colours_across_pages(engine, chapter, colorized) -> None:
    palette = Palette.from_image(synth_pages.character_reference(192))
    with_reference = PageColorizer(engine, 8, PageOptions(palette=palette, reference_strength=1.0))
    referenced = [r for _, r in with_reference.stream(enumerate(p.image for p in chapter))]
    free, matched = _character_means(chapter, colorized), _character_means(chapter, referenced)
    spread_free, spread_matched = _spread(free), _spread(matched)
    print(
        f"character ab spread over {len(chapter)} pages: {spread_free:.2f} without, {spread_matched:.2f} with"
    )
    assert spread_free > 4.0  # the model alone is inconsistent (colour depends on each panel)
    assert spread_matched < 0.35 * spread_free
    assert spread_matched < 3.0
    truth = np.array([synth_pages.CHARACTER_LAB[p][1:] for p in ("hair", "skin", "shirt")]).ravel()
    assert np.abs(np.nanmean(matched, axis=0) - truth).max() < 8.0
    for page, result in zip(chapter, referenced, strict=True):  # the reference never costs lightness
        assert _psnr(_lab(result.image)[..., 0], _lab(page.image)[..., 0]) >= 40.0


def test_a_hint_model_gets_the_reference_as_hints(tmp_path) -> None:
    engine = OnnxRuntimeEngine(zoo.hints_model(tmp_path / "hints.onnx"))
    page = synth_pages.make_page(4, (300, 220), character_panels=3)
    plain = PageColorizer(engine).colorize(page.image).image
    palette = Palette.from_image(synth_pages.character_reference(128))
    hinted = PageColorizer(engine, options=PageOptions(palette=palette)).colorize(page.image).image
    chroma = lambda image: np.hypot(*np.moveaxis(_lab(image)[..., 1:], -1, 0))  # noqa: E731
    assert chroma(plain).max() < 1.0  # no hints: this model returns no colour
    assert chroma(hinted)[page.character_mask].mean() > 5.0


def test_letterbox_keeps_the_aspect_ratio_and_centres() -> None:
    box = letterbox((100, 400), (64, 64))
    assert (box.height, box.width, box.top, box.left) == (16, 64, 24, 0)
    box = letterbox((300, 150), (96, 96))
    assert (box.height, box.width, box.top, box.left) == (96, 48, 0, 24)
    assert letterbox((5, 5000), (64, 64)).height == 1


def test_gamut_limit_keeps_lightness_and_hue() -> None:
    rng = np.random.default_rng(0)
    L = rng.uniform(0, 100, (50, 50)).astype(np.float32)
    ab = rng.normal(0, 60, (2, 50, 50)).astype(np.float32)
    limited = ab.copy()
    limit_to_gamut(L, limited)
    from skimage.color import lab2rgb

    lab = np.dstack([L, limited[0], limited[1]]).astype(np.float64)
    back = rgb2lab(lab2rgb(lab))  # clipping would move L; a limited colour survives the round trip
    assert np.percentile(np.abs(back[..., 0] - L), 99) < 0.1
    cross = ab[0] * limited[1] - ab[1] * limited[0]  # same direction: hue kept
    assert np.abs(cross).max() < 1e-2 * np.abs(ab).max() ** 2
    assert np.all(np.hypot(*limited) <= np.hypot(*ab) + 1e-4)
