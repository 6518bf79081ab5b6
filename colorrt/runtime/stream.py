"""Pipelined streaming: decode → preprocess → engine → postprocess → sink, each stage in its own thread.

Stages are joined by bounded queues, so memory stays flat whatever the length of the film; the
engine runs while the next batch is prepared and the previous one merged and encoded. Frames keep
their order (one thread per stage), frames of one render shape are batched (a partial batch is sent
when the shape changes or the input ends), the first error in any stage stops every stage and is
raised to the caller, and :meth:`Pipeline.cancel` stops the consumer within a queue poll (50 ms).

    for rgb in stream(runtime, frames):      # frames: any iterable of HxW / HxWx3 arrays
        show(rgb)
"""

from __future__ import annotations

import collections
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import InputError
from colorrt.kernels import pipeline as kernels
from colorrt.kernels.resize import resize_bilinear
from colorrt.runtime.temporal import (
    MIN_SCENE_LEN,
    MOTION_SIGMA,
    ChromaStabilizer,
    DetectorState,
    SceneCutDetector,
    TemporalState,
    block_mean,
)

Stage = Callable[[Iterator[Any]], Iterator[Any]]
POLL_S = 0.05  # seconds a blocked queue operation waits before checking for stop/cancel
JOIN_S = 30.0  # seconds close() waits for the stage threads to finish their current call
CANCEL_JOIN_S = 0.5  # seconds close() waits after a cancel (busy daemon threads end on their own)


class _End:
    """Marks the end of a stage's output in its queue."""


_END = _End()


