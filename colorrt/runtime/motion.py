"""Global camera motion and warps: phase-correlation pan estimate, bilinear shift and flow warps."""

from __future__ import annotations

import functools

import numpy as np

# A pan is trusted when the correlation peak stands this many times the expected noise maximum,
# sqrt(2 ln N), above the surface's mean (in its standard deviations). Measured peak-to-sidelobe
# ratios: grainy pans 9 (48x64) and 30 (144x256); unrelated pictures at most 4.9 and 7.4.
SHIFT_PSR_FACTOR = 2.0
SHIFT_LOWPASS = 0.15  # cycles/pixel: Gaussian weight on the cross spectrum; grain lives above it
MAX_SHIFT_FRACTION = 0.25  # a global shift larger than this share of the frame is not a pan


def warp_bilinear(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample a (C, h, w) image at ``p + flow[:, p]`` for every pixel p, bilinearly.

    Returns the (C, h, w) warped image and an (h, w) mask of pixels whose source lies inside the
    image (elsewhere the warped value is meaningless). ``flow`` is (2, h, w): x then y, in pixels.
    """
    height, width = image.shape[-2:]
    rows, cols = np.mgrid[0:height, 0:width]
    x = cols + np.asarray(flow[0], dtype=np.float64)
    y = rows + np.asarray(flow[1], dtype=np.float64)
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)  # False for NaN flow
    x, y = np.where(inside, x, 0.0), np.where(inside, y, 0.0)
    x0, y0 = np.floor(x).astype(np.intp), np.floor(y).astype(np.intp)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = x - x0, y - y0
    top = image[:, y0, x0] * (1 - fx) + image[:, y0, x1] * fx
    bottom = image[:, y1, x0] * (1 - fx) + image[:, y1, x1] * fx
    return top * (1 - fy) + bottom * fy, inside


def shift_bilinear(image: np.ndarray, shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A (C, h, w) image moved by a uniform ``(dy, dx)``: :func:`warp_bilinear` with flow ``-shift``.

    Four shifted slices instead of a per-pixel gather (about 20x faster at render size). Returns the
    moved image (0 outside) and the (h, w) mask of pixels whose source lies inside the image.
    """
    height, width = image.shape[-2:]
    out = np.zeros_like(image)
    inside = np.zeros((height, width), dtype=bool)
    (row, fy), (col, fx) = (_split_offset(-d) for d in shift)
    rows = _valid_span(row, fy, height)
    cols = _valid_span(col, fx, width)
    if rows is None or cols is None:
        return out, inside
    (y0, y1), (x0, x1) = rows, cols

    def tap(dy: int, dx: int) -> np.ndarray:
        return image[:, y0 + row + dy : y1 + row + dy, x0 + col + dx : x1 + col + dx]

    top = tap(0, 0) * (1 - fx) + (tap(0, 1) * fx if fx else 0)
    region = top * (1 - fy)
    if fy:
        region += (tap(1, 0) * (1 - fx) + (tap(1, 1) * fx if fx else 0)) * fy
    out[:, y0:y1, x0:x1] = region
    inside[y0:y1, x0:x1] = True
    return out, inside


def _split_offset(offset: float) -> tuple[int, float]:
    whole = int(np.floor(offset))
    return whole, float(offset - whole)


def _valid_span(offset: int, fraction: float, size: int) -> tuple[int, int] | None:
    """Output indices ``[start, stop)`` whose taps ``i + offset`` (and ``+ 1`` when fractional) exist."""
    start = max(0, -offset)
    stop = min(size, size - offset - (1 if fraction else 0))
    return (start, stop) if stop > start else None


def global_shift(previous: np.ndarray, current: np.ndarray) -> tuple[float, float] | None:
    """``(dy, dx)`` with ``current[y, x] ~ previous[y - dy, x - dx]``: the camera's pan, in pixels.

    Phase correlation made robust to film grain: the cross spectrum of the windowed frames is
    half-whitened (divided by the square root of its magnitude) and low-passed, then the peak is
    refined to sub-pixel by a parabola on each axis (about 0.02 px on 144x256 grainy pans). None when
    the peak does not stand out (unrelated or flat pictures) or the shift is too large for a pan.
    """
    shape = previous.shape
    window, lowpass = _correlation_filters(shape)
    spectra = [np.fft.rfft2((x - x.mean()) * window) for x in (previous, current)]
    cross = spectra[1] * np.conj(spectra[0])
    cross /= np.sqrt(np.abs(cross)) + 1e-12
    cross *= lowpass
    surface = np.fft.irfft2(cross, s=shape)
    peak = np.unravel_index(int(np.argmax(surface)), shape)
    spread = surface.std()
    threshold = SHIFT_PSR_FACTOR * np.sqrt(2 * np.log(surface.size))
    if not spread > 0 or (surface[peak] - surface.mean()) / spread < threshold:
        return None
    shift = tuple(_refined_peak(surface, peak, axis) for axis in range(2))
    if any(abs(value) > MAX_SHIFT_FRACTION * size for value, size in zip(shift, shape, strict=True)):
        return None
    return shift


@functools.lru_cache(maxsize=8)
def _correlation_filters(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Hann window of the frames and Gaussian low-pass of the cross spectrum, per frame shape."""
    window = np.outer(np.hanning(shape[0]), np.hanning(shape[1]))
    fy, fx = np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :]
    return window, np.exp(-(fx * fx + fy * fy) / (2 * SHIFT_LOWPASS**2))


def _refined_peak(surface: np.ndarray, peak: tuple[int, ...], axis: int) -> float:
    """Sub-pixel position of ``peak`` along ``axis`` (parabola through 3 points), as a signed shift."""
    size = surface.shape[axis]
    before, after = list(peak), list(peak)
    before[axis], after[axis] = (peak[axis] - 1) % size, (peak[axis] + 1) % size
    left, centre, right = surface[tuple(before)], surface[peak], surface[tuple(after)]
    curvature = left - 2 * centre + right
    value = peak[axis] + (0.5 * (left - right) / curvature if curvature < 0 else 0.0)
    return float(value - size if value > size / 2 else value)
