"""Ray film path, step 1: keyframe chunks decoded in parallel and scored for scene cuts, and the
driver's replay of the detector's decision rule on those scores (no Ray here: plain functions the
Ray tasks call)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from colorrt.errors import ColorRTError
from colorrt.runtime.temporal import SceneCutDetector

if TYPE_CHECKING:
    from colorrt.io.video import FrameClock


@dataclass(frozen=True)
class Chunk:
    """Frames with ``start_pts <= pts < end_pts`` (None: from the first / to the last frame)."""

    number: int
    start_pts: int | None
    end_pts: int | None


@dataclass
class ChunkScan:
    """Scene-cut scores of one chunk: ``scores[i]`` compares frame i with frame i-1 of the chunk."""

    number: int
    pts: list[int]
    scores: list[float]
    first: np.ndarray | None  # detector features of the first and last frames (joined across chunks)
    last: np.ndarray | None
    warnings: list[str] = field(default_factory=list)


def keyframe_pts(src: str | os.PathLike[str]) -> list[int]:
    """Presentation timestamps of the video stream's keyframes, as :class:`VideoReader` gives them.

    Read from the packets where the container stores pts. AVI stores none: there the decoder runs
    from each keyframe packet until the keyframe comes out (a few packets), since its pts is the
    dts of the packet that releases it and an open-GOP keyframe is shown after the B-frames that
    follow it. A keyframe released only when the decoder drains (the file's last few packets) is
    left out: its time is counted, not read, and no chunk needs to start there.
    """
    from colorrt.io.video import FrameClock, open_reader_input, probe

    step = probe(src).frame_duration
    found, clock = set(), None  # clock: while decoding from a keyframe with no stored pts
    with open_reader_input(src) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.is_keyframe and packet.pts is not None:
                found.add(int(packet.pts))
            elif packet.is_keyframe and packet.size:
                stream.codec_context.flush_buffers()  # decode from here, as a chunk reader seeking here does
                clock = FrameClock(step)
            if clock is not None and (pts := _released_keyframe(packet, clock)) is not None:
                found.add(pts)
                clock = None
    return sorted(found)


def _released_keyframe(packet: Any, clock: FrameClock) -> int | None:
    """The pts of the keyframe among the frames this packet releases, if it is there."""
    import av

    try:
        frames = packet.decode()
    except av.error.FFmpegError:
        return None  # damaged: the chunk reader reports it; the next keyframe can start a chunk
    for frame in frames:
        pts = clock(frame)
        if frame.key_frame:
            return pts if frame.dts is not None else None
    return None


def plan_chunks(keyframes: Sequence[int], time_base: Fraction, seconds: float) -> list[Chunk]:
    """Keyframe-aligned chunks at least ``seconds`` long (the last one takes the rest)."""
    starts: list[int | None] = [None]
    last = keyframes[0] if keyframes else 0
    for pts in keyframes[1:]:
        if (pts - last) * time_base >= seconds:
            starts.append(pts)
            last = pts
    ends = [*starts[1:], None]
    return [Chunk(i, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


def frames_in(src: Path, start_pts: int | None, end_pts: int | None, start_index: int = 0) -> Iterator[Any]:
    """Decoded frames with ``start_pts <= pts < end_pts`` (the reader closes when this stops)."""
    from colorrt.io.video import VideoReader

    frames = iter(VideoReader(src, start_pts=start_pts, start_index=start_index))
    try:
        for frame in frames:
            if end_pts is not None and frame.pts >= end_pts:
                return
            yield frame
    finally:
        frames.close()


def scan_chunk(src: str | os.PathLike[str], chunk: Chunk) -> ChunkScan:
    """Decode one chunk and score every frame against the previous one, as the scene-cut detector does."""
    import warnings

    from colorrt.io.video import VideoDamageWarning

    detector = SceneCutDetector()
    scan = ChunkScan(chunk.number, [], [], None, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VideoDamageWarning)
        for frame in frames_in(Path(src), chunk.start_pts, chunk.end_pts):
            features = detector.features(frame.image)
            if scan.last is None:
                scan.first = features
            else:
                scan.scores.append(SceneCutDetector.score(scan.last, features))
            scan.pts.append(frame.pts)
            scan.last = features
    scan.warnings = [str(w.message) for w in caught if issubclass(w.category, VideoDamageWarning)]
    return scan


class _ScoreReplay(SceneCutDetector):
    """The scene-cut detector's decision rule run on precomputed scores (its "features" are the scores)."""

    @staticmethod
    def score(previous: Any, current: Any) -> float:
        return float(current)


@dataclass(frozen=True)
class CutPlan:
    """Every frame's pts, the frames that start a scene, and the detector state just before each."""

    pts: list[int]
    cuts: list[int]
    states: dict[int, tuple[int, tuple[float, ...]]]


def find_cuts(scans: Sequence[ChunkScan], threshold: float | None, min_scene_len: int) -> CutPlan:
    """Replay scene-cut detection over the whole film from the chunks' scores, in order."""
    pts: list[int] = []
    scores: list[float] = []
    last = None
    for scan in sorted(scans, key=lambda s: s.number):
        if not scan.pts:
            continue
        if pts and scan.pts[0] <= pts[-1]:
            raise ColorRTError(
                f"chunk {scan.number} starts at pts {scan.pts[0]}, not after the previous chunk's {pts[-1]}",
                "the video's timestamps are not increasing; colorize it on one machine (without --ray)",
            )
        scores.append(0.0 if last is None else SceneCutDetector.score(last, scan.first))
        scores.extend(scan.scores)
        pts.extend(scan.pts)
        last = scan.last
    replay = _ScoreReplay(threshold, min_scene_len)
    cuts, states = [], {}
    for index, score in enumerate(scores):
        before = replay.state()
        if replay.update(score):
            cuts.append(index)
            states[index] = (before.since_cut, tuple(before.recent))
    return CutPlan(pts, cuts, states)
