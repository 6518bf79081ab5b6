"""The page pipeline: panels in, chroma out, the page's own lightness kept.

    page --luminance--> L --detect_panels--> panels --letterbox--> render-size canvases
    canvases of several pages --batched--> engine --decode_ab--> ab per panel (palette transfer)
    ab --upsample into each panel's mask--> page ab --white: no chroma--> merge with L --gamut fit--> page

On grey or yellowed paper the model is shown the panels as if printed on white paper
(:func:`white_paper_lightness`), so it colours the art as it would on a white page; a reference
palette's lightness bands are matched against that same white-paper lightness (its hints and its
chroma transfer), so the art gets the bands it gets on white paper. Only chroma is used, so the
output keeps the scan's own lightness either way.

Every pixel's CIE L stays the scan's (within rounding): where a chroma would push a colour out of the
sRGB gamut, that pixel's chroma is reduced until it fits, instead of letting clipping change its
lightness. Near-white regions (balloons, gutters, margins) get no chroma at all.
"""

from __future__ import annotations

import functools
import os
import time
from collections import deque
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.engines.base import Engine
from colorrt.errors import ColorRTError, InputError
from colorrt.io.archive import PageSink, PageSource, open_sink, open_source, output_name, same_path
from colorrt.kernels import pipeline
from colorrt.kernels.alpha import attach_alpha, split_alpha
from colorrt.kernels.color import l_to_y, rgb_to_lab, y_to_l
from colorrt.kernels.resize import resize_bilinear
from colorrt.pages.palette import Palette, load_reference
from colorrt.pages.panels import Panel, PanelConfig, panels_on_paper, paper_level, paper_tone

COLOR_DEVIATION = 10.0  # ab units from the page's dominant tint that count as a colour pixel
COLOR_FRACTION = 0.02  # share of colour pixels above which a page is already in colour
WHITE_FULL = 8.0  # L units below the paper white where chroma is fully kept
WHITE_NONE = 2.0  # L units below the paper white from where no chroma is added


@dataclass(frozen=True)
class PageOptions:
    """How pages are colorized.

    Attributes:
        rtl: panels read right to left (manga); affects only the reported panel order.
        force: colorize pages that are already in colour instead of passing them through.
        palette: reference colour statistics to match (None: the model's own colours).
        strength: 0..1, how far the palette transfer moves the model's chroma.
        across_pages: batch panels of consecutive pages together (False: one page at a time).
        panels: panel-detection thresholds.
        normalize_paper: on pages whose paper is measured darker than white (grey, yellowed), show
            the model (and the palette's band matching) the panels' lightness as if on white paper;
            the output keeps the scan's L.
    """

    rtl: bool = False
    force: bool = False
    palette: Palette | None = None
    strength: float = 1.0
    across_pages: bool = True
    panels: PanelConfig = field(default_factory=PanelConfig)
    normalize_paper: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise InputError(f"reference strength must be in 0..1, got {self.strength}")


@dataclass
class PageResult:
    """A finished page: the image (``uint8`` RGB, RGBA if the input had alpha) and what was done."""

    image: np.ndarray
    status: str  # "colorized" or "passed" (already in colour)
    panels: list[Panel] = field(default_factory=list)


@dataclass(frozen=True)
class Letterbox:
    """Where a panel sits in its render canvas: ``(top, left)`` offset and scaled ``(height, width)``."""

    top: int
    left: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


@dataclass
class _PanelItem:
    """One panel waiting for the model: its canvas L, the weights of its real pixels, and hints."""

    job: _PageJob
    panel: Panel
    box: Letterbox
    canvas: np.ndarray  # (S_h, S_w) CIE L as the model sees it (on white paper, see _seen_lightness)
    valid: np.ndarray  # (height, width) 0..1 weights of panel content inside the letterbox
    hints: np.ndarray | None


@dataclass
class _PageJob:
    """A page in flight: its full-res L, the chroma collected so far, panels still to come back."""

    key: Hashable
    luminance: np.ndarray | None = None
    alpha: np.ndarray | None = None
    white: float = 100.0
    paper: float | None = None  # measured paper L to normalize the model's input by (None: as is)
    panels: list[Panel] = field(default_factory=list)
    ab: np.ndarray | None = None
    remaining: int = 0
    result: PageResult | None = None
    error: Exception | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


