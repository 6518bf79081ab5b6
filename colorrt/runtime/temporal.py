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

from dataclasses import dataclass

import numpy as np

from colorrt.errors import InputError
from colorrt.runtime.cuts import (
    ADAPTIVE_RATIO,
    ADAPTIVE_WINDOW,
    BLOCK_SAMPLES,
    CONTENT_THRESHOLD,
    DETECT_WIDTH,
    MIN_SCENE_LEN,
    DetectorState,
    SceneCutDetector,
    block_mean,
    rgb_to_hsv255,
)
from colorrt.runtime.flicker import flicker, warp_error
from colorrt.runtime.motion import (
    MAX_SHIFT_FRACTION,
    SHIFT_LOWPASS,
    SHIFT_PSR_FACTOR,
    global_shift,
    shift_bilinear,
    warp_bilinear,
)

__all__ = [
    "ADAPTIVE_RATIO",
    "ADAPTIVE_WINDOW",
    "BLOCK_SAMPLES",
    "CONTENT_THRESHOLD",
    "DEFAULT_TEMPORAL",
    "DETECT_WIDTH",
    "MAX_SHIFT_FRACTION",
    "MIN_SCENE_LEN",
    "MIN_SHIFT_PX",
    "MOTION_SIGMA",
    "SHIFT_LOWPASS",
    "SHIFT_PSR_FACTOR",
    "ChromaStabilizer",
    "DetectorState",
    "SceneCutDetector",
    "StabilizerState",
    "TemporalState",
    "block_mean",
    "check_strength",
    "flicker",
    "global_shift",
    "rgb_to_hsv255",
    "shift_bilinear",
    "warp_bilinear",
    "warp_error",
]

# Weight of the past in the chroma average: removes most flicker while a colour change settles
# within a few frames. The one default of the library, the CLI and the Ray adapter.
DEFAULT_TEMPORAL = 0.6
MOTION_SIGMA = 6.0  # CIE L units: luminance change at which a pixel counts as moving (weight e^-1)
MIN_SHIFT_PX = 0.1  # smaller global shifts are estimation noise: a still shot is not resampled


def check_strength(strength: float) -> None:
    """Refuse a temporal smoothing strength outside [0, 1)."""
    if not 0.0 <= strength < 1.0:
        raise InputError(
            f"temporal strength must be in [0, 1), got {strength}",
            f"use 0 to turn smoothing off, about {DEFAULT_TEMPORAL} for film",
        )


@dataclass(frozen=True)
class StabilizerState:
    """What a :class:`ChromaStabilizer` remembers: the smoothed ab and the luminance it was seen with."""

    ab: np.ndarray | None  # (2, h, w) float32 at render size
    luma: np.ndarray | None  # (h, w) float32 CIE L at render size


class ChromaStabilizer:
    """Exponential moving average of a model's ab over time, reset at scene cuts.

    ``out_t = w * out_{t-1} + (1 - w) * ab_t`` per pixel, with ``w = strength * exp(-(dL / sigma)^2)``
    where ``dL`` is the luminance change of that pixel since the previous frame: static regions are
    smoothed, moving ones follow the model. ``strength`` 0 turns smoothing off; the default,
    :data:`DEFAULT_TEMPORAL`, removes most flicker while a colour change settles within a few frames.

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
        strength: float = DEFAULT_TEMPORAL,
        motion_sigma: float | None = MOTION_SIGMA,
        compensate_pans: bool = True,
    ) -> None:
        check_strength(strength)
        self.strength = float(strength)
        self.motion_sigma = motion_sigma
        self.compensate_pans = compensate_pans
        self._ab: np.ndarray | None = None
        self._luma: np.ndarray | None = None

    def update(self, ab: np.ndarray, *, cut: bool = False, luma: np.ndarray | None = None) -> np.ndarray:
        """Smoothed ab for the next frame.

        Args:
            ab: (2, h, w) model ab at render size ((3, h, w) Lab for a wholesale merge).
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
        planes = len(previous)  # ab, or a wholesale model's Lab
        return moved[:planes], moved[planes], inside

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
