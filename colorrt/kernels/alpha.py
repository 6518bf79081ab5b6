"""Alpha channels: split off before colorization, put back unchanged after.

Images are ``(H, W)`` grey or ``(H, W, C)`` with C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
Only the grey or RGB part is colorized; the alpha goes back on the result as ``uint8``. The runtime
(images) and the page pipeline both split and reattach it here.
"""

from __future__ import annotations

import numpy as np

from colorrt.errors import InputError


def split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(grey or RGB part, uint8 alpha or None)`` of an ``(H, W)`` / ``(H, W, 1-4)`` image.

    Raises :class:`InputError` for a dtype other than uint8, uint16 or float (0..1), another shape,
    or an empty image. The alpha is converted by :func:`alpha_to_uint8`.
    """
    if image.dtype not in (np.uint8, np.uint16) and image.dtype.kind != "f":
        raise InputError(f"image dtype must be uint8, uint16 or float (0..1), got {image.dtype}")
    if image.ndim == 3 and image.shape[2] in (1, 2, 3, 4):
        channels = image.shape[2]
        colour = image[:, :, 0] if channels <= 2 else image[:, :, :3]
        alpha = image[:, :, channels - 1] if channels in (2, 4) else None
    elif image.ndim == 2:
        colour, alpha = image, None
    else:
        raise InputError(f"image must be shaped (H, W) or (H, W, 1/2/3/4), got {image.shape}")
    if colour.shape[0] < 1 or colour.shape[1] < 1:
        raise InputError(f"image is empty (shape {image.shape})")
    return colour, None if alpha is None else alpha_to_uint8(alpha)


def alpha_to_uint8(alpha: np.ndarray) -> np.ndarray:
    """``uint8`` alpha: uint8 as it is, uint16 scaled to 0..255 and rounded, float 0..1 scaled and clipped."""
    if alpha.dtype == np.uint8:
        return alpha
    if alpha.dtype == np.uint16:
        return ((alpha.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8)


def attach_alpha(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """``rgb`` with ``alpha`` stacked on as its last channel; ``rgb`` itself when ``alpha`` is None.

    A uint8 alpha on uint16 colour is widened (``x * 257``: 255 -> 65535).
    """
    if alpha is None:
        return rgb
    if rgb.dtype == np.uint16 and alpha.dtype == np.uint8:
        alpha = alpha.astype(np.uint16) * np.uint16(257)
    return np.dstack([rgb, alpha])
