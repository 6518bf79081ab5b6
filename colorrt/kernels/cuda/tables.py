"""Device copies of the NumPy reference's tables: sRGB lookups, resize taps, colour matrices, uint8 codes."""

from __future__ import annotations

from typing import Any

import numpy as np

from colorrt.kernels import color, resize
from colorrt.kernels.cuda.launch import Launcher


def y_luts(bits: int) -> np.ndarray:
    """The reference's per-channel sRGB -> luminance (Y) lookup tables for ``bits``-bit pixels, joined."""
    return np.concatenate(color._y_luts(bits))


def _taps(in_size: int, out_size: int, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    taps = resize._axis_taps(in_size, out_size, antialias)
    return taps.index.astype(np.int32), taps.weight.astype(np.float32)


def axis_taps(
    launcher: Launcher, in_size: int, out_size: int, antialias: bool = True
) -> tuple[int, Any, Any]:
    """(taps per output, index, weight) of one axis on the device."""
    index = launcher.constant(
        ("taps-index", in_size, out_size, antialias), lambda: _taps(in_size, out_size, antialias)[0]
    )
    weight = launcher.constant(
        ("taps-weight", in_size, out_size, antialias), lambda: _taps(in_size, out_size, antialias)[1]
    )
    return int(index.shape[1]), index, weight


def color_matrix(launcher: Launcher, name: str) -> Any:
    """The reference's ``t_from_rgb`` or ``rgb_from_t`` matrix (float32, flattened) on the device."""
    source = {"t_from_rgb": color._T_FROM_RGB, "rgb_from_t": color._RGB_FROM_T}[name]
    return launcher.constant(name, lambda: source.astype(np.float32).ravel())


def code_tables(launcher: Launcher) -> tuple[Any, Any, int]:
    """(base, thresholds, cells) of the reference's linear -> sRGB uint8 rounding table, on the device."""
    base = launcher.constant("u8-base", lambda: color._u8_threshold_lut("<f4")[0])
    thresholds = launcher.constant("u8-thresholds", lambda: color._u8_threshold_lut("<f4")[1])
    return base, thresholds, int(base.shape[0])
