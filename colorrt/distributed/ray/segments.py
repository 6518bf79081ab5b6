"""Ray film path, step 2: segments that start at scene cuts (planned from the scan), and the
colorization of one segment into its own file, started from the recorded detector state (no Ray
here: the actors in :mod:`colorrt.distributed.ray.video` call these)."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.atomic import temporary_name
from colorrt.distributed.ray.scan import Chunk, CutPlan, frames_in
from colorrt.errors import ColorRTError
from colorrt.runtime.runtime import Runtime
from colorrt.runtime.segments import FrameTag, SegmentRecord
from colorrt.runtime.temporal import DetectorState, SceneCutDetector, StabilizerState, TemporalState


@dataclass(frozen=True)
class Segment:
    """Frames ``first_index`` .. ``first_index + frames - 1`` colorized by one actor into ``file``.

    ``detector`` is the scene-cut detector's ``(since_cut, recent scores)`` just before the segment's
    first frame; the actor decodes the frame before it to restore the detector's ``previous``
    features. None for a segment starting at frame 0 or when smoothing is off.
    """

    number: int
    file: str
    start_pts: int | None  # None: from the first frame
    end_pts: int | None  # None: to the end
    first_index: int = 0
    frames: int | None = None  # None: not known before decoding (smoothing off)
    previous_pts: int | None = None  # pts of the frame before the segment (read for its features)
    detector: tuple[int, tuple[float, ...]] | None = None


@dataclass
class SegmentResult:
    """What an actor did with one segment.

    ``record`` is the file it wrote, as a video job's manifest records a finished segment (None when
    the segment decoded no frame: no file). Its ``first_index`` counts from the film's first frame
    for segments planned from a scan; with smoothing off, frames are not counted across segments and
    it counts from the segment's own first frame.
    """

    number: int
    record: SegmentRecord | None = None
    cuts: list[int] = field(default_factory=list)  # frame indices that start a scene
    warnings: list[str] = field(default_factory=list)  # damaged input, with timestamps
    seconds: float = 0.0

    @property
    def frames(self) -> int:
        """Frames colorized into the segment's file."""
        return 0 if self.record is None else self.record.frames


def plan_segments(plan: CutPlan, time_base: Fraction, seconds: float, suffix: str) -> list[Segment]:
    """Segments that start at frame 0 or at a scene cut, each at least ``seconds`` long when it can be."""
    starts = [0]
    for cut in plan.cuts:
        if (plan.pts[cut] - plan.pts[starts[-1]]) * time_base >= seconds:
            starts.append(cut)
    segments = []
    for number, (first, end) in enumerate(zip(starts, [*starts[1:], len(plan.pts)], strict=True)):
        segments.append(
            Segment(
                number=number,
                file=_segment_name(number, suffix),
                start_pts=None if first == 0 else plan.pts[first],
                end_pts=None if end == len(plan.pts) else plan.pts[end],
                first_index=first,
                frames=end - first,
                previous_pts=None if first == 0 else plan.pts[first - 1],
                detector=None if first == 0 else plan.states[first],
            )
        )
    return segments


def keyframe_segments(chunks: Sequence[Chunk], suffix: str) -> list[Segment]:
    """Without smoothing every frame stands alone: segments are the keyframe chunks."""
    return [Segment(c.number, _segment_name(c.number, suffix), c.start_pts, c.end_pts) for c in chunks]


def _segment_name(number: int, suffix: str) -> str:
    return f"segment_{number:05d}{suffix}"


@dataclass(frozen=True)
class FilmJob:
    """What every segment actor needs to know about the film (sent to the workers)."""

    src: Path
    work_dir: Path
    info: Any  # colorrt.io.video.VideoInfo
    settings: Any  # colorrt.io.video.EncodeSettings
    options: Any  # colorrt.runtime.stream.StreamOptions


def colorize_segment(runtime: Runtime, job: FilmJob, segment: Segment) -> SegmentResult:
    """Colorize one segment into ``job.work_dir / segment.file`` (written atomically)."""
    from colorrt.io.video import VideoDamageWarning

    start = time.perf_counter()
    result = SegmentResult(segment.number)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VideoDamageWarning)
        colorized = _colorized_frames(runtime, job, segment)
        result.record = _encode(colorized, job, job.work_dir / segment.file, result.cuts)
    result.warnings = [str(w.message) for w in caught if issubclass(w.category, VideoDamageWarning)]
    result.seconds = time.perf_counter() - start
    return result


def _encode(colorized: Iterator[Any], job: FilmJob, path: Path, cuts: list[int]) -> SegmentRecord | None:
    """Encode colorized frames into ``path`` under a temporary name, renamed when complete; the
    frames that start a scene are added to ``cuts``. None (and no file) when there is no frame."""
    from colorrt.io.video import SegmentWriter

    temp = temporary_name(path, path.suffix)
    writer, record = None, None
    try:
        with closing(colorized):
            for frame in colorized:
                tag: FrameTag = frame.tag
                if writer is None:
                    writer = SegmentWriter(temp, job.settings, job.info, tag.pts)
                    record = SegmentRecord(path.name, tag.index, 0, tag.pts, tag.pts, None)
                writer.write(frame.image, tag.pts)
                record.frames += 1
                record.last_pts = tag.pts
                if frame.cut:
                    cuts.append(tag.index)
        if writer is not None:
            writer.close()
            os.replace(temp, path)
    except BaseException:
        if writer is not None:
            writer.abort()
        temp.unlink(missing_ok=True)
        raise
    return record


def _colorized_frames(runtime: Runtime, job: FilmJob, segment: Segment) -> Iterator[Any]:
    """The segment's frames through the streaming pipeline, started from the recorded state."""
    from colorrt.runtime.gpu_path import colorize_stages
    from colorrt.runtime.stream import Pipeline, rendering

    read_from = segment.start_pts if segment.detector is None else segment.previous_pts
    first_index = segment.first_index - (segment.detector is not None)
    frames = frames_in(job.src, read_from, segment.end_pts, first_index)
    try:
        state = _initial_state(segment, frames) if segment.detector is not None else None
        # on the device when the worker's runtime takes the GPU path, as on one machine
        stages = colorize_stages(runtime, runtime.batch_size, job.options, state, **rendering(runtime))
    except BaseException:
        frames.close()
        raise
    # the pipeline iterates (and closes) the source in its own thread
    yield from Pipeline(_tagged(frames), stages.stages(), queue_size=job.options.queue_size)


def _tagged(frames: Iterator[Any]) -> Iterator[tuple[FrameTag, np.ndarray]]:
    try:
        for frame in frames:
            yield FrameTag(frame.index, frame.pts), frame.image
    finally:
        frames.close()


def _initial_state(segment: Segment, frames: Iterator[Any]) -> TemporalState:
    """Detector state before the segment: recorded counters + the features of the frame before it."""
    previous = next(frames, None)
    if previous is None or previous.pts != segment.previous_pts:
        found = None if previous is None else previous.pts
        raise ColorRTError(
            f"segment {segment.number}: expected the frame at pts {segment.previous_pts} before it, "
            f"decoded {found}",
            "the video decodes differently when seeking; colorize it on one machine (without --ray)",
        )
    since_cut, recent = segment.detector
    detector = DetectorState(SceneCutDetector().features(previous.image), since_cut, tuple(recent))
    # the segment's first frame is a cut, where the smoother restarts: its past does not matter
    return TemporalState(detector, StabilizerState(None, None))
