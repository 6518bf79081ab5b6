"""GPU batch loop: frames in, colour frames out, everything between on the device.

    host frames --pinned buffer--> [upload stream] H2D --event--> [compute stream] luminance ->
    preprocess -> engine -> postprocess --event--> [download stream] D2H --pinned buffer--> frames

Each of ``depth`` slots (default 2: double buffering) owns a pinned input buffer, device buffers
for the frames, the full-res L, the model input and the colour frames, and a pinned output buffer.
While slot n computes, the host fills slot n+1's pinned buffer and its upload runs on the upload
stream; the downloads run on a third stream, so uploads, compute and downloads of neighbouring
batches overlap (an H100 has separate copy engines for each direction). CUDA events order the
streams; the host only waits when it reuses a slot or hands out its frames.

Frames already on the GPU (CuPy arrays; torch tensors and DALI outputs through DLPack, which orders
their producer's stream before CuPy's current one; anything else with ``__cuda_array_interface__``)
skip the upload: they are copied device-to-device into the slot. Output is NumPy (for CPU encoders:
the H100 has no NVENC) or, with ``output="cupy"``, device arrays. A short last batch is computed at
full batch size (stale frames fill the rest) so the engine sees one shape and its CUDA graph is
replayed; only the real frames come out.

The engine must run on CUDA and take CuPy batches (TensorRTEngine, TorchEngine(device="cuda"),
OnnxRuntimeCudaEngine); it is called on the compute stream.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from colorrt.engines.base import Engine
from colorrt.errors import InputError
from colorrt.kernels import cuda as kernels

_H2D, _D2H = 1, 2  # cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost
_DLPACK_CUDA = 2  # kDLCUDA, the device type of a CUDA tensor in __dlpack_device__()


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
    frames: Any  # device (B, H, W[, C]) uint8/uint16
    lightness: Any  # device (B, H, W) float32
    batch: Any  # device (B, C, h, w) model input
    colour: Any  # device (B, H, W, 3) uint8
    pinned_out: np.ndarray
    uploaded: Any
    computed: Any
    downloaded: Any
    count: int = 0  # real frames in the batch now in flight
    busy: bool = False
    free_for_host: Any = field(default=None)  # event: the previous upload from pinned_in is done


class GpuBatchLoop:
    """Colorizes a stream of equal-size frames on the GPU with overlapped copies and compute.

    Args:
        engine: a CUDA engine taking CuPy batches (``engine.device == "cuda"``).
        batch_size: frames per engine call.
        depth: batches in flight (2 = double buffering).
        device_id: CUDA device of the engine.
        output: ``"numpy"`` (host frames) or ``"cupy"`` (device frames).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 8,
        depth: int = 2,
        device_id: int = 0,
        output: str = "numpy",
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
        self._cp = kernels.require_cuda("the GPU batch loop", device_id)
        self.engine = engine
        self.contract = engine.contract
        self.batch_size = batch_size
        self.depth = depth
        self.device_id = device_id
        self.output = output
        self.input_dtype = _model_input_dtype(engine)
        self.stats = LoopStats()
        cp = self._cp
        with cp.cuda.Device(device_id):
            self._launcher = kernels.launcher_for(device_id)
            self._upload = cp.cuda.Stream(non_blocking=True)
            self._compute = cp.cuda.Stream(non_blocking=True)
            self._download = cp.cuda.Stream(non_blocking=True)
        self._slots: list[_Slot] = []
        self._frame_key: tuple[Any, ...] | None = None
        self._turn = 0

    def run(self, frames: Iterable[Any]) -> Iterator[Any]:
        """Colour frames (uint8 ``H x W x 3``) of ``frames`` (``H x W [x 1/3/4]`` uint8/uint16), in order."""
        pending: deque[_Slot] = deque()
        group: list[Any] = []
        start = time.perf_counter()
        with self._cp.cuda.Device(self.device_id):
            for frame in frames:
                frame = self._as_array(frame)
                key = (tuple(frame.shape), np.dtype(frame.dtype))
                if key != self._frame_key:
                    yield from self._flush(group, pending)
                    yield from self._drain(pending)
                    self._allocate(key)
                group.append(frame)
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

    def _as_array(self, frame: Any) -> Any:
        """A NumPy or CuPy frame: other GPU arrays are shared without a copy."""
        cp = self._cp
        if isinstance(frame, (np.ndarray, cp.ndarray)):
            return frame
        dlpack_device = getattr(frame, "__dlpack_device__", None)
        if dlpack_device is not None and dlpack_device()[0] == _DLPACK_CUDA:
            return cp.from_dlpack(frame)  # the producer's stream is ordered before CuPy's current one
        if hasattr(frame, "__cuda_array_interface__"):
            return cp.asarray(frame)
        return np.asarray(frame)

    def _flush(self, group: list[Any], pending: deque[_Slot]) -> Iterator[Any]:
        """Submit the frames gathered so far as one batch (yielding older results to free a slot)."""
        if not group:
            return
        slot = self._slots[self._turn % self.depth]
        self._turn += 1
        if slot.busy:  # round robin over FIFO slots: the busy one is the oldest pending batch
            yield from self._finish(pending.popleft())
        with kernels.gpu_errors(f"colorizing a batch of {len(group)} frames"):
            self._stage(slot, group)
            self._process(slot)
        pending.append(slot)
        group.clear()

    def _stage(self, slot: _Slot, group: list[Any]) -> None:
        """Frames into the slot's device buffer: host frames through pinned memory on the upload stream."""
        cp = self._cp
        caller = cp.cuda.get_current_stream()
        slot.count = len(group)
        # The caller's work so far (device frames it made; reads of earlier output frames whose
        # memory the pool may hand out again) and the slot's previous compute come first.
        self._upload.wait_event(caller.record())
        self._upload.wait_event(slot.computed)
        on_host = all(isinstance(f, np.ndarray) for f in group)
        if on_host:
            slot.free_for_host.synchronize()  # the last upload from this pinned buffer is done
            for i, frame in enumerate(group):
                np.copyto(slot.pinned_in[i], frame)
            nbytes = slot.pinned_in[: len(group)].nbytes
            cp.cuda.runtime.memcpyAsync(
                slot.frames.data.ptr, slot.pinned_in.ctypes.data, nbytes, _H2D, self._upload.ptr
            )
            slot.free_for_host.record(self._upload)
        else:
            with self._upload:
                for i, frame in enumerate(group):
                    slot.frames[i] = frame if isinstance(frame, cp.ndarray) else cp.asarray(frame)
        slot.uploaded.record(self._upload)
        if not on_host:  # the caller may free (and its pool reuse) the source frames once we return
            caller.wait_event(slot.uploaded)

    def _process(self, slot: _Slot) -> None:
        """Preprocess, engine and postprocess on the compute stream, then the download."""
        # The upload waited for the slot's previous compute, so its buffers are free to rewrite.
        self._compute.wait_event(slot.uploaded)
        with self._compute:
            kernels.preprocess_frames(
                slot.frames,
                self.contract,
                self.input_dtype,
                out=slot.batch,
                luminance_out=slot.lightness,
                launcher=self._launcher,
            )
            output = self.engine.infer(slot.batch)
            kernels.postprocess_batch(
                output, slot.lightness, self.contract, out=slot.colour, launcher=self._launcher
            )
        slot.computed.record(self._compute)
        if self.output == "numpy":
            self._download.wait_event(slot.computed)
            nbytes = slot.pinned_out[: slot.count].nbytes
            self._cp.cuda.runtime.memcpyAsync(
                slot.pinned_out.ctypes.data, slot.colour.data.ptr, nbytes, _D2H, self._download.ptr
            )
            slot.downloaded.record(self._download)
        slot.busy = True
        self.stats.batches += 1

    def _finish(self, slot: _Slot) -> Iterator[Any]:
        """Wait for a slot's results and hand out its frames (copies: the buffers are reused)."""
        if self.output == "numpy":
            slot.downloaded.synchronize()
            frames = [slot.pinned_out[i].copy() for i in range(slot.count)]
        else:  # copies on the compute stream, ahead of the slot's next use; the caller's stream waits
            with self._compute:
                frames = [slot.colour[i].copy() for i in range(slot.count)]
            self._cp.cuda.get_current_stream().wait_event(self._compute.record())
        slot.busy = False
        self.stats.frames += len(frames)
        yield from frames

    def _drain(self, pending: deque[_Slot]) -> Iterator[Any]:
        while pending:
            yield from self._finish(pending.popleft())

    def _allocate(self, key: tuple[Any, ...]) -> None:
        """Slots for frames of one shape and dtype (the previous ones are drained already)."""
        shape, dtype = key
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3, 4)):
            raise InputError(f"frames must be H x W or H x W x 1/3/4 images, got shape {shape}")
        if dtype not in (np.uint8, np.uint16):
            raise InputError(f"the GPU batch loop takes uint8 or uint16 frames, got {dtype}")
        cp = self._cp
        height, width = shape[:2]
        render_h, render_w = self.contract.render_shape(height, width)
        batch = (self.batch_size, *shape)
        if self._slots:
            self._synchronize()
        self._slots = []
        self._turn = 0
        with kernels.gpu_errors(f"allocating {self.depth} x {self.batch_size} frames of {width}x{height}"):
            for _ in range(self.depth):
                self._slots.append(
                    _Slot(
                        pinned_in=_pinned(batch, dtype),
                        frames=cp.zeros(batch, dtype=dtype),
                        lightness=cp.empty((self.batch_size, height, width), dtype=np.float32),
                        batch=cp.empty(
                            (self.batch_size, self.contract.input_channels, render_h, render_w),
                            dtype=self.input_dtype,
                        ),
                        colour=cp.empty((self.batch_size, height, width, 3), dtype=np.uint8),
                        pinned_out=_pinned((self.batch_size, height, width, 3), np.uint8),
                        uploaded=cp.cuda.Event(disable_timing=True),
                        computed=cp.cuda.Event(disable_timing=True),
                        downloaded=cp.cuda.Event(disable_timing=True),
                        free_for_host=cp.cuda.Event(disable_timing=True),
                    )
                )
        self._frame_key = key


def _pinned(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    # cupyx ships in the CuPy wheel, which GpuBatchLoop already imported (kernels.require_cuda)
    import cupyx

    return cupyx.empty_pinned(shape, dtype=dtype)


def _model_input_dtype(engine: Engine) -> np.dtype:
    """float16 when the engine takes half input (preprocess writes it directly), else float32."""
    wanted = getattr(engine, "input_dtype", None)
    if wanted is None:
        io = getattr(engine, "_io", None)  # TensorRTEngine keeps its tensor types there
        wanted = getattr(io, "input_dtype", np.float32)
    return np.dtype(np.float16) if np.dtype(wanted) == np.float16 else np.dtype(np.float32)


def colorize_frames(
    engine: Engine, frames: Iterable[Any], *, batch_size: int = 8, depth: int = 2
) -> Iterator[Any]:
    """Colour frames of ``frames`` through a :class:`GpuBatchLoop` (closed at the end)."""
    with GpuBatchLoop(engine, batch_size=batch_size, depth=depth) as loop:
        yield from loop.run(frames)
