"""Synthetic manga pages with known panels and a recurring character (for tests and benchmarks).

Every page is drawn from a seed: a grid or slanted panel layout with white gutters and black frames
(or one full-bleed borderless panel), screentone / gradient / hatched backgrounds, clutter, speech
balloons with scribbled lettering, light scan noise, and a small drawn character whose parts (hair,
skin, shirt) always use the same grey levels. The paper may be grey or yellowed, as in scans of old
books (:func:`paper_color`). The page's true panel boxes and polygon masks, its bare paper and the
character's part masks come with it, so detection and colour consistency can be measured exactly.
The character's "true" colours (:data:`CHARACTER_LAB`) give a colour reference image of it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from colorrt.pages.panels import Box

# The character's true colours in CIE Lab; its grey on a page is the neutral grey of the same L.
CHARACTER_LAB: dict[str, tuple[float, float, float]] = {
    "hair": (32.0, 24.0, 30.0),  # auburn
    "skin": (80.0, 12.0, 20.0),
    "shirt": (50.0, -4.0, -44.0),  # blue
}
_PART_ORDER = ("shirt", "skin", "hair")  # drawing order: later parts cover earlier ones
_LABEL = {part: i + 1 for i, part in enumerate(_PART_ORDER)}  # label 0: ink, background, other things

Point = tuple[float, float]


@dataclass(frozen=True)
class SyntheticPage:
    """One generated page and its ground truth.

    ``image`` is a ``uint8`` scan, grey ``(H, W)`` or, on tinted paper, RGB ``(H, W, 3)``; ``boxes``
    are the true panels as half-open ``(x0, y0, x1, y1)`` in reading order (right-to-left when
    ``rtl``), ``masks`` their polygon masks; ``character`` maps a part name (hair, skin, shirt) to the
    mask of its visible fill on this page; ``blank`` is the bare paper (margins, gutters and balloon
    insides, at least 2 pixels away from any line or lettering).
    """

    image: np.ndarray
    boxes: tuple[Box, ...]
    masks: tuple[np.ndarray, ...]
    character: dict[str, np.ndarray] = field(default_factory=dict)
    rtl: bool = False
    layout: str = "grid"
    blank: np.ndarray | None = None

    @property
    def character_mask(self) -> np.ndarray:
        """Union of the character's visible part fills."""
        out = np.zeros(self.image.shape[:2], bool)
        for mask in self.character.values():
            out |= mask
        return out


def character_grey(part: str) -> int:
    """The uint8 grey a character part is drawn with on a page (neutral grey of its Lab lightness)."""
    from colorrt.kernels.color import l_to_gray

    return int(round(float(l_to_gray(np.array([CHARACTER_LAB[part][0]]))[0]) * 255))


def character_rgb(part: str) -> tuple[int, int, int]:
    """The uint8 sRGB of a character part's true colour."""
    from colorrt.kernels.color import lab_to_rgb

    rgb = lab_to_rgb(np.array(CHARACTER_LAB[part], np.float64)[None, None])[0, 0]
    return tuple(int(v) for v in np.round(rgb * 255))


def paper_color(lightness: float = 100.0, yellowing: float = 0.0) -> tuple[int, int, int]:
    """uint8 sRGB of paper with CIE lightness ``lightness`` and CIE b* ``yellowing`` (a* a tenth of
    it): ``paper_color(81)`` is grey paper (sRGB ~200), ``paper_color(88, 10)`` old yellowed paper."""
    from colorrt.kernels.color import lab_to_rgb

    lab = np.array([[[lightness, 0.1 * yellowing, yellowing]]], np.float64)
    return tuple(int(v) for v in np.round(np.clip(lab_to_rgb(lab)[0, 0], 0, 1) * 255))