class PageColorizer:
    """Colorizes pages panel by panel with one engine, batching panels across pages.

    Args:
        engine: any :class:`Engine` (its contract decides the render size and normalization).
        batch_size: panels per inference call.
        options: see :class:`PageOptions`.
    """

    def __init__(self, engine: Engine, batch_size: int = 8, options: PageOptions | None = None) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.engine = engine
        self.contract = engine.contract
        self.batch_size = batch_size
        self.options = options or PageOptions()
        size = self.contract.render_size
        self.canvas_shape = self.contract.render_shape(size, size)  # one shape for every panel: batchable

    def colorize(self, image: np.ndarray) -> PageResult:
        """Colorize one page (``uint8``/``uint16`` grey, RGB or RGBA array)."""
        ((_, outcome),) = list(self.stream([(0, image)]))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def stream(
        self, pages: Iterable[tuple[Hashable, np.ndarray | Exception]]
    ) -> Iterator[tuple[Hashable, PageResult | Exception]]:
        """Colorize ``(key, page)`` pairs, yielding ``(key, result)`` in the input order.

        A page given as an exception (it could not be read), or one whose processing fails with a
        :class:`ColorRTError`, comes back as that exception; the other pages carry on. Panels wait
        until ``batch_size`` of them (from any pages) are ready, then run as one batch.
        """
        jobs: deque[_PageJob] = deque()
        waiting: list[_PanelItem] = []
        for key, page in pages:
            job = _PageJob(key)
            jobs.append(job)
            if isinstance(page, Exception):
                job.error = page
            else:
                waiting.extend(self._start(job, page))
            while len(waiting) >= self.batch_size:
                self._run(waiting[: self.batch_size])
                del waiting[: self.batch_size]
            if not self.options.across_pages:
                self._run(waiting)
                waiting.clear()
            yield from _finished(jobs)
        self._run(waiting)
        yield from _finished(jobs)

    # ------------------------------------------------------------------------------ page preparation

    def _start(self, job: _PageJob, page: np.ndarray) -> list[_PanelItem]:
        """Analyse a page: pass it through if it is in colour, else find and letterbox its panels."""
        try:
            colour, job.alpha = split_alpha(np.asarray(page), truncate=True)
            if not self.options.force and is_color_page(colour):
                job.result = PageResult(_as_rgb(colour, job.alpha), "passed")
                return []
            L = pipeline.luminance(colour)
            job.luminance = L
            tone = paper_tone(L, self.options.panels)  # measured once: panels and colours share it
            measured = None if tone is None else tone[0]
            job.white = _fallback_white(L) if measured is None else measured
            if self.options.normalize_paper and measured is not None and measured < 100.0:
                job.paper = measured  # white paper (L 100) is left alone: its pages stay bit-identical
            job.panels = panels_on_paper(L, tone, rtl=self.options.rtl, config=self.options.panels)
            job.ab = np.zeros((2, *L.shape), np.float32)
            items = [self._item(job, panel) for panel in job.panels]
        except ColorRTError as e:
            job.error = e
            return []
        job.remaining = len(items)
        return items

    def _item(self, job: _PageJob, panel: Panel) -> _PanelItem:
        assert job.luminance is not None  # set by _start
        crop = job.luminance[panel.slices].copy()
        crop[~panel.mask] = job.white  # neighbours inside the box are not this panel's content
        box = letterbox((panel.height, panel.width), self.canvas_shape)
        canvas = np.full(self.canvas_shape, job.white, np.float32)
        small = resize_bilinear(crop, (box.height, box.width))
        canvas[box.slices] = small
        inside = resize_bilinear(panel.mask.astype(np.float32), (box.height, box.width))
        valid = inside * chroma_weight(small, job.white)
        canvas = _seen_lightness(canvas, job.paper)
        hints = None
        if self.contract.input_space == "L_hints" and self.options.palette is not None:
            canvas_valid = np.zeros(self.canvas_shape, np.float32)
            canvas_valid[box.slices] = valid
            hints = self.options.palette.hints(canvas, canvas_valid)
        return _PanelItem(job, panel, box, canvas, valid, hints)

    # --------------------------------------------------------------------------- inference and merge

    def _run(self, items: list[_PanelItem]) -> None:
        """One engine call for ``items``; each panel's chroma goes into its page, finished pages merge."""
        if not items:
            return
        hints = [item.hints for item in items]
        batch = pipeline.preprocess(
            [item.canvas for item in items],
            self.contract,
            hints=hints if any(h is not None for h in hints) else None,
        )
        ab = pipeline.decode_ab(self.engine.infer(batch), self.contract)
        for item, panel_ab in zip(items, ab, strict=True):
            job = item.job
            if job.done:
                continue
            try:
                self._place(item, panel_ab)
                job.remaining -= 1
                if job.remaining == 0:
                    job.result = self._finish(job)
            except ColorRTError as e:
                job.error = e

    def _place(self, item: _PanelItem, canvas_ab: np.ndarray) -> None:
        """Put a panel's chroma, upsampled to the panel's full size, into its page (inside its mask)."""
        ab = np.ascontiguousarray(canvas_ab[(slice(None), *item.box.slices)])
        panel = item.panel
        full = resize_bilinear(ab, (panel.height, panel.width))
        palette = self.options.palette
        if palette is not None:
            # Fitted on the render-size panel, applied with the full-resolution L: every pixel's band
            # follows the scan's exact tone, not the blurred one the model saw. Both on white paper.
            chroma_map = palette.fit(ab, item.canvas[item.box.slices], item.valid, self.options.strength)
            tone = _seen_lightness(item.job.luminance[panel.slices], item.job.paper)  # type: ignore[index]
            full = chroma_map.apply(full, tone)
        target = item.job.ab[(slice(None), *panel.slices)]  # type: ignore[index]  # set in _start
        np.copyto(target, full, where=panel.mask[None])

    def _finish(self, job: _PageJob) -> PageResult:
        """Merge a page's chroma with its own lightness, white areas left neutral, L kept exactly."""
        from scipy import ndimage

        assert job.luminance is not None and job.ab is not None  # set in _start
        # White is judged on a slightly smoothed L, so screentone keeps its colour but balloons do not.
        # The scan's own chroma (a yellowed paper's tint) is not kept anywhere: the page is its L plus
        # the model's ab, so paper comes out neutral at its own lightness, like the panels' whites do;
        # keeping the tint only outside panels would leave yellow gutters around neutral-based art.
        smooth = ndimage.uniform_filter(job.luminance, size=5, mode="nearest")
        job.ab *= chroma_weight(smooth, job.white)[None]
        rgb = merge_keeping_lightness(job.luminance, job.ab)
        page = PageResult(attach_alpha(rgb, job.alpha), "colorized", job.panels)
        job.luminance = job.ab = None  # free the big planes as soon as the page is done
        return page


