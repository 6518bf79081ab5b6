"""16-bit colour PNG and TIFF: read and written with FFmpeg's image codecs, which Pillow lacks.

Pillow has no 16-bit colour mode: it reads a 16-bit RGB(A) PNG or TIFF as 8-bit and cannot write
one. FFmpeg's PNG and TIFF codecs (through PyAV, a core dependency) decode and encode them exactly,
so a 16-bit scan stays 16-bit through colorrt. Everything else goes through Pillow as before.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from colorrt.errors import InputError

# Pillow format -> (FFmpeg codec, pixel format per channel count, encoder options)
_CODECS: dict[str, tuple[str, dict[int, str], dict[str, str]]] = {
    "PNG": ("png", {3: "rgb48be", 4: "rgba64be"}, {}),
    "TIFF": ("tiff", {3: "rgb48le", 4: "rgba64le"}, {"compression_algo": "deflate"}),
}
DEEP_FORMATS = frozenset(_CODECS)  # formats that keep 16-bit colour; others get 8 bits
_ORIENTATION_TAG = 0x0112


def is_deep_colour_file(image: Image.Image) -> bool:
    """True for an opened (not yet loaded) PNG / TIFF whose colour samples have 16 bits.

    Pillow shows them in an 8-bit mode (RGB, RGBA, LA); the tile's raw mode tells the stored depth.
    """
    if image.format not in DEEP_FORMATS or image.mode not in ("RGB", "RGBA", "LA") or not image.tile:
        return False
    args = image.tile[0][3]  # a plain tuple in older Pillow, the _Tile named tuple in newer
    rawmode = args if isinstance(args, str) else (args[0] if args else "")
    return isinstance(rawmode, str) and ";16" in rawmode


def decode_deep_colour(data: bytes, image: Image.Image) -> np.ndarray | None:
    """uint16 ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA of a 16-bit colour file, upright (EXIF).

    ``image``: the same file opened by Pillow (for its mode and orientation). None when FFmpeg
    cannot decode it (the caller falls back to Pillow's 8 bits).
    """
    import av

    layout = "rgb48le" if image.mode == "RGB" else "rgba64le"  # LA: grey replicated, alpha kept
    try:
        with av.open(io.BytesIO(data), "r") as container:
            frame = next(container.decode(video=0))
            array = frame.to_ndarray(format=layout)
    except (av.error.FFmpegError, StopIteration, ValueError):
        return None
    if array.shape[:2] not in ((image.height, image.width), (image.width, image.height)):
        return None  # not the picture Pillow saw (Pillow gives a TIFF's size turned per its orientation)
    return _upright(array, image.getexif().get(_ORIENTATION_TAG, 1))


def is_deep_colour_array(array: np.ndarray) -> bool:
    """True for a uint16 ``(H, W, 3)`` or ``(H, W, 4)`` array (16-bit RGB or RGBA)."""
    return array.dtype == np.uint16 and array.ndim == 3 and array.shape[2] in (3, 4)


def encode_deep_colour(array: np.ndarray, fmt: str, name: str) -> bytes:
    """A 16-bit PNG or TIFF file of a uint16 ``(H, W, 3/4)`` array (``fmt``: Pillow's format name)."""
    import av

    codec, pix_fmts, options = _CODECS[fmt]
    channels = array.shape[2]
    height, width = array.shape[:2]
    try:
        context: Any = av.CodecContext.create(codec, "w")
        context.width, context.height, context.pix_fmt = width, height, pix_fmts[channels]
        context.options = dict(options)
        frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(array), format="rgb48le" if channels == 3 else "rgba64le"
        )
        packets = context.encode(frame) + context.encode(None)
    except (av.error.FFmpegError, ValueError) as e:
        raise InputError(f"cannot encode {name} as a 16-bit {fmt}: {e}") from e
    return b"".join(bytes(packet) for packet in packets)


def narrow_to_uint8(array: np.ndarray) -> np.ndarray:
    """uint16 codes as the nearest uint8 codes (65535 -> 255), for formats and modes of 8 bits."""
    return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """The array as EXIF ``orientation`` (1..8) says it is shown (what ImageOps.exif_transpose does)."""
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation, lambda a: a)(array)
    return np.ascontiguousarray(turned)
