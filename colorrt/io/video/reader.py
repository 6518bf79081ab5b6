"""Decoding a video's frames: threaded, resumable at a pts, damaged packets skipped with a warning."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.io.video.clock import FrameClock, open_reader_input
from colorrt.io.video.info import VideoDamageWarning, is_grey_format, probe

TRUNCATION_SLACK_S = 0.5  # seconds a stream may end before its declared duration without a warning


@dataclass(frozen=True)
class DecodedFrame:
    """A decoded video frame: its position, its timestamp and its pixels."""

    index: int  # position in the stream (0 = first frame)
    pts: int  # in the stream's time base
    time: float  # seconds
    image: np.ndarray  # uint8 / uint16, (H, W) grey or (H, W, 3) RGB


class VideoReader:
    """Decodes a video's frames with FFmpeg's threaded decoder.

    Frames come as grey (H, W) arrays when the stream is grey, else RGB (H, W, 3); uint16 for
    sources deeper than 8 bits. Damaged packets are skipped and reported in :attr:`warnings`
    (also issued as :class:`VideoDamageWarning`) with their timestamp.

    Args:
        path: the video file (opened read-only).
        start_pts: first frame to return (resuming): frames with a smaller pts are skipped.
        start_index: index given to that first frame.
    """

    def __init__(self, path: str | os.PathLike[str], *, start_pts: int | None = None, start_index: int = 0):
        self.info = probe(path)
        self.path = Path(path)
        self.start_pts = start_pts
        self.start_index = start_index
        self.warnings: list[str] = []
        self.last_time: float | None = None

    def __iter__(self) -> Iterator[DecodedFrame]:
        seek = self.start_pts is not None
        while True:
            container = open_reader_input(self.path)
            try:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                if seek:
                    seek_keyframe(container, stream, self.start_pts)
                yield from self._frames(container, stream, check_seek=seek)
                return
            except _SeekOvershot:
                seek = False  # the index put us past the resume point: decode from the start instead
            finally:
                container.close()

    def _frames(self, container: Any, stream: Any, check_seek: bool = False) -> Iterator[DecodedFrame]:
        index, previous = self.start_index, None
        clock = FrameClock(self.info.frame_duration)
        for frame in self._decoded(container, stream):
            clock.previous = previous  # count on from the last pts returned (repaired, not skipped)
            pts = clock(frame)
            if check_seek:
                if pts > self.start_pts:
                    raise _SeekOvershot
                check_seek = False
            if self.start_pts is not None and pts < self.start_pts:
                continue
            if previous is not None and pts <= previous:
                self._warn(f"non-increasing timestamp at {_time_text(pts, stream.time_base)} renumbered")
                pts = previous + 1
            previous = pts
            self.last_time = float(pts * stream.time_base)
            yield DecodedFrame(index, pts, self.last_time, frame_to_array(frame))
            index += 1
        if check_seek:  # not one frame decoded after the seek
            raise _SeekOvershot
        self._check_complete(previous, stream)

    def _decoded(self, container: Any, stream: Any) -> Iterator[Any]:
        """Decoded PyAV frames; undecodable packets are skipped with a warning naming their time."""
        import av

        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                where = "the start" if self.last_time is None else f"{self.last_time:.3f} s"
                self._warn(f"the container is unreadable after {where}: {e}; stopping there")
                return
            try:
                yield from packet.decode()
            except av.error.FFmpegError as e:
                self._warn(f"damaged video data at {_time_text(packet.pts, stream.time_base)} skipped ({e})")

    def _check_complete(self, last_pts: int | None, stream: Any) -> None:
        declared = self.info.duration_s
        if declared is None:
            return
        start = float((stream.start_time or 0) * stream.time_base)
        end = (
            start
            if last_pts is None
            else float(last_pts * stream.time_base) + 1 / float(self.info.rate or 25)
        )
        if end < start + declared - TRUNCATION_SLACK_S:
            self._warn(
                f"the video stream ends at {end:.3f} s, before its declared duration of "
                f"{start + declared:.3f} s: the file looks truncated; the frames up to {end:.3f} s are kept"
            )

    def _warn(self, message: str) -> None:
        text = f"{self.path.name}: {message}"
        self.warnings.append(text)
        warnings.warn(text, VideoDamageWarning, stacklevel=2)


def frame_to_array(frame: Any) -> np.ndarray:
    """A decoded PyAV frame as grey (H, W) or RGB (H, W, 3), uint16 when deeper than 8 bits.

    YUV frames whose chroma is neutral everywhere (black-and-white film stored as colour video)
    come as grey: the same pixels, a third of the data for every later step.
    """
    fmt = frame.format
    deep = max(c.bits for c in fmt.components) > 8
    if is_grey_format(fmt.name) or _neutral_chroma(frame):
        return frame.to_ndarray(format="gray16le" if deep else "gray")
    return frame.to_ndarray(format="rgb48le" if deep else "rgb24")


def _neutral_chroma(frame: Any) -> bool:
    """True for a planar YUV frame whose U and V planes stay within 1 (8-bit) of their middle value."""
    fmt = frame.format
    chroma = [c for c in fmt.components if c.is_chroma]
    if fmt.is_rgb or fmt.has_palette or len(chroma) != 2 or not fmt.is_planar:
        return False
    bits = chroma[0].bits
    if bits > 16 or fmt.is_big_endian:
        return False
    dtype = np.uint8 if bits <= 8 else np.dtype("<u2")
    middle, slack = 1 << (bits - 1), 1 << max(0, bits - 8)
    for component in chroma:
        plane = frame.planes[component.plane]
        values = np.frombuffer(plane, dtype=dtype).reshape(plane.height, -1)[:, : plane.width]
        if int(values.max()) > middle + slack or int(values.min()) < middle - slack:
            return False
    return True


class _SeekOvershot(Exception):
    """A seek landed after the requested frame (bad index); nothing was returned yet."""


def seek_keyframe(container: Any, stream: Any, pts: int) -> None:
    """Seek ``stream`` to the keyframe at or before ``pts``; to the start where the file cannot seek."""
    import av

    try:
        container.seek(pts, stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError:
        container.seek(0)  # not seekable: decode from the start, the reader skips up to pts


def _time_text(pts: int | None, time_base: Fraction) -> str:
    return "an unknown time" if pts is None else f"{float(pts * time_base):.3f} s"
