"""Panel detection on comic and manga pages, and their reading order.

A page is paper with panels drawn on it. The paper shows as near-white gutters and margins that all
connect to the page edge; every large connected region that is *not* that paper is a panel. Thin
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


@dataclass(frozen=True)
class PanelConfig:
    """Tuning of :func:`detect_panels` (defaults fit scans from about 600 to 4000 pixels high).

    Attributes:
        white_margin: L units (0..100) below the paper's white level that still count as paper.
        min_white: L below which nothing counts as paper, however dark the page is.
        gap_px: half-width of the white structures removed before finding gutters, in pixels of a
            1000-pixel-high page (scaled with the page; at least 2).
        min_area: smallest panel, as a fraction of the page area (smaller regions: lettering, specks).
        min_coverage: panels must cover this fraction of the page, else the page is one panel.
        min_solidity: panel area over its convex hull area; less looks like loose art, not a panel.
        max_side: pages larger than this (pixels, longest side) are analysed at a reduced scale.
    """

    white_margin: float = 7.0
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
    from scipy import ndimage

    config = config or PanelConfig()
    height, width = luminance.shape
    factor = max(1, int(np.ceil(max(height, width) / config.max_side)))
    small = _min_pool(np.asarray(luminance, np.float32), factor)
    paper = _paper_mask(small, config, gap=max(2, round(config.gap_px * min(small.shape) / 1000)))
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


def _paper_mask(luminance: np.ndarray, config: PanelConfig, gap: int) -> np.ndarray:
    """Near-white pixels wider than ``2 * gap + 1`` that connect to the page edge."""
    from scipy import ndimage

    white_level = float(np.percentile(luminance, 99.5))
    white = luminance >= max(white_level - config.white_margin, config.min_white)
    size = 2 * gap + 1
    # Pad with paper so the opening does not eat the margins at the page edge.
    padded = np.pad(white, size, constant_values=True).astype(np.uint8)
    opened = ndimage.maximum_filter(ndimage.minimum_filter(padded, size), size).astype(bool)
    labels, _ = ndimage.label(opened)
    edge_label = labels[0, 0]  # the padding ring is one component touching every page edge
    return (labels == edge_label)[size:-size, size:-size]


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
