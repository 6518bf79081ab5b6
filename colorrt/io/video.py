"""Video decode and encode with PyAV: threaded decoding, encoded segments, stream-copied audio.

Colorized frames are encoded into *segments*: short files in the output's own container format, each
starting with a keyframe and holding the frames of a known range with timestamps shifted to start at
zero (so no container rounds a start offset). :func:`assemble` then stream-copies the segments' video
packets, with the offsets added back, together with the input's audio and subtitle packets
(bit-identical: never decoded), its metadata and chapters, into the final file. Every frame keeps
the pts of the input frame it came from, so frame count, frame rate, time base and variable frame
timing match the input (within the precision of the output container's time base: Matroska and
WebM store milliseconds).

Damaged input is decoded as far as possible: undecodable packets are skipped with a warning naming
their timestamp, and a stream that ends before its declared duration is reported as truncated.
"""

from __future__ import annotations

import heapq
import os
import re
import struct
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.errors import InputError

VIDEO_SUFFIXES = frozenset(  # file suffixes taken for video inputs (FFmpeg reads more)
    ".mp4 .mkv .mov .avi .webm .m4v .mpg .mpeg .ts .mts .m2ts .wmv .flv .ogv "
    ".vob .3gp .3g2 .mxf .dv .divx .f4v .asf .m2v .y4m".split()
)
PASSTHROUGH_TYPES = ("audio", "subtitle")  # stream types copied packet by packet into the output
MOV_MUXERS = {"mov", "mp4", "3gp", "3g2", "ipod", "psp", "ismv", "f4v"}  # FFmpeg's movenc formats
TRUNCATION_SLACK_S = 0.5  # seconds a stream may end before its declared duration without a warning


class VideoDamageWarning(UserWarning):
    """The input video has damaged or missing data; the readable part is still processed."""


@dataclass(frozen=True)
class CodecSpec:
    """An output codec: the PyAV encoder, its default pixel format and its quality option."""

    encoder: str
    pix_fmt: str
    crf_range: tuple[int, int] | None  # None: the encoder has no constant-quality (crf) mode
    options: tuple[tuple[str, str], ...] = ()
    presets: tuple[str, ...] = ()  # the encoder's speed presets, fastest first


X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


CODECS: dict[str, CodecSpec] = {
    "h264": CodecSpec("libx264", "yuv420p", (0, 51), presets=X26X_PRESETS),
    "hevc": CodecSpec("libx265", "yuv420p", (0, 51), (("x265-params", "log-level=error"),), X26X_PRESETS),
    "ffv1": CodecSpec("ffv1", "yuv444p", None),
    "prores": CodecSpec("prores_ks", "yuv422p10le", None),
    "vp9": CodecSpec("libvpx-vp9", "yuv420p", (0, 63), (("row-mt", "1"),)),
}
CODEC_ALIASES = {
    "avc": "h264",
    "x264": "h264",
    "libx264": "h264",
    "h265": "hevc",
    "x265": "hevc",
    "libx265": "hevc",
    "prores_ks": "prores",
    "libvpx-vp9": "vp9",
}
DEFAULT_CODEC = {".webm": "vp9"}  # by output suffix; anything else gets h264


