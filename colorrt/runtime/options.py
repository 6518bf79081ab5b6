"""Settings of the frame pipeline (:class:`StreamOptions`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from colorrt.errors import InputError
from colorrt.runtime.cuts import MIN_SCENE_LEN
from colorrt.runtime.temporal import MOTION_SIGMA


@dataclass(frozen=True)
class StreamOptions:
    """How frames are batched, queued and smoothed over time.

    Args:
        temporal: chroma smoothing strength in [0, 1) (0 disables smoothing and scene detection).
        batch_size: frames per inference; None takes the runtime's.
        queue_size: batches (or frames) each stage queue holds.
        scene_threshold: scene-cut threshold; None takes the detector's default (27).
        min_scene_len: frames a scene lasts at least.
        motion_sigma: luminance change (CIE L) treated as motion by the stabilizer; None ignores motion.
        compensate_pans: the stabilizer follows global camera motion (pans) before blending.
        workers: threads for the per-frame NumPy work of the prepare and merge stages (each; default:
            one per CPU, up to 4).
    """

    temporal: float = 0.6
    batch_size: int | None = None
    queue_size: int = 4
    scene_threshold: float | None = None
    min_scene_len: int = MIN_SCENE_LEN
    motion_sigma: float | None = MOTION_SIGMA
    compensate_pans: bool = True
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))

    def __post_init__(self) -> None:
        if not 0.0 <= self.temporal < 1.0:
            raise InputError(
                f"temporal strength must be in [0, 1), got {self.temporal}",
                "use 0 to turn smoothing off, about 0.6 for film",
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.queue_size < 1:
            raise InputError(f"queue_size must be >= 1, got {self.queue_size}")
        if self.workers < 1:
            raise InputError(f"workers must be >= 1, got {self.workers}")
