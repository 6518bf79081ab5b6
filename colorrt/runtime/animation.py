"""Animated images (GIF, APNG, animated WebP): every frame colorized, timing and looping kept.

Frames are colorized as batches (at most ``_FRAMES_PER_CALL`` at a time, so a long animation does
not hold every frame's float planes at once) and written back as one animation, atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.io.animation import check_animated_output, read_animation, write_animation
from colorrt.kernels import pipeline
from colorrt.runtime.render import side_by_side

_FRAMES_PER_CALL = 64  # frames handed to colorize_batch at once (it batches them by batch_size)


def colorize_animation(
    runtime: Any, src: str | os.PathLike[str], dst: str | os.PathLike[str], *, beside_grey: bool = False
) -> Path:
    """Colorize every frame of the animated image ``src`` into the animation ``dst`` (.gif, .png, .webp).

    ``runtime``: a :class:`~colorrt.runtime.runtime.Runtime`. Each frame keeps its duration and the
    animation its loop count; ``beside_grey`` shows each grey frame left of its colour one. An
    output format that holds one picture (.jpg, .tif, ...) is refused before any work.
    """
    animation = read_animation(src)
    check_animated_output(dst, len(animation.frames))
    colours: list[np.ndarray] = []
    for start in range(0, len(animation.frames), _FRAMES_PER_CALL):
        chunk = animation.frames[start : start + _FRAMES_PER_CALL]
        colours += runtime.colorize_batch(chunk)
    if beside_grey:
        colours = [
            side_by_side(pipeline.luminance(frame[..., :3]), colour)
            for frame, colour in zip(animation.frames, colours, strict=True)
        ]
    return write_animation(dst, colours, animation)
