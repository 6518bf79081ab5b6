"""Output codecs: the encoders colorrt writes with and the checked settings for one output."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colorrt.errors import InputError


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
