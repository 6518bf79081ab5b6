"""Temporal-consistency measures: :func:`flicker` (still regions) and :func:`warp_error` (along motion)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from colorrt.errors import InputError
from colorrt.runtime.motion import warp_bilinear


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
