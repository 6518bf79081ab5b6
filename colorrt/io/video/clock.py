"""Frame timestamps as the reader gives them: FFmpeg's best-effort pts, AVI's stored dts, promised slots."""

from __future__ import annotations

import heapq
import os
from typing import Any

from colorrt.io.video.info import open_input


def _keep_stored_pts_only(container: Any) -> None:
    """Turn off the pts PyAV has FFmpeg generate (``genpts``) for AVI, which stores none.

    An AVI chunk has only its index, the dts. With genpts FFmpeg guesses every packet's pts in decode
    order (dts plus the reorder delay), which is wrong for H.264 and packed MPEG-4 B-frames: the
    decoded frames then carry timestamps that go backwards. Without it they carry no pts, and the
    dts of the packet that released each frame from the decoder is its presentation time, as
    FFmpeg's own best-effort timestamp (``ffmpeg``, ``ffprobe``) has it.
    """
    import av

    if container.format.name == "avi":
        container.flags &= ~av.container.Flags.gen_pts.value


class _BestEffortTimestamp:
    """FFmpeg's best-effort frame timestamp (libavcodec's ``guess_correct_pts``), which PyAV lacks.

    Called with each decoded frame's pts (from the container, put in display order by the decoder)
    and dts (of the packet that released the frame); it trusts pts unless pts has gone backwards
    more often than dts so far, or is missing.
    """

    def __init__(self) -> None:
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts: int | None = None
        self.last_dts: int | None = None

    def __call__(self, pts: int | None, dts: int | None) -> int | None:
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        elif pts is not None:
            self.last_dts = pts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        elif dts is not None:
            self.last_pts = dts
        if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None):
            return pts
        return dts


def _frame_pts(timestamp: int | None, previous: int | None, step: int) -> int:
    if timestamp is not None:
        return int(timestamp)
    return 0 if previous is None else previous + step  # raw streams without timestamps: count frames


def open_reader_input(path: str | os.PathLike[str]) -> Any:
    """Open a video as :class:`VideoReader` does: :func:`open_input`, with AVI's guessed pts off.

    An AVI's packets then carry only their dts (and, for B-frames, shown as decoded, pts = dts);
    :class:`FrameClock` turns decoded frames into the pts the reader gives them. Other containers
    are unchanged.
    """
    container = open_input(path)
    _keep_stored_pts_only(container)
    return container


class FrameClock:
    """The pts :class:`VideoReader` gives each decoded frame, in decoding order.

    FFmpeg's best-effort timestamp of the frame (for AVI: the dts of the packet that released it
    from the decoder), counted on by ``step`` ticks where there is none. The reader's repair of
    timestamps that do not increase is not included. Start a new clock after flushing the decoder.
    """

    def __init__(self, step: int) -> None:
        self.step = step  # one frame's duration in time-base ticks (VideoInfo.frame_duration)
        self.previous: int | None = None
        self._best_effort = _BestEffortTimestamp()

    def __call__(self, frame: Any) -> int:
        """The pts of the next decoded PyAV frame."""
        self.previous = _frame_pts(self._best_effort(frame.pts, frame.dts), self.previous, self.step)
        return self.previous


class FrameSlots:
    """The frame timestamps the container promises: the pts of the video packets demuxed so far.

    A frame the decoder loses (damaged data; frames that refer to it) leaves its packet's pts
    unclaimed; :class:`~colorrt.io.video.reader.VideoReader` fills such a slot with the nearest
    good frame, so the output keeps the input's frame count and timestamps. Tracking stops
    (:attr:`tracking` False) at the first packet without a pts (AVI, raw streams): there the
    container does not say when each frame is shown.
    """

    def __init__(self) -> None:
        self.tracking = True
        self._open: list[int] = []  # heap of promised pts not yet claimed by a frame
        self._known: set[int] = set()

    def add(self, packet: Any) -> None:
        """Promise the slot of a demuxed video packet (empty and discarded packets show no frame)."""
        if not self.tracking or not packet.size or packet.is_discard:
            return
        if packet.pts is None:
            self.tracking = False
            self._open.clear()
            return
        if packet.pts not in self._known:
            self._known.add(packet.pts)
            heapq.heappush(self._open, packet.pts)

    def claim(self, pts: int) -> list[int]:
        """Mark ``pts`` shown; returns the open slots before it (frames lost before this one)."""
        lost = []
        while self._open and self._open[0] < pts:
            lost.append(heapq.heappop(self._open))
        if self._open and self._open[0] == pts:
            heapq.heappop(self._open)
        return lost

    def remaining(self) -> list[int]:
        """The slots no frame has claimed, in order (frames lost at the end of the stream)."""
        lost = sorted(self._open)
        self._open.clear()
        return lost
