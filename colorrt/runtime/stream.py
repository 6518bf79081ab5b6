"""Pipelined streaming: decode → preprocess → engine → postprocess → sink, each stage in its own thread.

Stages are joined by bounded queues, so memory stays flat whatever the length of the film; the
engine runs while the next batch is prepared and the previous one merged and encoded. Frames keep
their order (one thread per stage), frames of one render shape are batched (a partial batch is sent
when the shape changes or the input ends), the first error in any stage stops every stage and is
raised to the caller, and :meth:`Pipeline.cancel` stops the consumer within a queue poll (50 ms).

    for rgb in stream(runtime, frames):      # frames: any iterable of HxW / HxWx3 arrays
        show(rgb)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from colorrt.runtime.options import StreamOptions
from colorrt.runtime.queues import Pipeline, ordered_map
from colorrt.runtime.stages import ColorizedFrame, ColorizeStages

__all__ = [
    "ColorizeStages",
    "ColorizedFrame",
    "FrameStream",
    "Pipeline",
    "StreamOptions",
    "ordered_map",
    "stream",
]


class FrameStream:
    """Iterator of colorized frames (uint8 HxWx3) with :meth:`cancel`; see :func:`stream`."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._frames = iter(pipeline)
        self.scene_cuts: list[int] = []  # indices of frames that started a new scene
        self.count = 0

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> np.ndarray:
        frame: ColorizedFrame = next(self._frames)
        if frame.cut:
            self.scene_cuts.append(frame.tag)
        self.count += 1
        return frame.image

    def cancel(self) -> None:
        """Stop the stream: iteration ends within 50 ms; frames in flight are dropped."""
        self._pipeline.cancel()

    def close(self) -> None:
        """Stop the threads (also done when iteration ends or the stream is garbage-collected)."""
        self._pipeline.cancel()
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream(
    runtime: Any,
    frames: Iterable[np.ndarray],
    *,
    temporal: float = 0.6,
    batch_size: int | None = None,
    queue_size: int = 4,
    scene_threshold: float | None = None,
) -> FrameStream:
    """Colorize a sequence of frames in a pipeline, in order.

    Args:
        runtime: a :class:`colorrt.Runtime` (anything with ``engine`` and ``batch_size``).
        frames: HxW grey or HxWx3 RGB arrays (uint8, uint16 or float 0..1), consecutive video frames.
        temporal: chroma smoothing strength in [0, 1); 0 colorizes each frame on its own.
        batch_size: frames per inference; default the runtime's.
        queue_size: batches each stage queue holds (memory bound).
        scene_threshold: scene-cut threshold (see :class:`SceneCutDetector`; None: its default).

    Returns:
        A :class:`FrameStream`: iterate it for uint8 (H, W, 3) RGB frames; ``cancel()`` stops it;
        ``scene_cuts`` lists the frame indices where a new scene started.
    """
    options = StreamOptions(
        temporal=temporal,
        batch_size=batch_size,
        queue_size=queue_size,
        scene_threshold=scene_threshold,
    )
    stages = ColorizeStages(runtime.engine, batch_size or runtime.batch_size, options)
    return FrameStream(Pipeline(enumerate(frames), stages.stages(), queue_size=queue_size))
