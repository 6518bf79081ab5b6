"""GPU batch loop: frames in, colour frames out, everything between on the device.

    host frames --pinned buffer--> [upload stream] H2D --event--> [compute stream] luminance ->
    preprocess -> engine -> postprocess --event--> [download stream] D2H --pinned buffer--> frames

Each of ``depth`` slots (default 2: double buffering) owns a pinned input buffer, device buffers
for the frames, the full-res L, the model input and the colour frames, and a pinned output buffer.
While slot n computes, the host fills slot n+1's pinned buffer and its upload runs on the upload
stream; the downloads run on a third stream, so uploads, compute and downloads of neighbouring
batches overlap (an H100 has separate copy engines for each direction). CUDA events order the
streams; the host only waits when it reuses a slot or hands out its frames.

With a ``smoother`` (a film's temporal smoothing, :meth:`GpuBatchLoop.run_tagged`), the compute
stream stops at the model's ab, which is downloaded (render size: small), smoothed on the host in
frame order, uploaded back and merged with the full-resolution L that stayed on the device:

    ... engine -> decode_ab --D2H--> host smoother --H2D--> merge -> D2H frames

A batch's merge is queued behind the next batch's compute, so the host smooths while the GPU works.

Frames already on the GPU (CuPy arrays; torch tensors and DALI outputs through DLPack, which orders
their producer's stream before CuPy's current one; anything else with ``__cuda_array_interface__``)
skip the upload: they are copied device-to-device into the slot. Output is NumPy (for CPU encoders:
the H100 has no NVENC) or, with ``output="cupy"``, device arrays. A short last batch is computed at
full batch size (stale frames fill the rest) so the engine sees one shape and its CUDA graph is
replayed; only the real frames come out.

The engine must run on CUDA and take the backend's device batches (TensorRTEngine,
TorchEngine(device="cuda"), OnnxRuntimeCudaEngine); it is called on the compute stream. Arrays,
streams and kernels come from a :class:`~colorrt.kernels.ops.DeviceOps`: CuPy by default, or the
CPU stand-in ``tests/host_ops.py`` with which the tests run this loop.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.engines.base import Engine
from colorrt.errors import InputError
from colorrt.kernels import pipeline
from colorrt.kernels.ops import CudaOps, DeviceOps, input_dtype_of

Smoother = Callable[[list[Any], np.ndarray], np.ndarray]  # (tags, N x 2 x h x w ab) -> smoothed ab
_IDLE, _DECODED, _MERGED = 0, 1, 2  # a slot's phase: free; ab on its way to the host; frames on their way


@dataclass
class LoopStats:
    """Counters of a :meth:`GpuBatchLoop.run` (seconds: wall time from first frame to last output)."""

    frames: int = 0
    batches: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        """Frames per second end to end."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Slot:
    """Buffers and events of one batch in flight."""

    pinned_in: np.ndarray
    frames: Any  # device (B, H, W[, C]) frames
    lightness: Any  # device (B, H, W) float32
    batch: Any  # device (B, C, h, w) model input
    colour: Any  # device (B, H, W, 3) uint8
    pinned_out: np.ndarray
    uploaded: Any
    computed: Any
    downloaded: Any
    free_for_host: Any  # the previous upload from pinned_in is done
    ab_downloaded: Any
    ab: Any = None  # device (B, 2, h, w) float32 ab, with a smoother
    total: Any = None  # device 0-d float64 sum of the model output: NaN or inf when some value is
    pinned_ab: np.ndarray | None = None
    tags: list[Any] = field(default_factory=list)  # of the real frames in the batch now in flight
    phase: int = _IDLE

    @property
    def count(self) -> int:
        return len(self.tags)


