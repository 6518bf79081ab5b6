"""Separable bilinear resize of image planes, NumPy reference kernel.

Matches ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=...)``:
half-pixel centres, and when downscaling with ``antialias=True`` a triangle filter stretched to the
scale (PIL's / torch's antialiased bilinear), so the render-size luminance does not alias.

Each axis has a banded weight matrix (a few taps per output pixel), precomputed and cached per
(input size, output size); applying it costs taps x output pixels, never the dense in x out product.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import numpy as np

from colorrt.errors import InputError

# Row gathers copy whole contiguous rows; last-axis gathers touch scattered elements and cost about
# this many times more per output element (measured), which decides the order of the two passes.
_LAST_AXIS_COST = 3.0


def resize_bilinear(planes: np.ndarray, out_hw: Sequence[int], antialias: bool = True) -> np.ndarray:
    """Resize ``planes`` shaped ``(..., H, W)`` to ``(..., out_h, out_w)``, bilinear.

    Float32 in -> float32 out, float64 -> float64. Leading axes (channels, batch) are resized
    independently. A size equal to the input's leaves that axis as it is (a copy).
    """
    planes, rows, cols, rows_first = _plan(planes, out_hw, antialias)
    if rows_first:
        return _apply_cols(_apply_rows(planes, rows), cols)
    return _apply_rows(_apply_cols(planes, cols), rows)


def resize_bilinear_bands(
    planes: np.ndarray, out_hw: Sequence[int], band_rows: int, antialias: bool = True
) -> Iterator[tuple[slice, np.ndarray]]:
    """:func:`resize_bilinear` delivered in bands of ``band_rows`` output rows: ``(rows, values)``.

    The values equal ``resize_bilinear(planes, out_hw)[..., rows, :]`` bit for bit. A caller that
    works band by band (the merge with full-resolution L) keeps its temporaries in the CPU cache.
    """
    if band_rows < 1:
        raise InputError(f"resize_bilinear_bands: band_rows must be >= 1, got {band_rows}")
    planes, rows, cols, rows_first = _plan(planes, out_hw, antialias)
    source = planes if rows_first else _apply_cols(planes, cols)
    for start in range(0, rows.index.shape[0], band_rows):
        band = slice(start, start + band_rows)
        values = _apply_rows(source, rows, band)
        yield band, _apply_cols(values, cols) if rows_first else values


def _plan(
    planes: np.ndarray, out_hw: Sequence[int], antialias: bool
) -> tuple[np.ndarray, _Taps, _Taps, bool]:
    """Checked planes, the taps of both axes and whether rows go first (the cheaper order)."""
    planes = np.asarray(planes)
    out_h, out_w = _check_args(planes, out_hw)
    in_h, in_w = planes.shape[-2:]
    rows = _axis_taps(in_h, out_h, antialias)
    cols = _axis_taps(in_w, out_w, antialias)
    rows_first = rows.taps * out_h * in_w + _LAST_AXIS_COST * cols.taps * out_h * out_w
    cols_first = _LAST_AXIS_COST * cols.taps * in_h * out_w + rows.taps * out_h * out_w
    return planes, rows, cols, rows_first <= cols_first


def resize_weights(in_size: int, out_size: int, antialias: bool = True) -> np.ndarray:
    """Dense ``(out_size, in_size)`` float64 weight matrix of one axis (rows sum to 1); for tests/CuPy."""
    taps = _axis_taps(in_size, out_size, antialias)
    dense = np.zeros((out_size, in_size))
    np.add.at(dense, (np.arange(out_size)[:, None], taps.index), taps.weight)
    return dense


class _Taps:
    """Banded weights of one axis: output i = sum_k weight[i, k] * input[index[i, k]]."""

    def __init__(self, index: np.ndarray, weight: np.ndarray, identity: bool) -> None:
        self.index = index
        self.weight = weight
        self.identity = identity
        self.taps = 0 if identity else index.shape[1]
        self._typed: dict[np.dtype, np.ndarray] = {}

    def weight_as(self, dtype: np.dtype) -> np.ndarray:
        if dtype not in self._typed:
            self._typed[dtype] = self.weight.astype(dtype)
        return self._typed[dtype]


@functools.lru_cache(maxsize=128)
def _axis_taps(in_size: int, out_size: int, antialias: bool) -> _Taps:
    if in_size == out_size:
        return _Taps(np.arange(in_size)[:, None], np.ones((in_size, 1)), identity=True)
    dense = _dense_weights(in_size, out_size, antialias)
    nonzero = dense != 0
    first = nonzero.argmax(axis=1)
    last = in_size - 1 - nonzero[:, ::-1].argmax(axis=1)
    width = int((last - first).max()) + 1
    raw = first[:, None] + np.arange(width)[None, :]
    index = np.minimum(raw, in_size - 1)
    weight = np.where(raw < in_size, np.take_along_axis(dense, index, axis=1), 0.0)
    index.flags.writeable = False
    weight.flags.writeable = False
    return _Taps(index, weight, identity=False)


def _dense_weights(in_size: int, out_size: int, antialias: bool) -> np.ndarray:
    scale = in_size / out_size
    centers = scale * (np.arange(out_size) + 0.5)  # output pixel centres in input coordinates
    if antialias and scale > 1:
        # Triangle filter of half-width `scale` input pixels, renormalized at the borders.
        distance = (np.arange(in_size)[None, :] + 0.5 - centers[:, None]) / scale
        dense = np.maximum(0.0, 1.0 - np.abs(distance))
        return dense / dense.sum(axis=1, keepdims=True)
    # Plain bilinear (torch's source index rule), which is also what antialias gives when upscaling.
    source = np.maximum(centers - 0.5, 0.0)
    lo = np.minimum(np.floor(source).astype(np.intp), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = source - lo
    dense = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    np.add.at(dense, (rows, lo), 1.0 - frac)
    np.add.at(dense, (rows, hi), frac)
    return dense


def _apply_rows(x: np.ndarray, taps: _Taps, band: slice = slice(None)) -> np.ndarray:
    """Output rows ``band`` of the row pass (all rows by default)."""
    if taps.identity:
        return x[..., band, :].copy()
    index, weight = taps.index[band], taps.weight_as(x.dtype)[band]
    out = x[..., index[:, 0], :]
    out *= weight[:, 0, None]
    for k in range(1, taps.taps):
        term = x[..., index[:, k], :]
        term *= weight[:, k, None]
        out += term
    return out


def _apply_cols(x: np.ndarray, taps: _Taps) -> np.ndarray:
    if taps.identity:
        return x.copy()
    weight = taps.weight_as(x.dtype)
    out = np.take(x, taps.index[:, 0], axis=-1)
    out *= weight[:, 0]
    for k in range(1, taps.taps):
        term = np.take(x, taps.index[:, k], axis=-1)
        term *= weight[:, k]
        out += term
    return out


def _check_args(planes: np.ndarray, out_hw: Sequence[int]) -> tuple[int, int]:
    if planes.ndim < 2:
        raise InputError(
            f"resize_bilinear: expected planes shaped (..., H, W), got shape {planes.shape}",
            "pass a 2-D plane or a stack of planes",
        )
    if planes.dtype not in (np.float32, np.float64):
        raise InputError(
            f"resize_bilinear: expected float32 or float64 planes, got {planes.dtype}",
            "convert with .astype(np.float32)",
        )
    if 0 in planes.shape[-2:]:
        raise InputError(f"resize_bilinear: planes are empty, shape {planes.shape}")
    try:
        out_h, out_w = (int(v) for v in out_hw)
    except (TypeError, ValueError) as e:
        raise InputError(f"resize_bilinear: out_hw must be (height, width), got {out_hw!r}") from e
    if out_h < 1 or out_w < 1:
        raise InputError(f"resize_bilinear: output size must be positive, got {out_h}x{out_w}")
    return out_h, out_w
