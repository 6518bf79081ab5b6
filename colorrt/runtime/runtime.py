"""Runtime: colorize images (arrays, PIL images, files, folders) with any engine.

Each image keeps its full-resolution luminance and its alpha channel; only chroma comes from the
model, which runs at the contract's render size. Images that share a render shape are batched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from colorrt.contract import ColorContract
from colorrt.engines.base import Engine
from colorrt.errors import ColorRTError, InputError
from colorrt.io.images import array_to_pil, format_for, list_images, pil_to_array, read_image, write_image
from colorrt.kernels import pipeline
from colorrt.kernels.alpha import attach_alpha, split_alpha
from colorrt.progress import progress_bar

ImageLike = np.ndarray | Image.Image


@dataclass
class BatchReport:
    """Outcome of a folder run: how many images were written and which failed, with why."""

    done: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Images attempted."""
        return self.done + len(self.failed)

    @property
    def ok(self) -> bool:
        """True when every image was written."""
        return not self.failed


@dataclass
class _Prepared:
    """One image split into what the model needs (full-res L, optional hints) and what it keeps."""

    luminance: np.ndarray  # float32 (H, W), CIE L 0..100
    alpha: np.ndarray | None  # uint8 (H, W), untouched
    render_shape: tuple[int, int]
    hints: np.ndarray | None


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
        engine_options: passed to the backend's engine, e.g. ``arch="cyclegan-resnet9"`` for a torch
            ``.pth`` checkpoint, ``dtype="fp16"`` or ``cuda_graphs=True`` for the torch engine.
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
        **engine_options: Any,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError(
                f"threads must be an integer >= 1, got {threads!r}", "leave it out to use the physical cores"
            )
        self.batch_size = batch_size
        if isinstance(model, Engine):
            if contract is not None:
                raise InputError("contract= cannot be applied to an engine that is already created")
            self.engine = model
        else:
            from colorrt.engines.registry import load_engine

            if threads is not None:
                engine_options["threads"] = threads
            self.engine = load_engine(
                model, backend=backend, device=device, contract=contract, **engine_options
            )

    @property
    def contract(self) -> ColorContract:
        """The colour contract of the model being run."""
        return self.engine.contract

    def colorize(self, image: ImageLike, hints: np.ndarray | None = None) -> ImageLike:
        """Colorize one image.

        ``image``: a uint8/uint16 (or float 0..1) array shaped (H, W) or (H, W, 1/2/3/4), or a PIL
        image of any mode. ``hints``: (H, W, 3) array of CIE a, b and a 0/1 mask, for models whose
        contract takes hints. Returns a PIL image (RGB or RGBA) for a PIL input, else a uint8
        (H, W, 3) array, (H, W, 4) when the input had alpha. Size and luminance are the input's.
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

    def colorize_file(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
        """Colorize an image file into ``dst`` (format from its suffix), written atomically."""
        src, dst = Path(src), Path(dst)
        check_distinct(src, dst)
        format_for(dst)  # an unwritable destination fails before any work
        write_image(dst, self.colorize(read_image(src)))
        return dst

    def colorize_folder(
        self, src_dir: str | os.PathLike[str], dst_dir: str | os.PathLike[str], *, progress: bool = True
    ) -> BatchReport:
        """Colorize every image under ``src_dir`` into ``dst_dir`` with the same relative names.

        Files that cannot be read, colorized or written are skipped and listed in the report;
        the run goes on. A progress bar shows on a terminal when ``progress`` is true.
        """
        src_dir, dst_dir = Path(src_dir), Path(dst_dir)
        check_distinct(src_dir, dst_dir)
        if dst_dir.exists() and not dst_dir.is_dir():
            raise InputError(
                f"output {dst_dir} is a file, but the input is a folder", "pass an output folder"
            )
        files = images_outside(src_dir, dst_dir)
        inputs = {(src_dir / f).resolve() for f in files}
        report, start = BatchReport(), time.perf_counter()
        with progress_bar(len(files), enabled=progress, desc="colorize") as bar:
            for chunk in _chunks(files, self.batch_size):
                pairs = [(src_dir / f, dst_dir / f) for f in chunk]
                self.colorize_pairs(pairs, report, inputs=inputs)
                bar.update(len(chunk))
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
    ) -> BatchReport:
        """Colorize image files ``(src, dst)`` as one batch, each output written atomically; the files
        are counted in ``report`` (a new one when None), which is returned.

        Failure policy: a file that cannot be read or written, an output suffix with no image format,
        or an output whose resolved path is one of ``inputs`` is listed in ``report.failed`` with why,
        and the other files go on. An error while running the model is raised (it would fail every
        file), unless ``isolate_failures``: then the files are run one at a time and those the model
        fails on are listed too (a Ray worker does this, so one file cannot fail its whole batch).
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
                ready.append((src, dst, self._prepare(read_image(src), None)))
            except ColorRTError as e:
                report.failed.append((src, str(e)))
        prepared = [item for _, _, item in ready]
        colours = self._run_isolated(prepared) if isolate_failures else self._run_grouped(prepared)
        for (src, dst, _), colour in zip(ready, colours, strict=True):
            if isinstance(colour, ColorRTError):
                report.failed.append((src, str(colour)))
                continue
            try:
                write_image(dst, colour)
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
        rtl: bool = False,
        force: bool = False,
        format: str | None = None,
        progress: bool = True,
    ) -> Any:
        """Colorize comic/manga pages (folder, CBZ or single page) panel by panel, batched across pages.

        The page's own luminance is kept; ``reference`` (image or palette .json) keeps colours consistent
        across pages; ``rtl`` orders panels right to left; pages already in colour pass through unless
        ``force``. Returns a :class:`colorrt.pages.PageReport`. See :func:`colorrt.pages.colorize_pages`.
        """
        from colorrt.pages import colorize_pages

        return colorize_pages(
            self, src, dst, reference=reference, rtl=rtl, force=force, format=format, progress=progress
        )

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
        luminance = pipeline.luminance(colour)
        height, width = luminance.shape
        return _Prepared(luminance, alpha, self.contract.render_shape(height, width), hints)

    def _run_grouped(self, prepared: list[_Prepared]) -> list[np.ndarray]:
        """Run images in batches of equal render shape; results back in the input order."""
        results: list[np.ndarray | None] = [None] * len(prepared)
        groups: dict[tuple[int, int], list[int]] = {}
        for index, item in enumerate(prepared):
            groups.setdefault(item.render_shape, []).append(index)
        for indices in groups.values():
            for chunk in _chunks(indices, self.batch_size):
                for index, colour in zip(chunk, self._run([prepared[i] for i in chunk]), strict=True):
                    results[index] = attach_alpha(colour, prepared[index].alpha)
        return results  # type: ignore[return-value]  # every slot is filled above

    def _run(self, items: list[_Prepared]) -> list[np.ndarray]:
        luminances = [item.luminance for item in items]
        hints = [item.hints for item in items]
        batch = pipeline.preprocess(
            luminances, self.contract, hints=hints if any(h is not None for h in hints) else None
        )
        return pipeline.postprocess(self.engine.infer(batch), luminances, self.contract)


