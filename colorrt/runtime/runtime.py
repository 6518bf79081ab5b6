"""Runtime: colorize images (arrays, PIL images, files, folders) with any engine.

Each image keeps its full-resolution luminance and its alpha channel; only chroma comes from the
model, which runs at the contract's render size (or ``render_size``), scaled by ``strength``. Images
that share a render shape are batched. Folder runs are planned in :mod:`colorrt.runtime.folder`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from colorrt.contract import ColorContract
from colorrt.engines.base import Engine
from colorrt.errors import ColorRTError, InputError
from colorrt.io.animation import is_animated
from colorrt.io.images import array_to_pil, format_for, pil_to_array, read_image, write_image
from colorrt.kernels import pipeline
from colorrt.kernels.alpha import attach_alpha, split_alpha
from colorrt.kernels.deep import postprocess_u16
from colorrt.kernels.ops import DeviceOps
from colorrt.progress import progress_bar
from colorrt.runtime.animation import colorize_animation
from colorrt.runtime.feed import runtime_feed
from colorrt.runtime.folder import BatchReport, check_distinct, images_outside, plan_folder
from colorrt.runtime.gpu_path import device_ops_for
from colorrt.runtime.render import render_contract, side_by_side

if TYPE_CHECKING:
    from colorrt.runtime.gpu_images import DeviceImages

__all__ = ["BatchReport", "ImageLike", "Runtime", "check_distinct", "images_outside"]

ImageLike = np.ndarray | Image.Image


@dataclass
class _Prepared:
    """One image split into what the model needs (full-res L, optional hints) and what it keeps."""

    luminance: np.ndarray  # float32 (H, W), CIE L 0..100
    alpha: np.ndarray | None  # uint8 (H, W), untouched
    render_shape: tuple[int, int]
    hints: np.ndarray | None
    deep: bool = False  # a uint16 image: merged into uint16 colour (alpha kept at 16 bits)


class Runtime:
    """Colorizes images with a colorization model.

    Args:
        model: model file (``.onnx``, ...), an already created :class:`Engine`, or None for the
            bundled default model.
        backend: ``"auto"`` (from the file suffix) or a backend name (see ``colorrt.engines.registry``).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        batch_size: images per inference call (images are grouped by render shape).
        contract: a contract or preset name overriding the model's stored contract.
        threads: CPU threads for the engine (default: physical cores).
        render_size: the longest side (pixels) of the picture the model sees (DeOldify's
            ``render_factor``); None keeps the contract's. Smaller is faster, larger keeps finer
            colour detail. A fixed-size contract refuses another size; others round it to their
            multiple. Used for images, folders, films and pages.
        strength: scales the model's chroma before it is merged: 0 grey, 1 the model's colours
            (default), up to 2 stronger ones. Used for images, folders, films and pages.
        gpu_path: with an engine on CUDA, pre- and post-processing run on the GPU too (CuPy kernels,
            pinned asynchronous copies; :mod:`colorrt.runtime.gpu_path`) for images, folders, films
            and pages: None (default) when CuPy is installed, True always (an error where it cannot),
            False never (NumPy kernels on the CPU, the engine's batches copied, as before).
        reference: image (file or array) whose palette a palette-input model paints with (all jobs).
        engine_options: passed to the backend's engine, e.g. ``arch="cyclegan-resnet9"`` for a torch
            ``.pth`` checkpoint, ``dtype="fp16"`` or ``cuda_graphs=True`` for the torch engine; for a
            model bundle folder (instance-aware colorization), ``detector="det.onnx"`` and the other
            :class:`colorrt.runtime.instance.InstanceEngine` options.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Engine | None = None,
        *,
        backend: str = "auto",
        device: str = "auto",
        batch_size: int = 4,
        contract: ColorContract | str | None = None,
        threads: int | None = None,
        render_size: int | None = None,
        strength: float = 1.0,
        gpu_path: bool | None = None,
        reference: str | os.PathLike[str] | np.ndarray | None = None,
        **engine_options: Any,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError(
                f"threads must be an integer >= 1, got {threads!r}", "leave it out to use the physical cores"
            )
        pipeline.check_chroma_strength(strength)
        self.batch_size = batch_size
        self.strength, self.reference = float(strength), reference
        if isinstance(model, Engine):
            if contract is not None:
                raise InputError("contract= cannot be applied to an engine that is already created")
            self.engine = model
            self._contract = render_contract(model.contract, render_size)
            self.device_ops = device_ops_for(model, gpu_path, self._contract)
            return
        from colorrt.engines.registry import load_engine
        from colorrt.runtime.instance import is_bundle, open_bundle

        if threads is not None:
            engine_options["threads"] = threads
        if "detector" in engine_options and not is_bundle(model):
            raise InputError("detector= applies to model bundles only", "pass a bundle folder as the model")
        load = open_bundle if is_bundle(model) else load_engine  # a bundle folder: the instance pipeline
        self.engine = load(model, backend=backend, device=device, contract=contract, **engine_options)
        try:
            self._contract = render_contract(self.engine.contract, render_size)
            self.device_ops: DeviceOps | None = device_ops_for(self.engine, gpu_path, self._contract)
        except ColorRTError:
            self.engine.close()  # ours: the caller never sees it
            raise

    @property
    def contract(self) -> ColorContract:
        """The colour contract the model is run with: the model's, at ``render_size`` when given."""
        return self._contract

    @property
    def render_size(self) -> int:
        """The longest side (pixels) of the picture the model sees."""
        return self._contract.render_size

    def colorize(self, image: ImageLike, hints: np.ndarray | None = None) -> ImageLike:
        """Colorize one image.

        ``image``: a uint8/uint16 (or float 0..1) array shaped (H, W) or (H, W, 1/2/3/4), or a PIL
        image of any mode. ``hints``: (H, W, 3) array of CIE a, b and a 0/1 mask, for models whose
        contract takes hints. Returns a PIL image (RGB or RGBA) for a PIL input, else a uint8
        (H, W, 3) array, (H, W, 4) when the input had alpha; uint16 for a uint16 input (16-bit
        files too: the merge is done in float and rounded to 16 bits). Size and luminance are the
        input's.
        """
        return self.colorize_batch([image], None if hints is None else [hints])[0]

    def colorize_batch(
        self, images: Sequence[ImageLike], hints: Sequence[np.ndarray | None] | None = None
    ) -> list[ImageLike]:
        """Colorize several images (any mix of sizes and kinds), returned in the input order."""
        if hints is not None and len(hints) != len(images):
            raise InputError(f"got {len(images)} images but {len(hints)} hint arrays; pass one per image")
        prepared = [
            self._prepare(_to_array(image), None if hints is None else hints[i])
            for i, image in enumerate(images)
        ]
        colours = self._run_grouped(prepared)
        return [_like_input(image, colour) for image, colour in zip(images, colours, strict=True)]

    def colorize_file(
        self, src: str | os.PathLike[str], dst: str | os.PathLike[str], *, side_by_side: bool = False
    ) -> Path:
        """Colorize an image file into ``dst`` (format from its suffix), written atomically.

        ``side_by_side``: ``dst`` shows the grey input left of the result (twice as wide).
        """
        src, dst = Path(src), Path(dst)
        check_distinct(src, dst)
        format_for(dst)  # an unwritable destination fails before any work
        if is_animated(src):  # every frame, timing and looping kept (or refused for a still format)
            return colorize_animation(self, src, dst, beside_grey=side_by_side)
        prepared = self._prepare(read_image(src), None)
        (colour,) = self._run_grouped([prepared])
        write_image(dst, _shown(prepared, colour, side_by_side))
        return dst

    def colorize_folder(
        self,
        src_dir: str | os.PathLike[str],
        dst_dir: str | os.PathLike[str],
        *,
        progress: bool = True,
        resume: bool = False,
        format: str | None = None,
        side_by_side: bool = False,
    ) -> BatchReport:
        """Colorize every image under ``src_dir`` into ``dst_dir`` with the same relative names.

        Files that cannot be read, colorized or written are listed in ``report.failed``, files that
        are not images (videos, ...) in ``report.skipped``; the run goes on. ``resume``: images whose
        output is already there are kept (counted in ``report.kept``), not colorized again; without
        it they are overwritten. ``format`` (``"png"``, ``"jpg"``, ...) sets every output's suffix.
        ``side_by_side``: each output shows the grey input left of the result. A progress bar shows
        on a terminal when ``progress`` is true. A model returning NaN stops the run with an error.
        """
        src_dir, dst_dir = Path(src_dir), Path(dst_dir)
        check_distinct(src_dir, dst_dir)
        if dst_dir.exists() and not dst_dir.is_dir():
            raise InputError(
                f"output {dst_dir} is a file, but the input is a folder", "pass an output folder"
            )
        plan = plan_folder(src_dir, dst_dir, format=format, resume=resume)
        report, start = plan.report, time.perf_counter()
        with progress_bar(len(plan.pairs), enabled=progress, desc="colorize") as bar:
            for pairs in _chunks(plan.pairs, self.batch_size):
                self.colorize_pairs(pairs, report, inputs=plan.inputs, side_by_side=side_by_side)
                bar.update(len(pairs))
        report.failed.sort()
        report.seconds = time.perf_counter() - start
        return report

    def colorize_pairs(
        self,
        pairs: Sequence[tuple[Path, Path]],
        report: BatchReport | None = None,
        *,
        inputs: Collection[Path] = (),
        isolate_failures: bool = False,
        side_by_side: bool = False,
    ) -> BatchReport:
        """Colorize image files ``(src, dst)`` as one batch, each output written atomically; the files
        are counted in ``report`` (a new one when None), which is returned.

        Failure policy: a file that cannot be read or written, an output suffix with no image format,
        or an output whose resolved path is one of ``inputs`` is listed in ``report.failed`` with why,
        and the other files go on. An error while running the model is raised (it would fail every
        file), unless ``isolate_failures``: then the files are run one at a time and those the model
        fails on are listed too (a Ray worker does this, so one file cannot fail its whole batch).
        ``side_by_side``: each output shows the grey input left of the result.
        """
        report = BatchReport() if report is None else report
        ready: list[tuple[Path, Path, _Prepared]] = []
        for src, dst in pairs:
            try:
                if inputs and dst.resolve() in inputs:
                    raise InputError(
                        f"output {dst} would overwrite an input file", "use a separate output folder"
                    )
                format_for(dst)  # an unwritable suffix fails before any work
                if is_animated(src):
                    colorize_animation(self, src, dst, beside_grey=side_by_side)
                    report.done += 1
                    continue
                ready.append((src, dst, self._prepare(read_image(src), None)))
            except ColorRTError as e:
                report.failed.append((src, str(e)))
        prepared = [item for _, _, item in ready]
        colours = self._run_isolated(prepared) if isolate_failures else self._run_grouped(prepared)
        for (src, dst, item), colour in zip(ready, colours, strict=True):
            if isinstance(colour, ColorRTError):
                report.failed.append((src, str(colour)))
                continue
            try:
                write_image(dst, _shown(item, colour, side_by_side))
                report.done += 1
            except ColorRTError as e:
                report.failed.append((src, str(e)))
        return report

    def colorize_video(self, src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> Any:
        """Colorize a film: streaming decode → model → encode, audio/subtitles copied bit-exact, frame
        count and timestamps kept, chroma smoothed over time (reset at scene cuts), written atomically
        and resumable. Options: codec, crf, bitrate, pix_fmt, preset, temporal, resume, decoder, progress,
        cancel, or ``options=VideoOptions(...)`` (:class:`colorrt.runtime.options.VideoOptions`; keywords
        beside it replace its fields). Returns a :class:`colorrt.runtime.video_job.VideoReport`."""
        from colorrt.runtime.video_job import colorize_video

        return colorize_video(self, src, dst, **options)

    def stream(self, frames: Any, **options: Any) -> Any:
        """Colorize an iterable of frames (uint8 arrays) as an ordered, pipelined generator with bounded
        memory; ``temporal`` smooths chroma over time (the keywords, or ``options=``, are
        :class:`colorrt.runtime.options.StreamOptions`'s). Returns a
        :class:`colorrt.runtime.stream.FrameStream` (iterate it; ``cancel()`` stops it)."""
        from colorrt.runtime.stream import stream

        return stream(self, frames, **options)

    def colorize_pages(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        reference: str | os.PathLike[str] | None = None,
        reference_strength: float | None = None,
        rtl: bool = False,
        force: bool = False,
        format: str | None = None,
        progress: bool = True,
    ) -> Any:
        """Colorize comic/manga pages (folder, CBZ or single page) panel by panel, batched across pages.

        The page's own luminance is kept; ``reference`` (image or palette .json) keeps colours consistent
        across pages, pulled ``reference_strength`` of the way (0..1; None: the measured default,
        ``colorrt.pages.palette.DEFAULT_REFERENCE_STRENGTH``); ``rtl`` orders panels right to left;
        pages already in colour pass through unless ``force``. Returns a
        :class:`colorrt.pages.PageReport`. See :func:`colorrt.pages.colorize_pages`.
        """
        from colorrt.pages import colorize_pages

        options: dict[str, Any] = {"reference": reference, "rtl": rtl, "force": force, "format": format}
        if reference_strength is not None:
            options["reference_strength"] = reference_strength
        return colorize_pages(self, src, dst, progress=progress, **options)

    def close(self) -> None:
        """Release the engine."""
        self.engine.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Runtime(engine={self.engine.name}, device={self.engine.device}, "
            f"contract={self.contract.name}, batch_size={self.batch_size})"
        )

    def _run_isolated(self, prepared: list[_Prepared]) -> list[np.ndarray | ColorRTError]:
        """:meth:`_run_grouped`; when that fails, image by image, so each failure is pinned on its image."""
        try:
            return self._run_grouped(prepared)
        except ColorRTError:
            results: list[np.ndarray | ColorRTError] = []
            for item in prepared:
                try:
                    results.append(self._run_grouped([item])[0])
                except ColorRTError as e:
                    results.append(e)
            return results

    def _prepare(self, array: np.ndarray, hints: np.ndarray | None) -> _Prepared:
        colour, alpha = split_alpha(array)
        deep = colour.dtype == np.uint16  # 16 bits in, 16 bits out
        if deep and alpha is not None:
            alpha = array[:, :, -1]  # the 16-bit alpha itself, not split_alpha's uint8
        luminance = pipeline.luminance(colour)
        height, width = luminance.shape
        return _Prepared(luminance, alpha, self.contract.render_shape(height, width), hints, deep)

    def _run_grouped(self, prepared: list[_Prepared]) -> list[np.ndarray]:
        """Run images in batches of equal render shape; results back in the input order."""
        if self.device_ops is not None and not any(item.deep for item in prepared):  # 16-bit: host merge
            return self._device_images.run_grouped(prepared)
        results: list[np.ndarray | None] = [None] * len(prepared)
        groups: dict[tuple[tuple[int, int], bool], list[int]] = {}
        for index, item in enumerate(prepared):
            groups.setdefault((item.render_shape, item.deep), []).append(index)
        for indices in groups.values():
            for chunk in _chunks(indices, self.batch_size):
                for index, colour in zip(chunk, self._run([prepared[i] for i in chunk]), strict=True):
                    results[index] = attach_alpha(colour, prepared[index].alpha)
        return results  # type: ignore[return-value]  # every slot is filled above

    def _run(self, items: list[_Prepared]) -> list[np.ndarray]:
        luminances = [item.luminance for item in items]
        output = self.engine.infer(runtime_feed(self, luminances, [item.hints for item in items]))
        pipeline.check_finite(output, pipeline.model_label(self.engine))
        merge = postprocess_u16 if items[0].deep else pipeline.postprocess  # a batch is all one depth
        return merge(output, luminances, self.contract, strength=self.strength)

    @functools.cached_property
    def _device_images(self) -> DeviceImages:
        """The GPU path's image runner (made on first use)."""
        from colorrt.runtime.gpu_images import DeviceImages

        return DeviceImages(self.engine, self.device_ops, self.contract, self.strength, self.batch_size)


def _to_array(image: ImageLike) -> np.ndarray:
    if isinstance(image, Image.Image):
        return pil_to_array(image)
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy array or a PIL image, got {type(image).__name__}")
    return image


def _like_input(image: ImageLike, colour: np.ndarray) -> ImageLike:
    return array_to_pil(colour) if isinstance(image, Image.Image) else colour


def _shown(item: _Prepared, colour: np.ndarray, beside_grey: bool) -> np.ndarray:
    """What is written for an image: the result, or the grey input left of it."""
    return side_by_side(item.luminance, colour) if beside_grey else colour


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
