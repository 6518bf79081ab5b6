"""Encoding colorized frames into segment files, and checking early that the output can be written."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.errors import InputError
from colorrt.io.video.codecs import CODECS, EncodeSettings
from colorrt.io.video.info import VideoInfo, open_input
from colorrt.io.video.segments import add_passthrough_streams


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
