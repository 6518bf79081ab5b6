"""Paper tone: how white a page's paper is, the lightness the model sees, and the chroma a pixel keeps.

On grey or yellowed paper the model is shown the panels as if printed on white paper
(:func:`white_paper_lightness`), so it colours the art as it would on a white page; a reference
palette's lightness bands are matched against that same white-paper lightness (its hints and its
chroma transfer), so the art gets the bands it gets on white paper. Only chroma is used, so the
output keeps the scan's own lightness either way.

Every pixel's CIE L stays the scan's (within rounding): where a chroma would push a colour out of the
sRGB gamut, that pixel's chroma is reduced until it fits (:func:`merge_keeping_lightness`), instead
of letting clipping change its lightness. Near-white regions (balloons, gutters, margins) get no
chroma at all (:func:`chroma_weight`). A scan whose chroma is only its paper's tint is monochrome;
one with other colours is already in colour (:func:`is_color_page`) and is passed through.
"""

from __future__ import annotations

import functools

import numpy as np

from colorrt.kernels import pipeline
from colorrt.kernels.color import l_to_y, rgb_to_lab, y_to_l
from colorrt.kernels.deep import merge_u16
from colorrt.pages.panels import PanelConfig, paper_level

COLOR_DEVIATION = 10.0  # ab units from the page's dominant tint that count as a colour pixel
COLOR_FRACTION = 0.02  # share of colour pixels above which a page is already in colour
WHITE_FULL = 8.0  # L units below the paper white where chroma is fully kept
WHITE_NONE = 2.0  # L units below the paper white from where no chroma is added


def paper_white(luminance: np.ndarray, config: PanelConfig | None = None) -> float:
    """The page's paper white (CIE L): the paper's level read from the page (grey and yellowed scans
    included, see :func:`colorrt.pages.panels.paper_level`); on pages where no paper is seen, a high
    percentile of L, not below 85 (dark pages: 100, nothing is taken for paper)."""
    level = paper_level(luminance, config)
    return fallback_white(luminance) if level is None else level


def fallback_white(luminance: np.ndarray) -> float:
    """Paper white where no paper is seen: the 99th percentile of L, or 100 when that is below 85."""
    level = float(np.percentile(luminance[::4, ::4], 99))
    return level if level >= 85.0 else 100.0


def white_paper_lightness(luminance: np.ndarray, paper: float) -> np.ndarray:
    """CIE L of a page printed on paper of lightness ``paper``, as it would read on white paper.

    Each pixel's luminance Y is divided by the paper's, then clipped to white. Ink on paper reflects
    the paper's light times the ink's, so this undoes grey or yellowed paper exactly: black stays
    black and every tone returns to its white-paper L. A plain ``L * 100 / paper`` does not: an L 50
    grey printed on L 70 paper scans as L 33 and would come back as L 47, not 50.
    """
    y = l_to_y(np.asarray(luminance, np.float32))
    y *= np.float32(1.0 / float(l_to_y(np.array(paper, np.float64))))
    np.minimum(y, np.float32(1.0), out=y)  # specks brighter than the paper: white
    return y_to_l(y)


def seen_lightness(luminance: np.ndarray, paper: float | None) -> np.ndarray:
    """L as the model and the palette see it: on white paper when a darker paper was measured,
    else ``luminance`` itself (white pages stay bit-identical)."""
    return luminance if paper is None else white_paper_lightness(luminance, paper)


def chroma_weight(luminance: np.ndarray, white: float) -> np.ndarray:
    """0..1 share of the model's chroma a pixel keeps: 1 up to ``white - WHITE_FULL``, 0 from
    ``white - WHITE_NONE`` (balloons, gutters and margins stay neutral)."""
    ramp = (white - WHITE_NONE - np.asarray(luminance, np.float32)) / np.float32(WHITE_FULL - WHITE_NONE)
    return np.clip(ramp, 0.0, 1.0)


def merge_keeping_lightness(luminance: np.ndarray, ab: np.ndarray, *, deep: bool = False) -> np.ndarray:
    """``uint8`` RGB (``uint16`` when ``deep``) of full-res L and full-res ab, with every pixel's
    chroma first limited to the sRGB gamut at its own lightness and hue, so per-channel clipping never
    changes a pixel's L (dark lines stay black, lettering and tones keep their lightness). ``ab`` is
    modified in place."""
    limit_to_gamut(luminance, ab)
    return merge_u16(luminance, ab) if deep else pipeline.merge(luminance, ab)


