"""Decoding a video's frames: threaded, resumable at a pts, frames lost to damage held with a warning."""

from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.io.video.clock import FrameClock, FrameSlots, open_reader_input
from colorrt.io.video.info import (
    DamagedPacketWarning,
    HeldFramesWarning,
    VideoDamageWarning,
    is_grey_format,
    probe,
)

TRUNCATION_SLACK_S = 0.5  # seconds a stream may end before its declared duration without a warning
LOOKAHEAD_PACKETS = 32  # packets demuxed ahead of the decoder: more than any codec's reordering (H.264: 16)


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
    sources deeper than 8 bits. Damaged packets are reported in :attr:`warnings` (also issued as
    :class:`DamagedPacketWarning`, one per packet) with their timestamp. Where the container gives
    every packet a pts, a frame the decoder loses is replaced by the last good frame (the next good
    one at the start) at its own pts, so the frames keep the input's count and timestamps; how many
    were held is counted in :attr:`held` and reported once, at the end (:class:`HeldFramesWarning`).

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
        self.held = 0  # frames shown in place of lost ones (this run, from start_pts on)
        self._index, self._previous, self._last_image = start_index, None, None

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
        self.held = 0
        self._index, self._previous, self._last_image = self.start_index, None, None
        clock = FrameClock(self.info.frame_duration)
        slots = FrameSlots()
        for frame in self._decoded(container, stream, slots):
            clock.previous = self._previous  # count on from the last pts returned (repaired, not skipped)
            pts = clock(frame)
            if slots.tracking and frame.pts is not None:
                pts = int(frame.pts)  # the container's own timestamp: damage cannot reorder it
            if check_seek:
                if pts > self.start_pts:
                    raise _SeekOvershot
                check_seek = False
            lost = slots.claim(pts) if slots.tracking else []
            if self._previous is not None and pts <= self._previous:
                if slots.tracking:
                    continue  # a frame the decoder let out late: its slot is already filled
                self._warn(f"non-increasing timestamp at {_time_text(pts, stream.time_base)} renumbered")
                pts = self._previous + 1
            image = frame_to_array(frame)
            yield from self._held(lost, image if self._last_image is None else self._last_image, stream)
            yield from self._emit(pts, image, stream)
        if check_seek:  # not one frame decoded after the seek
            raise _SeekOvershot
        if self._last_image is not None:
            yield from self._held(slots.remaining(), self._last_image, stream)
        self._check_complete(self._previous, stream)
        if self.held:
            self._warn(
                f"{self.held} frame(s) could not be decoded and were replaced by the nearest good frame "
                "(held), so the output keeps the input's frame count and timestamps",
                HeldFramesWarning,
            )

    def _held(self, slots: list[int], image: np.ndarray, stream: Any) -> Iterator[DecodedFrame]:
        """The nearest good frame, shown again at each slot whose own frame was lost."""
        for pts in slots:
            if self._previous is not None and pts <= self._previous:
                continue  # demuxed after a later frame came out: too late to show
            if self.start_pts is None or pts >= self.start_pts:
                self.held += 1
            yield from self._emit(pts, image, stream)

    def _emit(self, pts: int, image: np.ndarray, stream: Any) -> Iterator[DecodedFrame]:
        self._previous, self._last_image = pts, image
        if self.start_pts is not None and pts < self.start_pts:
            return
        self.last_time = float(pts * stream.time_base)
        yield DecodedFrame(self._index, pts, self.last_time, image)
        self._index += 1

    def _decoded(self, container: Any, stream: Any, slots: FrameSlots) -> Iterator[Any]:
        """Decoded PyAV frames; undecodable packets are skipped with a warning naming their time.

        Packets are demuxed ``LOOKAHEAD_PACKETS`` ahead of the decoder, so the slots of frames shown
        before a decoded one are known when it comes out (a damaged stream may release it early).
        """
        ahead: deque[Any] = deque()
        for packet in self._demuxed(container, stream):
            slots.add(packet)
            ahead.append(packet)
            if len(ahead) > LOOKAHEAD_PACKETS:
                yield from self._decode(ahead.popleft(), stream)
        while ahead:
            yield from self._decode(ahead.popleft(), stream)

    def _demuxed(self, container: Any, stream: Any) -> Iterator[Any]:
        import av

        packets = container.demux(stream)
        while True:
            try:
                yield next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                where = "the start" if self.last_time is None else f"{self.last_time:.3f} s"
                self._warn(f"the container is unreadable after {where}: {e}; stopping there")
                return

    def _decode(self, packet: Any, stream: Any) -> list[Any]:
        import av

        try:
            return packet.decode()
        except av.error.FFmpegError as e:
            where = _time_text(packet.pts, stream.time_base)
            self._warn(f"damaged video data at {where} skipped ({e})", DamagedPacketWarning)
            return []

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

    def _warn(self, message: str, category: type[VideoDamageWarning] = VideoDamageWarning) -> None:
        text = f"{self.path.name}: {message}"
        self.warnings.append(text)
        warnings.warn(text, category, stacklevel=2)


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
