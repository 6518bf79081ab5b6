"""Colour and resize kernels: NumPy reference implementations (CuPy versions keep the same signatures).

* :mod:`colorrt.kernels.color`: sRGB (D65) <-> CIE Lab, as scikit-image computes it.
* :mod:`colorrt.kernels.resize`: separable bilinear resize, as torch's ``interpolate``.
* :mod:`colorrt.kernels.pipeline`: image -> L -> model input, and model output -> ab -> uint8 image.
"""

from __future__ import annotations

from colorrt.kernels.color import (
    l_to_gray,
    lab_to_rgb,
    linear_to_srgb,
    linear_to_srgb_u8,
    rgb_to_l,
    rgb_to_lab,
    srgb_to_linear,
)
from colorrt.kernels.pipeline import (
    decode_ab,
    image_to_rgb_float,
    luminance,
    merge,
    postprocess,
    preprocess,
)
from colorrt.kernels.resize import resize_bilinear

__all__ = [
    "decode_ab",
    "image_to_rgb_float",
    "l_to_gray",
    "lab_to_rgb",
    "linear_to_srgb",
    "linear_to_srgb_u8",
    "luminance",
    "merge",
    "postprocess",
    "preprocess",
    "resize_bilinear",
    "rgb_to_l",
    "rgb_to_lab",
    "srgb_to_linear",
]
