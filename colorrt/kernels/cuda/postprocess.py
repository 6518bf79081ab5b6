"""Model output -> ab -> upsampled and merged with full-resolution L -> uint8 sRGB, on the GPU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import InputError
from colorrt.kernels import pipeline as reference
from colorrt.kernels.cuda.launch import Launcher, f32, i32, output_array, resolve_launcher
from colorrt.kernels.cuda.tables import axis_taps, code_tables, color_matrix


def decode_ab(
    output: Any, contract: ColorContract, *, strength: float = 1.0, launcher: Launcher | None = None
) -> Any:
    """``(N, 2, h, w)`` float32 CIE ab from a model's NCHW output, scaled by ``strength`` (as
    ``pipeline.decode_ab``)."""
    reference.check_chroma_strength(strength)
    k = resolve_launcher(launcher)
    xp = k.xp
    y = _check_output(xp, output, contract)
    if contract.output_kind == "ab":
        ab = y * np.float32(contract.output_scale * strength)
        if contract.output_offset:
            ab += np.float32(contract.output_offset * strength)
        return ab
    ab = _decode_other(k, y, contract)
    if strength != 1.0:
        ab *= np.float32(strength)
    return ab


def _decode_other(k: Launcher, y: Any, contract: ColorContract) -> Any:
    """ab of an ``rgb`` or ``ab_bins`` output, by its kernel."""
    n, _, h, w = y.shape
    ab = k.xp.empty((n, 2, h, w), dtype=np.float32)
    if contract.output_kind == "rgb":
        k.launch(
            "rgb_to_ab",
            n * h * w,
            y,
            f32(contract.output_scale),
            f32(contract.output_offset),
            color_matrix(k, "t_from_rgb"),
            ab,
            np.int64(h * w),
        )
        return ab
    centers = k.constant(("bins", contract.bin_centers), lambda: np.asarray(contract.bin_centers, np.float32))
    k.launch(
        "decode_bins",
        n * h * w,
        y,
        i32(y.shape[1]),
        centers,
        f32(1.0 / contract.annealing_temperature),
        ab,
        np.int64(h * w),
    )
    return ab


def _check_output(xp: Any, output: Any, contract: ColorContract) -> Any:
    y = xp.asarray(output)
    reference._check_model_output(y, contract)
    return xp.ascontiguousarray(y, dtype=np.float32)


def merge(luminance: Any, ab: Any, *, launcher: Launcher | None = None) -> Any:
    """uint8 ``H x W x 3`` sRGB from full-res L (``H x W``) and ab (``2 x h x w``), as ``pipeline.merge``."""
    k = resolve_launcher(launcher)
    xp = k.xp
    lightness = xp.asarray(luminance)
    ab = xp.asarray(ab)
    if lightness.ndim != 2 or 0 in lightness.shape:
        raise InputError(
            f"merge: expected an H x W lightness plane (CIE L), got shape {lightness.shape}",
            "compute it with colorrt.kernels.cuda.luminance(image)",
        )
    if ab.ndim != 3 or ab.shape[0] != 2:
        raise InputError(
            f"merge: expected ab shaped (2, h, w), got {ab.shape}", "take one item of decode_ab's output"
        )
    return _merge(k, lightness[None], ab[None], 1.0, 0.0)[0]


def postprocess(
    output: Any,
    luminances: Sequence[Any],
    contract: ColorContract,
    *,
    strength: float = 1.0,
    launcher: Launcher | None = None,
) -> list[Any]:
    """uint8 sRGB images: :func:`decode_ab` of the batch output (chroma scaled by ``strength``), then
    :func:`merge` with each full-res L."""
    k = resolve_launcher(launcher)
    ab = decode_ab(output, contract, strength=strength, launcher=k)
    if len(luminances) != len(ab):
        raise InputError(
            f"postprocess: the output holds {len(ab)} items but {len(luminances)} luminance planes "
            "were given",
            "pass the luminance planes of exactly the images in this batch",
        )
    return [merge(L, item, launcher=k) for L, item in zip(luminances, ab, strict=True)]


def postprocess_batch(
    output: Any,
    luminances: Any,
    contract: ColorContract,
    *,
    strength: float = 1.0,
    out: Any = None,
    launcher: Launcher | None = None,
) -> Any:
    """uint8 ``N x H x W x 3`` frames from a batch output and the batch's ``N x H x W`` full-res L.

    For ``ab`` models the output's scaling and the chroma ``strength`` are fused into the merge
    kernel (one pass over the frame); ``rgb`` and ``ab_bins`` outputs are decoded at render size
    first, the strength folded into the merge's scale.
    """
    reference.check_chroma_strength(strength)
    k = resolve_launcher(launcher)
    xp = k.xp
    lightness = xp.asarray(luminances)
    if lightness.ndim != 3 or 0 in lightness.shape:
        raise InputError(
            f"postprocess_batch: expected N x H x W lightness planes, got shape {lightness.shape}"
        )
    if contract.output_kind == "ab":
        ab, scale, offset = _check_output(xp, output, contract), contract.output_scale, contract.output_offset
    else:
        ab, scale, offset = decode_ab(output, contract, launcher=k), 1.0, 0.0
    scale, offset = scale * strength, offset * strength
    if ab.shape[0] != lightness.shape[0]:
        raise InputError(
            f"postprocess_batch: the output holds {ab.shape[0]} items but {lightness.shape[0]} luminance "
            "planes were given",
            "pass the luminance planes of exactly the images in this batch",
        )
    return _merge(k, lightness, ab, scale, offset, out=out)


def merge_batch(luminances: Any, ab: Any, *, out: Any = None, launcher: Launcher | None = None) -> Any:
    """uint8 ``N x H x W x 3`` frames from ``N x H x W`` full-res L and ``N x 2 x h x w`` ab (CIE ab, not
    a model output: e.g. ab smoothed over time on the host), as ``pipeline.merge`` of each pair."""
    k = resolve_launcher(launcher)
    lightness, ab = k.xp.asarray(luminances), k.xp.asarray(ab)
    if lightness.ndim != 3 or 0 in lightness.shape or ab.ndim != 4 or ab.shape[:2] != (lightness.shape[0], 2):
        raise InputError(
            f"merge_batch: expected N x H x W lightness planes and N x 2 x h x w ab, got shapes "
            f"{lightness.shape} and {ab.shape}"
        )
    return _merge(k, lightness, ab, 1.0, 0.0, out=out)


def _merge(k: Launcher, lightness: Any, ab: Any, scale: float, offset: float, out: Any = None) -> Any:
    xp = k.xp
    n, height, width = lightness.shape
    ab_h, ab_w = ab.shape[-2:]
    lightness = xp.ascontiguousarray(lightness, dtype=np.float32)
    ab = xp.ascontiguousarray(ab, dtype=np.float32)
    out = output_array(xp, out, (n, height, width, 3), np.uint8, "postprocess")
    taps_y, index_y, weight_y = axis_taps(k, ab_h, height)
    taps_x, index_x, weight_x = axis_taps(k, ab_w, width)
    base, thresholds, cells = code_tables(k)
    k.launch(
        "merge_u8",
        n * height * width,
        lightness,
        i32(height),
        i32(width),
        ab,
        i32(ab_h),
        i32(ab_w),
        f32(scale),
        f32(offset),
        i32(taps_y),
        index_y,
        weight_y,
        i32(taps_x),
        index_x,
        weight_x,
        color_matrix(k, "rgb_from_t"),
        base,
        thresholds,
        i32(cells),
        out,
    )
    return out
