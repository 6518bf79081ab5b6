"""Extra model inputs computed on the host (a contract's ``extra_inputs``), and the whole model feed.

    full-res L planes --preprocess--> main input --resize--> "global" fixed-size copy (Iizuka et al.)
    reference image --joint RGB histogram, binarised--> "palette" (Comicolorization, 216 values)
    full-res L planes --resize to scale x render size, Otsu threshold--> "lines" (its 448 px stage)

:func:`model_feed` is what the runtime hands an engine: the main input array alone when the contract
has no extra inputs (every model before contract version 2), else a dict of named arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from colorrt.contract import ColorContract, ExtraInput
from colorrt.errors import InputError
from colorrt.kernels.pipeline import image_to_rgb_float, preprocess
from colorrt.kernels.resize import resize_bilinear


def model_feed(
    luminances: Sequence[np.ndarray],
    contract: ColorContract,
    hints: Sequence[np.ndarray | None] | None = None,
    palette: np.ndarray | None = None,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray | dict[str, np.ndarray]:
    """The model input for full-resolution L planes: :func:`preprocess`'s array, or with extra inputs
    a dict ``{contract.input_name: array, extra.name: array, ...}``.

    ``palette`` (from :func:`reference_palette`) feeds a ``"palette"`` extra input; a model that
    takes one refuses to run without it.
    """
    batch = preprocess(luminances, contract, hints=hints, dtype=dtype)
    if not contract.extra_inputs:
        return batch
    feed = {contract.input_name: batch}
    for extra in contract.extra_inputs:
        feed[extra.name] = _extra(extra, batch, luminances, contract, palette).astype(dtype, copy=False)
    return feed


def reference_palette(image: np.ndarray, bins: int = 6) -> np.ndarray:
    """float32 ``(bins**3,)`` binary palette of a reference image: 1 for every cell of the joint RGB
    histogram (``bins`` bins a channel over 0..255, index ``r * bins**2 + g * bins + b``) that holds
    at least one pixel, as Comicolorization's histogram network with ``threshold_palette=0``.

    ``image``: uint8 / uint16 / float (0..1) RGB, RGBA (alpha ignored) or grey.
    """
    image = np.asarray(image)
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] in (3, 4):
        values = image[:, :, :3].astype(np.int64)
        cells = values * bins // 255  # floor(v / 255 * bins): 255 lands in the last bin
    else:
        scaled = image_to_rgb_float(image) * np.float32(bins)
        cells = np.floor(scaled).astype(np.int64)
    np.minimum(cells, bins - 1, out=cells)
    index = (cells[..., 0] * bins + cells[..., 1]) * bins + cells[..., 2]
    counts = np.bincount(index.ravel(), minlength=bins**3)
    return (counts > 0).astype(np.float32)


def otsu_threshold(values: np.ndarray) -> int:
    """Otsu's threshold of an integer image, as ``skimage.filters.threshold_otsu`` computes it
    (one histogram bin per integer from the minimum to the maximum; a flat image gives its value)."""
    values = np.asarray(values).ravel()
    low, high = int(values.min()), int(values.max())
    if low == high:
        return low
    hist = np.bincount(values.astype(np.int64) - low, minlength=high - low + 1).astype(np.float64)
    centers = np.arange(low, high + 1, dtype=np.float64)
    weight1 = np.cumsum(hist)
    weight2 = np.cumsum(hist[::-1])[::-1]
    mean1 = np.cumsum(hist * centers) / weight1
    mean2 = (np.cumsum((hist * centers)[::-1]) / weight2[::-1])[::-1]
    variance = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
    return int(centers[int(np.argmax(variance))])


def line_drawing(lightness: np.ndarray) -> np.ndarray:
    """float32 0/1 line drawing of a CIE L plane, as Comicolorization's super-resolution input: L
    truncated to integers, 1 above its Otsu threshold (paper), 0 at or below it (lines)."""
    levels = np.clip(lightness, 0.0, 100.0).astype(np.uint8)
    return (levels > otsu_threshold(levels)).astype(np.float32)


def _extra(
    extra: ExtraInput,
    batch: np.ndarray,
    luminances: Sequence[np.ndarray],
    contract: ColorContract,
    palette: np.ndarray | None,
) -> np.ndarray:
    if extra.kind == "global":
        nchw = batch if contract.layout == "NCHW" else batch.transpose(0, 3, 1, 2)
        copy = resize_bilinear(np.ascontiguousarray(nchw, dtype=np.float32), (extra.size, extra.size))
        return copy if contract.layout == "NCHW" else np.ascontiguousarray(copy.transpose(0, 2, 3, 1))
    if extra.kind == "palette":
        return np.repeat(_checked_palette(palette, extra, contract)[None], len(luminances), axis=0)
    height, width = batch.shape[1:3] if contract.layout == "NHWC" else batch.shape[2:]
    size = (height * extra.scale, width * extra.scale)
    planes = [line_drawing(resize_bilinear(np.asarray(L, np.float32), size)) for L in luminances]
    return np.stack(planes)[:, None]


def _checked_palette(palette: Any, extra: ExtraInput, contract: ColorContract) -> np.ndarray:
    if palette is None:
        raise InputError(
            f"model '{contract.name}' takes a reference palette ({extra.name!r}) but no reference was given",
            "pass --reference IMAGE (reference= in Python): the colours to paint with",
        )
    palette = np.asarray(palette, dtype=np.float32).ravel()
    if palette.shape != (extra.bins**3,):
        raise InputError(
            f"reference palette has {palette.size} values; model '{contract.name}' takes {extra.bins**3}",
            "compute it with colorrt.kernels.extras.reference_palette(image, bins)",
        )
    return palette