class Pipeline:
    """Runs ``source`` and ``stages`` in threads joined by bounded queues; iterate it for the output.

    Each stage is a function turning an iterator of inputs into an iterator of outputs (so a stage
    may batch, unbatch or keep state). The first exception raised by the source or any stage stops
    the whole pipeline and is re-raised from the iteration; :meth:`cancel` ends the iteration
    quietly. Leaving the iteration early (``break``, an exception in the loop body) stops the threads.

    Args:
        source: iterable of items; iterated in its own thread (closed there when it has ``close``).
        stages: ``(name, function)`` pairs, applied in order.
        queue_size: items each queue holds; bounds memory.
    """

    def __init__(self, source: Iterable[Any], stages: Sequence[tuple[str, Stage]], *, queue_size: int = 4):
        if queue_size < 1:
            raise InputError(f"queue_size must be >= 1, got {queue_size}")
        self._source = source
        self._stages = list(stages)
        self._queues = [queue.Queue(maxsize=queue_size) for _ in range(len(self._stages) + 1)]
        self._stop = threading.Event()
        self._cancelled = threading.Event()
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = False

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop every stage; the iteration ends (without error) at its next poll, within 50 ms."""
        self._cancelled.set()
        self._stop.set()

    def __iter__(self) -> Iterator[Any]:
        if self._started:
            raise InputError("a Pipeline can be iterated only once", "build a new one for another run")
        self._started = True
        self._start_threads()
        try:
            while True:
                item = self._get(self._queues[-1])
                if item is _END:
                    break
                yield item
        finally:
            self.close()
        self._raise_error()

    def close(self) -> None:
        """Stop the threads and wait for them.

        A stage busy in one long call (an inference) finishes that call on its own: after a cancel
        the wait is cut short at CANCEL_JOIN_S so that cancelling stays prompt.
        """
        self._stop.set()
        deadline = time.monotonic() + (CANCEL_JOIN_S if self.cancelled else JOIN_S)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def _start_threads(self) -> None:
        workers = [("source", self._run_source, ())]
        workers += [
            (name, self._run_stage, (stage, self._queues[i], self._queues[i + 1]))
            for i, (name, stage) in enumerate(self._stages)
        ]
        for name, target, args in workers:
            thread = threading.Thread(target=target, args=args, name=f"colorrt-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run_source(self) -> None:
        iterator = iter(self._source)
        try:
            for item in iterator:
                if not self._put(self._queues[0], item):
                    return
            self._put(self._queues[0], _END)
        except BaseException as e:  # noqa: B036 -- any failure, even KeyboardInterrupt, must stop the others
            self._fail(e, "source")
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _run_stage(self, stage: Stage, inbox: queue.Queue, outbox: queue.Queue) -> None:
        name = threading.current_thread().name
        outputs = stage(self._drain(inbox))
        try:
            for item in outputs:
                if not self._put(outbox, item):
                    return
            if not self._stop.is_set():
                self._put(outbox, _END)
        except BaseException as e:  # noqa: B036 -- see _run_source
            self._fail(e, name)
        finally:
            close = getattr(outputs, "close", None)
            if close is not None:
                close()

    def _drain(self, inbox: queue.Queue) -> Iterator[Any]:
        while True:
            item = self._get(inbox)
            if item is _END:
                return
            yield item

    def _get(self, box: queue.Queue) -> Any:
        while not self._stop.is_set():
            try:
                return box.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return _END

    def _put(self, box: queue.Queue, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                box.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _fail(self, error: BaseException, where: str) -> None:
        with self._error_lock:
            if self._error is None and not self._cancelled.is_set():
                if hasattr(error, "add_note"):
                    error.add_note(f"(raised in the {where} stage of the colorrt streaming pipeline)")
                self._error = error
        self._stop.set()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


@dataclass(frozen=True)
class StreamOptions:
    """How frames are batched, queued and smoothed over time.

    Args:
        temporal: chroma smoothing strength in [0, 1) (0 disables smoothing and scene detection).
        batch_size: frames per inference; None takes the runtime's.
        queue_size: batches (or frames) each stage queue holds.
        scene_threshold: scene-cut threshold; None takes the detector's default (27).
        min_scene_len: frames a scene lasts at least.
        motion_sigma: luminance change (CIE L) treated as motion by the stabilizer; None ignores motion.
        compensate_pans: the stabilizer follows global camera motion (pans) before blending.
        workers: threads for the per-frame NumPy work of the prepare and merge stages (each; default:
            one per CPU, up to 4).
    """

    temporal: float = 0.6
    batch_size: int | None = None
    queue_size: int = 4
    scene_threshold: float | None = None
    min_scene_len: int = MIN_SCENE_LEN
    motion_sigma: float | None = MOTION_SIGMA
    compensate_pans: bool = True
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))

    def __post_init__(self) -> None:
        if not 0.0 <= self.temporal < 1.0:
            raise InputError(
                f"temporal strength must be in [0, 1), got {self.temporal}",
                "use 0 to turn smoothing off, about 0.6 for film",
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.queue_size < 1:
            raise InputError(f"queue_size must be >= 1, got {self.queue_size}")
        if self.workers < 1:
            raise InputError(f"workers must be >= 1, got {self.workers}")


@dataclass(frozen=True)
class ColorizedFrame:
    """One colorized frame with the tag it came in with and the temporal state after it."""

    image: np.ndarray  # uint8 (H, W, 3) sRGB
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
    """

    def __init__(
        self,
        engine: Any,
        batch_size: int,
        options: StreamOptions = StreamOptions(),
        initial_state: TemporalState | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.engine = engine
        self.contract: ColorContract = engine.contract
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
        """Run the engine on each batch (moving data to and from the GPU for CUDA engines)."""
        on_gpu = getattr(self.engine, "device", "cpu") == "cuda"
        for batch in batches:
            if on_gpu:
                import cupy

                batch.data = cupy.asnumpy(self.engine.infer(cupy.asarray(batch.data)))
            else:
                batch.data = self.engine.infer(batch.data)
            yield batch

    def merge(self, batches: Iterator[_Batch]) -> Iterator[ColorizedFrame]:
        """Decode ab, smooth it over time (in order), merge it with the full-resolution luminance.

        The merge (upsampling ab and Lab -> sRGB at full resolution, the heaviest CPU step) runs on
        ``options.workers`` threads; frames come out in order.
        """
        jobs = self._smoothed(batches)
        for (item, state), rgb in ordered_map(kernels.merge, jobs, self.options.workers, "merge"):
            yield ColorizedFrame(rgb, item.tag, item.cut, state)

    def _smoothed(self, batches: Iterator[_Batch]) -> Iterator[tuple[tuple[_Item, Any], tuple]]:
        """((item, temporal state), (luminance, smoothed ab)) for each frame, in order."""
        for batch in batches:
            for item, ab in zip(
                batch.items, kernels.decode_ab(np.asarray(batch.data), self.contract), strict=True
            ):
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
        return _Batch(items, kernels.preprocess([item.luminance for item in items], self.contract))


def ordered_map(
    fn: Callable[..., Any], jobs: Iterable[tuple[Any, tuple]], workers: int, name: str
) -> Iterator[tuple[Any, Any]]:
    """``(key, fn(*args))`` for each ``(key, args)`` of ``jobs``, computed on ``workers`` threads.

    Results come in the order of ``jobs``; at most ``2 * workers`` calls are in flight (memory
    stays bounded). NumPy releases the GIL in its array loops, so the threads run in parallel.
    An exception from ``fn`` is raised when its result is due.
    """
    pending: collections.deque[tuple[Any, Future]] = collections.deque()
    with ThreadPoolExecutor(workers, thread_name_prefix=f"colorrt-{name}-worker") as pool:
        try:
            for key, args in jobs:
                pending.append((key, pool.submit(fn, *args)))
                while len(pending) > 2 * workers or (pending and pending[0][1].done()):
                    key, future = pending.popleft()
                    yield key, future.result()
            while pending:
                key, future = pending.popleft()
                yield key, future.result()
        finally:
            for _, future in pending:
                future.cancel()


class FrameStream:
    """Iterator of colorized frames (uint8 HxWx3) with :meth:`cancel`; see :func:`stream`."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._frames = iter(pipeline)
        self.scene_cuts: list[int] = []  # indices of frames that started a new scene
        self.count = 0

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> np.ndarray:
        frame: ColorizedFrame = next(self._frames)
        if frame.cut:
            self.scene_cuts.append(frame.tag)
        self.count += 1
        return frame.image

    def cancel(self) -> None:
        """Stop the stream: iteration ends within 50 ms; frames in flight are dropped."""
        self._pipeline.cancel()

    def close(self) -> None:
        """Stop the threads (also done when iteration ends or the stream is garbage-collected)."""
        self._pipeline.cancel()
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream(
    runtime: Any,
    frames: Iterable[np.ndarray],
    *,
    temporal: float = 0.6,
    batch_size: int | None = None,
    queue_size: int = 4,
    scene_threshold: float | None = None,
) -> FrameStream:
    """Colorize a sequence of frames in a pipeline, in order.

    Args:
        runtime: a :class:`colorrt.Runtime` (anything with ``engine`` and ``batch_size``).
        frames: HxW grey or HxWx3 RGB arrays (uint8, uint16 or float 0..1), consecutive video frames.
        temporal: chroma smoothing strength in [0, 1); 0 colorizes each frame on its own.
        batch_size: frames per inference; default the runtime's.
        queue_size: batches each stage queue holds (memory bound).
        scene_threshold: scene-cut threshold (see :class:`SceneCutDetector`; None: its default).

    Returns:
        A :class:`FrameStream`: iterate it for uint8 (H, W, 3) RGB frames; ``cancel()`` stops it;
        ``scene_cuts`` lists the frame indices where a new scene started.
    """
    options = StreamOptions(
        temporal=temporal,
        batch_size=batch_size,
        queue_size=queue_size,
        scene_threshold=scene_threshold,
    )
    stages = ColorizeStages(runtime.engine, batch_size or runtime.batch_size, options)
    return FrameStream(Pipeline(enumerate(frames), stages.stages(), queue_size=queue_size))


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
    """GPU frames (DALI decode) go through the NumPy kernels until CuPy pre/postprocess kernels land."""
    global _warned_gpu_frames
    import cupy

    if not _warned_gpu_frames:
        _warned_gpu_frames = True
        warnings.warn(
            "GPU-decoded frames are copied to the host: colorrt's CuPy pre/postprocessing kernels are not "
            "available yet, so the NumPy kernels run on the CPU",
            stacklevel=3,
        )
    return cupy.asnumpy(image)
