"""What a video file holds: opening it for reading and probing its size, timing and streams."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from colorrt.errors import InputError

VIDEO_SUFFIXES = frozenset(  # file suffixes taken for video inputs (FFmpeg reads more)
    ".mp4 .mkv .mov .avi .webm .m4v .mpg .mpeg .ts .mts .m2ts .wmv .flv .ogv "
    ".vob .3gp .3g2 .mxf .dv .divx .f4v .asf .m2v .y4m".split()
)
PASSTHROUGH_TYPES = ("audio", "subtitle")  # stream types copied packet by packet into the output


class VideoDamageWarning(UserWarning):
    """The input video has damaged or missing data; the readable part is still processed."""

    noun = "video damage warnings"


class DamagedPacketWarning(VideoDamageWarning):
    """A video packet could not be decoded (one warning per packet, naming its time)."""

    noun = "damaged packets"


class HeldFramesWarning(VideoDamageWarning):
    """Frames that could not be decoded were replaced by the nearest good frame (one warning per run)."""

    noun = "held-frame warnings"


@dataclass(frozen=True)
class VideoInfo:
    """What colorization needs to know about an input video (see :func:`probe`)."""

    path: Path
    width: int
    height: int
    pix_fmt: str
    codec: str
    time_base: Fraction
    rate: Fraction | None  # average frames per second, None when unknown
    frames: int | None  # declared or estimated frame count, None when unknown
    duration_s: float | None
    grey: bool  # single-component pixel format (gray, gray10le, ...)
    passthrough: tuple[str, ...]  # "audio:aac", "subtitle:subrip", ... copied to the output
    skipped: tuple[str, ...]  # other streams (data, attachments, extra video) that are not copied
    sample_aspect_ratio: Fraction | None = None  # pixel shape (anamorphic DVD: 32/27 ...), None: square
    display_matrix: tuple[int, ...] | None = None  # FFmpeg display matrix (phone rotation), None: upright

    @property
    def frame_duration(self) -> int:
        """One frame's duration in time_base units (from the average rate; 1 tick when unknown)."""
        if not self.rate:
            return 1
        return max(1, round(1 / (self.rate * self.time_base)))


def open_input(path: str | os.PathLike[str]) -> Any:
    """Open a video for reading, or raise InputError saying why it cannot be read."""
    import av

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such video file: {path}", "check the path")
    if not path.is_file():
        raise InputError(f"not a file: {path}", "pass the path of a video file")
    try:
        container = av.open(str(path), "r", metadata_errors="replace")  # tags in Latin-1 etc. happen
    except av.error.FFmpegError as e:
        raise InputError(
            f"{path} is not a video PyAV/FFmpeg can read ({e.strerror or e})",
            "check that the file is a complete video (an .mp4 cut short loses its index and cannot be "
            "opened; .mkv and .ts files can)",
        ) from e
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        container.close()
        raise InputError(f"{path} has no video stream (it holds: {', '.join(kinds)})", "pass a video file")
    return container


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Size, pixel format, timing and streams of a video file."""
    with open_input(path) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context  # None when this FFmpeg build has no decoder for the codec
        if ctx is None or not ctx.width or not ctx.height or ctx.pix_fmt is None:
            raise InputError(
                f"{path}: the video stream has no readable size or pixel format "
                f"({getattr(ctx, 'name', 'unknown codec')})",
                "the stream header is damaged or the codec is not supported by this FFmpeg build",
            )
        rate = stream.average_rate or stream.guessed_rate or None
        duration_s = _duration_s(container, stream)
        frames = stream.frames or (round(duration_s * rate) if duration_s and rate else None)
        passthrough, skipped = _classify_streams(container, stream)
        return VideoInfo(
            path=Path(path),
            width=ctx.width,
            height=ctx.height,
            pix_fmt=ctx.pix_fmt,
            codec=ctx.name,
            time_base=stream.time_base,
            rate=Fraction(rate) if rate else None,
            frames=frames or None,
            duration_s=duration_s,
            grey=is_grey_format(ctx.pix_fmt),
            passthrough=tuple(f"{s.type}:{getattr(s.codec_context, 'name', '?')}" for s in passthrough),
            skipped=tuple(f"{s.type}:{getattr(s.codec_context, 'name', '?')}" for s in skipped),
            sample_aspect_ratio=stream.sample_aspect_ratio or ctx.sample_aspect_ratio or None,
            display_matrix=_display_matrix(container, stream),
        )


def _display_matrix(container: Any, stream: Any) -> tuple[int, ...] | None:
    """The display matrix players apply (rotation, flips), as FFmpeg hands it on with the first frame."""
    import av

    try:
        frame = next(container.decode(stream), None)
    except av.error.FFmpegError:  # damaged start: the reader reports it; play it as stored
        return None
    data = None if frame is None else frame.side_data.get("DISPLAYMATRIX")
    return None if data is None else struct.unpack("=9i", bytes(data))  # int32_t[9], native order


def _classify_streams(container: Any, video: Any) -> tuple[list[Any], list[Any]]:
    keep = [s for s in container.streams if s.type in PASSTHROUGH_TYPES]
    other = [s for s in container.streams if s.type not in PASSTHROUGH_TYPES and s.index != video.index]
    return keep, other


def _duration_s(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE: microseconds
    return None


def is_grey_format(pix_fmt: str) -> bool:
    """True for a pixel format with one colour component (gray, gray10le, ya8, ...); False if unknown."""
    import av

    try:
        fmt = av.VideoFormat(pix_fmt)
    except ValueError:
        return False
    colour = [c for c in fmt.components if not c.is_alpha]
    return len(colour) == 1 and not fmt.has_palette
