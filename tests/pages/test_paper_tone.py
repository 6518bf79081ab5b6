"""Scans on grey or yellowed paper: the paper level is read from the page itself, so panels are found,
gutters and balloons stay uncoloured and the art gets the colour it gets on white paper (a reference
palette's colours included), while dark and full-bleed pages, which show no paper, are not misread
as paper."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage.color import lab2rgb, rgb2lab

from colorrt.engines.onnxruntime import OnnxRuntimeEngine
from colorrt.kernels.pipeline import luminance
from colorrt.pages.colorize import PageColorizer, PageOptions
from colorrt.pages.palette import Palette
from colorrt.pages.panels import box_iou, detect_panels, paper_level
from colorrt.pages.tone import paper_white, white_paper_lightness
from tests import synth_pages, zoo

PAPERS = {
    "L70": synth_pages.paper_color(70),
    "L75": synth_pages.paper_color(75),
    "L81": synth_pages.paper_color(81),  # sRGB 201: a common grey scan
    "L88": synth_pages.paper_color(88),
    "L95": synth_pages.paper_color(95),
    "yellowed": synth_pages.paper_color(86, 12),
}
NOISE = 3.0  # scanner noise, grey levels


def _scan_lab(image: np.ndarray) -> np.ndarray:
    """skimage's Lab of a uint8 grey or RGB image: the independent reference for these checks."""
    return rgb2lab(np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3])


def _paper_l(rgb: tuple[int, int, int]) -> float:
    return float(rgb2lab(np.array(rgb, np.uint8)[None, None])[0, 0, 0])


