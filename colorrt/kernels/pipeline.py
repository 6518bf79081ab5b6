"""Pre- and post-processing around a colorization model, NumPy reference kernels.

    image --luminance--> full-res L --preprocess--> NCHW model input at the contract's render size
    model output --decode_ab--> ab at render size --merge with full-res L--> uint8 sRGB image

The full-resolution lightness of the input is kept and only chroma comes from the model (see
DESIGN.md), except under a ``merge="wholesale"`` contract (:mod:`colorrt.kernels.wholesale`). Extra
model inputs are built in :mod:`colorrt.kernels.extras`. Everything on the hot path is float32.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import ContractError, InputError, NonFiniteOutputError
from colorrt.kernels.color import (
    l_to_gray,
    lab_planes_to_linear,
    linear_to_srgb_u8,
    rgb_to_l,
    rgb_to_lab,
    srgb_to_linear,
    y_to_l,
)
from colorrt.kernels.resize import resize_bilinear, resize_bilinear_bands
from colorrt.kernels.wholesale import decode_colour, merge_wholesale

_FLOAT_RANGE_LIMIT = 2.0  # a float image above this is surely 0..255 or 0..65535, not 0..1
_PIXEL_DTYPES = (np.uint8, np.uint16, np.float16, np.float32, np.float64)  # what the kernels read
_MERGE_BAND_PIXELS = 40_960  # pixels merged per band: its float32 temporaries stay in cache (1.6x at 720p)
MAX_STRENGTH = 2.0  # chroma scale: twice the model's colours already clips most of them at the gamut edge


def image_to_rgb_float(image: np.ndarray) -> np.ndarray:
    """float32 ``H x W x 3`` sRGB in 0..1 from a uint8 / uint16 / float image.

    Accepts ``H x W`` grey (replicated to 3 channels), ``H x W x 1``, ``H x W x 3`` and
    ``H x W x 4`` (alpha is dropped: callers keep it themselves). Float images must be in 0..1 and
    are clipped to it (resampling overshoot); floats far above 1 are refused as a scale mistake.
    """
    image = _as_pixels(image, "image_to_rgb_float")
    if image.dtype in (np.uint8, np.uint16):
        rgb = np.take(_unit_lut(image.dtype.itemsize * 8), image)
    else:
        rgb = _clipped_float32(image)
    if rgb.ndim == 2:
        return np.repeat(rgb[:, :, None], 3, axis=2)
    return rgb


def luminance(image: np.ndarray) -> np.ndarray:
    """float32 ``H x W`` CIE L (0..100) of an image at full resolution (same inputs as image_to_rgb_float)."""
    image = _as_pixels(image, "luminance")
    if image.ndim == 2:
        if image.dtype in (np.uint8, np.uint16):
            return np.take(_grey_l_lut(image.dtype.itemsize * 8), image)
        return y_to_l(srgb_to_linear(_clipped_float32(image)))
    if image.dtype in (np.uint8, np.uint16):
        return rgb_to_l(image)
    return rgb_to_l(_clipped_float32(image))


def preprocess(
    luminances: Sequence[np.ndarray],
    contract: ColorContract,
    hints: Sequence[np.ndarray | None] | None = None,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """NCHW model input from full-resolution L planes, at ``contract.render_shape(H, W)``.

    The L planes (from :func:`luminance`) are resized with antialiasing, binarized if the contract
    sets ``binarize_above`` (100 above, 0 below), and normalized per the contract's ``input_space``:

    * ``"L"``: ``L * input_scale + input_offset`` (1 channel); ``"L_tiled"``: the same in 3 channels;
    * ``"gray_rgb"`` / ``"gray"``: ``l_to_gray(L) * input_scale + input_offset`` in 3 / 1 channels;
    * ``"L_hints"``: normalized L, ``a * hint_scale``, ``b * hint_scale``, ``mask + mask_offset``;
      ``"L_ab"``: the same without the mask. ``"NHWC"`` contracts get channels last.

    ``hints`` (``L_hints`` / ``L_ab``): per image ``None`` or an ``H x W x 3`` array of a, b and a mask in
    0..1 at the image's full resolution. At render size a pixel holds a hint where the resized mask
    is above 1e-3, and its ab is the mask-weighted mean of the hint pixels it covers (so a hint of
    one full-resolution pixel survives the downscale).
    """
    if len(luminances) == 0:
        raise InputError("preprocess: got an empty batch", "pass at least one luminance plane")
    planes = [_as_l_plane(L, i) for i, L in enumerate(luminances)]
    height, width = _common_render_shape(planes, contract)
    hints = _check_hints(hints, planes, contract)
    batch = np.empty((len(planes), contract.input_channels, height, width), dtype=dtype)
    for i, plane in enumerate(planes):
        small = resize_bilinear(plane, (height, width))
        if contract.binarize_above is not None:
            small = np.where(small > np.float32(contract.binarize_above), np.float32(100), np.float32(0))
        if contract.input_space in ("gray_rgb", "gray"):
            batch[i] = _affine(l_to_gray(small), contract.input_scale, contract.input_offset)
            continue
        batch[i] = _affine(small, contract.input_scale, contract.input_offset)  # all channels; hints follow
        if contract.input_space in ("L_hints", "L_ab"):
            hint = _hint_planes(None if hints is None else hints[i], (height, width), contract)
            batch[i, 1:] = hint[: contract.input_channels - 1]
    return np.ascontiguousarray(batch.transpose(0, 2, 3, 1)) if contract.layout == "NHWC" else batch


def decode_ab(output: np.ndarray, contract: ColorContract, *, strength: float = 1.0) -> np.ndarray:
    """``(N, 2, h, w)`` float32 CIE ab from a model's output (NCHW, or NHWC per the contract), at the
    output's size; ``(N, 3, h, w)`` Lab under a ``merge="wholesale"`` contract, and ``"lab"`` outputs
    and per-channel scales are decoded by :func:`colorrt.kernels.wholesale.decode_colour`.

    * ``"ab"``: ``y * output_scale + output_offset``;
    * ``"rgb"``: ``y * output_scale + output_offset``, clipped to 0..1, converted to Lab, its ab;
    * ``"ab_bins"``: annealed mean: ``softmax(logits / T)`` over the bins, then the expected ab of
      ``contract.bin_centers`` (equal to the paper's ``softmax(log(p) / T)`` with p the softmax).

    ``strength`` scales the ab (chroma) before it is merged: 0 gives grey, 1 the model's colours,
    up to :data:`MAX_STRENGTH` stronger ones (see :func:`check_chroma_strength`).
    """
    check_chroma_strength(strength)
    y = _check_output(output, contract)
    per_channel = contract.channel_scale is not None or contract.channel_offset is not None
    if contract.merge == "wholesale" or contract.output_kind == "lab" or per_channel:
        return decode_colour(y, contract, strength)
    if contract.output_kind == "ab":  # the scale is folded into the output's affine map: no extra pass
        return _affine(y, contract.output_scale * strength, contract.output_offset * strength)
    if contract.output_kind == "rgb":
        rgb = _affine(y, contract.output_scale, contract.output_offset)
        np.clip(rgb, 0.0, 1.0, out=rgb)
        lab = rgb_to_lab(rgb.transpose(0, 2, 3, 1))
        ab = np.ascontiguousarray(lab[..., 1:].transpose(0, 3, 1, 2))
    else:
        ab = _annealed_mean(y, contract)
    if strength != 1.0:
        ab *= np.float32(strength)
    return ab


def check_chroma_strength(strength: float) -> None:
    """Refuse a chroma strength that is not a number in ``0..MAX_STRENGTH``."""
    number = isinstance(strength, (int, float, np.floating)) and not isinstance(strength, bool)
    if not number or not 0.0 <= strength <= MAX_STRENGTH:
        raise InputError(
            f"strength must be a number from 0 to {MAX_STRENGTH:g}, got {strength!r}",
            "0 gives grey, 1 the model's own colours (the default), above 1 stronger colours",
        )


def check_finite(output: Any, model: str) -> None:
    """Raise :class:`NonFiniteOutputError` naming ``model`` when ``output`` holds NaN or infinity.

    ``output``: a NumPy or CuPy model output (or the 0-d sum of one). One reduction per batch: the
    float64 sum is NaN or infinite exactly when some value is (finite float32 values cannot overflow it).
    """
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is what this looks for, not news
        if math.isfinite(float(output.sum(dtype=np.float64))):
            return
    raise NonFiniteOutputError(
        f"the model {model} returned NaN or infinite values, which would come out as black or false "
        "colours; colorrt stopped without writing them",
        "if it is an FP16 or INT8 model, run its FP32 model instead (FP16 overflows and broken INT8 "
        "scales do this); otherwise re-export it or try another model (--model)",
    )


def model_label(engine: Any) -> str:
    """How messages name the model an engine runs: its file (``path`` or ``source``) and engine name."""
    name = getattr(engine, "name", type(engine).__name__)
    where = getattr(engine, "path", None) or getattr(engine, "source", None)
    if not where:
        return f"'{name}'"
    return f"{os.path.basename(str(where).rstrip('/')) or where} ({name})"


def merge(luminance: np.ndarray, ab: np.ndarray, contract: ColorContract | None = None) -> np.ndarray:
    """uint8 ``H x W x 3`` sRGB from full-resolution L (``H x W``) and ab at any size (``2 x h x w``).

    ab is resized (bilinear) to ``H x W``, joined with L, converted Lab -> sRGB (skimage maths,
    out-of-gamut colours clipped per channel) and rounded to the nearest uint8 code. Lab (``3 x h x
    w``, a wholesale contract's decode_ab) is merged by :func:`~colorrt.kernels.wholesale.merge_wholesale`
    with the ``contract``'s line art.
    """
    L = _as_l_plane(luminance, None)
    ab = np.asarray(ab)
    if ab.ndim == 3 and ab.shape[0] == 3:
        return merge_wholesale(L, ab, contract)
    if ab.ndim != 3 or ab.shape[0] != 2:
        raise InputError(
            f"merge: expected ab shaped (2, h, w), got {ab.shape}", "take one item of decode_ab's output"
        )
    height, width = L.shape
    out = np.empty((height, width, 3), dtype=np.uint8)
    band_rows = max(1, _MERGE_BAND_PIXELS // width)
    for rows, band in resize_bilinear_bands(ab.astype(np.float32, copy=False), (height, width), band_rows):
        codes = linear_to_srgb_u8(lab_planes_to_linear(L[rows], band[0], band[1]))
        for channel in range(3):
            out[rows, :, channel] = codes[channel]
    return out


def postprocess(
    output: np.ndarray, luminances: Sequence[np.ndarray], contract: ColorContract, *, strength: float = 1.0
) -> list[np.ndarray]:
    """uint8 sRGB images: :func:`decode_ab` of the batch output (chroma scaled by ``strength``), then
    :func:`merge` with each full-res L."""
    ab = decode_ab(output, contract, strength=strength)
    if len(luminances) != len(ab):
        raise InputError(
            f"postprocess: the output holds {len(ab)} items but {len(luminances)} luminance planes "
            "were given",
            "pass the luminance planes of exactly the images in this batch",
        )
    return [merge(L, item, contract) for L, item in zip(luminances, ab, strict=True)]


# ---------------------------------------------------------------- internals


def _annealed_mean(logits: np.ndarray, contract: ColorContract) -> np.ndarray:
    n, bins, h, w = logits.shape
    z = logits.reshape(n, bins, h * w) * np.float32(1.0 / contract.annealing_temperature)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    total = z.sum(axis=1, keepdims=True)
    centers = np.asarray(contract.bin_centers, dtype=np.float32)  # (bins, 2)
    ab = np.matmul(centers.T, z)  # (n, 2, h*w): unnormalized expectation
    ab /= total
    return ab.reshape(n, 2, h, w)


def _hint_planes(hint: np.ndarray | None, size: tuple[int, int], contract: ColorContract) -> np.ndarray:
    planes = np.zeros((3, *size), dtype=np.float32)
    if hint is not None:
        hint = np.asarray(hint, dtype=np.float32)
        mask = np.clip(hint[..., 2], 0.0, 1.0)
        weighted = np.stack([hint[..., 0] * mask, hint[..., 1] * mask, mask])
        small = resize_bilinear(weighted, size)
        covered = small[2] > 1e-3
        planes[0][covered] = small[0][covered] / small[2][covered] * contract.hint_scale
        planes[1][covered] = small[1][covered] / small[2][covered] * contract.hint_scale
        planes[2][covered] = 1.0
    planes[2] += contract.mask_offset
    return planes


def _check_hints(
    hints: Sequence[np.ndarray | None] | None, planes: list[np.ndarray], contract: ColorContract
) -> Sequence[np.ndarray | None] | None:
    if hints is None:
        return None
    if contract.input_space not in ("L_hints", "L_ab"):
        if all(h is None for h in hints):
            return None
        raise InputError(
            f"preprocess: colour hints were given but contract '{contract.name}' takes "
            f"input_space '{contract.input_space}', not 'L_hints' or 'L_ab'",
            "use a hint-taking model (for example the siggraph17 contract) or drop the hints",
        )
    if len(hints) != len(planes):
        raise InputError(f"preprocess: got {len(hints)} hint entries for {len(planes)} images")
    for i, (hint, plane) in enumerate(zip(hints, planes, strict=True)):
        if hint is not None and np.shape(hint) != (*plane.shape, 3):
            raise InputError(
                f"preprocess: hints of item {i} must be shaped {(*plane.shape, 3)} "
                f"(a, b, mask at full resolution), got {np.shape(hint)}",
            )
    return hints


def _common_render_shape(planes: list[np.ndarray], contract: ColorContract) -> tuple[int, int]:
    shapes = {contract.render_shape(*plane.shape) for plane in planes}
    if len(shapes) != 1:
        sizes = sorted({plane.shape for plane in planes})
        raise InputError(
            f"preprocess: images of sizes {sizes} render at different shapes {sorted(shapes)} "
            f"under contract '{contract.name}'; one batch needs one render shape",
            "batch images of the same size together (or use a fixed-size contract)",
        )
    return shapes.pop()


def _check_output(output: np.ndarray, contract: ColorContract) -> np.ndarray:
    y = np.asarray(output)
    _check_model_output(y, contract)
    if contract.layout == "NHWC":
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2), dtype=np.float32)
    return y.astype(np.float32, copy=False)


def _affine(x: np.ndarray, scale: float, offset: float) -> np.ndarray:
    out = x * np.float32(scale)
    if offset:
        out += np.float32(offset)
    return out


def _as_pixels(image: np.ndarray, where: str) -> np.ndarray:
    image = np.asarray(image)
    _check_image_shape(image, where)
    if image.ndim == 3:
        image = image[:, :, 0] if image.shape[2] == 1 else image[:, :, :3]
    _check_pixels(image, f"{where}: the image")
    return image


# The checks below take NumPy or CuPy arrays: colorrt.kernels.cuda validates its inputs with them.


def _check_image_shape(image: Any, where: str) -> None:
    """One image: ``H x W`` grey or ``H x W x 1/3/4`` (alpha is dropped by the callers)."""
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
        raise InputError(
            f"{where}: expected an H x W grey or H x W x 3 colour image, got shape {image.shape}",
            "pass one image at a time; RGBA has its alpha dropped, other channel counts are not images",
        )


def _check_pixels(pixels: Any, what: str) -> None:
    """Pixels that are not empty and of a type the kernels read (uint8, uint16 or float in 0..1).

    ``what`` names them in the message, e.g. ``"luminance: the image"``.
    """
    if 0 in pixels.shape:
        raise InputError(f"{what} is empty, shape {pixels.shape}")
    if pixels.dtype not in _PIXEL_DTYPES:
        raise InputError(
            f"{what} has an unsupported pixel type {pixels.dtype}; expected uint8, uint16 or float in 0..1",
            "convert to uint8, e.g. np.asarray(pil_image.convert('RGB'))",
        )


def _check_unit_range(pixels: Any) -> None:
    """Float pixels must be in 0..1; a maximum far above 1 is a 0..255 or 0..65535 scale mistake."""
    peak = float(pixels.max())  # NaN anywhere makes the maximum NaN
    if peak != peak:
        raise InputError(
            "the float image contains NaN values", "replace them (np.nan_to_num) or fix what produced them"
        )
    if peak > _FLOAT_RANGE_LIMIT:
        raise InputError(
            f"float image values must be in 0..1, got a maximum of {peak:g}",
            "divide by 255 (or 65535), or pass the uint8 / uint16 array itself",
        )


def _check_model_output(y: Any, contract: ColorContract) -> None:
    """An NCHW model output with the channels ``contract`` says the model returns."""
    if y.ndim != 4:
        raise InputError(f"decode_ab: expected an {contract.layout} model output, got shape {y.shape}")
    if y.shape[contract.channel_axis] != contract.output_channels:
        raise ContractError(
            f"decode_ab: contract '{contract.name}' (output_kind '{contract.output_kind}') expects "
            f"{contract.output_channels} output channels, the model returned "
            f"{y.shape[contract.channel_axis]}",
            "check that the model and its contract belong together (colorrt info model.onnx)",
        )


def _clipped_float32(image: np.ndarray) -> np.ndarray:
    _check_unit_range(image)
    out = image.astype(np.float32)  # a copy, so clipping never touches the caller's array
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _as_l_plane(L: np.ndarray, index: int | None) -> np.ndarray:
    L = np.asarray(L)
    if L.ndim != 2 or 0 in L.shape:
        where = "merge" if index is None else f"preprocess item {index}"
        raise InputError(
            f"{where}: expected an H x W lightness plane (CIE L), got shape {L.shape}",
            "compute it with colorrt.kernels.luminance(image)",
        )
    return L.astype(np.float32, copy=False)


@functools.cache
def _unit_lut(bits: int) -> np.ndarray:
    lut = (np.arange(2**bits) / (2**bits - 1)).astype(np.float32)
    lut.flags.writeable = False
    return lut


@functools.cache
def _grey_l_lut(bits: int) -> np.ndarray:
    lut = y_to_l(srgb_to_linear(np.arange(2**bits) / (2**bits - 1))).astype(np.float32)
    lut.flags.writeable = False
    return lut