@dataclass(frozen=True)
class EncodeSettings:
    """How colorized frames are encoded (resolved and checked by :func:`encode_settings`)."""

    codec: str  # key of CODECS
    encoder: str
    pix_fmt: str
    crf: int | None = None
    bitrate: int | None = None  # bits per second
    options: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (stored in a resumable job's manifest)."""
        return {
            "codec": self.codec,
            "encoder": self.encoder,
            "pix_fmt": self.pix_fmt,
            "crf": self.crf,
            "bitrate": self.bitrate,
            "options": dict(self.options),
        }


def encode_settings(
    dst: str | os.PathLike[str],
    *,
    codec: str | None = None,
    crf: int | None = None,
    bitrate: int | str | None = None,
    pix_fmt: str | None = None,
    size: tuple[int, int] | None = None,
    preset: str | None = None,
) -> EncodeSettings:
    """Check the user's encoding choices and fill in defaults.

    Args:
        dst: output path (its suffix picks the default codec: VP9 for .webm, else H.264).
        codec: ``h264``, ``hevc``, ``ffv1``, ``prores`` or ``vp9`` (or the encoder's name).
        crf: constant quality (h264/hevc 0-51, vp9 0-63; lower is better); not with ``bitrate``.
        bitrate: target bits per second, an int or text such as ``"8M"`` / ``"2500k"``.
        pix_fmt: output pixel format; default the codec's (yuv420p; ffv1 yuv444p; prores yuv422p10le).
        size: (height, width) of the frames, to refuse 4:2:0 formats for odd sizes.
        preset: h264/hevc speed preset, ``ultrafast`` .. ``placebo`` (encoder default ``medium``).
            The encode is a large share of a CPU job's time: at 720p x264 ``medium`` costs about
            55 CPU ms per frame, ``veryfast`` about 25 (for a somewhat larger file at equal crf).
    """
    name = _codec_name(codec, Path(dst))
    spec = CODECS[name]
    _check_encoder_available(spec.encoder, name)
    if crf is not None and bitrate is not None:
        raise InputError("give either crf (constant quality) or bitrate, not both")
    if crf is not None:
        _check_crf(name, spec, crf)
    rate = None if bitrate is None else parse_bitrate(bitrate)
    chosen = pix_fmt or _default_pix_fmt(spec, size)
    _check_pix_fmt(spec, chosen, size)
    options = dict(spec.options)
    if preset is not None:
        options["preset"] = _checked_preset(name, spec, preset)
    if crf is not None:
        options["crf"] = str(crf)
        if name == "vp9":
            options["b"] = "0"  # libvpx: crf alone is constant quality only with a zero target bitrate
    return EncodeSettings(name, spec.encoder, chosen, crf, rate, options)


def parse_bitrate(value: int | str) -> int:
    """Bits per second from an int or text like ``"8M"``, ``"2500k"``, ``"1.5M"``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", str(value))
    if not match or float(match.group(1)) <= 0:
        raise InputError(
            f"bitrate must be a positive number of bits/s such as 8000000, '8M' or '2500k', got {value!r}"
        )
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def _codec_name(codec: str | None, dst: Path) -> str:
    if codec is None:
        return DEFAULT_CODEC.get(dst.suffix.lower(), "h264")
    name = CODEC_ALIASES.get(codec.lower(), codec.lower())
    if name not in CODECS:
        choices = sorted(CODECS)
        raise InputError(f"unknown video codec {codec!r}; choose one of {choices}", _closest(codec, choices))
    return name


def _check_encoder_available(encoder: str, name: str) -> None:
    import av

    try:
        av.codec.Codec(encoder, "w")
    except Exception as e:  # PyAV raises UnknownCodecError (a ValueError) or an FFmpegError
        available = [n for n, s in CODECS.items() if _has_encoder(s.encoder)]
        raise InputError(
            f"this PyAV build has no {encoder} encoder, needed for {name} output",
            f"choose one of {available}, or install a PyAV built with {encoder}",
        ) from e


def _has_encoder(encoder: str) -> bool:
    import av

    try:
        av.codec.Codec(encoder, "w")
        return True
    except Exception:  # see _check_encoder_available
        return False


def _check_crf(name: str, spec: CodecSpec, crf: int) -> None:
    if spec.crf_range is None:
        raise InputError(
            f"codec {name} has no crf (constant quality) setting",
            "ffv1 is lossless; set prores quality with bitrate, or choose h264, hevc or vp9 for crf",
        )
    low, high = spec.crf_range
    if isinstance(crf, bool) or not isinstance(crf, int) or not low <= crf <= high:
        raise InputError(f"crf for {name} must be an integer in {low}..{high}, got {crf!r}")


def _checked_preset(name: str, spec: CodecSpec, preset: str) -> str:
    if not spec.presets:
        raise InputError(
            f"codec {name} has no speed preset", "presets are for h264 and hevc; drop --preset for this codec"
        )
    if preset not in spec.presets:
        raise InputError(
            f"unknown {name} preset {preset!r}; choose one of {list(spec.presets)} (fastest first)",
            _closest(preset, spec.presets),
        )
    return preset


def _default_pix_fmt(spec: CodecSpec, size: tuple[int, int] | None) -> str:
    if size is not None and spec.pix_fmt in ("yuv420p", "yuv422p10le") and (size[0] % 2 or size[1] % 2):
        # 4:2:0 / 4:2:2 need even sizes; a full-chroma format keeps odd-sized films encodable
        return "yuv444p" if spec.pix_fmt == "yuv420p" else "yuv444p10le"
    return spec.pix_fmt


def _check_pix_fmt(spec: CodecSpec, pix_fmt: str, size: tuple[int, int] | None) -> None:
    import av

    codec = av.codec.Codec(spec.encoder, "w")
    supported = [f.name for f in (codec.video_formats or [])]
    if supported and pix_fmt not in supported:
        raise InputError(
            f"encoder {spec.encoder} cannot write pixel format {pix_fmt!r}",
            f"choose one of {supported}",
        )
    fmt = av.VideoFormat(pix_fmt)
    halves_width, halves_height = fmt.chroma_width(1024) < 1024, fmt.chroma_height(1024) < 1024
    if size is not None and ((halves_height and size[0] % 2) or (halves_width and size[1] % 2)):
        raise InputError(
            f"pixel format {pix_fmt} subsamples chroma and needs even frame sizes; the video is "
            f"{size[1]}x{size[0]}",
            "choose a 4:4:4 pixel format such as yuv444p",
        )


def _closest(name: str, choices: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else f"choose one of {list(choices)}"


# --------------------------------------------------------------------------------------------------
# Input


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
            grey=_is_grey_format(ctx.pix_fmt),
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


def _is_grey_format(pix_fmt: str) -> bool:
    import av

    try:
        fmt = av.VideoFormat(pix_fmt)
    except ValueError:
        return False
    colour = [c for c in fmt.components if not c.is_alpha]
    return len(colour) == 1 and not fmt.has_palette


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
                    _seek(container, stream, self.start_pts)
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
    if _is_grey_format(fmt.name) or _neutral_chroma(frame):
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


class _SeekOvershot(Exception):
    """A seek landed after the requested frame (bad index); nothing was returned yet."""


def _seek(container: Any, stream: Any, pts: int) -> None:
    import av

    try:
        container.seek(pts, stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError:
        container.seek(0)  # not seekable: decode from the start, the reader skips up to pts


def _time_text(pts: int | None, time_base: Fraction) -> str:
    return "an unknown time" if pts is None else f"{float(pts * time_base):.3f} s"


# --------------------------------------------------------------------------------------------------
# Output


class SegmentWriter:
    """Encodes frames into one self-contained file (starting with a keyframe).

    Timestamps are written relative to ``pts_offset`` (the segment's first pts) so that containers
    which would round a non-zero start (MP4 edit lists keep milliseconds) store them exactly.

    Args:
        path: segment file; its suffix picks the container format (the final output's).
        settings: encoder choice from :func:`encode_settings`.
        info: the input video (size, time base, rate).
        pts_offset: pts of the segment's first frame, in the input's time base.
    """

    def __init__(self, path: Path, settings: EncodeSettings, info: VideoInfo, pts_offset: int) -> None:
        import av

        self.path = path
        self.pts_offset = pts_offset
        self.time_base = info.time_base
        self.frames = 0
        self._container = av.open(str(path), "w")
        try:
            self._stream = _add_video_stream(self._container, settings, info)
        except BaseException:
            self._container.close()
            raise
        self._colorspace = _yuv_matrix(settings.pix_fmt, info.height)
        self._reformatter = av.video.reformatter.VideoReformatter()  # keeps its scaler between frames

    def write(self, image: np.ndarray, pts: int) -> None:
        """Encode one RGB uint8 (H, W, 3) frame shown at ``pts`` (input time base)."""
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        if self._colorspace is not None:
            frame = self._reformatter.reformat(
                frame,
                format=self._stream.codec_context.pix_fmt,
                dst_colorspace=self._colorspace,
                dst_color_range=1,
            )
        frame.pts = pts - self.pts_offset
        frame.time_base = self.time_base
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
            self._container = None

    def abort(self) -> None:
        """Close without caring about the file (it is deleted by the caller)."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # the file is being thrown away; its trailer does not matter
                pass
            self._container = None


def _add_video_stream(container: Any, settings: EncodeSettings, info: VideoInfo) -> Any:
    rate = info.rate or Fraction(25)
    try:
        stream = container.add_stream(settings.encoder, rate=rate, options=dict(settings.options))
    except ValueError as e:  # PyAV: "'<format>' format does not support '<codec>' codec"
        raise InputError(
            f"{container.format.name} output cannot hold {settings.codec} video ({e})",
            f"choose another codec for this container or an .mkv output (takes {sorted(CODECS)})",
        ) from e
    stream.width, stream.height = info.width, info.height
    stream.pix_fmt = settings.pix_fmt
    if info.sample_aspect_ratio:
        stream.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
    if info.display_matrix:
        stream.set_display_matrix(list(info.display_matrix))
    stream.time_base = info.time_base
    stream.codec_context.time_base = info.time_base  # frames keep their own pts: VFR stays VFR
    if settings.bitrate is not None:
        stream.bit_rate = settings.bitrate
    matrix = _yuv_matrix(settings.pix_fmt, info.height)
    if matrix is not None:
        ctx = stream.codec_context
        ctx.colorspace = matrix
        ctx.color_range = 1  # MPEG / limited range, what players assume for YUV video
        ctx.color_primaries = ctx.color_trc = 1 if matrix == 1 else 6  # BT.709 or SMPTE 170M (BT.601)
    return stream


def _yuv_matrix(pix_fmt: str, height: int) -> int | None:
    """The YUV matrix to convert RGB with (1 = BT.709 for HD, 6 = BT.601/SMPTE 170M for SD), None for RGB."""
    import av

    if av.VideoFormat(pix_fmt).is_rgb or pix_fmt.startswith(("gbr", "bgr", "rgb")):
        return None
    return 1 if height >= 720 else 6


@dataclass(frozen=True)
class SegmentPart:
    """An encoded segment file and the pts offset to add back to its packets."""

    path: Path
    pts_offset: int  # in the input video's time base


def check_output(dst: Path, settings: EncodeSettings, info: VideoInfo) -> None:
    """Fail early when ``dst`` cannot be written or cannot hold the video codec or the copied streams.

    Writes (then deletes) an empty file of the same format next to ``dst``: this checks the folder
    is writable, the suffix names a known format and every stream fits that format.
    """
    import av

    folder = dst.parent
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output folder {folder} is not a folder", "choose an output path inside a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)  # as image outputs do
    except OSError as e:
        raise InputError(f"cannot create the output folder {folder}: {e}", "choose a writable place") from e
    probe_path = folder / f".{dst.stem}.colorrt-check{dst.suffix}"
    try:
        output = av.open(str(probe_path), "w")
    except (OSError, av.error.FFmpegError, ValueError) as e:
        raise InputError(
            f"cannot write the output {dst}: {e}",
            "check the folder is writable and the suffix names a video format (.mp4, .mkv, .mov, .webm)",
        ) from e
    try:
        _add_video_stream(output, settings, info)
        with open_input(info.path) as source:
            add_passthrough_streams(output, source)
        output.start_encoding()
    except av.error.FFmpegError as e:
        raise InputError(
            f"the {output.format.name} format cannot hold these streams ({settings.codec} video, "
            f"{', '.join(info.passthrough) or 'no other streams'}): {e}",
            "use an .mkv output, which holds any codec and subtitle format",
        ) from e
    finally:
        try:
            output.close()
        except Exception:  # an empty probe file; only its removal matters
            pass
        probe_path.unlink(missing_ok=True)


def add_passthrough_streams(output: Any, source: Any) -> list[tuple[Any, Any]]:
    """Add a copy of each audio/subtitle stream of ``source`` to ``output``; (input, output) pairs."""
    pairs = []
    for stream in source.streams:
        if stream.type not in PASSTHROUGH_TYPES:
            continue
        try:
            copy = output.add_stream_from_template(stream)
        except ValueError as e:
            raise InputError(
                f"the {output.format.name} format cannot hold the input's {stream.type} stream "
                f"#{stream.index} ({stream.codec_context.name}) without re-encoding: {e}",
                "use an .mkv output, which holds any audio and subtitle codec",
            ) from e
        copy.metadata.update(_stream_metadata(stream))
        copy.disposition = stream.disposition
        pairs.append((stream, copy))
    return pairs


def assemble(parts: Sequence[SegmentPart], src: Path, dst: Path, info: VideoInfo) -> int:
    """Mux the segments' video and the source's audio/subtitles (stream copy) into ``dst``.

    Returns the number of video packets written. Metadata (container and streams) and chapters
    are copied from the source.
    """
    import av

    if not parts:
        raise InputError(f"no colorized frames to write to {dst}", "the input has no decodable frames")
    with open_input(src) as source, av.open(str(dst), "w") as output:
        output.metadata.update(_container_metadata(source))
        first = av.open(str(parts[0].path))
        try:
            video_out = output.add_stream_from_template(first.streams.video[0])
        finally:
            first.close()
        video_out.metadata.update(_stream_metadata(source.streams.video[0]))
        video_out.time_base = info.time_base
        if output.format.name in MOV_MUXERS:  # its edit lists time a late first frame in movie ticks
            output.container_options["movie_timescale"] = str(_mov_track_timescale(info.time_base))
        if info.rate:  # a copied stream has none; MOV/MP4 time a camera's timecode track with it
            video_out.codec_context.framerate = info.rate
        pairs = add_passthrough_streams(output, source)
        chapters = source.chapters()
        if chapters:
            output.set_chapters(chapters)
        packets = heapq.merge(
            _segment_packets(parts, video_out, info.time_base),
            _passthrough_packets(source, pairs),
            key=lambda item: item[0],
        )
        written = 0
        for _, packet in packets:
            output.mux(packet)
            written += packet.stream is video_out
        return written


def _mov_track_timescale(time_base: Fraction) -> int:
    """The timescale FFmpeg's MOV/MP4 muxer gives a video track of this time base.

    Used as the movie timescale too (default 1000), so an edit list that delays the first frame
    (an input starting after 0, such as an AVI with B-frames) is exact instead of cut to the ms.
    """
    scale = time_base.denominator
    while scale < 10000:  # movenc doubles small video timescales
        scale *= 2
    return scale


def _stream_metadata(stream: Any) -> dict[str, str]:
    drop = {"encoder", "duration"}  # the muxer writes its own (Matroska: per-stream DURATION tags)
    return {k: v for k, v in stream.metadata.items() if k.lower() not in drop}


def _container_metadata(source: Any) -> dict[str, str]:
    drop = {"encoder", "major_brand", "minor_version", "compatible_brands"}  # the muxer writes its own
    return {k: v for k, v in source.metadata.items() if k.lower() not in drop}


def _segment_packets(parts: Sequence[SegmentPart], out_stream: Any, time_base: Fraction) -> Iterator[tuple]:
    """Video packets of every segment in order, offsets added back, dts kept increasing."""
    import av

    last_dts: int | None = None
    for part in parts:
        with av.open(str(part.path)) as segment:
            stream = segment.streams.video[0]
            for packet in _with_dts(p for p in segment.demux(stream) if p.size):
                pts = _shifted(packet.pts, part.pts_offset, stream.time_base, time_base)
                packet.dts += pts - packet.pts  # moved with its pts: dts never passes pts
                packet.pts = pts
                if last_dts is not None and packet.dts <= last_dts:
                    packet.dts = last_dts + 1  # joints of variable-rate segments may touch
                last_dts = packet.dts
                packet.stream = out_stream
                yield _packet_time(packet, stream.time_base), packet


def _with_dts(packets: Iterator[Any]) -> Iterator[Any]:
    """Packets with pts and dts both set.

    Matroska stores no decoding timestamps: its demuxer leaves dts unset for the first packets of a
    stream with B-frames (until the reorder delay is known). Those get the dts just below the first
    known one, which is what a muxer needs (increasing, not after pts).
    """
    waiting: list[Any] = []
    for packet in packets:
        if packet.pts is None and packet.dts is None:
            raise InputError("an encoded segment has a packet without timestamps", "report this as a bug")
        if packet.pts is None:
            packet.pts = packet.dts
        if packet.dts is None:
            waiting.append(packet)
            continue
        for back, earlier in enumerate(reversed(waiting), start=1):
            earlier.dts = packet.dts - back
        yield from waiting
        waiting.clear()
        yield packet
    # No dts at all (intra-only streams, or a segment of a few B-framed packets): from the last packet
    # back, each dts is its pts or just below the next one, so dts increase and never pass pts.
    following = None
    for earlier in reversed(waiting):
        earlier.dts = earlier.pts if following is None else min(earlier.pts, following - 1)
        following = earlier.dts
    yield from waiting


def _passthrough_packets(source: Any, pairs: Sequence[tuple[Any, Any]]) -> Iterator[tuple]:
    if not pairs:
        return
    targets = {inp.index: out for inp, out in pairs}
    for packet in source.demux([inp for inp, _ in pairs]):
        if packet.size == 0 or (packet.dts is None and packet.pts is None):
            continue
        time_base = packet.stream.time_base
        packet.stream = targets[packet.stream.index]
        yield _packet_time(packet, time_base), packet


def _packet_time(packet: Any, time_base: Fraction) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return Fraction(ts or 0) * time_base


def _shifted(ts: int, offset: int, ts_base: Fraction, offset_base: Fraction) -> int:
    """A segment's timestamp ``ts`` moved by ``offset`` (in the input's time base), rounded once.

    The segment's timestamps are whole ticks of the input's time base: where the segment's own time
    base is finer they convert back exactly, and the sum is rounded once (rounding the offset and
    the timestamp apart puts Matroska frames a millisecond off).
    """
    if ts_base <= offset_base:
        return _rescale(_rescale(ts, ts_base, offset_base) + offset, offset_base, ts_base)
    return ts + _rescale(offset, offset_base, ts_base)


def _rescale(value: int, src: Fraction, dst: Fraction) -> int:
    return round(value * src / dst)
