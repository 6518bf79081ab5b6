"""The frame pipeline's stages on the GPU path: host analysis, then :class:`GpuBatchLoop` on the device.

    source thread   decode (PyAV's threads; DALI's frames stay on the GPU)
    prepare stage   frame checks; with temporal smoothing, scene cuts and the stabilizer's motion luma
                    from a sample grid of each frame (host threads, decisions in frame order)
    gpu stage       GpuBatchLoop: pinned asynchronous uploads, L and preprocess (kernels), engine
                    batches, decode; with smoothing the ab goes to the host, through ChromaStabilizer
                    in frame order and back; merge; downloads while the next batch computes
    consumer        encode (SegmentEncoder on PyAV's threads) or the caller of ``stream()``

Temporal smoothing runs on the host, after the ab's download, with the CPU path's own
:class:`ChromaStabilizer` and :class:`SceneCutDetector`: one implementation of the film maths, the
same states saved for ``resume``, and the ab it reads is at render size (a few hundred kilobytes a
frame), so the trip costs little beside the frames themselves. The detector and the stabilizer's
motion luma need only the pixels :func:`~colorrt.runtime.cuts.block_mean` samples (about 384 x 216
of a frame): their values equal the CPU path's exactly, and a GPU frame sends only that grid to the host.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from colorrt.errors import InputError
from colorrt.kernels import pipeline as kernels
from colorrt.kernels.ops import DeviceOps
from colorrt.kernels.resize import resize_bilinear
from colorrt.runtime.cuts import DetectorState, block_grid, block_mean
from colorrt.runtime.gpu_loop import GpuBatchLoop
from colorrt.runtime.queues import Stage, ordered_map
from colorrt.runtime.render import side_by_side
from colorrt.runtime.stages import ColorizedFrame, ColorizeStages, _check_frame
from colorrt.runtime.temporal import TemporalState

DEPTH = 2  # batches in flight on the device (double buffering)


@dataclass
class _Frame:
    """A frame on its way through the GPU stage, with what the host decided about it."""

    tag: Any
    image: Any  # host or device frame, checked
    cut: bool
    motion_luma: np.ndarray | None  # float32 block-averaged L (temporal smoothing only)
    detector: DetectorState | None
    luminance: np.ndarray | None  # host full-res L, for the side-by-side view only
    state: TemporalState | None = None


class GpuColorizeStages(ColorizeStages):
    """:class:`ColorizeStages` whose pre- and post-processing run on the device (see the module docstring).

    Args: those of :class:`ColorizeStages`, and ``ops``, the array backend of the engine's device.
    """

    def __init__(self, *args: Any, ops: DeviceOps, **keywords: Any) -> None:
        super().__init__(*args, **keywords)
        self.ops = ops

    def stages(self) -> list[tuple[str, Stage]]:
        """``(name, stage)`` pairs for :class:`Pipeline`; the source must yield ``(tag, image)`` pairs."""
        return [("prepare", self.prepare), ("gpu", self.colorize)]

    def prepare(self, frames: Iterator[tuple[Any, Any]]) -> Iterator[_Frame]:  # type: ignore[override]
        """Checked frames with their scene cuts (analysis on ``options.workers`` threads, cuts in order)."""
        jobs = ((tag, (image,)) for tag, image in frames)
        for tag, (image, features, motion, luminance) in ordered_map(
            self._analyse, jobs, self.options.workers, "prepare"
        ):
            cut, detector_state = False, None
            if self.detector is not None:
                cut = self.detector.update(features)
                detector_state = self.detector.state()
            yield _Frame(tag, image, cut, motion, detector_state, luminance)

    def colorize(self, frames: Iterator[_Frame]) -> Iterator[ColorizedFrame]:
        """The device loop: colour frames in order, smoothed over time on the host when asked."""
        smoother = self._smooth if self.stabilizer is not None else None
        loop = GpuBatchLoop(
            self.engine,
            batch_size=self.batch_size,
            depth=DEPTH,
            ops=self.ops,
            contract=self.contract,
            strength=self.strength,
        )
        with loop:
            for frame, rgb in loop.run_tagged(((f, f.image) for f in frames), smoother):
                if frame.luminance is not None:
                    rgb = side_by_side(frame.luminance, rgb)
                yield ColorizedFrame(rgb, frame.tag, frame.cut, frame.state)

    def _smooth(self, frames: list[_Frame], ab: np.ndarray) -> np.ndarray:
        """The stabilizer over one batch's ab, frame by frame (the host side of the loop's smoother)."""
        out = np.empty_like(ab)
        for i, frame in enumerate(frames):
            luma = resize_bilinear(frame.motion_luma, ab.shape[-2:])
            out[i] = self.stabilizer.update(ab[i], cut=frame.cut, luma=luma)
            frame.state = TemporalState(frame.detector, self.stabilizer.state())
        return out

    def _analyse(self, image: Any) -> tuple[Any, Any, Any, Any]:  # type: ignore[override]
        """(checked frame, detector features, motion luma, host L for side by side); thread-safe."""
        image = self.ops.as_array(image)
        if self.ops.on_device(image):
            with self.ops.activate():
                return self._analyse_on_device(_check_device_frame(image))
        image = _check_frame(image)
        luminance = kernels.luminance(image) if self.options.side_by_side else None
        if self.detector is None:
            return image, None, None, luminance
        rows, cols = block_grid(image.shape[0], image.shape[1])
        return (image, *self._features(image[np.ix_(rows, cols)]), luminance)

    def _analyse_on_device(self, image: Any) -> tuple[Any, Any, Any, Any]:
        """:meth:`_analyse` of a GPU frame: only its sample grid (and L, side by side) comes to the host."""
        ops, xp = self.ops, self.ops.xp
        luminance = ops.to_host(ops.kernels.luminance(image)) if self.options.side_by_side else None
        if self.detector is None:
            return image, None, None, luminance
        rows, cols = block_grid(image.shape[0], image.shape[1])
        grid = ops.to_host(image[xp.ix_(xp.asarray(rows), xp.asarray(cols))])
        return (image, *self._features(grid), luminance)

    def _features(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(detector features, motion luma) of a frame from its block_mean sample grid."""
        return self.detector.features(grid), block_mean(kernels.luminance(grid))


def _check_device_frame(image: Any) -> Any:
    """A GPU frame shaped (H, W) or (H, W, 1/3), uint8, uint16 or float; checked without a copy."""
    grey = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)
    if not (grey or (image.ndim == 3 and image.shape[2] == 3)):
        raise InputError(
            f"a frame must be shaped (H, W) grey or (H, W, 3) RGB, got {tuple(image.shape)}",
            "convert RGBA frames to RGB first",
        )
    if image.dtype not in (np.uint8, np.uint16) and image.dtype.kind != "f":
        raise InputError(f"frame dtype must be uint8, uint16 or float (0..1), got {image.dtype}")
    return image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