def limit_to_gamut(luminance: np.ndarray, ab: np.ndarray) -> None:
    """Scale each pixel's ab (``(2, H, W)``, in place) down to the largest in-gamut chroma of its
    L and hue (from a table, so it costs a few array operations per pixel)."""
    table = _max_chroma_table()
    a, b = ab[0], ab[1]
    chroma = np.sqrt(a * a + b * b)
    hue = _pseudo_hue(a, b)
    hue *= np.float32(_HUE_STEPS / 4)
    hue += np.float32(0.5)
    hue_index = hue.astype(np.intp)
    hue_index %= _HUE_STEPS
    l_index = luminance * np.float32(_L_STEPS_PER_UNIT)
    l_index += np.float32(0.5)
    np.clip(l_index, 0, table.shape[0] - 1, out=l_index)
    flat_index = l_index.astype(np.intp)
    flat_index *= _HUE_STEPS
    flat_index += hue_index
    limit = np.take(table.ravel(), flat_index)
    np.maximum(chroma, np.float32(1e-6), out=chroma)
    np.divide(limit, chroma, out=limit)
    np.minimum(limit, np.float32(1.0), out=limit)
    ab *= limit[None]


def _pseudo_hue(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A cheap stand-in for the hue angle: ``[0, 4)``, increasing with the angle (diamond angle)."""
    ratio = b / (np.abs(a) + np.abs(b) + np.float32(1e-12))
    return np.where(a >= 0, ratio, np.float32(2.0) - ratio) % np.float32(4.0)


_L_STEPS_PER_UNIT = 2  # gamut table resolution: 0.5 L
_HUE_STEPS = 360  # and 360 steps of pseudo-hue


@functools.cache
def _max_chroma_table() -> np.ndarray:
    """``(201, 360)`` float32 largest chroma inside sRGB per (L, pseudo-hue), made conservative by taking
    the minimum over each entry's neighbours (a pixel between grid points stays inside the gamut)."""
    levels = np.arange(100 * _L_STEPS_PER_UNIT + 1) / _L_STEPS_PER_UNIT
    pseudo = np.arange(_HUE_STEPS) * (4.0 / _HUE_STEPS)
    ratio = np.where(pseudo <= 1, pseudo, np.where(pseudo >= 3, pseudo - 4, 2 - pseudo))
    a_dir = np.where((pseudo <= 1) | (pseudo >= 3), 1 - np.abs(ratio), np.abs(ratio) - 1)
    b_dir = ratio
    norm = np.hypot(a_dir, b_dir)
    L, a_unit = np.meshgrid(levels, a_dir / norm, indexing="ij")
    b_unit = np.broadcast_to(b_dir / norm, L.shape)
    lo, hi = np.zeros_like(L), np.full_like(L, 200.0)
    for _ in range(16):  # bisection on chroma along each (L, hue) ray
        mid = (lo + hi) / 2
        inside = _in_gamut(L, mid * a_unit, mid * b_unit)
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    padded = np.pad(lo, ((1, 1), (0, 0)), mode="edge")
    rows = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    safe = np.minimum(np.minimum(np.roll(rows, 1, axis=1), rows), np.roll(rows, -1, axis=1))
    return np.ascontiguousarray(0.995 * safe, dtype=np.float32)


def _in_gamut(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where Lab (float64) maps inside the sRGB cube (the maths of kernels.color.lab_to_rgb)."""
    from colorrt.kernels.color import D65_WHITE, LAB_F_KNEE, LAB_F_OFFSET, LAB_KAPPA, RGB_FROM_XYZ

    fy = (L + 16.0) / 116.0
    f = np.stack([fy + a / 500.0, fy, fy - b / 200.0])
    t = np.where(f > LAB_F_KNEE, f**3, (f - LAB_F_OFFSET) / LAB_KAPPA)
    xyz = t * D65_WHITE[:, None, None]
    linear = np.einsum("ij,j...->i...", RGB_FROM_XYZ, xyz)
    return np.all((linear >= -1e-6) & (linear <= 1 + 1e-6), axis=0)


def colour_share(image: np.ndarray) -> float:
    """Share of pixels with colour a monochrome (black-and-white, sepia, yellowed) scan cannot have.

    A tinted scan's chroma all points one way (the tint's hue) with a size that varies with the
    tone. So the dominant chroma direction is found (principal axis of ab), and a pixel counts as
    colour when its chroma leaves that axis, or points against the tint, by over
    :data:`COLOR_DEVIATION`.
    """
    image = np.asarray(image)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return 0.0
    step = max(1, max(image.shape[:2]) // 384)  # a few hundred pixels a side are plenty
    small = pipeline.image_to_rgb_float(image[::step, ::step, :3])
    ab = rgb_to_lab(small)[..., 1:].reshape(-1, 2).astype(np.float64)
    tinted = ab[np.hypot(ab[:, 0], ab[:, 1]) > 2.0]
    if len(tinted) == 0:
        return 0.0
    _, vectors = np.linalg.eigh(tinted.T @ tinted)
    axis = vectors[:, -1]  # principal direction of the chroma
    if np.median(tinted @ axis) < 0:
        axis = -axis
    along = ab @ axis
    across = np.abs(ab @ np.array([-axis[1], axis[0]]))
    return float(np.mean((across > COLOR_DEVIATION) | (along < -COLOR_DEVIATION)))


def is_color_page(image: np.ndarray, threshold: float = COLOR_FRACTION) -> bool:
    """True when the page is already in colour (see :func:`colour_share`)."""
    return colour_share(image) > threshold
