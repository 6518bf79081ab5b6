"""Panel detection on comic and manga pages, and their reading order.

A page is paper with panels drawn on it. The paper shows as gutters and margins that all connect to
the page edge; every large connected region that is *not* that paper is a panel. The paper's level is
read from the page's border (:func:`paper_level`), so grey and yellowed scans work like white ones. Thin
white structures (screentone gaps, breaks in a frame line) are removed first with a morphological
opening, so only gutters at least ``2 * gap_px + 1`` pixels wide separate panels. Each panel keeps its
exact pixel mask (slanted or irregular panels) and the convex polygon around it. Pages where this finds
no convincing panels (full-bleed art, frameless layouts) are treated as one panel: the whole page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), half-open, in page pixels

PAPER_BORDER = 0.03  # width of the page border searched for paper, fraction of the shorter side
PAPER_FLAT = 5  # pixels: minimum filter size that turns screentone and hatching dark (paper stays)
PAPER_WINDOW = 3.0  # L units: width of the paper's peak in the border's (filtered) histogram
PAPER_SHARE = 0.25  # share of the border the paper's peak must hold ...
PAPER_SIDE_SHARE = 0.2  # ... and of each of the four sides, but one:
PAPER_BLEED = 15.0  # L units: the side without paper must be this much darker (art bled off the page)
PAPER_BRIGHTER = 0.01  # largest share of the page that may be brighter than the paper (beyond noise)


@dataclass(frozen=True)
class PanelConfig:
    """Tuning of :func:`detect_panels` (defaults fit scans from about 600 to 4000 pixels high).

    Attributes:
        white_margin: L units (0..100) below the paper's level that still count as paper.
        min_paper: lowest paper level (L) read from a page's border; darker is not paper.
        min_white: on pages where no paper is seen, L below which nothing counts as paper.
        gap_px: half-width of the white structures removed before finding gutters, in pixels of a
            1000-pixel-high page (scaled with the page; at least 2).
        min_area: smallest panel, as a fraction of the page area (smaller regions: lettering, specks).
        min_coverage: panels must cover this fraction of the page, else the page is one panel.
        min_solidity: panel area over its convex hull area; less looks like loose art, not a panel.
        max_side: pages larger than this (pixels, longest side) are analysed at a reduced scale.
    """

    white_margin: float = 7.0
    min_paper: float = 65.0  # sRGB ~158: darker than paper scans; a flat tone this dark is art
    min_white: float = 80.0
    gap_px: float = 4.0
    min_area: float = 0.015
    min_coverage: float = 0.35
    min_solidity: float = 0.6
    max_side: int = 1600


@dataclass(frozen=True)
class Panel:
    """One panel: its box on the page, its pixel mask inside the box and its convex outline.

    ``mask`` has the box's shape ``(y1 - y0, x1 - x0)``; ``polygon`` is ``(K, 2)`` page ``(x, y)``
    vertices of the convex hull, counter-clockwise.
    """

    box: Box
    mask: np.ndarray
    polygon: np.ndarray

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices of the box, to index page arrays."""
        x0, y0, x1, y1 = self.box
        return slice(y0, y1), slice(x0, x1)

    def page_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The panel's mask as a full page ``(H, W)`` boolean array."""
        out = np.zeros(shape, bool)
        out[self.slices] = self.mask
        return out


def whole_page(height: int, width: int) -> Panel:
    """The panel used when a page has no detectable panels: the whole page."""
    polygon = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    return Panel((0, 0, width, height), np.ones((height, width), bool), polygon)


def detect_panels(luminance: np.ndarray, rtl: bool = False, config: PanelConfig | None = None) -> list[Panel]:
    """Panels of a page in reading order.

    Args:
        luminance: ``(H, W)`` CIE L (0..100) of the page (``colorrt.kernels.pipeline.luminance``).
        rtl: right-to-left reading order (manga) instead of left-to-right.
        config: detection thresholds.

    Returns:
        At least one panel; ``[whole_page(H, W)]`` when the page has no convincing panel layout.
    """
    config = config or PanelConfig()
    return panels_on_paper(luminance, paper_tone(luminance, config), rtl, config)


