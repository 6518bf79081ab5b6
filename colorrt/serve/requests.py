"""Checks on what a client sends to a served model, before any of it reaches the engine.

Triton itself refuses a wrong data type, a wrong rank and a batch larger than ``max_batch_size``
(naming the input and what it expected); these checks cover what its config cannot say.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from colorrt.errors import InputError

IMAGES = "images"  # input: uint8 NHWC, C = 1 (grey) or 3 (RGB); one size per request
COLORIZED = "colorized"  # output: uint8 NHW3 at the input's size
CHANNELS = (1, 3)
MAX_PIXELS = 8192 * 8192  # per image; a request must fit in the server's memory several times over


def checked_images(array: np.ndarray, max_pixels: int = MAX_PIXELS) -> list[np.ndarray]:
    """The images of one request (NHWC uint8) as a list of (H, W) grey or (H, W, 3) RGB arrays.

    Raises InputError saying what is wrong with the request and what the server takes.
    """
    if array.dtype != np.uint8:
        raise InputError(f"input {IMAGES!r} must be UINT8 pixels, got {array.dtype}")
    if array.ndim != 4:
        raise InputError(
            f"input {IMAGES!r} must be a batch of images shaped [N, H, W, C], got shape {list(array.shape)}"
        )
    count, height, width, channels = array.shape
    if count == 0:
        raise InputError(f"input {IMAGES!r} holds no image (shape {list(array.shape)})", "send N >= 1 images")
    if height == 0 or width == 0:
        raise InputError(f"input {IMAGES!r} has empty images of {height}x{width} pixels")
    if channels not in CHANNELS:
        raise InputError(
            f"input {IMAGES!r} has {channels} channels; expected 1 (grey) or 3 (RGB)",
            "send grey images as [N, H, W, 1] and colour images as [N, H, W, 3]",
        )
    if height * width > max_pixels:
        raise InputError(
            f"images of {width}x{height} pixels are larger than this server's limit of "
            f"{max_pixels:,} pixels per image",
            "send smaller images, or start the server with a larger --max-pixels",
        )
    return [image[..., 0] if channels == 1 else image for image in array]


def checked_tensor(array: np.ndarray, name: str, channels: int) -> np.ndarray:
    """A model-input batch (NCHW float) of one request, refused when empty or of the wrong channels."""
    if array.ndim != 4 or array.shape[1] != channels:
        raise InputError(f"input {name!r} must be shaped [N, {channels}, H, W], got {list(array.shape)}")
    if 0 in array.shape:
        raise InputError(f"input {name!r} is empty (shape {list(array.shape)})", "send N >= 1 images")
    return array


def host_array(value: Any) -> np.ndarray:
    """An engine's output as a NumPy array on the host (CuPy arrays and torch tensors are copied)."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # torch
        return value.detach().cpu().numpy()
    if hasattr(value, "get"):  # CuPy
        return value.get()
    return np.asarray(value)