def make_page(
    seed: int,
    size: tuple[int, int] = (1100, 780),
    layout: str = "grid",
    rtl: bool = False,
    character_panels: int = 1,
    noise: float = 2.0,
    paper: float | tuple[float, float, float] = 255.0,
) -> SyntheticPage:
    """Draw one page.

    Args:
        seed: everything on the page follows from it.
        size: (height, width) in pixels.
        layout: ``"grid"`` (rectangular panels), ``"slanted"`` (slanted gutters, quadrilateral panels)
            or ``"borderless"`` (one full-bleed picture, no frames or gutters).
        rtl: order the true boxes right-to-left (manga).
        character_panels: how many panels show the character.
        noise: standard deviation of the scan noise, in grey levels (per channel on tinted paper).
        paper: the paper's sRGB, a grey level or ``(r, g, b)`` (0..255, e.g. :func:`paper_color`):
            the drawn page is multiplied by it (white becomes paper, black stays black) before the
            noise, as a scan of grey or yellowed paper; a tinted paper gives an RGB image.
    """
    if layout not in ("grid", "slanted", "borderless"):
        raise ValueError(f"layout must be 'grid', 'slanted' or 'borderless', got {layout!r}")
    rng = np.random.default_rng(seed)
    height, width = size
    page = Image.new("L", (width, height), 255)
    labels = Image.new("L", (width, height), 0)
    if layout == "borderless":
        polygons = [[(0.0, 0.0), (width, 0.0), (width, height), (0.0, height)]]
        rows = [[0]]
    else:
        polygons, rows = _layout(rng, height, width, slant=0.09 if layout == "slanted" else 0.0)
    with_character = set(
        rng.choice(len(polygons), min(character_panels, len(polygons)), replace=False).tolist()
    )
    masks = _draw_panels(rng, page, labels, polygons, with_character, framed=layout != "borderless")
    order = [i for row in rows for i in (reversed(row) if rtl else row)]
    image = _on_paper(np.asarray(page, np.float32), paper)
    blank = np.asarray(page.filter(ImageFilter.MinFilter(5))) == 255
    if noise > 0:
        image = image + rng.normal(0.0, noise, image.shape)
    label_array = np.asarray(labels)
    character = {part: label_array == _LABEL[part] for part in _PART_ORDER}
    return SyntheticPage(
        image=np.clip(np.round(image), 0, 255).astype(np.uint8),
        boxes=tuple(_mask_box(masks[i]) for i in order),
        masks=tuple(masks[i] for i in order),
        character={part: mask for part, mask in character.items() if mask.any()},
        rtl=rtl,
        layout=layout,
        blank=blank,
    )


def _draw_panels(
    rng: np.random.Generator,
    page: Image.Image,
    labels: Image.Image,
    polygons: list[list[Point]],
    with_character: set[int],
    framed: bool,
) -> list[np.ndarray]:
    """Draw every panel's content (and its black frame when ``framed``); their polygon masks."""
    width, height = page.size
    border = max(2, round(width / 300))
    masks = []
    for index, polygon in enumerate(polygons):
        mask = _polygon_mask(polygon, height, width)
        _draw_panel(rng, page, labels, mask, index in with_character, not framed)
        if framed:
            ImageDraw.Draw(page).polygon(polygon, outline=0, width=border)
            ImageDraw.Draw(labels).polygon(polygon, outline=0, width=border)
        masks.append(mask)
    return masks


def _on_paper(image: np.ndarray, paper: float | tuple[float, float, float]) -> np.ndarray:
    """The drawn page multiplied by the paper's sRGB: grey paper gives a grey scan, tinted paper RGB."""
    tone = np.asarray(paper, np.float32)
    if tone.ndim and np.all(tone == tone[0]):
        tone = tone[0]  # grey paper: a grey scan
    if tone.ndim:  # tinted paper
        return image[:, :, None] * (tone / 255)
    return image * (tone / 255) if tone != 255 else image


def make_chapter(
    pages: int,
    seed: int = 0,
    size: tuple[int, int] = (1100, 780),
    rtl: bool = False,
    noise: float = 2.0,
) -> list[SyntheticPage]:
    """A run of pages (grid and slanted layouts, an occasional borderless one), the character on each."""
    layouts = ("grid", "slanted", "grid", "borderless")
    return [
        make_page(seed * 1000 + i, size, layouts[i % len(layouts)], rtl, 1 + i % 2, noise)
        for i in range(pages)
    ]


def character_reference(size: int = 256) -> np.ndarray:
    """A colour reference sheet: the character in its true colours on white, ``uint8`` RGB (size, size, 3)."""
    image = Image.new("RGB", (size, size), (255, 255, 255))
    labels = Image.new("L", (size, size), 0)
    fills = {part: character_rgb(part) for part in _PART_ORDER}
    _draw_character(ImageDraw.Draw(image), ImageDraw.Draw(labels), size / 2, size * 0.3, size * 0.16, fills)
    return np.asarray(image).copy()