def _to_array(image: ImageLike) -> np.ndarray:
    if isinstance(image, Image.Image):
        return pil_to_array(image)
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy array or a PIL image, got {type(image).__name__}")
    return image


def _like_input(image: ImageLike, colour: np.ndarray) -> ImageLike:
    return array_to_pil(colour) if isinstance(image, Image.Image) else colour


def check_distinct(src: Path, dst: Path) -> None:
    """Refuse a missing source, or a destination that is the source itself."""
    if not src.exists():
        raise InputError(f"no such file or folder: {src}", "check the path")
    if dst.exists() and os.path.samefile(src, dst):
        raise InputError(
            f"output {dst} is the input itself", "write to another path: inputs are never modified"
        )


def images_outside(src_dir: Path, dst_dir: Path) -> list[Path]:
    """Images under src_dir, leaving out an output folder nested inside it."""
    if not src_dir.is_dir():
        raise InputError(f"not a folder: {src_dir}", "pass a folder of images, or a single image file")
    files = list_images(src_dir)
    try:
        nested = dst_dir.resolve().relative_to(src_dir.resolve())
    except ValueError:
        nested = None
    if nested is not None and nested.parts:
        files = [f for f in files if f.parts[: len(nested.parts)] != nested.parts]
    if not files:
        raise InputError(f"no image files in {src_dir}", "supported suffixes: .png, .jpg, .tif, .webp, ...")
    return files


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