def _pages(paper: tuple[int, int, int] | float, noise: float = NOISE) -> list[synth_pages.SyntheticPage]:
    sizes, layouts = ((480, 340), (900, 640)), ("grid", "slanted")
    return [
        synth_pages.make_page(300 + i, sizes[i % 2], layouts[(i // 2) % 2], paper=paper, noise=noise)
        for i in range(4)
    ]


def _ious(pages: list[synth_pages.SyntheticPage]) -> tuple[list[float], list[list]]:
    """Per true panel, its best IoU with a detected one; and the panels found on each page."""
    found = [detect_panels(luminance(page.image)) for page in pages]
    ious = [
        max(box_iou(truth, p.box) for p in panels)
        for page, panels in zip(pages, found, strict=True)
        for truth in page.boxes
    ]
    return ious, found


@pytest.mark.parametrize("name", PAPERS)
def test_the_paper_level_is_read_from_the_page(name) -> None:
    for page in _pages(PAPERS[name])[:2]:
        assert paper_level(luminance(page.image)) == pytest.approx(_paper_l(PAPERS[name]), abs=1.0)
    white = synth_pages.make_page(1, (480, 340)).image
    assert paper_level(luminance(white)) == pytest.approx(100.0, abs=1.0)


@pytest.mark.parametrize("name", PAPERS)
def test_panels_are_found_on_grey_and_yellowed_paper(name) -> None:
    pages = _pages(PAPERS[name])
    ious, found = _ious(pages)
    assert np.mean(ious) >= 0.95, f"mean IoU {np.mean(ious):.3f}"
    assert min(ious) >= 0.8
    assert [len(panels) for panels in found] == [len(page.boxes) for page in pages]


@pytest.mark.parametrize("paper", [255, PAPERS["L81"][0]], ids=["white", "L81"])
def test_noisy_scans_keep_their_gutters(paper) -> None:
    # Grey noise of 6 levels (sd ~2 L): with a fixed 7 L margin below the paper, dark specks cut the
    # gutters (mean IoU 0.89 on these white pages before); the margin follows the measured noise.
    ious, _ = _ious(_pages(paper, noise=6.0))
    assert np.mean(ious) >= 0.95, f"mean IoU {np.mean(ious):.3f}"


@pytest.fixture(scope="module")
def tinted(engine) -> list[tuple[str, synth_pages.SyntheticPage, np.ndarray]]:
    """Pages on L 70, L 81 and yellowed paper, colorized by the synthetic model."""
    colorizer = PageColorizer(engine, batch_size=8)
    out = []
    for name in ("L70", "L81", "yellowed"):
        for seed, layout in ((21, "grid"), (22, "slanted")):
            page = synth_pages.make_page(seed, (480, 340), layout, paper=PAPERS[name], noise=NOISE)
            out.append((name, page, colorizer.colorize(page.image).image))
    return out


def test_gutters_and_balloons_stay_uncoloured_on_tinted_paper(tinted) -> None:
    balloons = 0
    for name, page, result in tinted:
        lab = _scan_lab(result)
        chroma = np.hypot(lab[..., 1], lab[..., 2])
        inside = np.any(page.masks, axis=0)
        gutters, balloon = page.blank & ~inside, page.blank & inside
        assert np.percentile(chroma[gutters], 99) < 1.0, (name, chroma[gutters].mean())
        if balloon.sum() > 100:
            balloons += 1
            assert np.percentile(chroma[balloon], 99) < 1.0, (name, chroma[balloon].mean())
        # Art clearly darker than the paper still gets the model's colour.
        art = ndimage.maximum_filter(_scan_lab(page.image)[..., 0], size=5) < _paper_l(PAPERS[name]) - 20
        assert np.mean(chroma[art]) > 3.0, name
    assert balloons >= 2


def test_lightness_is_the_scans_own_on_tinted_paper(tinted) -> None:
    for name, page, result in tinted:
        error = np.abs(_scan_lab(result)[..., 0] - _scan_lab(page.image)[..., 0])
        assert np.percentile(error, 99.9) < 1.0, name


def test_a_yellowed_papers_tint_is_neutralized_like_the_rest_of_the_page(tinted) -> None:
    # The scan's own chroma never reaches the output (colour comes from the model only), so the paper
    # keeps its lightness but not its yellow: no yellow gutters around neutral-based panels.
    for name, page, result in tinted:
        if name != "yellowed":
            continue
        scan_b = _scan_lab(page.image)[..., 2][page.blank]
        out_ab = _scan_lab(result)[..., 1:][page.blank]
        assert np.median(scan_b) > 10.0  # the input really is yellow
        assert np.abs(out_ab).mean() < 0.5


def _art(white: synth_pages.SyntheticPage) -> np.ndarray:
    """The art of a white-paper page: drawn darker than L 80 inside panels."""
    return np.any(white.masks, axis=0) & (ndimage.maximum_filter(_scan_lab(white.image)[..., 0], 5) < 80)


def _art_chroma(engine, paper, normalize: bool = True) -> tuple[float, float]:
    """Mean output chroma over the art (drawn darker than L 80 inside panels) of two pages on
    ``paper``, and the 99.9th percentile of the output's L error against the scan's."""
    colorizer = PageColorizer(engine, 8, PageOptions(normalize_paper=normalize))
    chroma, errors = [], []
    for seed, layout in ((21, "grid"), (22, "slanted")):
        white = synth_pages.make_page(seed, (480, 340), layout, noise=NOISE)
        page = synth_pages.make_page(seed, (480, 340), layout, paper=paper, noise=NOISE)
        art = _art(white)
        out, scan = _scan_lab(colorizer.colorize(page.image).image), _scan_lab(page.image)
        chroma.append(np.hypot(out[..., 1], out[..., 2])[art])
        errors.append(np.percentile(np.abs(out[..., 0] - scan[..., 0]), 99.9))
    return float(np.mean(np.concatenate(chroma))), max(errors)


@pytest.mark.parametrize("name", ["L75", "yellowed"])
def test_art_on_tinted_paper_gets_the_colour_it_gets_on_white_paper(engine, name) -> None:
    # The model is shown the page as if on white paper; without that, the darker art got far less
    # colour from this model (L75: 8.7 against 24.8 ab on white), which checks the test can fail.
    on_white, _ = _art_chroma(engine, 255)
    chroma, l_error = _art_chroma(engine, PAPERS[name])
    assert chroma == pytest.approx(on_white, rel=0.2)
    assert l_error < 1.0  # only the model's chroma is used: the output keeps the scan's lightness
    if name == "L75":
        assert _art_chroma(engine, PAPERS[name], normalize=False)[0] < 0.5 * on_white


def _palette_drift(engine, paper, normalize: bool = True) -> float:
    """Mean ab distance over the art between the reference-matched colours of two white-paper pages
    and those of the same pages printed on ``paper``."""
    palette = Palette.from_image(synth_pages.character_reference(192))
    colorizer = PageColorizer(engine, 8, PageOptions(palette=palette, normalize_paper=normalize))
    drift = []
    for seed, layout in ((21, "grid"), (22, "slanted")):
        white = synth_pages.make_page(seed, (480, 340), layout, noise=NOISE)
        page = synth_pages.make_page(seed, (480, 340), layout, paper=paper, noise=NOISE)
        on_white = _scan_lab(colorizer.colorize(white.image).image)[..., 1:]
        on_paper = _scan_lab(colorizer.colorize(page.image).image)[..., 1:]
        drift.append(np.linalg.norm(on_white - on_paper, axis=-1)[_art(white)])
    return float(np.mean(np.concatenate(drift)))


@pytest.mark.parametrize("name", ["L75", "yellowed"])
def test_a_reference_gives_the_art_its_white_paper_colours_on_tinted_paper(engine, name) -> None:
    # The palette's lightness bands are matched against the white-paper L the model sees. Matched
    # against the scan's darker L, other bands were chosen: 29.4 ab drift at L75, 22.9 yellowed.
    drift = _palette_drift(engine, PAPERS[name])
    assert drift < 6.0
    if name == "L75":
        assert _palette_drift(engine, PAPERS[name], normalize=False) > 4 * drift


def test_a_hint_model_gets_the_white_paper_hints_on_tinted_paper(tmp_path) -> None:
    # This model's colour is its hints (then matched to the palette): before, 51.9 ab drift.
    engine = OnnxRuntimeEngine(zoo.hints_model(tmp_path / "hints.onnx"))
    palette = Palette.from_image(synth_pages.character_reference(128))
    colorizer = PageColorizer(engine, options=PageOptions(palette=palette, reference_strength=1.0))
    white = synth_pages.make_page(4, (300, 220), character_panels=3)
    page = synth_pages.make_page(4, (300, 220), character_panels=3, paper=PAPERS["L75"])
    on_white = _scan_lab(colorizer.colorize(white.image).image)[..., 1:]
    on_paper = _scan_lab(colorizer.colorize(page.image).image)[..., 1:]
    character = white.character_mask
    assert np.hypot(on_white[..., 0], on_white[..., 1])[character].mean() > 20.0
    assert np.linalg.norm(on_white - on_paper, axis=-1)[character].mean() < 10.0


def _linear_of(lightness: np.ndarray) -> np.ndarray:
    """Linear luminance of neutral greys of CIE ``lightness`` (skimage, sRGB decoding)."""
    srgb = lab2rgb(np.stack([lightness, 0 * lightness, 0 * lightness], -1)[None])[0, :, 0]
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _lightness_of(linear: np.ndarray) -> np.ndarray:
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return rgb2lab(np.repeat(srgb[None, :, None], 3, axis=2))[0, :, 0]


def test_white_paper_lightness_undoes_the_paper() -> None:
    # A scan reflects the ink's light times the paper's; on white paper the ink reads as itself.
    ink = np.linspace(0.0, 100.0, 41)
    paper = 72.5
    scan = _lightness_of(_linear_of(ink) * _linear_of(np.array([paper])))
    got = white_paper_lightness(scan.astype(np.float32), paper)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ink, atol=0.05)
    assert white_paper_lightness(np.array([paper + 3.0], np.float32), paper)[0] == pytest.approx(100.0)


def test_white_and_paperless_pages_are_left_as_they_were(engine) -> None:
    # Only a measured paper darker than white changes what the model sees.
    pages = [
        synth_pages.make_page(seed, (480, 340), layout, noise=NOISE).image
        for seed, layout in ((21, "grid"), (22, "slanted"), (5, "borderless"))
    ]
    pages.append(_white_on_black())
    palette = Palette.from_image(synth_pages.character_reference(192))
    for reference in (None, palette):  # the model's input, and the palette's band matching
        normalized = PageColorizer(engine, 8, PageOptions(palette=reference))
        plain = PageColorizer(engine, 8, PageOptions(palette=reference, normalize_paper=False))
        for image in pages:
            np.testing.assert_array_equal(normalized.colorize(image).image, plain.colorize(image).image)


def _white_on_black() -> np.ndarray:
    """A dark page: black background and margins, white panels with grey art."""
    image = Image.new("L", (340, 480), 0)
    draw = ImageDraw.Draw(image)
    for y0, y1 in ((30, 220), (250, 450)):
        draw.rectangle([25, y0, 315, y1], fill=255)
        draw.ellipse([60, y0 + 30, 200, y1 - 30], fill=120, outline=0, width=3)
    return np.asarray(image)


def _dim_gradient_art() -> np.ndarray:
    """A full-bleed illustration with nothing near white: a vertical gradient (L 42..77) and shapes."""
    ramp = np.linspace(100, 190, 480)[:, None] * np.ones((1, 340))
    image = Image.fromarray(ramp.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse([60, 80, 260, 300], fill=70, outline=0, width=3)
    draw.rectangle([30, 340, 200, 420], fill=140, outline=20, width=2)
    return np.asarray(image)


def test_dark_and_full_bleed_pages_are_not_read_as_paper() -> None:
    # Generated full-bleed pages (screentone, hatching, gradients) on grey paper; seed 7's background
    # is a gradient of only 5 L, brightest along the bottom edge.
    dim = [_dim_gradient_art()] + [
        synth_pages.make_page(seed, (480, 340), "borderless", paper=PAPERS[name], noise=NOISE).image
        for seed in range(5, 11)
        for name in ("L81", "L95")
    ]
    for image in [_white_on_black(), *dim]:
        L = luminance(image)
        assert paper_level(L) is None
        (panel,) = detect_panels(L)
        assert box_iou(panel.box, (0, 0, 340, 480)) >= 0.98
    # No paper seen: the white-page rule as before (a page with nothing above L 85: no paper white).
    assert paper_white(luminance(_white_on_black())) == pytest.approx(100.0)
    assert paper_white(luminance(_dim_gradient_art())) == 100.0


def test_panels_bled_off_the_top_edge_leave_the_paper_readable() -> None:
    # Every panel of the top row runs off the page (hatched art up to the edge): the top side shows
    # almost no paper, the other three still do.
    page = synth_pages.make_page(31, (480, 340), "grid", paper=PAPERS["L81"], noise=NOISE)
    image = page.image.copy()
    top = min(box[1] for box in page.boxes)
    truth = list(page.boxes)
    yy, xx = np.mgrid[0:top, 0:340]
    hatch = np.where((xx + yy) % 5 < 2, 40, 150).astype(np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(page.boxes):
        if y0 == top:
            image[:top, x0:x1] = hatch[:, x0:x1]
            truth[i] = (x0, 0, x1, y1)
    L = luminance(image)
    assert paper_level(L) == pytest.approx(_paper_l(PAPERS["L81"]), abs=1.0)
    panels = detect_panels(L)
    assert len(panels) == len(truth)
    assert min(max(box_iou(t, p.box) for p in panels) for t in truth) >= 0.9
