"""Film settings: :class:`VideoOptions` (a video file job) and :class:`StreamOptions` (the frame pipeline).

``DEFAULT_TEMPORAL`` is the one default chroma smoothing strength; the CLI and the Ray adapter take
it from here. Keyword arguments of :func:`~colorrt.runtime.video_job.colorize_video` and
:func:`~colorrt.runtime.stream.stream` are the fields of these classes; an options object may be
passed instead (``options=``), and keywords given beside it replace its fields.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from colorrt.errors import InputError
from colorrt.runtime.cuts import MIN_SCENE_LEN
from colorrt.runtime.temporal import DEFAULT_TEMPORAL, MOTION_SIGMA, check_strength

__all__ = ["DECODERS", "DEFAULT_TEMPORAL", "SEGMENT_SECONDS", "StreamOptions", "VideoOptions"]

SEGMENT_SECONDS = 10.0  # seconds of video per segment: the most work an interruption loses
DECODERS = ("pyav", "dali")


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
        side_by_side: each frame comes out as the grey input left of the result (twice as wide).
    """

    temporal: float = DEFAULT_TEMPORAL
    batch_size: int | None = None
    queue_size: int = 4
    scene_threshold: float | None = None
    min_scene_len: int = MIN_SCENE_LEN
    motion_sigma: float | None = MOTION_SIGMA
    compensate_pans: bool = True
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    side_by_side: bool = False

    def __post_init__(self) -> None:
        check_strength(self.temporal)
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.queue_size < 1:
            raise InputError(f"queue_size must be >= 1, got {self.queue_size}")
        if self.workers < 1:
            raise InputError(f"workers must be >= 1, got {self.workers}")

    @classmethod
    def merged(cls, options: StreamOptions | VideoOptions | None = None, **changes: Any) -> StreamOptions:
        """``options`` (a :class:`VideoOptions` is converted; None: the defaults) with ``changes`` applied."""
        if isinstance(options, VideoOptions):
            options = options.stream_options()
        return cls(**changes) if options is None else dataclasses.replace(options, **changes)


@dataclass(frozen=True)
class VideoOptions:
    """How a video file is colorized, encoded and resumed (the options of ``colorize_video``).

    Args:
        codec: ``h264`` (default; ``vp9`` for .webm), ``hevc``, ``ffv1``, ``prores`` or ``vp9``.
        crf: constant quality (h264/hevc 0-51, vp9 0-63); or ``bitrate`` such as ``"8M"``.
        bitrate: target bitrate (``"8M"``, ``"2500k"`` or bits per second).
        pix_fmt: output pixel format (default per codec: yuv420p, ffv1 yuv444p, prores yuv422p10le).
        preset: h264/hevc speed preset, ``ultrafast`` .. ``placebo`` (default ``medium``); on a CPU
            the encode is a large share of the job (``veryfast`` costs about half of ``medium``).
        temporal: chroma smoothing strength in [0, 1); 0 disables smoothing (and scene detection).
        scene_threshold: scene-cut threshold (None: the detector's default).
        resume: continue an interrupted job writing the same output.
        decoder: ``"pyav"`` (CPU, threaded) or ``"dali"`` (NVIDIA GPU decode).
        progress: progress bar with frames/s and ETA (only on a terminal).
        segment_seconds: seconds of video per resumable segment.
        queue_size: items per pipeline queue.
        side_by_side: the output shows the grey input left of the result (a video twice as wide).
    """

    codec: str | None = None
    crf: int | None = None
    bitrate: int | str | None = None
    pix_fmt: str | None = None
    preset: str | None = None
    temporal: float = DEFAULT_TEMPORAL
    scene_threshold: float | None = None
    resume: bool = False
    decoder: str = "pyav"
    progress: bool = True
    segment_seconds: float = SEGMENT_SECONDS
    queue_size: int = 4
    side_by_side: bool = False

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise InputError(f"unknown decoder {self.decoder!r}; choose one of {list(DECODERS)}")
        if self.segment_seconds <= 0:
            raise InputError(f"segment_seconds must be > 0, got {self.segment_seconds}")
        self.stream_options()  # checks temporal and queue_size

    @classmethod
    def merged(cls, options: VideoOptions | None = None, **changes: Any) -> VideoOptions:
        """``options`` (None: the defaults) with ``changes`` applied."""
        return cls(**changes) if options is None else dataclasses.replace(options, **changes)

    def stream_options(self) -> StreamOptions:
        """The frame pipeline's settings for this film."""
        return StreamOptions(
            temporal=self.temporal,
            queue_size=self.queue_size,
            scene_threshold=self.scene_threshold,
            side_by_side=self.side_by_side,
        )

    def encoding(self) -> dict[str, Any]:
        """The keyword arguments of :func:`colorrt.io.video.encode_settings` (all but the size)."""
        return {
            "codec": self.codec,
            "crf": self.crf,
            "bitrate": self.bitrate,
            "pix_fmt": self.pix_fmt,
            "preset": self.preset,
        }
