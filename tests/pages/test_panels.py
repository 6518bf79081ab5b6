"""Panel detection and reading order, measured on generated pages with known panels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from colorrt.kernels.pipeline import luminance
from colorrt.pages.panels import (
    PanelConfig,
    box_iou,
    detect_panels,
    polygon_area,
    reading_order,
    whole_page,
)
from tests import synth_pages

LAYOUTS = ("grid", "slanted", "borderless")


def _pages(count: int, rtl: bool = False) -> list[synth_pages.SyntheticPage]:
    sizes = ((480, 340), (900, 640))
    return [
        synth_pages.make_page(100 + i, sizes[i % 2], LAYOUTS[i % 3], rtl=rtl, character_panels=2)
        for i in range(count)
    ]


@pytest.fixture(scope="module", params=[False, True], ids=["ltr", "rtl"])
def detected(request) -> tuple[bool, list]:
    """Twelve generated pages (grid, slanted, borderless; two sizes) and the panels found on each."""
    rtl = request.param
    pages = _pages(12, rtl)
    return rtl, [(page, detect_panels(luminance(page.image), rtl=rtl)) for page in pages]


def test_mean_iou_on_generated_pages_is_at_least_0_9(detected) -> None:
    _, pages = detected
    ious = [
        max((box_iou(truth, p.box) for p in panels), default=0.0)  # a missed panel scores 0
        for page, panels in pages
        for truth in page.boxes
    ]
    assert np.mean(ious) >= 0.9, f"mean IoU {np.mean(ious):.3f}"
    assert min(ious) >= 0.8
    assert [len(panels) for _, panels in pages] == [len(page.boxes) for page, _ in pages]


def test_reading_order_matches_the_layout(detected) -> None:
    _, pages = detected
    for page, panels in pages:
        order = [int(np.argmax([box_iou(p.box, truth) for truth in page.boxes])) for p in panels]
        assert order == list(range(len(page.boxes))), (page.layout, order)


def test_slanted_panels_get_their_polygon_masks() -> None:
    page = synth_pages.make_page(7, (700, 500), "slanted", character_panels=0)
    panels = detect_panels(luminance(page.image))
    assert len(panels) == len(page.masks)
    for panel, truth in zip(panels, page.masks, strict=True):
        found = panel.page_mask(page.image.shape)
        iou = (found & truth).sum() / (found | truth).sum()
        assert iou >= 0.93
        # A slanted panel fills clearly less than its box; its mask must not include the neighbours.
        box_area = panel.width * panel.height
        assert found.sum() <= box_area
        assert polygon_area(panel.polygon) == pytest.approx(found.sum(), rel=0.05)


def test_borderless_and_blank_pages_fall_back_to_the_whole_page() -> None:
    page = synth_pages.make_page(5, (480, 340), "borderless")
    panels = detect_panels(luminance(page.image))
    assert [p.box for p in panels] == [(0, 0, 340, 480)]
    blank = np.full((300, 200), 250, np.uint8)
    assert [p.box for p in detect_panels(luminance(blank))] == [(0, 0, 200, 300)]
    # Loose art on white (no frames): small blobs do not pass for panels.
    art = Image.new("L", (400, 600), 255)
    draw = ImageDraw.Draw(art)
    for x, y in ((40, 60), (220, 300), (100, 450)):
        draw.ellipse([x, y, x + 50, y + 40], fill=90, outline=0)
    assert [p.box for p in detect_panels(luminance(np.asarray(art)))] == [(0, 0, 400, 600)]


def test_a_gap_in_a_frame_line_does_not_split_or_lose_the_panel() -> None:
    image = Image.new("L", (400, 300), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 20, 380, 280], fill=255, outline=0, width=3)
    draw.rectangle([60, 60, 200, 200], fill=120)
    array = np.asarray(image).copy()
    array[20:23, 150:154] = 255  # a 4-pixel break in the top frame line
    panels = detect_panels(luminance(array))
    assert len(panels) == 1
    assert box_iou(panels[0].box, (20, 20, 381, 281)) >= 0.97


def test_large_pages_are_analysed_at_a_reduced_scale_with_the_same_result() -> None:
    page = synth_pages.make_page(11, (900, 640), "grid")
    L = luminance(page.image)
    full = [p.box for p in detect_panels(L)]
    reduced = [p.box for p in detect_panels(L, config=PanelConfig(max_side=450))]
    assert len(full) == len(reduced)
    assert all(box_iou(a, b) >= 0.97 for a, b in zip(full, reduced, strict=True))


def test_reading_order_rows_columns_and_a_tall_panel_beside_a_stack() -> None:
    # Tall panel on the right, two stacked on the left, then a full-width bottom row.
    boxes = [(10, 10, 100, 60), (10, 70, 100, 120), (110, 10, 200, 120), (10, 130, 200, 200)]
    assert reading_order(boxes) == [0, 1, 2, 3]
    assert reading_order(boxes, rtl=True) == [2, 0, 1, 3]
    grid = [(110, 10, 200, 60), (10, 10, 100, 60), (10, 70, 100, 120), (110, 70, 200, 120)]
    assert reading_order(grid) == [1, 0, 2, 3]
    assert reading_order(grid, rtl=True) == [0, 1, 3, 2]


def test_box_iou_and_whole_page() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    panel = whole_page(30, 40)
    assert panel.box == (0, 0, 40, 30) and panel.mask.all() and polygon_area(panel.polygon) == 1200