def make_color_page(seed: int, size: tuple[int, int] = (600, 420)) -> np.ndarray:
    """A page that is already in colour: a synthetic page with coloured fills, ``uint8`` RGB."""
    rng = np.random.default_rng(seed)
    grey = make_page(seed, size, "grid", noise=0.0).image
    rgb = np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)
    tint = rng.uniform(0.35, 1.0, (4, 4, 3)).astype(np.float32)
    cell = np.kron(tint, np.ones((size[0] // 4 + 1, size[1] // 4 + 1, 1), np.float32))[: size[0], : size[1]]
    return np.clip(rgb * cell, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------- layout


def _layout(rng: np.random.Generator, height: int, width: int, slant: float) -> tuple[list, list]:
    """Panel polygons and, per row, their indices left to right."""
    margin_x, margin_y = round(0.05 * width), round(0.05 * height)
    gutter = max(10, round(0.02 * width))
    n_rows = int(rng.integers(2, 5))
    row_splits = _splits(rng, margin_y, height - margin_y, n_rows)
    row_lines = [(float(margin_y), 0.0)]  # y = a + s * x
    for split in row_splits[1:-1]:
        s = float(rng.uniform(-slant, slant))
        row_lines.append((split - s * width / 2, s))
    row_lines.append((float(height - margin_y), 0.0))
    polygons: list[list[Point]] = []
    rows: list[list[int]] = []
    for r in range(n_rows):
        top, bottom = row_lines[r], row_lines[r + 1]
        top_off = gutter / 2 if r > 0 else 0.0
        bottom_off = gutter / 2 if r < n_rows - 1 else 0.0
        mid_y = (row_splits[r] + row_splits[r + 1]) / 2
        n_cols = int(rng.integers(1, 4))
        col_splits = _splits(rng, margin_x, width - margin_x, n_cols)
        col_lines = [(float(margin_x), 0.0)]  # x = c + t * y
        for split in col_splits[1:-1]:
            t = float(rng.uniform(-slant, slant))
            col_lines.append((split - t * mid_y, t))
        col_lines.append((float(width - margin_x), 0.0))
        row = []
        for c in range(n_cols):
            left_off = gutter / 2 if c > 0 else 0.0
            right_off = gutter / 2 if c < n_cols - 1 else 0.0
            lines_y = ((top[0] + top_off, top[1]), (bottom[0] - bottom_off, bottom[1]))
            lines_x = (
                (col_lines[c][0] + left_off, col_lines[c][1]),
                (col_lines[c + 1][0] - right_off, col_lines[c + 1][1]),
            )
            polygons.append(_quad(lines_y, lines_x))
            row.append(len(polygons) - 1)
        rows.append(row)
    return polygons, rows


def _splits(rng: np.random.Generator, start: float, stop: float, parts: int) -> list[float]:
    fractions = rng.dirichlet(np.full(parts, 6.0))
    fractions = 0.5 / parts + 0.5 * fractions  # no sliver panels
    return [start + (stop - start) * float(f) for f in np.concatenate([[0.0], np.cumsum(fractions)])]


def _quad(lines_y: Sequence[tuple[float, float]], lines_x: Sequence[tuple[float, float]]) -> list[Point]:
    """Corners (clockwise from top-left) where two y-lines meet two x-lines."""

    def meet(ly: tuple[float, float], lx: tuple[float, float]) -> Point:
        (a, s), (c, t) = ly, lx
        x = (c + t * a) / (1 - t * s)
        return (x, a + s * x)

    top, bottom = lines_y
    left, right = lines_x
    return [meet(top, left), meet(top, right), meet(bottom, right), meet(bottom, left)]


def _polygon_mask(polygon: Sequence[Point], height: int, width: int) -> np.ndarray:
    image = Image.new("1", (width, height), 0)
    ImageDraw.Draw(image).polygon(list(polygon), fill=1, outline=1)
    return np.asarray(image).astype(bool)


def _mask_box(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask)
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


# ---------------------------------------------------------------------------------------------- content


def _draw_panel(
    rng: np.random.Generator,
    page: Image.Image,
    labels: Image.Image,
    mask: np.ndarray,
    character: bool,
    full_bleed: bool,
) -> None:
    """Fill one panel (clipped to its mask): background, clutter, maybe the character, a balloon.
    A full-bleed panel gets a background that is nowhere near paper white."""
    x0, y0, x1, y1 = _mask_box(mask)
    w, h = x1 - x0, y1 - y0
    layer = Image.fromarray(_background(rng, h, w, full_bleed))
    layer_labels = Image.new("L", (w, h), 0)
    draw, draw_labels = ImageDraw.Draw(layer), ImageDraw.Draw(layer_labels)
    for _ in range(int(rng.integers(1, 5))):
        _clutter(rng, draw, w, h)
    if character:
        scale = float(rng.uniform(0.55, 1.0)) * min(h / 5.4, w / 4.0)
        cx = float(rng.uniform(0.3, 0.7)) * w
        cy = float(rng.uniform(0.28, 0.36)) * h
        fills = {part: character_grey(part) for part in _PART_ORDER}
        _draw_character(draw, draw_labels, cx, cy, scale, fills)
    if rng.random() < 0.6:
        _balloon(rng, draw, draw_labels, w, h)
    local = mask[y0:y1, x0:x1]
    region = np.asarray(page)[y0:y1, x0:x1].copy()
    region[local] = np.asarray(layer)[local]
    page.paste(Image.fromarray(region), (x0, y0))
    region_labels = np.asarray(labels)[y0:y1, x0:x1].copy()
    region_labels[local] = np.asarray(layer_labels)[local]
    labels.paste(Image.fromarray(region_labels), (x0, y0))


def _background(rng: np.random.Generator, h: int, w: int, full_bleed: bool) -> np.ndarray:
    weights = [0.0, 0.4, 0.4, 0.2] if full_bleed else [0.3, 0.3, 0.25, 0.15]
    kind = rng.choice(["white", "tone", "gradient", "hatch"], p=weights)
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "tone":  # screentone: a square grid of black dots
        period = int(rng.integers(4, 8))
        radius = float(rng.uniform(0.25, 0.45)) * period
        d2 = (xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2
        return np.where(d2 < radius**2, 20, 250).astype(np.uint8)
    if kind == "gradient":
        lo, hi = sorted(rng.uniform(100, 225 if full_bleed else 245, 2))
        return np.broadcast_to(np.linspace(lo, hi, h)[:, None], (h, w)).astype(np.uint8).copy()
    if kind == "hatch":
        period = int(rng.integers(4, 8))
        return np.where((xx + yy) % period < 1, 30, 248).astype(np.uint8)
    return np.full((h, w), 252, np.uint8)


def _clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    x0, x1 = sorted(rng.uniform(-0.1, 1.1, 2) * w)
    y0, y1 = sorted(rng.uniform(0.3, 1.1, 2) * h)
    grey = int(rng.integers(60, 230))
    if rng.random() < 0.5:
        draw.rectangle([x0, y0, x1, y1], fill=grey, outline=0, width=2)
    else:
        draw.ellipse([x0, y0, x1, y1], fill=grey, outline=0, width=2)
    for _ in range(int(rng.integers(0, 4))):
        xs, ys = rng.uniform(0, w, 2), rng.uniform(0, h, 2)
        draw.line([(xs[0], ys[0]), (xs[1], ys[1])], fill=0, width=int(rng.integers(1, 4)))


def _draw_character(
    draw: ImageDraw.ImageDraw,
    draw_labels: ImageDraw.ImageDraw,
    cx: float,
    cy: float,
    s: float,
    fills: dict[str, object],
) -> None:
    """The character: head of radius ``s`` centred at (cx, cy), hair on top, shirt below."""
    line = max(1, round(s / 10))
    shapes = {
        "shirt": (
            "polygon",
            [
                (cx - 1.2 * s, cy + 1.0 * s),
                (cx + 1.2 * s, cy + 1.0 * s),
                (cx + 1.6 * s, cy + 3.4 * s),
                (cx - 1.6 * s, cy + 3.4 * s),
            ],
        ),
        "skin": ("ellipse", [cx - s, cy - 1.1 * s, cx + s, cy + 1.1 * s]),
        "hair": ("chord", [cx - 1.15 * s, cy - 1.3 * s, cx + 1.15 * s, cy + 0.5 * s]),
    }
    for part in _PART_ORDER:
        kind, xy = shapes[part]
        for target, fill in ((draw, fills[part]), (draw_labels, _LABEL[part])):
            if kind == "polygon":
                target.polygon(xy, fill=fill, outline=0, width=line)
            elif kind == "ellipse":
                target.ellipse(xy, fill=fill, outline=0, width=line)
            else:
                target.chord(xy, 180, 360, fill=fill, outline=0, width=line)
    for dx in (-0.4, 0.4):  # eyes
        eye = [cx + dx * s - 0.12 * s, cy + 0.05 * s, cx + dx * s + 0.12 * s, cy + 0.3 * s]
        draw.ellipse(eye, fill=0)
        draw_labels.ellipse(eye, fill=0)
    mouth = [(cx - 0.3 * s, cy + 0.65 * s), (cx + 0.3 * s, cy + 0.65 * s)]
    draw.line(mouth, fill=0, width=line)
    draw_labels.line(mouth, fill=0, width=line)


def _balloon(
    rng: np.random.Generator, draw: ImageDraw.ImageDraw, draw_labels: ImageDraw.ImageDraw, w: int, h: int
) -> None:
    """A white speech balloon with scribbled lettering, in the lower part of the panel."""
    bw, bh = float(rng.uniform(0.25, 0.4)) * w, float(rng.uniform(0.15, 0.25)) * h
    x0 = float(rng.uniform(0.05, 0.95 - bw / w)) * w
    y0 = float(rng.uniform(0.7, 0.95 - bh / h)) * h
    box = [x0, y0, x0 + bw, y0 + bh]
    draw.ellipse(box, fill=255, outline=0, width=2)
    draw_labels.ellipse(box, fill=0)
    for i in range(3):  # lettering: short dark strokes
        ty = y0 + bh * (0.3 + 0.2 * i)
        tx = x0 + bw * 0.25
        while tx < x0 + bw * 0.72:
            step = float(rng.uniform(3, 7))
            draw.line([(tx, ty), (tx + step, ty + float(rng.uniform(-2, 2)))], fill=10, width=2)
            tx += step + 2


# ------------------------------------------------------------------------------------------------ model


def colorizer_model(
    path: str | os.PathLike[str], render_size: int = 128, channels: int = 8, seed: int = 0
) -> Path:
    """Write a small random-weight colorization CNN as ONNX (with its colour contract) and return its path.

    Its colours depend on context (two stride-2 convolutions, a global-average branch, bilinear
    upsampling), like a real model's, so the same drawn character gets different colours on pages
    with different surroundings. ``L/50 - 1`` in, ``ab / 110`` out (tanh, zero at black and white);
    any batch size; fixed ``render_size`` (a multiple of 4). ``channels`` sets the compute.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from colorrt.contract import PRESETS, write_to_onnx

    if render_size % 4:
        raise ValueError(f"render_size must be a multiple of 4, got {render_size}")
    weights = _colorizer_weights(np.random.default_rng(seed), channels)
    size = [render_size, render_size]
    graph = helper.make_graph(
        _colorizer_nodes(),
        "synthetic_manga_colorizer",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, *size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2, *size])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    contract = PRESETS["pix2pix-colorization"].replace(
        name="synthetic-manga", render_size=render_size, description="tests.synth_pages test colorizer"
    )
    write_to_onnx(model, contract)
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def _colorizer_weights(rng: np.random.Generator, channels: int) -> dict[str, np.ndarray]:
    """He-initialised convolution weights, biases and constants of :func:`colorizer_model`."""

    def he(shape: tuple[int, ...]) -> np.ndarray:
        fan_in = int(np.prod(shape[1:]))
        return (rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)).astype(np.float32)

    c = channels
    return {
        "w1": he((c, 1, 3, 3)),
        "b1": rng.normal(0, 0.1, c).astype(np.float32),
        "w2": he((c, c, 3, 3)),
        "b2": rng.normal(0, 0.1, c).astype(np.float32),
        "w3": he((c, c, 3, 3)),
        "b3": rng.normal(0, 0.1, c).astype(np.float32),
        "w4": (0.5 * he((2, c + 1, 1, 1))),
        "b4": rng.normal(0, 0.2, 2).astype(np.float32),
        "scales": np.array([1, 1, 4, 4], np.float32),
        "gain": np.array(0.35, np.float32),
        "one": np.array(1.0, np.float32),
    }


def _colorizer_nodes() -> list:
    """The graph of :func:`colorizer_model`: context branch, upsampling, ab shaped to 0 at black and white."""
    from onnx import helper

    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    return [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], strides=[2, 2], **conv),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2], **conv),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Add", ["r2", "g"], ["r2g"]),
        helper.make_node("Conv", ["r2g", "w3", "b3"], ["c3"], **conv),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("Resize", ["r3", "", "scales"], ["up"], mode="linear"),
        helper.make_node("Concat", ["up", "input"], ["cat"], axis=1),
        helper.make_node("Conv", ["cat", "w4", "b4"], ["c4"]),
        helper.make_node("Tanh", ["c4"], ["t"]),
        helper.make_node("Mul", ["input", "input"], ["x2"]),
        helper.make_node("Sub", ["one", "x2"], ["envelope"]),
        helper.make_node("Mul", ["t", "envelope"], ["shaped"]),
        helper.make_node("Mul", ["shaped", "gain"], ["output"]),
    ]