def panels_on_paper(
    luminance: np.ndarray,
    tone: tuple[float, float] | None,
    rtl: bool = False,
    config: PanelConfig | None = None,
) -> list[Panel]:
    """:func:`detect_panels` with the paper already measured: ``tone`` is :func:`paper_tone`'s result
    for this page (None: no paper seen, near-white is taken for paper)."""
    from scipy import ndimage

    config = config or PanelConfig()
    height, width = luminance.shape
    factor = max(1, int(np.ceil(max(height, width) / config.max_side)))
    small = _min_pool(np.asarray(luminance, np.float32), factor)
    gap = max(2, round(config.gap_px * min(small.shape) / 1000))
    paper = _paper_mask(small, config, tone, gap)
    labels, count = ndimage.label(~paper)
    min_pixels = config.min_area * small.size
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    panels = []
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        if region is None or areas[index] < min_pixels:
            continue
        panel = _panel_from_region(labels[region] == index, region, factor, (height, width))
        if panel is not None and _solidity(panel) >= config.min_solidity:
            panels.append(panel)
    covered = sum(int(p.mask.sum()) for p in panels)
    if not panels or covered < config.min_coverage * height * width:
        return [whole_page(height, width)]
    order = reading_order([p.box for p in panels], rtl=rtl)
    return [panels[i] for i in order]


def _min_pool(image: np.ndarray, factor: int) -> np.ndarray:
    """Downscale by ``factor`` keeping the darkest pixel of each block, so frame lines survive."""
    if factor == 1:
        return image
    h, w = image.shape
    pad_h, pad_w = -h % factor, -w % factor
    padded = np.pad(image, ((0, pad_h), (0, pad_w)), mode="edge")
    return padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor).min(
        axis=(1, 3)
    )


def _paper_mask(
    luminance: np.ndarray, config: PanelConfig, tone: tuple[float, float] | None, gap: int
) -> np.ndarray:
    """Paper-coloured pixels wider than ``2 * gap + 1`` that connect to the page edge; ``tone`` is the
    paper's L and noise (None: no paper seen, near-white is taken for paper as on a white page)."""
    from scipy import ndimage

    if tone is None:
        level = max(float(np.percentile(luminance, 99.5)), config.min_white + config.white_margin)
        margin = config.white_margin
    else:  # a noisy scan's paper pixels spread further below its level; one dark speck cuts a gutter
        level, margin = tone[0], max(config.white_margin, 5.0 * tone[1])
    white = luminance >= level - margin
    size = 2 * gap + 1
    # Pad with paper so the opening does not eat the margins at the page edge.
    padded = np.pad(white, size, constant_values=True).astype(np.uint8)
    opened = ndimage.maximum_filter(ndimage.minimum_filter(padded, size), size).astype(bool)
    labels, _ = ndimage.label(opened)
    edge_label = labels[0, 0]  # the padding ring is one component touching every page edge
    return (labels == edge_label)[size:-size, size:-size]


def paper_level(luminance: np.ndarray, config: PanelConfig | None = None) -> float | None:
    """CIE L of the page's paper (white, grey or yellowed), or None when the page shows no paper.

    The paper is the brightest flat tone filling much of the page's border (margins): the brightest
    peak of the border's lightness histogram, taken after a minimum filter so that screentone and
    hatching, whose gaps are bright, do not pass for paper. It is not paper (None: callers then use
    the white-page rule) when it
      * holds too little of the border, or is missing on two sides, or on one side that is not
        clearly darker (full-bleed art, a gradient; a panel bled off one side is fine);
      * is darker than ``config.min_paper`` (dark pages, white-on-black panels);
      * has over 1% of the page brighter than it (ink only darkens paper: it is a tone inside art).
    A full-bleed picture framed on all four sides by one flat tone with nothing brighter still reads
    as paper, as it did under the white-page rule when that tone was near white.
    """
    tone = paper_tone(luminance, config)
    return None if tone is None else tone[0]