def _finished(jobs: deque[_PageJob]) -> Iterator[tuple[Hashable, PageResult | Exception]]:
    while jobs and jobs[0].done:
        job = jobs.popleft()
        yield job.key, job.error if job.error is not None else job.result  # type: ignore[misc]


# --------------------------------------------------------------------------------------- helpers


def letterbox(size: tuple[int, int], canvas: tuple[int, int]) -> Letterbox:
    """Largest placement of a ``(height, width)`` panel inside ``canvas`` keeping its aspect, centred."""
    scale = min(canvas[0] / size[0], canvas[1] / size[1])
    height = min(canvas[0], max(1, round(size[0] * scale)))
    width = min(canvas[1], max(1, round(size[1] * scale)))
    return Letterbox((canvas[0] - height) // 2, (canvas[1] - width) // 2, height, width)


def paper_white(luminance: np.ndarray, config: PanelConfig | None = None) -> float:
    """The page's paper white (CIE L): the paper's level read from the page (grey and yellowed scans
    included, see :func:`colorrt.pages.panels.paper_level`); on pages where no paper is seen, a high
    percentile of L, not below 85 (dark pages: 100, nothing is taken for paper)."""
    level = paper_level(luminance, config)
    return _fallback_white(luminance) if level is None else level


def _fallback_white(luminance: np.ndarray) -> float:
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


def _seen_lightness(luminance: np.ndarray, paper: float | None) -> np.ndarray:
    """L as the model and the palette see it: on white paper when a darker paper was measured,
    else ``luminance`` itself (white pages stay bit-identical)."""
    return luminance if paper is None else white_paper_lightness(luminance, paper)


def chroma_weight(luminance: np.ndarray, white: float) -> np.ndarray:
    """0..1 share of the model's chroma a pixel keeps: 1 up to ``white - WHITE_FULL``, 0 from
    ``white - WHITE_NONE`` (balloons, gutters and margins stay neutral)."""
    ramp = (white - WHITE_NONE - np.asarray(luminance, np.float32)) / np.float32(WHITE_FULL - WHITE_NONE)
    return np.clip(ramp, 0.0, 1.0)


def merge_keeping_lightness(luminance: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """``uint8`` RGB of full-res L and full-res ab, with every pixel's chroma first limited to the
    sRGB gamut at its own lightness and hue, so per-channel clipping never changes a pixel's L
    (dark lines stay black, lettering and tones keep their lightness). ``ab`` is modified in place."""
    limit_to_gamut(luminance, ab)
    return pipeline.merge(luminance, ab)


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


def colorfulness(image: np.ndarray) -> float:
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
    """True when the page is already in colour (see :func:`colorfulness`)."""
    return colorfulness(image) > threshold


def _as_rgb(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if colour.dtype != np.uint8:
        colour = np.round(pipeline.image_to_rgb_float(colour) * 255).astype(np.uint8)
    if colour.ndim == 2:
        colour = np.repeat(colour[:, :, None], 3, axis=2)
    return attach_alpha(colour, alpha)


# ------------------------------------------------------------------------------------- files in and out


@dataclass
class PageReport:
    """Outcome of :func:`colorize_pages`: which pages were colorized, passed through or failed (why)."""

    source: Path
    output: Path
    colorized: list[str] = field(default_factory=list)
    passed_through: list[str] = field(default_factory=list)  # already in colour, copied unchanged
    failed: list[tuple[str, str]] = field(default_factory=list)  # (page name, error message)
    copied: int = 0  # non-page archive members (ComicInfo.xml, folders) copied unchanged
    panels: int = 0
    seconds: float = 0.0

    @property
    def pages(self) -> int:
        """Pages attempted."""
        return len(self.colorized) + len(self.passed_through) + len(self.failed)

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when every page was written."""
        return not self.failed

    def summary(self) -> str:
        """One line for people: counts, speed, destination."""
        line = (
            f"colorized {len(self.colorized)} of {self.pages} pages ({self.panels} panels) into {self.output}"
            f" in {self.seconds:.1f} s ({self.pages_per_second:.2f} pages/s)"
        )
        if self.passed_through:
            line += f"; {len(self.passed_through)} already in colour, copied (use --force to recolour)"
        if self.failed:
            line += f"; {len(self.failed)} failed"
        return line


def colorize_pages(
    runtime: Any,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    reference: str | os.PathLike[str] | np.ndarray | Palette | None = None,
    rtl: bool = False,
    force: bool = False,
    format: str | None = None,
    progress: bool = True,
    batch_size: int | None = None,
    across_pages: bool = True,
    strength: float = 1.0,
    panel_config: PanelConfig | None = None,
) -> PageReport:
    """Colorize a chapter: a folder of pages, a CBZ archive or a single page, into ``dst``.

    The output keeps the source's names, order and structure (``dst`` ending in ``.cbz``/``.zip`` is
    an archive, an image suffix a single page, anything else a folder); pages keep their formats
    unless ``format`` (``"png"``, ``"jpg"``, ...) says otherwise. Archives are written atomically, folder
    pages each atomically. A page that cannot be read, colorized or written is reported in
    ``PageReport.failed`` and skipped; the others complete.

    Args:
        runtime: a :class:`colorrt.Runtime` (its ``engine`` and ``batch_size`` are used) or an Engine.
        src: the pages.
        dst: where the colorized pages go (never the source itself).
        reference: colour reference image, palette JSON (``Palette.save``), image array or Palette;
            the panels' chroma is matched to its colour statistics (consistent characters).
        rtl: right-to-left panel order (manga).
        force: colorize pages already in colour too (else they are copied unchanged).
        format: output image format for every page, e.g. ``"png"``.
        progress: show a progress bar on a terminal.
        batch_size: panels per inference call (default: the runtime's batch size).
        across_pages: batch panels of consecutive pages together (False: page at a time).
        strength: 0..1, how strongly the reference's colours replace the model's.
        panel_config: panel-detection thresholds.
    """
    from colorrt.progress import progress_bar

    src, dst = Path(src), Path(dst)
    if same_path(src, dst):
        raise InputError(
            f"output {dst} is the input itself", "write to another path: inputs are never modified"
        )
    output_name("page.png", format)  # an unknown format fails before any work
    engine = runtime if isinstance(runtime, Engine) else runtime.engine
    batch_size = batch_size or int(getattr(runtime, "batch_size", None) or 8)  # an Engine's may be None
    palette = None if reference is None else load_reference(reference)
    options = PageOptions(rtl, force, palette, strength, across_pages, panel_config or PanelConfig())
    colorizer = PageColorizer(engine, batch_size, options)
    report = PageReport(src, dst)
    start = time.perf_counter()
    with open_source(src, exclude=dst) as source:
        pages = [i for i, entry in enumerate(source.entries) if entry.is_image]
        if not pages:
            raise InputError(
                f"no pages (image files) in {src}",
                "supported: .png, .jpg, .tif, .webp, ... in a folder or .cbz",
            )
        sink = open_sink(dst, source)
        try:
            writer = _ChapterWriter(source, sink, report, format)
            with progress_bar(len(pages), enabled=progress, desc="pages", unit="page") as bar:
                for index, outcome in colorizer.stream(_read_pages(source, pages)):
                    writer.page(int(index), outcome)  # type: ignore[call-overload]  # keys are ints
                    bar.update(1)
            writer.rest()
            sink.commit()
        except BaseException:
            sink.abort()
            raise
    report.seconds = time.perf_counter() - start
    return report


def is_page_job(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, pages: bool = False, **page_flags: Any
) -> bool:
    """True when a colorize request is for comic pages: a CBZ/zip in or out, ``pages`` asked for, or
    any page-only option set (``reference``, ``rtl``, ``force``: truthy values)."""
    from colorrt.io.archive import ARCHIVE_SUFFIXES

    archive = any(Path(p).suffix.lower() in ARCHIVE_SUFFIXES for p in (src, dst))
    return archive or pages or any(bool(v) for v in page_flags.values())


def _read_pages(source: PageSource, indices: list[int]) -> Iterator[tuple[int, np.ndarray | Exception]]:
    for index in indices:
        try:
            yield index, source.read_image(source.entries[index].name)
        except (ColorRTError, OSError) as e:
            yield index, e


class _ChapterWriter:
    """Writes finished pages, and the source's other entries in their original places."""

    def __init__(self, source: PageSource, sink: PageSink, report: PageReport, format: str | None) -> None:
        self.source, self.sink, self.report, self.format = source, sink, report, format
        self.next = 0  # first source entry not yet written or skipped

    def page(self, index: int, outcome: PageResult | Exception) -> None:
        """Write page ``index`` (after the non-page entries before it) or record why it failed."""
        self._others_before(index)
        name = self.source.entries[index].name
        self.next = index + 1
        if isinstance(outcome, Exception):
            self.report.failed.append((name, str(outcome)))
            return
        try:
            if outcome.status == "passed" and not self.format:
                self.sink.write_bytes(name, self.source.read_bytes(name), name)
            else:
                self.sink.write_image(output_name(name, self.format), outcome.image, name)
        except (ColorRTError, OSError) as e:
            self.report.failed.append((name, str(e)))
            return
        (self.report.passed_through if outcome.status == "passed" else self.report.colorized).append(name)
        self.report.panels += len(outcome.panels)

    def rest(self) -> None:
        """Write the non-page entries after the last page."""
        self._others_before(len(self.source.entries))

    def _others_before(self, stop: int) -> None:
        for entry in self.source.entries[self.next : stop]:
            if entry.is_image:
                continue
            try:
                if entry.name.endswith("/"):
                    self.sink.write_dir(entry.name)
                else:
                    self.sink.write_bytes(entry.name, self.source.read_bytes(entry.name), entry.name)
            except (ColorRTError, OSError) as e:
                self.report.failed.append((entry.name, str(e)))
                continue
            self.report.copied += 1
        self.next = max(self.next, stop)
