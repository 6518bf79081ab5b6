"""Temporal stability for video: scene-cut detection, chroma smoothing over time, flicker and warp metrics.

Per-frame colorizers flicker: the same wall changes hue from one frame to the next because film grain
and small exposure changes move the network's guess. :class:`ChromaStabilizer` keeps an exponential
moving average of the model's ab at render size (cheap: a few hundred kilobytes per frame), weighted
down where the picture moves so moving objects do not smear, and reset at scene cuts so one shot's
colours never leak into the next. :class:`SceneCutDetector` finds the cuts the way PySceneDetect's
``ContentDetector`` does (mean absolute HSV difference between consecutive downscaled frames, threshold
27 on a 0..255 scale, minimum scene length 15 frames), with a causal adaptive test against fast pans.
:func:`flicker` measures what the stabilizer removes in still regions; :func:`warp_error` measures
temporal consistency along the motion, where smoothing can also smear colour.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from colorrt.errors import InputError

DETECT_WIDTH = 128  # pixels: frames are block-averaged down to about this width before comparison
BLOCK_SAMPLES = 3  # pixels per block side averaged by block_mean (a 3x3 grid)
CONTENT_THRESHOLD = 27.0  # mean abs HSV difference on a 0..255 scale (PySceneDetect ContentDetector)
MIN_SCENE_LEN = 15  # frames: a cut closer than this to the previous one is ignored (flashes, flicker)
ADAPTIVE_RATIO = 1.5  # a cut's score must also be this many times the recent average (fast pans)
ADAPTIVE_WINDOW = 8  # frames of recent scores averaged for the adaptive test
MOTION_SIGMA = 6.0  # CIE L units: luminance change at which a pixel counts as moving (weight e^-1)
# A pan is trusted when the correlation peak stands this many times the expected noise maximum,
# sqrt(2 ln N), above the surface's mean (in its standard deviations). Measured peak-to-sidelobe
# ratios: grainy pans 9 (48x64) and 30 (144x256); unrelated pictures at most 4.9 and 7.4.
SHIFT_PSR_FACTOR = 2.0
SHIFT_LOWPASS = 0.15  # cycles/pixel: Gaussian weight on the cross spectrum; grain lives above it
MAX_SHIFT_FRACTION = 0.25  # a global shift larger than this share of the frame is not a pan
MIN_SHIFT_PX = 0.1  # smaller global shifts are estimation noise: a still shot is not resampled


def block_mean(image: np.ndarray, width: int = DETECT_WIDTH, samples: int = BLOCK_SAMPLES) -> np.ndarray:
    """Downscale an HW or HWC image by an integer factor to a width of about ``width``.

    Each output pixel averages a ``samples`` x ``samples`` grid of the pixels of its block (all of
    them when the block is that small): enough to average film grain out, at a fraction of the
    cost of reading every pixel of a full-HD frame.
    """
    height_in, width_in = image.shape[:2]
    factor = max(1, width_in // width)
    per_block = min(factor, samples)
    h, w = height_in // factor, width_in // factor
    offsets = (np.arange(per_block) * factor) // per_block  # evenly spread inside each block
    rows = (np.arange(h)[:, None] * factor + offsets).ravel()
    cols = (np.arange(w)[:, None] * factor + offsets).ravel()
    grid = np.asarray(image[np.ix_(rows, cols)], dtype=np.float32)
    shape = (h, per_block, w, per_block) + grid.shape[2:]
    return grid.reshape(shape).mean(axis=(1, 3))


def rgb_to_hsv255(rgb: np.ndarray) -> np.ndarray:
    """HWC RGB on 0..255 → (3, H, W) HSV in OpenCV's 8-bit ranges (H 0..180, S and V 0..255)."""
    r, g, b = (rgb[..., i] for i in range(3))
    value = rgb.max(axis=-1)
    chroma = value - rgb.min(axis=-1)
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(
        value == r, ((g - b) / safe) % 6, np.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    hue = np.where(chroma > 0, hue * 30.0, 0.0)  # 60 degrees per sextant, halved to fit 0..180
    saturation = np.where(value > 0, 255.0 * chroma / np.where(value > 0, value, 1.0), 0.0)
    return np.stack([hue, saturation, value]).astype(np.float32)


@dataclass(frozen=True)
class DetectorState:
    """What a :class:`SceneCutDetector` remembers between frames (saved with resumable video jobs)."""

    previous: np.ndarray | None  # features of the last frame
    since_cut: int  # frames since the last cut
    recent: tuple[float, ...] = ()  # scores of the last few frames (adaptive test)


class SceneCutDetector:
    """Finds hard cuts in a sequence of frames, the way PySceneDetect's ContentDetector does.

    Frames are block-averaged to about 128 pixels wide and converted to HSV; the score of a frame
    is the mean absolute difference of H, S and V from the previous frame (of V alone when both are
    grey), on a 0..255 scale. A frame starts a new scene when its score reaches ``threshold``, it is
    at least ``min_scene_len`` frames after the previous cut and, when ``adaptive_ratio`` is set,
    its score is that many times the average of the last few frames' scores (so a fast pan, whose
    scores are all high, is not cut to pieces; this is the causal half of PySceneDetect's
    AdaptiveDetector).

    Args:
        threshold: score that starts a new scene (27, ContentDetector's default).
        min_scene_len: frames a scene lasts at least (15, ContentDetector's default).
        adaptive_ratio: required ratio to the recent average score; None turns the test off.
    """

    def __init__(
        self,
        threshold: float | None = None,
        min_scene_len: int = MIN_SCENE_LEN,
        adaptive_ratio: float | None = ADAPTIVE_RATIO,
    ) -> None:
        if min_scene_len < 1:
            raise InputError(f"min_scene_len must be >= 1 frame, got {min_scene_len}")
        self.threshold = CONTENT_THRESHOLD if threshold is None else float(threshold)
        if self.threshold <= 0:
            raise InputError(f"scene-cut threshold must be > 0, got {self.threshold}")
        self.min_scene_len = min_scene_len
        self.adaptive_ratio = adaptive_ratio
        self.last_score = 0.0
        self._previous: np.ndarray | None = None
        self._since_cut = 0
        self._recent: tuple[float, ...] = ()

    def features(self, image: np.ndarray) -> np.ndarray:
        """(C, h, w) summary of one frame (uint8/uint16/float HW grey or HWC RGB): HSV, or V for grey."""
        small = block_mean(_to_255(image))
        if small.ndim == 2 or _is_grey(small):
            return (small if small.ndim == 2 else small[..., 0])[None]
        return rgb_to_hsv255(small)

    @staticmethod
    def score(previous: np.ndarray, current: np.ndarray) -> float:
        """Mean absolute difference of two frames' features (infinite when their sizes differ)."""
        if previous.shape[1:] != current.shape[1:]:
            return float("inf")
        if previous.shape[0] != current.shape[0]:  # grey vs colour: compare V (the grey level) only
            previous, current = previous[-1:], current[-1:]
        return float(np.abs(current - previous).mean())

    def update(self, features: np.ndarray) -> bool:
        """Feed the next frame's features; True when this frame starts a new scene."""
        previous, self._previous = self._previous, features
        self._since_cut += 1
        if previous is None:
            self.last_score = 0.0
            return False
        score = self.last_score = self.score(previous, features)
        recent = sum(self._recent) / len(self._recent) if self._recent else 0.0
        cut = (
            score >= self.threshold
            and self._since_cut >= self.min_scene_len
            and (self.adaptive_ratio is None or score >= self.adaptive_ratio * recent)
        )
        if cut:
            self._since_cut = 0
        else:
            self._recent = (self._recent + (min(score, 255.0),))[-ADAPTIVE_WINDOW:]
        return cut

    def state(self) -> DetectorState:
        """Snapshot of what the detector remembers (arrays are not copied: they are never modified)."""
        return DetectorState(self._previous, self._since_cut, self._recent)

    def restore(self, state: DetectorState) -> None:
        """Continue from a snapshot taken with :meth:`state`."""
        self._previous, self._since_cut, self._recent = state.previous, state.since_cut, tuple(state.recent)


@dataclass(frozen=True)
class StabilizerState:
    """What a :class:`ChromaStabilizer` remembers: the smoothed ab and the luminance it was seen with."""

    ab: np.ndarray | None  # (2, h, w) float32 at render size
    luma: np.ndarray | None  # (h, w) float32 CIE L at render size


class ChromaStabilizer:
    """Exponential moving average of a model's ab over time, reset at scene cuts.

    ``out_t = w * out_{t-1} + (1 - w) * ab_t`` per pixel, with ``w = strength * exp(-(dL / sigma)^2)``
    where ``dL`` is the luminance change of that pixel since the previous frame: static regions are
    smoothed, moving ones follow the model. ``strength`` 0 turns smoothing off; 0.6 removes most
    flicker while a colour change settles within a few frames.

    With ``compensate_pans`` (and luma given), the running average first follows the camera: the
    global translation between the previous and the current luminance is found by phase correlation
    and the past ab is moved by it (bilinear), so a pan is smoothed along the motion instead of
    smearing colour across it; pixels that entered the frame take the model's ab.

    Args:
        strength: weight of the past, 0 <= strength < 1.
        motion_sigma: luminance change (CIE L units) that counts as motion; ``None`` ignores motion.
        compensate_pans: follow global camera motion before blending (needs luma).
    """

    def __init__(
        self,
        strength: float = 0.6,
        motion_sigma: float | None = MOTION_SIGMA,
        compensate_pans: bool = True,
    ) -> None:
        if not 0.0 <= strength < 1.0:
            raise InputError(
                f"temporal strength must be in [0, 1), got {strength}",
                "use 0 to turn smoothing off, about 0.6 for film",
            )
        self.strength = float(strength)
        self.motion_sigma = motion_sigma
        self.compensate_pans = compensate_pans
        self._ab: np.ndarray | None = None
        self._luma: np.ndarray | None = None

    def update(self, ab: np.ndarray, *, cut: bool = False, luma: np.ndarray | None = None) -> np.ndarray:
        """Smoothed ab for the next frame.

        Args:
            ab: (2, h, w) model ab at render size.
            cut: this frame starts a new scene (the average restarts from it).
            luma: (h, w) CIE L of this frame at render size, for motion weighting (optional).
        """
        ab = np.asarray(ab, dtype=np.float32)
        previous = self._ab
        if self.strength == 0.0 or cut or previous is None or previous.shape != ab.shape:
            out = ab
        else:
            previous, previous_luma, inside = self._follow_pan(previous, luma)
            weight = self._weight(luma, previous_luma)
            if inside is not None:
                weight = weight * inside
            out = (ab + weight * (previous - ab)).astype(np.float32, copy=False)
        self._ab, self._luma = out, luma
        return out

    def _follow_pan(
        self, previous: np.ndarray, luma: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(past ab, past luma, inside mask) moved by the global shift; unchanged when there is none."""
        if not self.compensate_pans or luma is None or self._luma is None or self._luma.shape != luma.shape:
            return previous, self._luma, None
        shift = global_shift(self._luma, luma)
        if shift is None or max(abs(shift[0]), abs(shift[1])) < MIN_SHIFT_PX:
            return previous, self._luma, None
        moved, inside = shift_bilinear(np.concatenate([previous, self._luma[None]]), shift)
        return moved[:2], moved[2], inside

    def _weight(self, luma: np.ndarray | None, previous_luma: np.ndarray | None) -> np.ndarray | float:
        if self.motion_sigma is None or luma is None or previous_luma is None:
            return self.strength
        if previous_luma.shape != luma.shape:
            return self.strength
        change = (luma - previous_luma) / self.motion_sigma
        return (self.strength * np.exp(-(change * change))).astype(np.float32)

    def reset(self) -> None:
        """Forget the past (the next frame is taken as it is)."""
        self._ab = self._luma = None

    def state(self) -> StabilizerState:
        """Snapshot of the running average (arrays are not copied: they are never modified)."""
        return StabilizerState(self._ab, self._luma)

    def restore(self, state: StabilizerState) -> None:
        """Continue from a snapshot taken with :meth:`state`."""
        self._ab, self._luma = state.ab, state.luma


@dataclass(frozen=True)
class TemporalState:
    """Detector + stabilizer snapshot after one frame: enough to continue a video exactly from there."""

    detector: DetectorState
    stabilizer: StabilizerState

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dictionary of arrays for ``np.savez`` (absent arrays are left out)."""
        arrays = {
            "since_cut": np.array(self.detector.since_cut),
            "recent": np.array(self.detector.recent, dtype=np.float64),
        }
        for key, value in (
            ("previous", self.detector.previous),
            ("ab", self.stabilizer.ab),
            ("luma", self.stabilizer.luma),
        ):
            if value is not None:
                arrays[key] = value
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TemporalState:
        """Inverse of :meth:`to_arrays`."""
        return cls(
            DetectorState(
                arrays.get("previous"),
                int(arrays["since_cut"]),
                tuple(float(x) for x in arrays.get("recent", ())),
            ),
            StabilizerState(arrays.get("ab"), arrays.get("luma")),
        )


def flicker(
    ab_frames: Sequence[np.ndarray],
    luma_frames: Sequence[np.ndarray],
    *,
    static_threshold: float = 1.0,
    cuts: Sequence[int] = (),
) -> float:
    """Mean absolute frame-to-frame ab change (CIE ab units) over static pixels.

    A pixel is static between frames t-1 and t when its luminance changed by less than
    ``static_threshold`` (CIE L units); there any colour change is flicker. Pairs that straddle a
    scene cut (``t`` in ``cuts``) are skipped. Arrays: ab (2, h, w), luma (h, w), same render size.
    """
    if len(ab_frames) != len(luma_frames):
        raise InputError(f"flicker needs one luma per ab frame, got {len(ab_frames)} and {len(luma_frames)}")
    skip = set(cuts)
    total, count = 0.0, 0
    for t in range(1, len(ab_frames)):
        if t in skip:
            continue
        static = np.abs(np.asarray(luma_frames[t]) - np.asarray(luma_frames[t - 1])) < static_threshold
        if not static.any():
            continue
        change = np.abs(np.asarray(ab_frames[t], np.float64) - np.asarray(ab_frames[t - 1], np.float64))
        total += float(change[:, static].sum())
        count += int(static.sum()) * change.shape[0]
    return total / count if count else 0.0


def warp_error(
    ab_frames: Sequence[np.ndarray],
    flows: Sequence[np.ndarray],
    *,
    cuts: Sequence[int] = (),
    valid: Sequence[np.ndarray] | None = None,
) -> float:
    """Warping error: mean absolute difference between each frame and the previous one moved by the flow.

    The temporal-consistency measure of the video-colorization literature (Lai et al. 2018, "Learning
    Blind Video Temporal Consistency"): ``|O_t - W(O_{t-1})|`` averaged over the valid pixels of
    every pair and every channel (CIE ab units for ab frames), where ``W`` samples ``O_{t-1}``
    bilinearly at ``p + flows[t - 1][:, p]``. Unlike :func:`flicker` it also scores moving regions,
    so smoothing that smears colour along motion raises it. Lai et al. average squared RGB error
    per frame; this pools absolute ab error over all pairs so it reads on the same scale as
    :func:`flicker`.

    Args:
        ab_frames: n arrays (C, h, w), all the same shape.
        flows: n - 1 backward flows (2, h, w), one per pair: ``flows[t - 1]`` maps each pixel of
            frame t to where it was in frame t-1, channel 0 the x (column) displacement and channel
            1 the y (row) displacement, in pixels (RAFT's layout).
        cuts: frames that start a new scene; the pair (t - 1, t) is skipped for each t in ``cuts``.
        valid: optional n - 1 boolean (h, w) masks, False where frame t's pixel is occluded in
            frame t-1. Pixels whose source falls outside frame t-1, or whose flow is not finite,
            are always excluded.

    Returns:
        The mean error, 0.0 when no pixel is valid.
    """
    ab_frames = [np.asarray(ab, dtype=np.float64) for ab in ab_frames]
    _check_warp_inputs(ab_frames, flows, valid)
    skip = set(cuts)
    total, count = 0.0, 0
    for t in range(1, len(ab_frames)):
        if t in skip:
            continue
        warped, inside = warp_bilinear(ab_frames[t - 1], flows[t - 1])
        if valid is not None:
            inside &= np.asarray(valid[t - 1], dtype=bool)
        total += float(np.abs(ab_frames[t] - warped)[:, inside].sum())
        count += int(inside.sum()) * warped.shape[0]
    return total / count if count else 0.0


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


def _check_warp_inputs(
    frames: list[np.ndarray], flows: Sequence[np.ndarray], valid: Sequence[np.ndarray] | None
) -> None:
    if frames and (frames[0].ndim != 3 or any(f.shape != frames[0].shape for f in frames)):
        shapes = sorted({f.shape for f in frames})
        raise InputError(
            f"warp_error needs frames of one shape (C, h, w), got shapes {shapes}",
            "resize every frame to the same render size; give a grey frame as (1, h, w)",
        )
    pairs = max(0, len(frames) - 1)
    if len(flows) != pairs:
        raise InputError(
            f"warp_error needs one flow per consecutive pair ({pairs} for {len(frames)} frames), "
            f"got {len(flows)}",
            "flows[t - 1] is the backward flow from frame t to frame t-1",
        )
    size = frames[0].shape[1:] if frames else ()
    for t, flow in enumerate(flows, start=1):
        if np.shape(flow) != (2, *size):
            raise InputError(
                f"flow for pair ({t - 1}, {t}) must have shape {(2, *size)}, got {np.shape(flow)}",
                "flows are (2, h, w) at the frames' size: x displacement then y, in pixels",
            )
    if valid is not None and (len(valid) != pairs or any(np.shape(m) != size for m in valid)):
        raise InputError(
            f"warp_error needs {pairs} valid masks of shape {size}, "
            f"got {len(valid)} of shapes {sorted({np.shape(m) for m in valid})}",
            "one boolean (h, w) mask per pair, or valid=None",
        )


def _to_255(image: np.ndarray) -> np.ndarray:
    """uint8 stays; uint16 / float [0, 1] images are brought to a 0..255 float scale."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 257.0
    return np.asarray(image, dtype=np.float32) * 255.0


def _is_grey(small_rgb: np.ndarray) -> bool:
    return bool(np.abs(small_rgb[..., 0] - small_rgb[..., 1]).max() < 1.0) and bool(
        np.abs(small_rgb[..., 1] - small_rgb[..., 2]).max() < 1.0
    )