def paper_tone(luminance: np.ndarray, config: PanelConfig | None = None) -> tuple[float, float] | None:
    """:func:`paper_level` and the standard deviation of the paper's pixel noise (L units)."""
    config = config or PanelConfig()
    from scipy import ndimage

    L = np.asarray(luminance, np.float32)
    height, width = L.shape
    band = max(PAPER_FLAT, round(PAPER_BORDER * min(height, width)))
    if 4 * band > min(height, width):
        return None  # a tiny image has no margins to read
    sides = (L[:band], L[-band:], L[band:-band, :band], L[band:-band, -band:])
    step = max(1, round(band * (height + width) / 100_000))  # sample ~200k border pixels on big scans
    flat = [ndimage.minimum_filter(side, PAPER_FLAT, mode="nearest").ravel()[::step] for side in sides]
    peak = _brightest_peak(np.concatenate(flat), config.min_paper)
    if peak is None:
        return None
    top = peak + PAPER_WINDOW if peak + PAPER_WINDOW < 100.0 else np.inf  # the last window holds L 100
    in_peak = [(f >= peak) & (f < top) for f in flat]
    bare = [f for f, m in zip(flat, in_peak, strict=True) if m.mean() < PAPER_SIDE_SHARE]
    if len(bare) > 1 or (bare and float(np.median(bare[0])) > peak - PAPER_BLEED):
        return None  # a gradient or a light tone along a side is art, not a panel bled off the page
    raw = np.concatenate([side.ravel()[::step][m] for side, m in zip(sides, in_peak, strict=True)])
    level = float(np.median(raw))  # the filter lowers noisy paper; the raw pixels give its level
    # The minimum of 5x5 samples of Gaussian noise lies 1.97 sigma below their mean. Unlike the spread
    # of the raw pixels, this holds on white paper whose noise is clipped at 255.
    lowered = level - float(np.median(np.concatenate([f[m] for f, m in zip(flat, in_peak, strict=True)])))
    noise = max(0.0, lowered / 1.97)
    stride = max(1, round(np.sqrt(L.size / 250_000)))
    brighter = float(np.mean(L[::stride, ::stride] > level + max(2.0, 4.0 * noise)))
    if level < config.min_paper or brighter > PAPER_BRIGHTER:
        return None
    return level, noise


def _brightest_peak(values: np.ndarray, floor: float) -> float | None:
    """Lower edge of the brightest ``PAPER_WINDOW``-wide L window (at or above ``floor``) holding a
    local maximum of at least ``PAPER_SHARE`` of ``values``."""
    bin_width = 0.5
    hist = np.histogram(values, bins=np.arange(0.0, 100.0 + bin_width, bin_width))[0] / values.size
    span = round(PAPER_WINDOW / bin_width)
    mass = np.convolve(hist, np.ones(span), mode="valid")  # mass[i]: L in [i, i + span) bins
    start = int(np.ceil(floor / bin_width))
    candidates = np.nonzero(mass[start:] >= PAPER_SHARE)[0]
    if len(candidates) == 0:
        return None
    i = start + int(candidates[-1])
    while i > start and mass[i - 1] > mass[i]:  # from the peak's bright shoulder down to its top
        i -= 1
    return i * bin_width


