"""Image files in and out: every common mode read into a plain array, outputs written atomically.

``read_image`` applies the EXIF orientation and turns any PIL mode into one of three layouts:
``uint8`` or ``uint16`` grey ``(H, W)``, RGB ``(H, W, 3)``, or RGBA ``(H, W, 4)``; colour is ``uint8``,
or ``uint16`` for a 16-bit PNG / TIFF (:mod:`colorrt.io.deep_images`), which is written back as such.
``write_image`` writes to a hidden temporary file in the destination folder and renames it over the
destination, so a crash or a bad input never leaves a half-written file behind.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from colorrt.atomic import write_with
from colorrt.errors import InputError
from colorrt.io.deep_images import (
    DEEP_FORMATS,
    decode_deep_colour,
    encode_deep_colour,
    is_deep_colour_array,
    is_deep_colour_file,
    narrow_to_uint8,
)

# Suffixes list_images picks up: still-image formats Pillow reads (video and document formats left out).
IMAGE_SUFFIXES = frozenset(
    ".png .apng .jpg .jpeg .jpe .jfif .bmp .dib .gif .tif .tiff .webp .tga .ppm .pgm .pbm .pnm "
    ".jp2 .j2k .jpx .qoi .avif .psd".split()
)

# Per-format save options: high quality for lossy formats (colour is the product here).
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 95},
    "WEBP": {"quality": 95},
    "AVIF": {"quality": 90},
}
DECODE_ERRORS = (  # what Pillow raises on a truncated or corrupt file
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as an array, upright (EXIF orientation applied).

    Returns RGB ``(H, W, 3)``, RGBA ``(H, W, 4)`` when the file has transparency, or grey ``(H, W)``,
    as ``uint8``, or ``uint16`` for 16-bit files (grey, and RGB/RGBA PNG or TIFF). Palette, LA, CMYK, bilevel
    and other modes are converted. Raises :class:`InputError` naming the file when it is missing,
    not an image, truncated or corrupt.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}", "check the path")
    if not path.is_file():
        raise InputError(f"not a file: {path}", "pass an image file (or a folder where a folder is accepted)")
    try:
        handle = open(path, "rb")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}", "check the file's permissions") from e
    with handle:
        return decode_image(handle, str(path))


def decode_image(data: bytes | BinaryIO, name: str) -> np.ndarray:
    """Decode image bytes (or an open binary file) like :func:`read_image`; ``name`` appears in errors."""
    try:
        with open_image(io.BytesIO(data) if isinstance(data, bytes) else data, name) as image:
            if is_deep_colour_file(image):  # 16-bit RGB(A): FFmpeg keeps what Pillow would cut to 8 bits
                deep = decode_deep_colour(data if isinstance(data, bytes) else _all_of(data), image)
                if deep is not None:
                    return deep
            image.load()  # decode now: truncated or corrupt data fails here, not later
            upright = ImageOps.exif_transpose(image)
            return pil_to_array(upright, source=name)
    except Image.UnidentifiedImageError as e:
        raise InputError(
            f"not an image (or a format Pillow cannot read): {name}", "pass a PNG, JPEG, TIFF, WebP, ... file"
        ) from e
    except Image.DecompressionBombError as e:
        raise InputError(
            f"image too large to decode safely: {name}: {e}",
            "if you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS in Python (None turns the check off) "
            "or split the image into tiles",
        ) from e
    except NotImplementedError as e:  # Pillow's answer to format variants it has no decoder for
        raise InputError(
            f"cannot decode image {name}: {e}", "convert it to PNG or TIFF with another program"
        ) from e
    except DECODE_ERRORS as e:
        raise InputError(f"cannot decode image {name}: {e}", "the file is truncated or corrupt") from e


def _all_of(handle: BinaryIO) -> bytes:
    handle.seek(0)
    return handle.read()


class LargeImageWarning(UserWarning):
    """An image is over Pillow's decompression-bomb pixel limit (below twice it, where it is refused)."""

    noun = "images over Pillow's pixel limit"


_OPEN_LOCK = threading.Lock()  # one catch_warnings at a time: it swaps process-wide warning state


def open_image(handle: BinaryIO, name: str, *, warn: bool = True) -> Image.Image:
    """``Image.open``, with Pillow's DecompressionBombWarning issued as a :class:`LargeImageWarning`
    naming the file (Pillow raises it while reading the header; over twice its limit it refuses).
    ``warn=False`` for a look at the header when the file's real read will warn."""
    with _OPEN_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", Image.DecompressionBombWarning)
        image = Image.open(handle)
    for found in caught:
        if not issubclass(found.category, Image.DecompressionBombWarning):  # another thread's: pass it on
            warnings.warn_explicit(found.message, found.category, found.filename, found.lineno)
            continue
        if not warn:
            continue
        width, height = image.size
        warnings.warn(
            f"{name}: {width} x {height} = {width * height:,} pixels is over Pillow's safety limit of "
            f"{Image.MAX_IMAGE_PIXELS:,} (PIL.Image.MAX_IMAGE_PIXELS, meant against decompression "
            "bombs); decoding it anyway, as Pillow does below twice the limit",
            LargeImageWarning,
            stacklevel=3,
        )
    return image


