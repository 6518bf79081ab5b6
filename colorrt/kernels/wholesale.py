"""Wholesale merge: the model's whole colour, upsampled to full resolution, the picture's lines on top.

Line-drawing colorizers (CycleGAN sketch -> colour, Comicolorization) paint white paper: keeping the
picture's L, as the chroma merge does, would leave the paper white and the fills pale. Here the
model's Lab (decoded by :func:`colorrt.kernels.pipeline.decode_ab` under a ``merge="wholesale"``
contract) is upsampled to full resolution and converted to sRGB; ``line_art`` then lays the
picture's dark lines back on top at full resolution (the model drew them at its render size):

* ``"threshold"``: wherever the picture's L is below ``line_threshold``, its own grey pixel is kept;
* ``"multiply"``: the colour (sRGB 0..1) is multiplied by the picture's grey (sRGB 0..1), as a
  multiply layer of the drawing over the colour: paper (white) leaves the colour unchanged, black
  lines stay black, grey tones darken the colour under them.
"""

from __future__ import annotations

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import InputError
from colorrt.kernels.color import (
    l_to_gray,
    lab_planes_to_linear,
    linear_to_srgb,
    linear_to_srgb_u8,
    rgb_to_lab,
)
from colorrt.kernels.resize import resize_bilinear_bands

_BAND_PIXELS = 40_960  # pixels merged per band, as the chroma merge


def decode_colour(y: np.ndarray, contract: ColorContract, strength: float = 1.0) -> np.ndarray:
    """What ``decode_ab`` returns for an NCHW float32 output of a contract that merges wholesale, has a
    ``"lab"`` output or per-channel scales: ``(N, 3, h, w)`` Lab when wholesale, else ``(N, 2, h, w)``
    ab; ``strength`` scales a and b."""
    channels = y.shape[1]
    scale = contract.channel_scale or (contract.output_scale,) * channels
    offset = contract.channel_offset or (contract.output_offset,) * channels
    values = y * np.asarray(scale, np.float32).reshape(1, channels, 1, 1)
    values += np.asarray(offset, np.float32).reshape(1, channels, 1, 1)
    if contract.output_kind == "rgb":
        np.clip(values, 0.0, 1.0, out=values)
        values = np.ascontiguousarray(rgb_to_lab(values.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2))
    if contract.output_kind in ("rgb", "lab") and contract.merge != "wholesale":
        values = np.ascontiguousarray(values[:, 1:])
    if strength != 1.0:
        values[:, -2:] *= np.float32(strength)
    return values


def merge_wholesale(
    luminance: np.ndarray, lab: np.ndarray, contract: ColorContract | None = None
) -> np.ndarray:
    """uint8 ``H x W x 3`` sRGB from the model's Lab (``3 x h x w``, any size) and the picture's
    full-resolution L (``H x W``, used only for the contract's ``line_art``; None: no line art)."""
    lab = np.asarray(lab, dtype=np.float32)
    if lab.ndim != 3 or lab.shape[0] != 3:
        raise InputError(f"merge_wholesale: expected Lab shaped (3, h, w), got {lab.shape}")
    height, width = luminance.shape
    line_art = "none" if contract is None else contract.line_art
    out = np.empty((height, width, 3), dtype=np.uint8)
    band_rows = max(1, _BAND_PIXELS // width)
    for rows, band in resize_bilinear_bands(lab, (height, width), band_rows):
        lines = luminance[rows]
        if line_art == "threshold":
            dark = lines < np.float32(contract.line_threshold)  # type: ignore[union-attr]
            np.copyto(band[0], lines, where=dark)
            band[1][dark] = 0.0
            band[2][dark] = 0.0
        linear = lab_planes_to_linear(band[0], band[1], band[2])
        if line_art == "multiply":
            codes = _multiplied_codes(linear, l_to_gray(lines))
        else:
            codes = linear_to_srgb_u8(linear)
        for channel in range(3):
            out[rows, :, channel] = codes[channel]
    return out


def _multiplied_codes(linear: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """uint8 codes of ``srgb(linear) * grey`` (both sRGB 0..1)."""
    np.clip(linear, 0.0, 1.0, out=linear)
    srgb = linear_to_srgb(linear)
    srgb *= grey
    srgb *= 255.0
    return np.rint(srgb).astype(np.uint8)