class GpuBatchLoop:
    """Colorizes a stream of equal-size frames on the GPU with overlapped copies and compute.

    Args:
        engine: a CUDA engine taking the backend's device batches (``engine.device == "cuda"``).
        batch_size: frames per engine call.
        depth: batches in flight (2 = double buffering).
        device_id: CUDA device of the engine.
        output: ``"numpy"`` (host frames) or ``"cupy"`` (device frames).
        ops: the array backend; default :class:`~colorrt.kernels.ops.CudaOps` on ``device_id``.
        contract: the contract to run the model with (a runtime's, at its render size); None: the
            engine's.
        strength: chroma scale before the merge (0 grey, 1 the model's colours, up to 2).

    A batch whose model output holds NaN or infinity stops the loop with NonFiniteOutputError
    before any of its frames come out (checked on the device; read when the batch is collected).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 8,
        depth: int = 2,
        device_id: int = 0,
        output: str = "numpy",
        ops: DeviceOps | None = None,
        contract: ColorContract | None = None,
        strength: float = 1.0,
    ) -> None:
        if getattr(engine, "device", "cpu") != "cuda":
            raise InputError(
                f"the GPU batch loop needs an engine on CUDA, got {engine.name} on {engine.device}",
                "create the engine with device='cuda' (backend tensorrt, torch or onnxruntime on a GPU)",
            )
        if batch_size < 1 or depth < 1:
            raise InputError(f"batch_size and depth must be >= 1, got {batch_size} and {depth}")
        if output not in ("numpy", "cupy"):
            raise InputError(f"output must be 'numpy' or 'cupy', got {output!r}")
        self.ops: DeviceOps = ops if ops is not None else CudaOps(device_id, "the GPU batch loop")
        pipeline.check_chroma_strength(strength)
        self.engine = engine
        self.contract = engine.contract if contract is None else contract
        self.strength = strength
        self.model = pipeline.model_label(engine)
        self.batch_size = batch_size
        self.depth = depth
        self.device_id = device_id
        self.output = output
        self.input_dtype = input_dtype_of(engine)
        self.stats = LoopStats()
        with self.ops.activate():
            self._upload, self._compute, self._download = (self.ops.stream() for _ in range(3))
        self._slots: list[_Slot] = []
        self._frame_key: tuple[Any, ...] | None = None
        self._turn = 0
        self._smoother: Smoother | None = None

    def run(self, frames: Iterable[Any]) -> Iterator[Any]:
        """Colour frames (uint8 ``H x W x 3``) of ``frames`` (``H x W [x 1/3/4]`` uint8/uint16), in order."""
        for _, frame in self.run_tagged((None, frame) for frame in frames):
            yield frame

    def run_tagged(
        self, items: Iterable[tuple[Any, Any]], smoother: Smoother | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """``(tag, colour frame)`` for each ``(tag, frame)`` of ``items``, in order.

        ``smoother(tags, ab)``, when given, is called on the host in frame order with each batch's
        tags and its ``N x 2 x h x w`` float32 ab (a copy the smoother may keep) and returns the ab
        to merge with the frames' full-resolution L.
        """
        pending: deque[_Slot] = deque()
        group: list[tuple[Any, Any]] = []
        self._smoother = smoother
        start = time.perf_counter()
        with self.ops.activate():
            for tag, frame in items:
                frame = self.ops.as_array(frame)
                key = (tuple(frame.shape), np.dtype(frame.dtype))
                if key != self._frame_key:
                    yield from self._flush(group, pending)
                    yield from self._drain(pending)
                    self._allocate(key)
                group.append((tag, frame))
                if len(group) == self.batch_size:
                    yield from self._flush(group, pending)
            yield from self._flush(group, pending)
            yield from self._drain(pending)
        self.stats.seconds += time.perf_counter() - start

    def close(self) -> None:
        """Wait for the streams and free the buffers."""
        self._synchronize()
        self._slots = []
        self._frame_key = None

    def _synchronize(self) -> None:
        # Before buffers are dropped: CuPy's pool hands a freed block to the next allocation
        # at once, and the loop's non-blocking streams are not ordered with the caller's stream.
        for stream in (self._upload, self._compute, self._download):
            stream.synchronize()

    def __enter__(self) -> GpuBatchLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ steps

    def _flush(self, group: list[tuple[Any, Any]], pending: deque[_Slot]) -> Iterator[tuple[Any, Any]]:
        """Submit the frames gathered so far as one batch (yielding older results to free a slot)."""
        if not group:
            return
        slot = self._slots[self._turn % self.depth]
        self._turn += 1
        if slot.phase != _IDLE:  # round robin over FIFO slots: the busy one is the oldest pending batch
            yield from self._finish(pending.popleft())
        with self.ops.errors(f"colorizing a batch of {len(group)} frames"):
            self._stage(slot, group)
            self._process(slot)
            pending.append(slot)
            for older in list(pending)[:-1]:  # their merges queue behind this batch's compute
                if older.phase == _DECODED:
                    self._merge(older)
        group.clear()

    def _stage(self, slot: _Slot, group: list[tuple[Any, Any]]) -> None:
        """Frames into the slot's device buffer: host frames through pinned memory on the upload stream."""
        ops = self.ops
        caller = ops.current_stream()
        slot.tags = [tag for tag, _ in group]
        # The caller's work so far (device frames it made; reads of earlier output frames whose
        # memory the pool may hand out again) and the slot's previous compute come first.
        self._upload.wait_event(caller.record())
        self._upload.wait_event(slot.computed)
        on_host = not any(ops.on_device(frame) for _, frame in group)
        if on_host:
            slot.free_for_host.synchronize()  # the last upload from this pinned buffer is done
            for i, (_, frame) in enumerate(group):
                np.copyto(slot.pinned_in[i], frame)
            ops.upload(slot.frames[: len(group)], slot.pinned_in[: len(group)], self._upload)
            slot.free_for_host.record(self._upload)
        else:
            with self._upload:
                for i, (_, frame) in enumerate(group):
                    slot.frames[i] = frame if ops.on_device(frame) else ops.to_device(frame)
        slot.uploaded.record(self._upload)
        if not on_host:  # the caller may free (and its pool reuse) the source frames once we return
            caller.wait_event(slot.uploaded)

    def _process(self, slot: _Slot) -> None:
        """Preprocess and engine on the compute stream; then the merge, or the ab's trip to the host."""
        # The upload waited for the slot's previous compute, so its buffers are free to rewrite.
        self._compute.wait_event(slot.uploaded)
        kernels = self.ops.kernels
        with self._compute:
            kernels.preprocess_frames(
                slot.frames, self.contract, self.input_dtype, out=slot.batch, luminance_out=slot.lightness
            )
            output = self.engine.infer(slot.batch)
            slot.total = output.sum(dtype=np.float64)
            if self._smoother is None:
                kernels.postprocess_batch(
                    output, slot.lightness, self.contract, strength=self.strength, out=slot.colour
                )
            else:  # a new array: a CUDA graph's output is rewritten by its next replay
                slot.ab = kernels.decode_ab(output, self.contract, strength=self.strength)
        slot.computed.record(self._compute)
        self.stats.batches += 1
        if self._smoother is None:
            self._queue_download(slot)
            return
        if slot.pinned_ab is None or slot.pinned_ab.shape != tuple(slot.ab.shape):
            slot.pinned_ab = self.ops.pinned(tuple(slot.ab.shape), np.float32)
        self._download.wait_event(slot.computed)
        self.ops.download(slot.pinned_ab[: slot.count], slot.ab[: slot.count], self._download)
        slot.ab_downloaded.record(self._download)
        slot.phase = _DECODED

    def _merge(self, slot: _Slot) -> None:
        """Smooth a decoded batch's ab on the host, send it back and merge it with the batch's L."""
        n = slot.count
        slot.ab_downloaded.synchronize()
        pipeline.check_finite(slot.total, self.model)  # before NaN reaches the smoother's state
        smoothed = self._smoother(slot.tags, slot.pinned_ab[:n].copy())  # type: ignore[misc]  # set in run
        np.copyto(slot.pinned_ab[:n], smoothed)  # free: this slot's previous upload from it is done
        self.ops.upload(slot.ab[:n], slot.pinned_ab[:n], self._upload)
        self._compute.wait_event(self._upload.record())
        with self._compute:
            self.ops.kernels.merge_batch(slot.lightness[:n], slot.ab[:n], out=slot.colour[:n])
        slot.computed.record(self._compute)
        self._queue_download(slot)

    def _queue_download(self, slot: _Slot) -> None:
        if self.output == "numpy":
            self._download.wait_event(slot.computed)
            n = slot.count
            self.ops.download(slot.pinned_out[:n], slot.colour[:n], self._download)
            slot.downloaded.record(self._download)
        slot.phase = _MERGED

    def _finish(self, slot: _Slot) -> Iterator[tuple[Any, Any]]:
        """Wait for a slot's results and hand out its frames (copies: the buffers are reused)."""
        if slot.phase == _DECODED:
            with self.ops.errors(f"merging a batch of {slot.count} frames"):
                self._merge(slot)
        if self.output == "numpy":
            slot.downloaded.synchronize()
            pipeline.check_finite(slot.total, self.model)
            frames = [slot.pinned_out[i].copy() for i in range(slot.count)]
        else:  # copies on the compute stream, ahead of the slot's next use; the caller's stream waits
            with self._compute:
                frames = [slot.colour[i].copy() for i in range(slot.count)]
            self.ops.current_stream().wait_event(self._compute.record())
            pipeline.check_finite(slot.total, self.model)
        tags, slot.tags, slot.phase = slot.tags, [], _IDLE
        self.stats.frames += len(frames)
        yield from zip(tags, frames, strict=True)

    def _drain(self, pending: deque[_Slot]) -> Iterator[tuple[Any, Any]]:
        while pending:
            yield from self._finish(pending.popleft())

    def _allocate(self, key: tuple[Any, ...]) -> None:
        """Slots for frames of one shape and dtype (the previous ones are drained already)."""
        shape, dtype = key
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3, 4)):
            raise InputError(f"frames must be H x W or H x W x 1/3/4 images, got shape {shape}")
        if dtype not in (np.uint8, np.uint16) and dtype.kind != "f":
            raise InputError(f"the GPU batch loop takes uint8, uint16 or float (0..1) frames, got {dtype}")
        if self._slots:
            self._synchronize()
        self._slots, self._turn = [], 0
        height, width = shape[:2]
        with self.ops.errors(f"allocating {self.depth} x {self.batch_size} frames of {width}x{height}"):
            self._slots = [self._new_slot(shape, dtype) for _ in range(self.depth)]
        self._frame_key = key

    def _new_slot(self, shape: tuple[int, ...], dtype: np.dtype) -> _Slot:
        ops, size = self.ops, self.batch_size
        height, width = shape[:2]
        render_h, render_w = self.contract.render_shape(height, width)
        batch = (size, *shape)
        model_input = (size, self.contract.input_channels, render_h, render_w)
        return _Slot(
            pinned_in=ops.pinned(batch, dtype),
            frames=ops.zeros(batch, dtype),
            lightness=ops.empty((size, height, width), np.float32),
            batch=ops.empty(model_input, self.input_dtype),
            colour=ops.empty((size, height, width, 3), np.uint8),
            pinned_out=ops.pinned((size, height, width, 3), np.uint8),
            uploaded=ops.event(),
            computed=ops.event(),
            downloaded=ops.event(),
            free_for_host=ops.event(),
            ab_downloaded=ops.event(),
        )


def colorize_frames(
    engine: Engine, frames: Iterable[Any], *, batch_size: int = 8, depth: int = 2
) -> Iterator[Any]:
    """Colour frames of ``frames`` through a :class:`GpuBatchLoop` (closed at the end)."""
    with GpuBatchLoop(engine, batch_size=batch_size, depth=depth) as loop:
        yield from loop.run(frames)
