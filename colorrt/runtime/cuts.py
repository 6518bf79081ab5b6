"""Scene-cut detection, the way PySceneDetect's ``ContentDetector`` finds hard cuts.

:class:`SceneCutDetector` compares consecutive downscaled frames (mean absolute HSV difference,
threshold 27 on a 0..255 scale, minimum scene length 15 frames), with a causal adaptive test
against fast pans. The temporal stabilizer restarts its average at each cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from colorrt.errors import InputError

DETECT_WIDTH = 128  # pixels: frames are block-averaged down to about this width before comparison
BLOCK_SAMPLES = 3  # pixels per block side averaged by block_mean (a 3x3 grid)
CONTENT_THRESHOLD = 27.0  # mean abs HSV difference on a 0..255 scale (PySceneDetect ContentDetector)
MIN_SCENE_LEN = 15  # frames: a cut closer than this to the previous one is ignored (flashes, flicker)
ADAPTIVE_RATIO = 1.5  # a cut's score must also be this many times the recent average (fast pans)
ADAPTIVE_WINDOW = 8  # frames of recent scores averaged for the adaptive test


def block_mean(image: np.ndarray, width: int = DETECT_WIDTH, samples: int = BLOCK_SAMPLES) -> np.ndarray:
    """Downscale an HW or HWC image by an integer factor to a width of about ``width``.

    Each output pixel averages a ``samples`` x ``samples`` grid of the pixels of its block (all of
    them when the block is that small): enough to average film grain out, at a fraction of the
    cost of reading every pixel of a full-HD frame.
    """
    per_block = min(max(1, image.shape[1] // width), samples)
    rows, cols = block_grid(image.shape[0], image.shape[1], width, samples)
    grid = np.asarray(image[np.ix_(rows, cols)], dtype=np.float32)
    shape = (len(rows) // per_block, per_block, len(cols) // per_block, per_block) + grid.shape[2:]
    return grid.reshape(shape).mean(axis=(1, 3))


def block_grid(
    height: int, width_in: int, width: int = DETECT_WIDTH, samples: int = BLOCK_SAMPLES
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pixels :func:`block_mean` reads, block by block.

    ``block_mean`` of the ``image[np.ix_(rows, cols)]`` grid equals ``block_mean`` of the image, so
    a GPU frame's detector features and motion luma need only this grid on the host.
    """
    factor = max(1, width_in // width)
    per_block = min(factor, samples)
    h, w = height // factor, width_in // factor
    offsets = (np.arange(per_block) * factor) // per_block  # evenly spread inside each block
    rows = (np.arange(h)[:, None] * factor + offsets).ravel()
    cols = (np.arange(w)[:, None] * factor + offsets).ravel()
    return rows, cols


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
