"""Animated images (GIF, APNG, animated WebP): every frame read and written, timing and looping kept.

Frames come composited (each one the full picture a viewer shows, disposal and blending applied by
Pillow), in :func:`~colorrt.io.images.read_image`'s layouts; an animation is written back whole,
atomically, with each frame's duration and the loop count of the input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from colorrt.atomic import write_with
from colorrt.errors import InputError
from colorrt.io.images import DECODE_ERRORS, array_to_pil, format_for, open_image, pil_to_array

ANIMATED_FORMATS = {"GIF": ".gif", "PNG": ".png", "WEBP": ".webp"}  # Pillow formats that animate
_ANIMATED_SUFFIXES = frozenset({".gif", ".png", ".apng", ".webp"})
_DEFAULT_DURATION_MS = 100  # what browsers show a GIF frame without a delay for


@dataclass
class Animation:
    """The frames of an animated image and how they play."""

    frames: list[np.ndarray]  # composited, all RGB (H, W, 3) or all RGBA (H, W, 4), uint8
    durations: list[int]  # milliseconds each frame shows
    loop: int | None  # 0: forever, n: the file's loop count, None: plays once (a GIF without one)


def is_animated(path: str | os.PathLike[str]) -> bool:
    """True for a GIF / APNG / WebP file with more than one frame (others: False, without decoding)."""
    path = Path(path)
    if path.suffix.lower() not in _ANIMATED_SUFFIXES or not path.is_file():
        return False
    try:
        with open(path, "rb") as handle, open_image(handle, str(path), warn=False) as image:  # read_* warns
            return bool(getattr(image, "is_animated", False))
    except (Image.UnidentifiedImageError, *DECODE_ERRORS):
        return False  # read_image reports what is wrong with it


def read_animation(path: str | os.PathLike[str]) -> Animation:
    """Every frame of an animated image, with its duration, and the loop count."""
    path = Path(path)
    frames, durations = [], []
    try:
        with open(path, "rb") as handle, open_image(handle, str(path), warn=False) as image:  # read_* warns
            loop = image.info.get("loop")
            for frame in ImageSequence.Iterator(image):
                frame.load()  # a grey GIF's later frames say "L" but hold "P" pixels until loaded
                frames.append(pil_to_array(frame, source=str(path)))
                durations.append(int(frame.info.get("duration") or _DEFAULT_DURATION_MS))
    except (Image.UnidentifiedImageError, *DECODE_ERRORS) as e:
        raise InputError(f"cannot decode {path}: {e}", "the animation is truncated or damaged") from e
    return Animation(_same_layout(frames), durations, loop)


def check_animated_output(path: str | os.PathLike[str], frames: int) -> str:
    """The Pillow format to write an animation to ``path``, or an InputError when it cannot animate."""
    fmt = format_for(path)
    if fmt not in ANIMATED_FORMATS:
        raise InputError(
            f"the input is animated ({frames} frames) but {Path(path).suffix} files hold one picture",
            "write it to .gif, .png (APNG) or .webp to keep every frame",
        )
    return fmt


def write_animation(path: str | os.PathLike[str], frames: list[np.ndarray], like: Animation) -> Path:
    """Write ``frames`` as an animation timed and looped like ``like``, atomically (format: the suffix)."""
    path = Path(path)
    fmt = check_animated_output(path, len(frames))
    images = [array_to_pil(frame) for frame in _same_layout(frames)]
    options: dict[str, object] = {"save_all": True, "append_images": images[1:], "duration": like.durations}
    if like.loop is not None:
        options["loop"] = like.loop
    elif fmt != "GIF":
        options["loop"] = 1  # APNG / WebP: play once, as the GIF without a loop count did
    if fmt == "GIF":
        options["disposal"] = 2  # each frame is a whole picture: clear, never draw over the last one
    elif fmt == "WEBP":
        options["quality"] = 95  # as still WebP outputs
    try:
        write_with(path, lambda handle: images[0].save(handle, format=fmt, **options))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot write {path}: {e}", "check the folder is writable") from e
    return path


def _same_layout(frames: list[np.ndarray]) -> list[np.ndarray]:
    """All frames RGB, or all RGBA when any has alpha (a GIF's first frame may be opaque, others not)."""
    rgb = [np.dstack([f] * 3) if f.ndim == 2 else f for f in frames]
    if all(f.shape[2] == 3 for f in rgb):
        return rgb
    opaque = np.iinfo(rgb[0].dtype).max
    return [f if f.shape[2] == 4 else np.dstack([f, np.full(f.shape[:2], opaque, f.dtype)]) for f in rgb]
