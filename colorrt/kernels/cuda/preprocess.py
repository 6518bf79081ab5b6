"""Frames -> full-resolution L -> resized, normalized NCHW model input, on the GPU."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import InputError
from colorrt.kernels import color
from colorrt.kernels import pipeline as reference
from colorrt.kernels.cuda.launch import Launcher, f32, i32, output_array, resolve_launcher
from colorrt.kernels.cuda.tables import axis_taps, y_luts

_INPUT_MODES = {"L": 0, "gray_rgb": 1, "L_hints": 2}  # MODE_* in the CUDA source


def luminance(image: Any, *, launcher: Launcher | None = None) -> Any:
    """float32 ``H x W`` CIE L (0..100) of one image on the GPU (as ``pipeline.luminance``)."""
    k = resolve_launcher(launcher)
    image = k.xp.asarray(image)
    reference._check_image_shape(image, "luminance")
    return luminance_batch(image[None], launcher=k)[0]


def luminance_batch(frames: Any, *, out: Any = None, launcher: Launcher | None = None) -> Any:
    """float32 ``N x H x W`` CIE L of a batch of equal-size images ``N x H x W [x 1/3/4]``.

    uint8 / uint16 go through the reference's lookup tables; float images must be in 0..1 (clipped).
    RGBA has its alpha ignored. ``out``: an ``N x H x W`` float32 array to write into.
    """
    k = resolve_launcher(launcher)
    xp = k.xp
    frames = _check_frames(xp.asarray(frames))
    channels = 1 if frames.ndim == 3 else frames.shape[3]
    count = math.prod(frames.shape[:3])
    out = output_array(xp, out, frames.shape[:3], np.float32, "luminance_batch")
    if frames.dtype in (np.uint8, np.uint16):
        bits = frames.dtype.itemsize * 8
        suffix = f"u{bits}"
        if channels in (3, 4):
            luts = k.constant(("y-luts", bits), lambda: y_luts(bits))
            k.launch(f"rgb_to_l_{suffix}", count, frames, i32(channels), luts, out)
        else:
            lut = k.constant(("grey-lut", bits), lambda: reference._grey_l_lut(bits))
            k.launch(f"grey_to_l_{suffix}", count, frames, i32(channels), lut, out)
        return out
    frames = xp.ascontiguousarray(frames, dtype=np.float32)
    reference._check_unit_range(frames)
    weights = k.constant("y-weights", lambda: color._Y_FROM_RGB.astype(np.float32))
    k.launch("float_to_l", count, frames, i32(channels if channels in (3, 4) else 1), weights, out)
    return out


def _check_frames(frames: Any) -> Any:
    if frames.ndim == 4 and frames.shape[3] not in (1, 3, 4) or frames.ndim not in (3, 4):
        raise InputError(
            f"expected a batch of images shaped N x H x W or N x H x W x 1/3/4, got {frames.shape}",
            "stack frames of one size into one array",
        )
    reference._check_pixels(frames, "the image batch")
    if frames.dtype in (np.uint8, np.uint16):
        return frames if frames.flags.c_contiguous else frames.copy()
    return frames


# ---------------------------------------------------------------- resize


def resize_bilinear(
    planes: Any, out_hw: Sequence[int], antialias: bool = True, *, launcher: Launcher | None = None
) -> Any:
    """Resize float32 ``(..., H, W)`` planes to ``(..., out_h, out_w)`` (as ``resize.resize_bilinear``).

    Float64 planes are resized in float32 (the GPU path is float32 throughout).
    """
    k = resolve_launcher(launcher)
    xp = k.xp
    planes = xp.asarray(planes)
    if planes.ndim < 2 or 0 in planes.shape[-2:]:
        raise InputError(f"resize_bilinear: expected planes shaped (..., H, W), got shape {planes.shape}")
    if planes.dtype not in (np.float32, np.float64):
        raise InputError(
            f"resize_bilinear: expected float32 or float64 planes, got {planes.dtype}",
            "convert with .astype(np.float32)",
        )
    out_h, out_w = (int(v) for v in out_hw)
    if out_h < 1 or out_w < 1:
        raise InputError(f"resize_bilinear: output size must be positive, got {out_h}x{out_w}")
    lead, (in_h, in_w) = planes.shape[:-2], planes.shape[-2:]
    x = xp.ascontiguousarray(planes, dtype=np.float32).reshape(-1, in_h, in_w)
    rows = _resize_rows(k, x, out_h, antialias)
    return _resize_cols(k, rows, out_w, antialias).reshape(*lead, out_h, out_w)


def _resize_rows(k: Launcher, planes: Any, out_h: int, antialias: bool = True) -> Any:
    """(P, H, W) -> (P, out_h, W); the input itself when the height does not change."""
    count, in_h, width = planes.shape
    if in_h == out_h:
        return planes
    taps, index, weight = axis_taps(k, in_h, out_h, antialias)
    out = k.xp.empty((count, out_h, width), dtype=np.float32)
    k.launch(
        "resize_rows", out.size, planes, i32(in_h), i32(width), i32(out_h), i32(taps), index, weight, out
    )
    return out


def _resize_cols(k: Launcher, planes: Any, out_w: int, antialias: bool = True) -> Any:
    count, height, in_w = planes.shape
    taps, index, weight = axis_taps(k, in_w, out_w, antialias)
    out = k.xp.empty((count, height, out_w), dtype=np.float32)
    k.launch("resize_cols", out.size, planes, i32(in_w), i32(out_w), i32(taps), index, weight, out)
    return out


# ---------------------------------------------------------------- preprocess


def preprocess(
    luminances: Sequence[Any] | Any,
    contract: ColorContract,
    hints: Sequence[Any | None] | None = None,
    dtype: np.dtype | type = np.float32,
    *,
    out: Any = None,
    launcher: Launcher | None = None,
) -> Any:
    """NCHW model input from full-resolution L planes (as ``pipeline.preprocess``), on the GPU.

    ``luminances``: a sequence of ``H x W`` planes, or one ``N x H x W`` array (one launch for the
    batch). The last resize pass, the contract's normalization, the NCHW layout and the cast to
    ``dtype`` (float32 or float16) are one kernel. ``out``: an NCHW array to write into.
    """
    k = resolve_launcher(launcher)
    xp = k.xp
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float16):
        raise InputError(f"preprocess: dtype must be float32 or float16, got {dtype}")
    planes = _l_planes(xp, luminances)
    height, width = _render_shape([p.shape[-2:] for p in planes], contract)
    if hints is not None:
        hints = reference._check_hints(hints, list(_each(planes)), contract)
    count = sum(p.shape[0] for p in planes)
    out = output_array(xp, out, (count, contract.input_channels, height, width), dtype, "preprocess")
    start = 0
    for group in planes:
        _preprocess_group(k, group, contract, out[start : start + group.shape[0]])
        start += group.shape[0]
    if hints is not None:
        for i, hint in enumerate(hints):
            if hint is not None:
                out[i, 1:] = _hint_planes(k, xp.asarray(hint), (height, width), contract).astype(dtype)
    return out


def _l_planes(xp: Any, luminances: Sequence[Any] | Any) -> list[Any]:
    """The L planes as a list of contiguous float32 (n, H, W) groups (one group for a 3-D array)."""
    if hasattr(luminances, "ndim") and luminances.ndim == 3:
        groups = [luminances]
    else:
        if len(luminances) == 0:
            raise InputError("preprocess: got an empty batch", "pass at least one luminance plane")
        groups = []
        for i, plane in enumerate(luminances):
            plane = xp.asarray(plane)
            if plane.ndim != 2 or 0 in plane.shape:
                raise InputError(
                    f"preprocess item {i}: expected an H x W lightness plane (CIE L), "
                    f"got shape {plane.shape}",
                    "compute it with colorrt.kernels.cuda.luminance(image)",
                )
            groups.append(plane[None])
    if any(0 in g.shape for g in groups):
        raise InputError("preprocess: got an empty batch", "pass at least one luminance plane")
    return [xp.ascontiguousarray(g, dtype=np.float32) for g in groups]


def _each(groups: list[Any]) -> Iterator[Any]:
    for group in groups:
        yield from (group[i] for i in range(group.shape[0]))


def _render_shape(sizes: list[tuple[int, int]], contract: ColorContract) -> tuple[int, int]:
    shapes = {contract.render_shape(*size) for size in sizes}
    if len(shapes) != 1:
        raise InputError(
            f"preprocess: images of sizes {sorted(set(sizes))} render at different shapes {sorted(shapes)} "
            f"under contract '{contract.name}'; one batch needs one render shape",
            "batch images of the same size together (or use a fixed-size contract)",
        )
    return shapes.pop()


def _preprocess_group(k: Launcher, group: Any, contract: ColorContract, out: Any) -> None:
    _, out_c, out_h, out_w = out.shape
    rows = _resize_rows(k, group, out_h)
    taps, index, weight = axis_taps(k, group.shape[2], out_w)
    kernel = "preprocess_cols_f16" if out.dtype == np.float16 else "preprocess_cols_f32"
    k.launch(
        kernel,
        group.shape[0] * out_h * out_w,
        rows,
        i32(out_h),
        i32(group.shape[2]),
        i32(out_w),
        i32(taps),
        index,
        weight,
        i32(_INPUT_MODES[contract.input_space]),
        i32(out_c),
        f32(contract.input_scale),
        f32(contract.input_offset),
        f32(contract.mask_offset),
        out,
    )


def _hint_planes(k: Launcher, hint: Any, size: tuple[int, int], contract: ColorContract) -> Any:
    """Channels 1..3 of an L_hints input from a full-res (a, b, mask) hint (as the reference)."""
    xp = k.xp
    hint = hint.astype(np.float32)
    mask = xp.clip(hint[..., 2], 0.0, 1.0)
    weighted = xp.stack([hint[..., 0] * mask, hint[..., 1] * mask, mask])
    small = resize_bilinear(weighted, size, launcher=k)
    covered = small[2] > 1e-3
    safe = xp.where(covered, small[2], 1.0)
    planes = xp.zeros((3, *size), dtype=np.float32)
    planes[0] = xp.where(covered, small[0] / safe * np.float32(contract.hint_scale), 0.0)
    planes[1] = xp.where(covered, small[1] / safe * np.float32(contract.hint_scale), 0.0)
    planes[2] = covered.astype(np.float32) + np.float32(contract.mask_offset)
    return planes


def preprocess_frames(
    frames: Any,
    contract: ColorContract,
    dtype: np.dtype | type = np.float32,
    *,
    out: Any = None,
    luminance_out: Any = None,
    launcher: Launcher | None = None,
) -> tuple[Any, Any]:
    """(NCHW model input, ``N x H x W`` full-res L) of a batch of equal-size uint8 frames.

    Three kernels: frame -> L (kept for the merge), row resize, column resize fused with the
    normalization, layout and cast.
    """
    k = resolve_launcher(launcher)
    lightness = luminance_batch(frames, out=luminance_out, launcher=k)
    return preprocess(lightness, contract, dtype=dtype, out=out, launcher=k), lightness