def _panel_from_region(
    local: np.ndarray, region: tuple[slice, slice], factor: int, shape: tuple[int, int]
) -> Panel | None:
    """A Panel at full page resolution from a component's mask in (possibly downscaled) coordinates."""
    from scipy import ndimage

    local = ndimage.binary_fill_holes(local)
    if factor > 1:
        local = np.repeat(np.repeat(local, factor, axis=0), factor, axis=1)
    y0, x0 = region[0].start * factor, region[1].start * factor
    y1, x1 = min(y0 + local.shape[0], shape[0]), min(x0 + local.shape[1], shape[1])
    local = local[: y1 - y0, : x1 - x0]
    polygon = _convex_hull(local, x0, y0)
    if polygon is None:
        return None
    return Panel((x0, y0, x1, y1), local, polygon)


def _convex_hull(local: np.ndarray, x0: int, y0: int) -> np.ndarray | None:
    """Convex hull (page coordinates, pixel corners) of a mask; None if degenerate."""
    from scipy.spatial import ConvexHull, QhullError

    # Hull vertices are always among each row's leftmost and rightmost pixels.
    rows = np.nonzero(local.any(axis=1))[0]
    left = np.argmax(local[rows], axis=1)
    right = local.shape[1] - 1 - np.argmax(local[rows, ::-1], axis=1)
    xs, ys = np.concatenate([left, right + 1]), np.concatenate([rows, rows])
    # Each extreme contributes its top and bottom corner, so the hull encloses whole pixels.
    corners = np.concatenate([np.stack([xs, ys], axis=1), np.stack([xs, ys + 1], axis=1)])
    try:
        hull = ConvexHull(corners.astype(np.float64))
    except (QhullError, ValueError):
        return None
    return corners[hull.vertices].astype(np.float64) + (x0, y0)


def _solidity(panel: Panel) -> float:
    return float(panel.mask.sum()) / max(polygon_area(panel.polygon), 1.0)


def polygon_area(polygon: np.ndarray) -> float:
    """Area of a simple polygon given as ``(K, 2)`` vertices (shoelace formula)."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def reading_order(boxes: Sequence[Box], rtl: bool = False) -> list[int]:
    """Indices of ``boxes`` in reading order: rows top to bottom, panels in a row left to right
    (right to left when ``rtl``), recursively (a tall panel beside a stack is read before or after
    the whole stack, depending on the direction)."""
    return _order(list(range(len(boxes))), [tuple(b) for b in boxes], rtl)


def _order(ids: list[int], boxes: list[Box], rtl: bool) -> list[int]:
    if len(ids) <= 1:
        return ids
    rows = _groups(ids, boxes, axis=1)
    if len(rows) > 1:
        return [i for row in rows for i in _order(row, boxes, rtl)]
    columns = _groups(ids, boxes, axis=0)
    if len(columns) > 1:
        columns = columns[::-1] if rtl else columns
        return [i for column in columns for i in _order(column, boxes, rtl)]

    # Nothing separates them cleanly: by centre, top to bottom, then along the reading direction.
    def key(i: int) -> tuple[float, float]:
        x0, y0, x1, y1 = boxes[i]
        return ((y0 + y1) / 2, -(x0 + x1) / 2 if rtl else (x0 + x1) / 2)

    return sorted(ids, key=key)


def _groups(ids: list[int], boxes: list[Box], axis: int) -> list[list[int]]:
    """Group boxes that overlap along ``axis`` (0: x, 1: y) by more than half the smaller extent;
    groups sorted by their centre along the axis."""
    parent = {i: i for i in ids}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for n, i in enumerate(ids):
        for j in ids[n + 1 :]:
            lo_i, hi_i = boxes[i][axis], boxes[i][axis + 2]
            lo_j, hi_j = boxes[j][axis], boxes[j][axis + 2]
            overlap = min(hi_i, hi_j) - max(lo_i, lo_j)
            if overlap > 0.5 * min(hi_i - lo_i, hi_j - lo_j):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in ids:
        groups.setdefault(find(i), []).append(i)

    def centre(group: list[int]) -> float:
        return float(np.mean([(boxes[i][axis] + boxes[i][axis + 2]) / 2 for i in group]))

    return sorted(groups.values(), key=centre)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two half-open boxes."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
