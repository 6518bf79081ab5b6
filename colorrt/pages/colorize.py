"""The page pipeline: panels in, chroma out, the page's own lightness kept.

    page --luminance--> L --detect_panels--> panels --letterbox--> render-size canvases
    canvases of several pages --batched--> engine --decode_ab--> ab per panel (palette transfer)
    ab --upsample into each panel's mask--> page ab --white: no chroma--> merge with L --gamut fit--> page

Pages already in colour are passed through; paper white, white-paper lightness, chroma weights and
the lightness-keeping merge are in :mod:`colorrt.pages.tone`; reading and writing whole chapters
(folders, CBZ) is in :mod:`colorrt.pages.chapter`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from colorrt.contract import ColorContract
from colorrt.engines.base import Engine
from colorrt.errors import ColorRTError, InputError
from colorrt.kernels import pipeline
from colorrt.kernels.alpha import attach_alpha, split_alpha
from colorrt.kernels.deep import widen_u8
from colorrt.kernels.extras import model_feed
from colorrt.kernels.ops import DeviceOps, panel_chroma
from colorrt.kernels.resize import resize_bilinear
from colorrt.pages.palette import DEFAULT_REFERENCE_STRENGTH, Palette, check_reference_strength
from colorrt.pages.panels import Panel, PanelConfig, panels_on_paper, paper_tone
from colorrt.pages.tone import (
    chroma_weight,
    fallback_white,
    is_color_page,
    merge_keeping_lightness,
    seen_lightness,
)


@dataclass(frozen=True)
class PageOptions:
    """How pages are colorized.

    Attributes:
        rtl: panels read right to left (manga); affects only the reported panel order.
        force: colorize pages that are already in colour instead of passing them through.
        palette: reference colour statistics to match (None: the model's own colours).
        reference_strength: 0..1, how far the palette transfer moves the model's chroma: 0 ignores
            the palette (hints too), 1 is the full transfer; the default is measured
            (``benchmarks/bench_reference_strength.py``, docs/pages.md).
        across_pages: batch panels of consecutive pages together (False: one page at a time).
        panels: panel-detection thresholds.
        normalize_paper: on pages whose paper is measured darker than white (grey, yellowed), show
            the model (and the palette's band matching) the panels' lightness as if on white paper;
            the output keeps the scan's L.
        chroma: scales the page's chroma before the merge (a Runtime's ``strength``): 0 grey, 1 the
            model's (and palette's) colours, up to 2 stronger ones.
        model_palette: the reference's palette fed to a model that takes one as an input
            (Comicolorization; :func:`colorrt.kernels.extras.reference_palette`), instead of ``palette``.
    """

    rtl: bool = False
    force: bool = False
    palette: Palette | None = None
    reference_strength: float = DEFAULT_REFERENCE_STRENGTH
    across_pages: bool = True
    panels: PanelConfig = field(default_factory=PanelConfig)
    normalize_paper: bool = True
    chroma: float = 1.0
    model_palette: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_reference_strength(self.reference_strength)
        pipeline.check_chroma_strength(self.chroma)

    @property
    def reference(self) -> Palette | None:
        """The palette in effect: None without one or at ``reference_strength`` 0."""
        return self.palette if self.reference_strength > 0 else None


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
    canvas: np.ndarray  # (S_h, S_w) CIE L as the model sees it (on white paper, see seen_lightness)
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
    deep: bool = False  # a 16-bit page: merged into 16-bit colour

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


class PageColorizer:
    """Colorizes pages panel by panel with one engine, batching panels across pages.

    Args:
        engine: any :class:`Engine` (its contract decides the render size and normalization).
        batch_size: panels per inference call.
        options: see :class:`PageOptions`.
        contract: the contract to run the model with (a Runtime's, at its render size); None: the
            engine's.
        ops: the GPU path's array backend (a Runtime's ``device_ops``): the panels' preprocessing,
            the engine and the decode to ab run on the device, only canvases and ab cross; None:
            NumPy kernels on the host. Placement, palette and the page merge stay on the host.
    """

    def __init__(
        self,
        engine: Engine,
        batch_size: int = 8,
        options: PageOptions | None = None,
        *,
        contract: ColorContract | None = None,
        ops: DeviceOps | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.engine = engine
        self.contract = engine.contract if contract is None else contract
        self.model = pipeline.model_label(engine)
        self.ops = ops
        self.batch_size = batch_size
        self.options = options or PageOptions()
        size, scale = self.contract.render_size, self.contract.detail_scale  # scale: line-drawing input
        height, width = self.contract.render_shape(size, size)
        self.canvas_shape = (height * scale, width * scale)  # one shape for every panel: batchable

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
            colour, job.alpha = split_alpha(np.asarray(page))
            job.deep = colour.dtype == np.uint16
            if not self.options.force and is_color_page(colour):
                job.result = PageResult(_as_rgb(colour, job.alpha), "passed")
                return []
            L = pipeline.luminance(colour)
            job.luminance = L
            tone = paper_tone(L, self.options.panels)  # measured once: panels and colours share it
            measured = None if tone is None else tone[0]
            job.white = fallback_white(L) if measured is None else measured
            if self.options.normalize_paper and measured is not None and measured < 100.0:
                job.paper = measured  # white paper (L 100) is left alone: its pages stay bit-identical
            job.panels = panels_on_paper(L, tone, rtl=self.options.rtl, config=self.options.panels)
            job.ab = np.zeros((2, *L.shape), np.float32)
            if self.contract.merge == "wholesale":  # Lab: outside the panels the page as it is
                job.ab = np.stack([L, job.ab[0], job.ab[1]])
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
        canvas = seen_lightness(canvas, job.paper)
        hints = None
        if self.contract.input_space == "L_hints" and self.options.reference is not None:
            canvas_valid = np.zeros(self.canvas_shape, np.float32)
            canvas_valid[box.slices] = valid
            hints = self.options.reference.hints(canvas, canvas_valid)
        return _PanelItem(job, panel, box, canvas, valid, hints)

    # --------------------------------------------------------------------------- inference and merge

    def _run(self, items: list[_PanelItem]) -> None:
        """One engine call for ``items``; each panel's chroma goes into its page, finished pages merge."""
        if not items:
            return
        canvases = [item.canvas for item in items]
        hints = [item.hints for item in items] if any(item.hints is not None for item in items) else None
        if self.ops is not None:
            ab = panel_chroma(self.ops, self.engine, canvases, self.contract, hints)
        else:
            feed = model_feed(canvases, self.contract, hints=hints, palette=self.options.model_palette)
            output = self.engine.infer(feed)
            pipeline.check_finite(output, self.model)  # a NaN page would come out black: stop instead
            ab = pipeline.decode_ab(output, self.contract)
        if ab.shape[-2:] != self.canvas_shape:  # an output at half or twice the render size
            ab = resize_bilinear(np.ascontiguousarray(ab), self.canvas_shape)
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
        palette = self.options.reference
        if palette is not None:
            # Fitted on the render-size panel, applied with the full-resolution L: every pixel's band
            # follows the scan's exact tone, not the blurred one the model saw. Both on white paper.
            chroma_map = palette.fit(
                ab[-2:], item.canvas[item.box.slices], item.valid, self.options.reference_strength
            )
            tone = seen_lightness(item.job.luminance[panel.slices], item.job.paper)  # type: ignore[index]
            full[-2:] = chroma_map.apply(full[-2:], tone)  # a wholesale Lab keeps its L
        target = item.job.ab[(slice(None), *panel.slices)]  # type: ignore[index]  # set in _start
        np.copyto(target, full, where=panel.mask[None])

    def _finish(self, job: _PageJob) -> PageResult:
        """Merge a page's chroma with its own lightness, white areas left neutral, L kept exactly."""
        from scipy import ndimage

        assert job.luminance is not None and job.ab is not None  # set in _start
        if job.ab.shape[0] == 3:  # wholesale: the model's colour in the panels, the line art on top
            job.ab[1:] *= np.float32(self.options.chroma)
            rgb = pipeline.merge(job.luminance, job.ab, self.contract)
            rgb = widen_u8(rgb) if job.deep else rgb
            page = PageResult(attach_alpha(rgb, job.alpha), "colorized", job.panels)
            job.luminance = job.ab = None
            return page
        # White is judged on a slightly smoothed L, so screentone keeps its colour but balloons do not.
        # The scan's own chroma (a yellowed paper's tint) is not kept anywhere: the page is its L plus
        # the model's ab, so paper comes out neutral at its own lightness, like the panels' whites do;
        # keeping the tint only outside panels would leave yellow gutters around neutral-based art.
        smooth = ndimage.uniform_filter(job.luminance, size=5, mode="nearest")
        job.ab *= chroma_weight(smooth, job.white)[None] * np.float32(self.options.chroma)
        rgb = merge_keeping_lightness(job.luminance, job.ab, deep=job.deep)
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


def _as_rgb(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if colour.dtype not in (np.uint8, np.uint16):  # 16-bit colour stays 16-bit
        colour = np.round(pipeline.image_to_rgb_float(colour) * 255).astype(np.uint8)
    if colour.ndim == 2:
        colour = np.repeat(colour[:, :, None], 3, axis=2)
    return attach_alpha(colour, alpha)
