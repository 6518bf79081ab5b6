"""The stream loop: colorize an iterable of frames in a threaded pipeline, in order, with bounded memory.

:func:`stream` runs :class:`~colorrt.runtime.stages.ColorizeStages` (prepare+batch, infer, decode+smooth+
merge) in a :class:`~colorrt.runtime.queues.Pipeline`: each stage in its own thread, joined by bounded
queues, so memory stays flat whatever the length of the film; the engine runs while the next batch is
prepared and the previous one merged. Frames keep their order, frames of one render shape are batched
(a partial batch is sent when the shape changes or the input ends), the first error in any stage stops
every stage and is raised to the caller, and :meth:`FrameStream.cancel` stops it within 50 ms.

    for rgb in stream(runtime, frames):      # frames: any iterable of HxW / HxWx3 arrays
        show(rgb)

The stages are :func:`~colorrt.runtime.gpu_path.colorize_stages`': the NumPy kernels on the CPU, or on
the GPU path (``Runtime(gpu_path=...)``) CuPy kernels on the device with temporal smoothing on the host.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from colorrt.runtime.gpu_path import colorize_stages
from colorrt.runtime.options import StreamOptions, VideoOptions
from colorrt.runtime.queues import Pipeline, ordered_map
from colorrt.runtime.stages import ColorizedFrame, ColorizeStages

__all__ = [
    "ColorizeStages",
    "ColorizedFrame",
    "FrameStream",
    "Pipeline",
    "StreamOptions",
    "VideoOptions",
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
    options: StreamOptions | VideoOptions | None = None,
    **keywords: Any,
) -> FrameStream:
    """Colorize a sequence of frames in a pipeline, in order.

    Args:
        runtime: a :class:`colorrt.Runtime` (anything with ``engine`` and ``batch_size``).
        frames: HxW grey or HxWx3 RGB arrays (uint8, uint16 or float 0..1), consecutive video frames.
        options: a :class:`StreamOptions` (or the :class:`VideoOptions` of a film); default settings
            when None.
        **keywords: :class:`StreamOptions` fields, replacing those of ``options``: ``temporal``
            (chroma smoothing strength in [0, 1); 0 colorizes each frame on its own), ``batch_size``
            (frames per inference; default the runtime's), ``queue_size`` (batches each stage queue
            holds: the memory bound), ``scene_threshold`` (see :class:`SceneCutDetector`; None: its
            default), ``side_by_side`` (frames come out as the grey input left of the result), ...
            The runtime's ``render_size`` and ``strength`` apply.

    Returns:
        A :class:`FrameStream`: iterate it for uint8 (H, W, 3) RGB frames; ``cancel()`` stops it;
        ``scene_cuts`` lists the frame indices where a new scene started.
    """
    options = StreamOptions.merged(options, **keywords)
    stages = colorize_stages(  # on the device when the runtime takes the GPU path
        runtime, options.batch_size or runtime.batch_size, options, **rendering(runtime)
    )
    return FrameStream(Pipeline(enumerate(frames), stages.stages(), queue_size=options.queue_size))


def rendering(runtime: Any) -> dict[str, Any]:
    """How ``runtime`` runs its model (its contract at its render size, its chroma strength), as
    :class:`ColorizeStages` keywords; an object with only an ``engine`` gets the engine's own."""
    return {
        "contract": getattr(runtime, "contract", runtime.engine.contract),
        "strength": getattr(runtime, "strength", 1.0),
    }