def pil_to_array(image: Image.Image, source: str = "image") -> np.ndarray:
    """Convert a PIL image of any mode to the array layouts :func:`read_image` returns (no EXIF step)."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image).astype(np.uint16)
    if mode == "I":
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    if mode == "F":
        raise InputError(
            f"{source}: 32-bit float images (PIL mode 'F') are not supported",
            "convert it to an 8- or 16-bit image first",
        )
    if mode == "LAB":  # convert("RGB") would copy L, a, b into R, G, B as they are
        return np.asarray(_lab_to_srgb(image)).copy()
    has_alpha = "A" in mode or "a" in mode or "transparency" in image.info
    if mode == "L" and not has_alpha:
        return np.asarray(image).copy()
    if mode == "1" and not has_alpha:
        return np.asarray(image.convert("L")).copy()
    if has_alpha:
        return np.asarray(image.convert("RGBA")).copy()
    return np.asarray(image.convert("RGB")).copy()


def _lab_to_srgb(image: Image.Image) -> Image.Image:
    from PIL import ImageCms

    lab, srgb = ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB")
    return ImageCms.applyTransform(image, ImageCms.buildTransform(lab, srgb, "LAB", "RGB"))


def array_to_pil(array: np.ndarray) -> Image.Image:
    """A PIL image (L, I;16, RGB or RGBA) from an array laid out as :func:`read_image` returns.

    16-bit colour becomes 8-bit RGB / RGBA: Pillow has no 16-bit colour mode.
    """
    array = np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if is_deep_colour_array(array):
        array = narrow_to_uint8(array)
    if array.dtype == np.uint16 and array.ndim == 2:
        return Image.fromarray(array)  # mode I;16
    if array.dtype != np.uint8:
        raise InputError(f"can only write uint8 images (or uint16 grey), got dtype {array.dtype}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4)):
        return Image.fromarray(array)  # mode L, RGB or RGBA from the shape
    raise InputError(f"cannot write an image of shape {array.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")


def format_for(path: str | os.PathLike[str]) -> str:
    """The Pillow format name that writes files with this suffix, or an InputError listing suffixes."""
    suffix = Path(path).suffix.lower()
    extensions = Image.registered_extensions()
    fmt = extensions.get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        writable = sorted(s for s in IMAGE_SUFFIXES if extensions.get(s) in Image.SAVE)
        raise InputError(
            f"cannot write image format {suffix or '(no suffix)'!r} for {path}",
            f"use one of {', '.join(writable)}",
        )
    return fmt


def write_image(path: str | os.PathLike[str], array: np.ndarray | Image.Image) -> Path:
    """Write an image atomically; the format comes from the destination suffix.

    Creates missing parent folders. Returns the destination path. Raises :class:`InputError` for an
    unknown suffix, a format that cannot hold the image (alpha in JPEG), or a failed write.
    """
    path = Path(path)
    deep = _deep_colour_bytes(array, str(path))
    if deep is None:
        fmt, image = _writable_image(array, str(path))
    try:
        if deep is None:
            write_with(path, lambda handle: image.save(handle, format=fmt, **_SAVE_OPTIONS.get(fmt, {})))
        else:
            write_with(path, lambda handle: handle.write(deep))
    except (OSError, ValueError) as e:
        raise InputError(
            f"cannot write {path}: {e}", "check the folder is writable and the format fits"
        ) from e
    return path


def encode_image(array: np.ndarray | Image.Image, name: str) -> bytes:
    """Encode an image in the format of ``name``'s suffix, with the options :func:`write_image` uses."""
    deep = _deep_colour_bytes(array, name)
    if deep is not None:
        return deep
    fmt, image = _writable_image(array, name)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot encode {name} as {fmt}: {e}") from e
    return buffer.getvalue()


def _deep_colour_bytes(array: np.ndarray | Image.Image, name: str) -> bytes | None:
    """A 16-bit PNG / TIFF file of a uint16 colour array; None for anything else (Pillow writes it,
    16-bit colour narrowed to 8 bits for the formats that hold no more)."""
    if isinstance(array, Image.Image) or not is_deep_colour_array(np.asarray(array)):
        return None
    fmt = format_for(name)
    return encode_deep_colour(np.asarray(array), fmt, name) if fmt in DEEP_FORMATS else None


def _writable_image(array: np.ndarray | Image.Image, name: str) -> tuple[str, Image.Image]:
    """The Pillow format for ``name`` and the image to save, or InputError when the format can't hold it."""
    fmt = format_for(name)
    image = array if isinstance(array, Image.Image) else array_to_pil(array)
    if fmt == "JPEG" and image.mode not in ("L", "RGB", "CMYK"):
        raise InputError(
            f"JPEG cannot store a {image.mode} image ({name})",
            "write .png, .webp or .tiff to keep the alpha channel",
        )
    return fmt, image


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden files and folders skipped), as sorted paths
    relative to ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"no such folder: {folder}", "check the path")
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(_images_in(Path(root).relative_to(folder), files))
    return sorted(found)


def _images_in(relative_root: Path, names: Iterable[str]) -> list[Path]:
    return [
        relative_root / name
        for name in names
        if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
    ]
