"""sRGB (D65) <-> CIE Lab, NumPy reference kernels.

The maths is exactly scikit-image's ``rgb2lab`` / ``lab2rgb`` (illuminant D65, 2 degree observer, the
sRGB matrix of IEC 61966-2-1 and skimage's piecewise constants), so results agree with it to within
floating-point rounding: max |dL|, |da|, |db| <= 1e-3 in float64 (tested).

Precision: float64 in -> float64 out, float32 in -> float32 out (no float64 temporaries on the float32
path). Measured on 10 million random, dark, grey and extreme colours, the float32 error against the
float64 reference is at most 1.3e-4 in L, a and b (``rgb_to_lab``) and 1.2e-5 in sRGB 0..1
(``lab_to_rgb``, 0.003 of a uint8 step); it comes mostly from the 3x3 matrices, whose terms cancel.
``FLOAT32_LAB_ERROR`` and ``FLOAT32_RGB_ERROR`` hold these bounds with 2x margin; the tests assert them.

uint8 / uint16 images are accepted where the input is sRGB (``srgb_to_linear``, ``rgb_to_lab``,
``rgb_to_l``): values are scaled to 0..1 through a lookup table and the result is float32.
"""

from __future__ import annotations

import functools

import numpy as np

from colorrt.errors import InputError

# sRGB primaries -> CIE XYZ, from the sRGB specification (the matrix skimage uses).
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
D65_WHITE = np.array([0.95047, 1.0, 1.08883])  # CIE XYZ of the D65 reference white, 2 degree observer

SRGB_KNEE = 0.04045  # encoded sRGB value where the linear segment ends
LINEAR_KNEE = 0.0031308  # the same point in linear light
LAB_EPSILON = 0.008856  # t below which CIE f(t) is linear ((6/29)^3, as rounded by skimage)
LAB_F_KNEE = 0.2068966  # f value at that point (6/29)
LAB_KAPPA = 7.787  # slope of the linear segment of f
LAB_F_OFFSET = 16.0 / 116.0

# Error bounds of the float32 path against the float64 reference (measured max with 2x margin).
FLOAT32_LAB_ERROR = 3e-4  # L, a, b units, rgb_to_lab / rgb_to_l (measured 1.3e-4)
FLOAT32_RGB_ERROR = 2.5e-5  # sRGB 0..1 units, lab_to_rgb / l_to_gray (measured 1.2e-5)

# Folded matrices: t = XYZ / white straight from linear RGB, and back.
_T_FROM_RGB = XYZ_FROM_RGB / D65_WHITE[:, None]
_RGB_FROM_T = RGB_FROM_XYZ * D65_WHITE[None, :]
_Y_FROM_RGB = XYZ_FROM_RGB[1]  # its row sums to exactly 1: a grey's Y is its linear value


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Decode sRGB values (0..1 float, or uint8/uint16) to linear light, elementwise."""
    x = np.asarray(x)
    if x.dtype in (np.uint8, np.uint16):
        return np.take(_srgb_to_linear_lut(x.dtype.itemsize * 8), x)
    x = _as_float(x, "srgb_to_linear")
    out = np.empty_like(x)
    _srgb_to_linear(x, out)
    return out


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Encode linear light to sRGB, elementwise (no clipping: values outside 0..1 follow the curve)."""
    x = _as_float(np.asarray(x), "linear_to_srgb")
    out = np.empty_like(x)
    _linear_to_srgb(x, out)
    return out


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``[..., 3]`` (0..1 float, or uint8/uint16) to CIE Lab ``[..., 3]``, as skimage ``rgb2lab``."""
    single = np.ndim(rgb) == 1
    rgb = _check_channels(np.asarray(rgb), "rgb_to_lab", "sRGB")
    t = _mix(srgb_to_linear(_to_planes(rgb)), _T_FROM_RGB)
    _lab_f(t)
    fx, fy, fz = t
    lab = np.empty(t.shape[1:] + (3,), dtype=t.dtype)
    np.multiply(fy, 116.0, out=lab[..., 0])
    lab[..., 0] -= 16.0
    np.subtract(fx, fy, out=fx)
    np.multiply(fx, 500.0, out=lab[..., 1])
    np.subtract(fy, fz, out=fz)
    np.multiply(fz, 200.0, out=lab[..., 2])
    return lab[0] if single else lab


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE Lab ``[..., 3]`` to sRGB ``[..., 3]`` in 0..1, clipped, as skimage ``lab2rgb``.

    Like skimage, a colour whose Z would be negative has it set to 0 (no warning is issued), and
    out-of-gamut results are clipped per channel.
    """
    single = np.ndim(lab) == 1
    lab = _as_float(_check_channels(np.asarray(lab), "lab_to_rgb", "Lab"), "lab_to_rgb")
    lin = lab_planes_to_linear(lab[..., 0], lab[..., 1], lab[..., 2])
    _clip_unit(lin)
    _linear_to_srgb(lin, lin)
    rgb = np.moveaxis(lin, 0, -1).copy()
    return rgb[0] if single else rgb


