"""The merge for 16-bit images: full-resolution L and ab to ``uint16`` sRGB, in float.

:func:`colorrt.kernels.pipeline.merge` writes uint8 codes through a lookup table of decision
thresholds; 65536 codes would make that table as large as the image, so here the sRGB curve is
evaluated in float32 (its relative error, ~1e-7, is far below a 16-bit step) and rounded once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import InputError
from colorrt.kernels import pipeline
from colorrt.kernels.color import lab_planes_to_linear, linear_to_srgb
from colorrt.kernels.resize import resize_bilinear_bands

_BAND_PIXELS = 40_960  # pixels merged per band: the float32 temporaries stay in cache
_U16_MAX = 65535


def postprocess_u16(
    output: np.ndarray, luminances: Sequence[np.ndarray], contract: ColorContract, *, strength: float = 1.0
) -> list[np.ndarray]:
    """:func:`~colorrt.kernels.pipeline.postprocess` with ``uint16`` results (:func:`merge_u16`).

    A contract whose model returns whole Lab colour (``merge="wholesale"``) is merged by
    ``pipeline.postprocess`` in 8 bits and widened.
    """
    ab = pipeline.decode_ab(output, contract, strength=strength)
    if ab.shape[1] != 2:  # whole Lab colour: merged in 8 bits
        eight_bit = pipeline.postprocess(output, luminances, contract, strength=strength)
        return [widen_u8(rgb) for rgb in eight_bit]
    if len(luminances) != len(ab):
        raise InputError(
            f"postprocess: the output holds {len(ab)} items but {len(luminances)} luminance planes were given"
        )
    return [merge_u16(np.asarray(L, dtype=np.float32), item) for L, item in zip(luminances, ab, strict=True)]


def merge_u16(luminance: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """``uint16 H x W x 3`` sRGB from float32 L (``H x W``) and ab (``2 x h x w``, resized bilinear).

    The maths of :func:`~colorrt.kernels.pipeline.merge` (skimage's ``lab2rgb``, out-of-gamut
    channels clipped) with ``round(65535 * srgb)`` in place of the uint8 rounding.
    """
    height, width = luminance.shape
    out = np.empty((height, width, 3), dtype=np.uint16)
    band_rows = max(1, _BAND_PIXELS // width)
    for rows, band in resize_bilinear_bands(ab.astype(np.float32, copy=False), (height, width), band_rows):
        linear = lab_planes_to_linear(luminance[rows], band[0], band[1])
        np.clip(linear, 0.0, 1.0, out=linear)
        srgb = linear_to_srgb(linear)
        srgb *= np.float32(_U16_MAX)
        np.rint(srgb, out=srgb)
        for channel in range(3):
            out[rows, :, channel] = srgb[channel]
    return out


def widen_u8(rgb: np.ndarray) -> np.ndarray:
    """uint8 codes as the uint16 codes of the same values (``x * 257``: 255 -> 65535)."""
    return rgb.astype(np.uint16) * np.uint16(257)
