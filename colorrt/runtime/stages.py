"""The colorization stages of the frame pipeline: prepare and batch, infer, decode, smooth and merge."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import InputError
from colorrt.gpu import import_cupy
from colorrt.kernels import pipeline as kernels
from colorrt.kernels.extras import model_feed
from colorrt.kernels.resize import resize_bilinear
from colorrt.runtime.cuts import DetectorState, SceneCutDetector, block_mean
from colorrt.runtime.options import StreamOptions
from colorrt.runtime.queues import Stage, ordered_map
from colorrt.runtime.render import side_by_side
from colorrt.runtime.temporal import ChromaStabilizer, TemporalState

_DEFAULT_OPTIONS = StreamOptions()


@dataclass(frozen=True)
class ColorizedFrame:
    """One colorized frame with the tag it came in with and the temporal state after it."""

    image: np.ndarray  # uint8 (H, W, 3) sRGB; (H, 2W, 3) with the grey input beside it (side_by_side)
    tag: Any
    cut: bool  # this frame starts a new scene
    state: TemporalState | None  # None when temporal smoothing is off


@dataclass
class _Item:
    tag: Any
    luminance: np.ndarray  # float32 (H, W) CIE L at full resolution
    render_shape: tuple[int, int]
    cut: bool
    motion_luma: np.ndarray | None  # float32 block-averaged L, for the stabilizer's motion weights
    detector: DetectorState | None


@dataclass
class _Batch:
    items: list[_Item]
    data: Any  # NCHW model input, replaced by the model output after inference


class ColorizeStages:
    """The three colorization stages (prepare+batch, infer, decode+smooth+merge) for a :class:`Pipeline`.

    Args:
        engine: an :class:`~colorrt.engines.base.Engine` (``contract``, ``device``, ``infer``).
        batch_size: frames per inference call.
        options: temporal smoothing and scene detection settings.
        initial_state: temporal state to continue from (resuming a video).
        contract: the contract to run the model with (a runtime's, at its render size); None: the
            engine's.
        strength: chroma scale before the merge (0 grey, 1 the model's colours, up to 2).
        palette: the reference palette of a model that takes one (``Runtime.reference_palette``).
    """

    def __init__(
        self,
        engine: Any,
        batch_size: int,
        options: StreamOptions = _DEFAULT_OPTIONS,
        initial_state: TemporalState | None = None,
        *,
        contract: ColorContract | None = None,
        strength: float = 1.0,
        palette: np.ndarray | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        kernels.check_chroma_strength(strength)
        self.engine = engine
        self.contract: ColorContract = engine.contract if contract is None else contract
        self.strength = strength
        self.palette = palette
        self.model = kernels.model_label(engine)
        self.batch_size = batch_size
        self.options = options
        smoothing = options.temporal > 0
        self.detector = (
            SceneCutDetector(options.scene_threshold, options.min_scene_len) if smoothing else None
        )
        self.stabilizer = (
            ChromaStabilizer(options.temporal, options.motion_sigma, options.compensate_pans)
            if smoothing
            else None
        )
        if initial_state is not None and smoothing:
            self.detector.restore(initial_state.detector)
            self.stabilizer.restore(initial_state.stabilizer)

    def stages(self) -> list[tuple[str, Stage]]:
        """``(name, stage)`` pairs for :class:`Pipeline`; the source must yield ``(tag, image)`` pairs."""
        return [("prepare", self.prepare), ("infer", self.infer), ("merge", self.merge)]

    def prepare(self, frames: Iterator[tuple[Any, Any]]) -> Iterator[_Batch]:
        """Luminance, scene cuts and batches of equal render shape, preprocessed to NCHW.

        Luminance and detector features are computed on ``options.workers`` threads; the scene-cut
        decisions and the batching follow in frame order.
        """
        jobs = ((tag, (image,)) for tag, image in frames)
        pending: list[_Item] = []
        for tag, analysed in ordered_map(self._analyse, jobs, self.options.workers, "prepare"):
            item = self._item(tag, *analysed)
            if pending and item.render_shape != pending[0].render_shape:
                yield self._batch(pending)
                pending = []
            pending.append(item)
            if len(pending) == self.batch_size:
                yield self._batch(pending)
                pending = []
        if pending:
            yield self._batch(pending)

    def infer(self, batches: Iterator[_Batch]) -> Iterator[_Batch]:
        """Run the engine on each batch (host arrays in and out, on any device, as ``Runtime`` does for
        images; a dict feed for models with extra inputs); a batch with NaN or infinite output stops
        the stream with a NonFiniteOutputError."""
        for batch in batches:
            batch.data = self.engine.infer(batch.data)
            kernels.check_finite(batch.data, self.model)
            yield batch

    def merge(self, batches: Iterator[_Batch]) -> Iterator[ColorizedFrame]:
        """Decode ab, smooth it over time (in order), merge it with the full-resolution luminance.

        The merge (upsampling ab and Lab -> sRGB at full resolution, the heaviest CPU step) runs on
        ``options.workers`` threads; frames come out in order.
        """
        jobs = self._smoothed(batches)
        merge = functools.partial(_merge_beside_grey if self.options.side_by_side else _merge, self.contract)
        for (item, state), rgb in ordered_map(merge, jobs, self.options.workers, "merge"):
            yield ColorizedFrame(rgb, item.tag, item.cut, state)

    def _smoothed(self, batches: Iterator[_Batch]) -> Iterator[tuple[tuple[_Item, Any], tuple]]:
        """((item, temporal state), (luminance, smoothed ab)) for each frame, in order."""
        for batch in batches:
            decoded = kernels.decode_ab(np.asarray(batch.data), self.contract, strength=self.strength)
            for item, ab in zip(batch.items, decoded, strict=True):
                state = None
                if self.stabilizer is not None:
                    luma = resize_bilinear(item.motion_luma, ab.shape[-2:])
                    ab = self.stabilizer.update(ab, cut=item.cut, luma=luma)
                    state = TemporalState(item.detector, self.stabilizer.state())
                yield (item, state), (item.luminance, ab)

    def _analyse(self, image: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(full-resolution L, detector features, block-averaged L) of one frame; thread-safe."""
        image = _check_frame(image)
        luminance = kernels.luminance(image)
        if self.detector is None:
            return luminance, None, None
        return luminance, self.detector.features(image), block_mean(luminance)

    def _item(
        self, tag: Any, luminance: np.ndarray, features: np.ndarray | None, motion: np.ndarray | None
    ) -> _Item:
        cut, detector_state = False, None
        if self.detector is not None:
            cut = self.detector.update(features)
            detector_state = self.detector.state()
        render_shape = self.contract.render_shape(*luminance.shape)
        return _Item(tag, luminance, render_shape, cut, motion, detector_state)

    def _batch(self, items: list[_Item]) -> _Batch:
        luminances = [item.luminance for item in items]
        return _Batch(items, model_feed(luminances, self.contract, palette=self.palette))


def _merge(contract: ColorContract, luminance: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The merged frame (a wholesale contract's line art needs the contract)."""
    return kernels.merge(luminance, ab, contract)


def _merge_beside_grey(contract: ColorContract, luminance: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The merged frame with the grey input left of it."""
    return side_by_side(luminance, kernels.merge(luminance, ab, contract))


def _check_frame(image: Any) -> np.ndarray:
    if hasattr(image, "__cuda_array_interface__"):
        image = _gpu_frame_to_host(image)
    if not isinstance(image, np.ndarray):
        raise InputError(f"a frame must be a numpy array, got {type(image).__name__}")
    grey = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)
    if not (grey or (image.ndim == 3 and image.shape[2] == 3)):
        raise InputError(
            f"a frame must be shaped (H, W) grey or (H, W, 3) RGB, got {image.shape}",
            "convert RGBA frames to RGB first",
        )
    if image.dtype not in (np.uint8, np.uint16) and image.dtype.kind != "f":
        raise InputError(f"frame dtype must be uint8, uint16 or float (0..1), got {image.dtype}")
    return image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image


_warned_gpu_frames = False


def _gpu_frame_to_host(image: Any) -> np.ndarray:
    """GPU frames (DALI decode) are copied to the host: these stages run the NumPy kernels."""
    global _warned_gpu_frames
    cupy = import_cupy("reading GPU-decoded frames")
    if not _warned_gpu_frames:
        _warned_gpu_frames = True
        warnings.warn(
            "GPU-decoded frames are copied to the host: this runtime runs colorrt's NumPy kernels on "
            "the CPU (gpu_path=False, or a model the CUDA kernels do not implement); with a CUDA engine "
            "and Runtime(gpu_path=None or True) frames stay on the GPU",
            stacklevel=3,
        )
    return cupy.asnumpy(image)
