"""Calibration sets: model inputs made from images, video frames or comic pages, exactly as the runtime
makes them.

A source is a folder of images (searched recursively; pages are images too), a CBZ/zip archive of
pages, or a video file. Each picture goes through the runtime's own kernels
(:func:`colorrt.kernels.pipeline.luminance` then :func:`~colorrt.kernels.pipeline.preprocess` with the
model's contract), so the calibration sees the very tensors the model will see.

Sets are bounded (``max_samples``), seeded and reproducible: the same source, contract and seed give
the same samples in the same order. Images are drawn in a seeded random order; video frames are drawn
one per equal slice of the whole clip, at a seeded position inside the slice, so a film is sampled from
its first minute to its last. Unreadable files and frames are skipped and listed; too few readable
samples raise :class:`~colorrt.errors.InputError`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import InputError
from colorrt.io.video import VIDEO_SUFFIXES
from colorrt.kernels import pipeline
from colorrt.kernels.resize import resize_bilinear

DEFAULT_MAX_SAMPLES = 64
MIN_SAMPLES = 4  # fewer calibration samples than this give unreliable activation ranges
REPORT_MAX_SIDE = 512  # pixels: longest side of the lightness kept for the quality report


class CalibrationWarning(UserWarning):
    """Some calibration files or frames could not be read and were skipped."""


@dataclass(frozen=True)
class Sample:
    """One calibration sample.

    ``input`` is the model input (``1 x C x h x w`` float32, the contract's preprocessing);
    ``luminance`` the picture's CIE L (0..100) at its own size, reduced to at most
    :data:`REPORT_MAX_SIDE` pixels, which the quality report merges the predicted colours with.
    """

    source: str  # "photos/a.jpg", "film.mp4@12.480s", "book.cbz:p003.png"
    input: np.ndarray
    luminance: np.ndarray


@dataclass(frozen=True)
class CalibrationSet:
    """Preprocessed samples for one contract, in a fixed order."""

    samples: tuple[Sample, ...]
    contract: ColorContract
    origin: str  # the source path, or "synthetic"
    kind: str  # "images", "pages", "video" or "synthetic"
    skipped: tuple[str, ...] = field(default=())  # "name: reason" of unreadable files or frames

    def __len__(self) -> int:
        return len(self.samples)

    def inputs(self) -> list[np.ndarray]:
        """The model inputs, one ``1 x C x h x w`` array per sample."""
        return [s.input for s in self.samples]

    def split(self, holdout: int, seed: int = 0) -> tuple[CalibrationSet, CalibrationSet]:
        """``(calibration, held_out)``: ``holdout`` samples picked with ``seed``, the rest for calibration."""
        if not 0 <= holdout < len(self.samples):
            raise InputError(f"cannot hold out {holdout} of {len(self.samples)} samples")
        rng = np.random.default_rng([seed, 0x5EED])
        held = set(rng.choice(len(self.samples), size=holdout, replace=False).tolist()) if holdout else set()
        keep = tuple(s for i, s in enumerate(self.samples) if i not in held)
        out = tuple(s for i, s in enumerate(self.samples) if i in held)
        return self._with(keep), self._with(out)

    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the contract and every input tensor (shape and bytes), in order."""
        digest = hashlib.sha256(self.contract.to_json().encode())
        for sample in self.samples:
            digest.update(str(sample.input.shape).encode())
            digest.update(np.ascontiguousarray(sample.input, dtype=np.float32).tobytes())
        return f"sha256:{digest.hexdigest()}"

    def describe(self) -> str:
        """One line: how many samples of what, from where."""
        noun = {"images": "images", "pages": "pages", "video": "video frames"}.get(
            self.kind, "synthetic pictures"
        )
        skipped = f", {len(self.skipped)} unreadable skipped" if self.skipped else ""
        origin = "" if self.kind == "synthetic" else f" from {self.origin}"
        return f"{len(self.samples)} {noun}{origin}{skipped}"

    def _with(self, samples: tuple[Sample, ...]) -> CalibrationSet:
        return CalibrationSet(samples, self.contract, self.origin, self.kind, self.skipped)


def load_calibration_set(
    source: str | os.PathLike[str],
    contract: ColorContract,
    *,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    seed: int = 0,
    min_samples: int = MIN_SAMPLES,
) -> CalibrationSet:
    """Up to ``max_samples`` preprocessed samples from a folder of images, a CBZ/zip of pages or a video.

    Raises:
        InputError: the source is missing or of an unknown kind, the video cannot be decoded, or fewer
            than ``min(min_samples, max_samples)`` readable pictures were found (the message lists the
            unreadable ones).
    """
    if max_samples < 1 or min_samples < 1:
        raise InputError(f"max_samples and min_samples must be >= 1, got {max_samples} and {min_samples}")
    path = Path(source)
    kind = source_kind(path)
    pictures = _video_frames(path, max_samples, seed) if kind == "video" else _pages(path, max_samples, seed)
    samples, skipped = [], []
    for name, picture in pictures:
        if isinstance(picture, InputError):
            skipped.append(f"{name}: {picture.what}")
            continue
        samples.append(make_sample(name, picture, contract))
    if skipped:
        warnings.warn(
            f"{path}: skipped {len(skipped)} unreadable item(s): {'; '.join(skipped[:5])}",
            CalibrationWarning,
            stacklevel=2,
        )
    _check_enough(path, kind, len(samples), min(min_samples, max_samples), skipped)
    return CalibrationSet(tuple(samples), contract, str(path), kind, tuple(skipped))


def source_kind(path: Path) -> str:
    """``"images"`` (a folder), ``"pages"`` (a CBZ/zip) or ``"video"``; InputError for anything else."""
    if not path.exists():
        raise InputError(f"no such calibration source: {path}", "pass a folder of images, a .cbz or a video")
    if path.is_dir():
        return "images"
    from colorrt.io.archive import ARCHIVE_SUFFIXES
    from colorrt.io.images import IMAGE_SUFFIXES

    suffix = path.suffix.lower()
    if suffix in ARCHIVE_SUFFIXES:
        return "pages"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        raise InputError(
            f"calibration needs many pictures, and {path} is a single image",
            "pass the folder that holds it (with at least a few dozen representative images)",
        )
    raise InputError(
        f"{path} is not a calibration source colorrt knows (suffix {suffix or 'none'!r})",
        f"pass a folder of images, a .cbz/.zip of pages or a video ({', '.join(sorted(VIDEO_SUFFIXES))})",
    )


def make_sample(name: str, picture: np.ndarray, contract: ColorContract) -> Sample:
    """A :class:`Sample` from a decoded picture, with the runtime's preprocessing."""
    lightness = pipeline.luminance(picture)
    model_input = pipeline.preprocess([lightness], contract)
    return Sample(name, model_input, _report_luminance(lightness))


def _report_luminance(lightness: np.ndarray) -> np.ndarray:
    height, width = lightness.shape
    scale = REPORT_MAX_SIDE / max(height, width)
    if scale >= 1:
        return np.ascontiguousarray(lightness, dtype=np.float32)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return resize_bilinear(np.asarray(lightness, dtype=np.float32), size)


def _check_enough(path: Path, kind: str, found: int, needed: int, skipped: list[str]) -> None:
    if found >= needed:
        return
    what = {"images": "readable images", "pages": "readable pages", "video": "decodable frames"}[kind]
    unreadable = f" ({len(skipped)} unreadable: {'; '.join(skipped[:3])})" if skipped else ""
    hint = (
        "check that the video plays (e.g. with ffplay) and is not cut short"
        if kind == "video"
        else "add representative images (a few dozen is typical) or point --calib at a larger folder"
    )
    raise InputError(f"{path}: found {found} {what}{unreadable}; calibration needs at least {needed}", hint)


# ------------------------------------------------------------------------------------------ images and pages


def _pages(path: Path, count: int, seed: int) -> Iterator[tuple[str, np.ndarray | InputError]]:
    """Up to ``count`` readable pictures of a folder or archive, in a seeded random order."""
    from colorrt.io.archive import open_source

    with open_source(path) as pages:
        names = [entry.name for entry in pages.entries if entry.is_image]
        if not names:
            raise InputError(
                f"{path} holds no images (looked for .png, .jpg, .tif, .webp and the other image suffixes)",
                "point --calib at a folder, CBZ or video with representative pictures",
            )
        order = np.random.default_rng([seed, 0xCA11B]).permutation(len(names))
        label = "" if path.is_dir() else f"{path.name}:"
        read = 0
        for index in order:
            if read >= count:
                return
            name = names[index]
            try:
                picture = pages.read_image(name)
            except InputError as e:
                yield f"{label}{name}", e
                continue
            read += 1
            yield f"{label}{name}", picture


# ------------------------------------------------------------------------------------------------ video


def _video_frames(path: Path, count: int, seed: int) -> list[tuple[str, np.ndarray | InputError]]:
    """One frame from each of ``count`` equal slices of the clip, at a seeded position in the slice."""
    from colorrt.io.video import open_input, probe

    info = probe(path)
    if not info.duration_s or info.duration_s <= 0:
        raise InputError(
            f"{path}: the video's duration is unknown, so frames cannot be sampled across it",
            "remux it into a container that stores the duration (e.g. ffmpeg -i in -c copy out.mkv)",
        )
    rng = np.random.default_rng([seed, 0xF11A])
    offsets = (np.arange(count) + rng.uniform(0.0, 1.0, count)) / count * info.duration_s
    pictures: list[tuple[str, np.ndarray | InputError]] = []
    taken: set[int] = set()
    with open_input(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = float((stream.start_time or 0) * stream.time_base)
        for offset in offsets:
            found = _frame_at(container, stream, start + float(offset))
            if isinstance(found, InputError):
                pictures.append((f"{path.name}@{offset:.3f}s", found))
                continue
            pts, seconds, frame = found
            if pts in taken:  # a short clip: two slices landed on the same frame
                continue
            taken.add(pts)
            pictures.append((f"{path.name}@{seconds - start:.3f}s", frame))
    return pictures


def _frame_at(container: Any, stream: Any, seconds: float) -> tuple[int, float, np.ndarray] | InputError:
    """The first frame at or after ``seconds`` (the last frame when the clip ends before it).

    Seeks to the keyframe before ``seconds`` and decodes forward; a container that cannot seek is
    decoded from its start.
    """
    import av

    from colorrt.io.video import frame_to_array, seek_keyframe

    target = int(seconds / stream.time_base)
    last = None
    try:
        seek_keyframe(container, stream, target)
        for frame in container.decode(stream):
            last = frame
            if frame.pts is None or frame.pts >= target:
                break
    except av.error.FFmpegError as e:
        if last is None:
            return InputError(f"cannot decode a frame near {seconds:.3f} s ({e})")
    if last is None:
        return InputError(f"no frame decodes near {seconds:.3f} s")
    pts = int(last.pts if last.pts is not None else target)
    return pts, float(pts * stream.time_base), frame_to_array(last)


# -------------------------------------------------------------------------------------------- synthetic


def synthetic_set(
    contract: ColorContract, count: int = 8, seed: int = 0, size: int | None = None
) -> CalibrationSet:
    """Seeded smooth grey pictures (gradients, blobs, edges, grain) preprocessed for ``contract``.

    For quality reports when no real pictures are given; real pictures of the kind the model will
    colorize are always better.
    """
    rng = np.random.default_rng([seed, 0x5A17])
    side = size or contract.render_size
    samples = []
    for index in range(count):
        height, width = (side, side) if index % 2 == 0 else (side * 3 // 4, side)
        picture = _synthetic_picture(rng, height, width)
        samples.append(make_sample(f"synthetic-{index:02d}", picture, contract))
    return CalibrationSet(tuple(samples), contract, "synthetic", "synthetic")


def _synthetic_picture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= height
    x /= width
    angle = rng.uniform(0, np.pi)
    image = 0.5 + 0.3 * (np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5))
    for _ in range(4):
        cy, cx, radius = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3)
        image += rng.uniform(-0.3, 0.3) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius**2))
    image[(x > rng.uniform(0.3, 0.7)) & (y > rng.uniform(0.3, 0.7))] += rng.uniform(-0.2, 0.2)
    image += rng.normal(0, 0.01, image.shape).astype(np.float32)
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