def lab_planes_to_linear(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Linear-light RGB planes ``(3, ...)``, unclipped, of CIE L, a, b planes (in L's float dtype)."""
    lightness = _as_float(np.asarray(lightness), "lab_planes_to_linear")
    f = np.empty((3, *lightness.shape), dtype=lightness.dtype)  # f(X/Xn), f(Y), f(Z/Zn)
    fx, fy, fz = f
    np.add(lightness, 16.0, out=fy)
    fy /= 116.0
    np.divide(a, 500.0, out=fx)
    fx += fy
    np.divide(b, -200.0, out=fz)
    fz += fy
    np.maximum(fz, 0.0, out=fz)  # as skimage: a negative Z is set to 0
    _lab_f_inverse(f)
    return _mix(f, _RGB_FROM_T)


def rgb_to_l(rgb: np.ndarray) -> np.ndarray:
    """CIE L (0..100) of sRGB ``[..., 3]`` (0..1 float, or uint8/uint16), shape ``[...]``.

    Cheaper than ``rgb_to_lab(rgb)[..., 0]`` (same value): only Y is computed.
    """
    single = np.ndim(rgb) == 1
    rgb = _check_channels(np.asarray(rgb), "rgb_to_l", "sRGB")
    if rgb.dtype in (np.uint8, np.uint16):
        luts = _y_luts(rgb.dtype.itemsize * 8)
        planes = _to_planes(rgb)  # gathers with contiguous indices are ~1.5x faster
        y = np.take(luts[0], planes[0])
        y += np.take(luts[1], planes[1])
        y += np.take(luts[2], planes[2])
    else:
        lin = srgb_to_linear(rgb)
        weights = _Y_FROM_RGB.astype(lin.dtype)
        y = lin[..., 0] * weights[0]
        y += lin[..., 1] * weights[1]
        y += lin[..., 2] * weights[2]
    _y_to_l_inplace(y)
    return y[0] if single else y


def y_to_l(y: np.ndarray) -> np.ndarray:
    """CIE L (0..100) of relative luminance Y (white = 1), elementwise; float32 stays float32."""
    lightness = _as_float(np.asarray(y), "y_to_l").copy()
    _y_to_l_inplace(lightness)
    return lightness


def _y_to_l_inplace(y: np.ndarray) -> None:
    _lab_f(y)
    y *= 116.0
    y -= 16.0


def l_to_y(lightness: np.ndarray) -> np.ndarray:
    """Relative luminance Y (white = 1) of CIE L, elementwise (inverse of :func:`y_to_l`)."""
    f = _as_float(np.asarray(lightness), "l_to_y").copy()
    f += 16.0
    f /= 116.0
    _lab_f_inverse(f)
    return f


def l_to_gray(lightness: np.ndarray) -> np.ndarray:
    """sRGB grey level 0..1 of the neutral colour with CIE lightness L (inverse of ``rgb_to_l`` on greys)."""
    y = l_to_y(lightness)
    _clip_unit(y)
    _linear_to_srgb(y, y)
    return y


def linear_to_srgb_u8(lin: np.ndarray) -> np.ndarray:
    """uint8 sRGB codes of linear light: ``round(255 * linear_to_srgb(clip(lin, 0, 1)))``, exactly.

    A lookup table of decision thresholds replaces the power function: the linear range is cut into
    cells, each holding at most one code boundary, so the code is the cell's base code plus one
    comparison. float32 cells are the top bits of the float itself (exponent and 12 mantissa bits:
    no multiply-and-convert pass); float64 uses 4096 even cells (the closest two boundaries are
    3.0e-4 apart in linear light). NaN maps to 0.
    """
    lin = _as_float(np.asarray(lin), "linear_to_srgb_u8")
    x = np.minimum(lin, 1.0)  # NaN stays NaN; +inf and overshoot land in the cell of 1.0
    if x.dtype == np.float32:
        base, thresholds = _u8_float32_bits_lut()
        cell = np.empty(x.shape, dtype=np.intp)  # take() would convert int32 indices itself, slower
        np.right_shift(x.view(np.int32), _FLOAT32_CELL_SHIFT, out=cell)  # negative floats: < 0, clipped
    else:
        base, thresholds = _u8_threshold_lut(x.dtype.str)
        with np.errstate(invalid="ignore"):  # NaN and -inf cast to some integer; mode="clip" tames it
            cell = np.multiply(x, len(base)).astype(np.intp)
    codes = np.take(base, cell, mode="clip")
    codes += np.take(thresholds, cell, mode="clip") <= x  # False for NaN: NaN maps to 0
    return codes


# ---------------------------------------------------------------- internals


def _as_float(x: np.ndarray, where: str) -> np.ndarray:
    """float32 / float64 as they are, float16 -> float32, other numbers (Lab, L as integers) -> float64."""
    if x.dtype in (np.float32, np.float64):
        return x
    if x.dtype == np.float16:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.integer) and where in ("srgb_to_linear", "rgb_to_lab", "rgb_to_l"):
        raise InputError(
            f"{where}: integer images must be uint8 or uint16, got {x.dtype}",
            "convert the image to uint8, uint16 or float in 0..1",
        )
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.longdouble:
        return x.astype(np.float64)
    raise InputError(
        f"{where}: expected a float32 or float64 array, got {x.dtype}",
        "convert with .astype(np.float32)",
    )


def _check_channels(x: np.ndarray, where: str, space: str) -> np.ndarray:
    """x itself, or one colour (3,) as (1, 3): the kernels index planes and need them as arrays."""
    if x.ndim < 1 or x.shape[-1] != 3:
        raise InputError(
            f"{where}: expected {space} values with 3 channels on the last axis, got shape {x.shape}",
            "pass an (..., 3) array (H x W x 3 for an image)",
        )
    return x[None] if x.ndim == 1 else x


def _to_planes(x: np.ndarray) -> np.ndarray:
    """``(..., 3)`` pixels -> contiguous ``(3, ...)`` planes (a float copy; integers keep their type)."""
    return np.ascontiguousarray(np.moveaxis(x, -1, 0))


def _mix(planes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``matrix @ planes`` over the first axis, elementwise.

    Not a BLAS call on purpose: multithreaded BLAS on a 3x3 matrix gains little and stalls badly
    (20x measured) when the CPU is shared with other work, such as a decode thread.
    """
    out = np.empty_like(planes)
    scratch = np.empty_like(planes[0])
    for row, target in zip(matrix.astype(planes.dtype), out, strict=True):
        np.multiply(planes[0], row[0], out=target)
        for column in (1, 2):
            np.multiply(planes[column], row[column], out=scratch)
            target += scratch
    return out


def _clip_unit(x: np.ndarray) -> None:
    np.clip(x, 0.0, 1.0, out=x)


def _srgb_to_linear(x: np.ndarray, out: np.ndarray) -> None:
    low = x <= SRGB_KNEE
    low_values = x[low] / 12.92
    np.add(x, 0.055, out=out)
    out /= 1.055
    np.maximum(out, 0.0, out=out)  # the power branch is discarded where x is low; avoid NaN there
    np.power(out, 2.4, out=out)
    out[low] = low_values


def _linear_to_srgb(x: np.ndarray, out: np.ndarray) -> None:
    """Encode x into out (out may be x itself)."""
    low = x <= LINEAR_KNEE
    low_values = x[low] * 12.92
    np.maximum(x, LINEAR_KNEE, out=out)
    np.power(out, 1 / 2.4, out=out)
    out *= 1.055
    out -= 0.055
    out[low] = low_values


def _lab_f(t: np.ndarray) -> None:
    """CIE f(t) in place: cube root above LAB_EPSILON, linear below."""
    low = t <= LAB_EPSILON
    low_values = t[low] * LAB_KAPPA + LAB_F_OFFSET
    _cbrt_inplace(t)
    t[low] = low_values


def _lab_f_inverse(f: np.ndarray) -> None:
    """Inverse of CIE f in place: cube above LAB_F_KNEE, linear below."""
    low = f <= LAB_F_KNEE
    linear = f - LAB_F_OFFSET  # both branches everywhere: cheaper than gathering the low ones
    linear /= LAB_KAPPA
    cube = f * f
    np.multiply(cube, f, out=f)
    np.copyto(f, linear, where=low)


def _cbrt_inplace(t: np.ndarray) -> None:
    """Cube root of t in place for t > LAB_EPSILON (smaller values are overwritten by the caller)."""
    if t.dtype == np.float64:
        np.cbrt(t, out=t)
        return
    # float32: libm's scalar cbrtf is ~5x slower than NumPy's SIMD log and exp.
    np.maximum(t, LAB_EPSILON, out=t)
    np.log(t, out=t)
    t *= np.float32(1 / 3)
    np.exp(t, out=t)


@functools.cache
def _srgb_to_linear_lut(bits: int) -> np.ndarray:
    codes = np.arange(2**bits, dtype=np.float64) / (2**bits - 1)
    out = np.empty_like(codes)
    _srgb_to_linear(codes, out)
    out = out.astype(np.float32)
    out.flags.writeable = False
    return out


@functools.cache
def _y_luts(bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lin = _srgb_to_linear_lut(bits).astype(np.float64)
    luts = tuple((lin * weight).astype(np.float32) for weight in _Y_FROM_RGB)
    for lut in luts:
        lut.flags.writeable = False
    return luts


_FLOAT32_CELL_SHIFT = 11  # float32 bits >> 11: 8 exponent bits and the top 12 of the 23 mantissa bits


@functools.cache
def _u8_float32_bits_lut() -> tuple[np.ndarray, np.ndarray]:
    """Per float32-bits cell of 0..1: base code and the one code boundary inside (or +inf).

    Cells run up to the one starting at 1.0, plus a last cell that every positive NaN is clipped
    to (base 0). A threshold is the smallest float32 at or above the float64 boundary, so comparing
    float32 values with it decides exactly as comparing them with the boundary would.
    """
    boundaries = np.empty(255)
    _srgb_to_linear((np.arange(1, 256) - 0.5) / 255.0, boundaries)  # linear value where code k starts
    exact = boundaries.astype(np.float32)
    exact = np.where(exact < boundaries, np.nextafter(exact, np.float32(np.inf)), exact)
    one_cell = int(np.float32(1.0).view(np.int32)) >> _FLOAT32_CELL_SHIFT
    starts = (np.arange(one_cell + 1, dtype=np.int64) << _FLOAT32_CELL_SHIFT).astype(np.int32)
    starts = starts.view(np.float32)
    base = np.searchsorted(exact, starts, side="right").astype(np.uint8)
    inside = exact.view(np.int32) >> _FLOAT32_CELL_SHIFT
    if len(np.unique(inside)) != len(inside):
        raise AssertionError("two sRGB code boundaries share a float32 cell; use a smaller shift")
    thresholds = np.full(one_cell + 2, np.inf, dtype=np.float32)
    thresholds[inside] = exact
    thresholds[inside[exact == starts[inside]]] = np.inf  # a boundary on a cell start is already in base
    base = np.append(base, np.uint8(0))  # the NaN cell
    base.flags.writeable = False
    thresholds.flags.writeable = False
    return base, thresholds


@functools.cache
def _u8_threshold_lut(dtype: str, cells: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per cell of linear light: the code at the cell start and the one code boundary inside (or 2.0)."""
    boundaries = np.empty(255)
    _srgb_to_linear((np.arange(1, 256) - 0.5) / 255.0, boundaries)  # linear value where code k starts
    starts = np.arange(cells) / cells
    base = np.searchsorted(boundaries, starts, side="right").astype(np.uint8)
    thresholds = np.full(cells, 2.0)
    inside = np.floor(boundaries * cells).astype(np.intp)
    if len(np.unique(inside)) != len(inside):
        raise AssertionError("two sRGB code boundaries share a LUT cell; use more cells")
    thresholds[inside] = boundaries
    exact_start = boundaries == inside / cells  # a boundary on a cell start is already in base
    thresholds[inside[exact_start]] = 2.0
    thresholds = thresholds.astype(dtype)
    base.flags.writeable = False
    thresholds.flags.writeable = False
    return base, thresholds
