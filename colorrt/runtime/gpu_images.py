"""Images on the GPU path: ``Runtime.colorize``, ``colorize_batch``, ``colorize_file`` and folders.

Images come in any mix of sizes. They are grouped as the CPU path groups them (by render shape, in
chunks of ``batch_size``), so the engine sees the same batches; inside a chunk each image keeps its
own size, through one kernel launch per image:

    host L --pinned, async [upload stream]--> device L --[compute stream] preprocess (resize to the
    render shape)--> NCHW batch --engine--> decode_ab --merge with each image's own L--> uint8
    --pinned, async [download stream]--> host

Chunks are pipelined: chunk k+1 is uploaded and computed while chunk k's images come down and are
copied out, and the host returns to its files while the device works.

L is computed on the host, as the CPU path computes it: a table lookup per pixel, and the runtime
keeps it for the side-by-side view. The merge (upsampling ab and Lab -> sRGB at full size, the
heaviest step) runs on the device. Reading and writing files stay where the CPU path does them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from colorrt.contract import ColorContract
from colorrt.kernels import pipeline
from colorrt.kernels.alpha import attach_alpha
from colorrt.kernels.ops import DeviceOps, input_dtype_of

_ALIGN = 256  # bytes: where each view of a chunk's pinned buffer starts


@dataclass
class _Chunk:
    """One chunk in flight: where its images go, their pinned outputs, and what must outlive the copies."""

    indices: Sequence[int]
    outputs: list[np.ndarray]
    total: Any  # device 0-d float64 sum of the model output (NaN or inf when some value is)
    done: Any  # event after the chunk's downloads
    keep: list[Any] = field(default_factory=list)  # buffers the streams still use until ``done``


class DeviceImages:
    """Runs a runtime's prepared images through the engine with the device kernels.

    Args:
        engine: the runtime's CUDA engine (it takes ``ops``' device batches).
        ops: the array backend of the engine's device.
        contract: the contract the model runs with (the runtime's, at its render size).
        strength: chroma scale before the merge.
        batch_size: images per engine call.
    """

    def __init__(
        self, engine: Any, ops: DeviceOps, contract: ColorContract, strength: float, batch_size: int
    ) -> None:
        self.engine, self.ops, self.contract = engine, ops, contract
        self.strength, self.batch_size = strength, batch_size
        self.model = pipeline.model_label(engine)
        self.input_dtype = input_dtype_of(engine)
        with ops.activate():
            self._upload, self._compute, self._download = (ops.stream() for _ in range(3))

    def run_grouped(self, prepared: Sequence[Any]) -> list[np.ndarray]:
        """uint8 colour images (alpha attached again) of ``prepared`` (the runtime's ``_Prepared``:
        host ``luminance``, ``alpha``, ``render_shape``, ``hints``), in their order."""
        results: list[np.ndarray | None] = [None] * len(prepared)
        previous: _Chunk | None = None
        with self.ops.activate():
            try:
                for indices in _chunks_by_render_shape(prepared, self.batch_size):
                    current = self._submit([prepared[i] for i in indices], indices)
                    if previous is not None:
                        self._collect(previous, prepared, results)
                    previous = current
                if previous is not None:
                    self._collect(previous, prepared, results)
            finally:  # nothing a stream still reads or writes may go back to the pools
                for stream in (self._upload, self._compute, self._download):
                    stream.synchronize()
        return results  # type: ignore[return-value]  # every slot is filled above

    def _submit(self, items: Sequence[Any], indices: Sequence[int]) -> _Chunk:
        """Queue one chunk: uploads, preprocess, engine, decode and merges, downloads."""
        ops = self.ops
        with ops.errors(f"colorizing a batch of {len(items)} images"):
            sizes = [item.luminance.shape for item in items]
            arena, views = _pinned_views(
                ops, [(s, np.float32) for s in sizes] + [((*s, 3), np.uint8) for s in sizes]
            )
            staged, outputs = views[: len(items)], views[len(items) :]
            for host, item in zip(staged, items, strict=True):
                np.copyto(host, item.luminance)
            planes = [ops.empty(host.shape, np.float32) for host in staged]
            for plane, host in zip(planes, staged, strict=True):
                ops.upload(plane, host, self._upload)
            self._compute.wait_event(self._upload.record())
            hints = [item.hints for item in items]
            with self._compute:
                batch = ops.kernels.preprocess(
                    planes,
                    self.contract,
                    hints if any(h is not None for h in hints) else None,
                    self.input_dtype,
                )
                output = self.engine.infer(batch)
                total = output.sum(dtype=np.float64)
                ab = ops.kernels.decode_ab(output, self.contract, strength=self.strength)
                colours = [
                    ops.kernels.merge(plane, item_ab) for plane, item_ab in zip(planes, ab, strict=True)
                ]
            self._download.wait_event(self._compute.record())
            for host, colour in zip(outputs, colours, strict=True):
                ops.download(host, colour, self._download)
            done = self._download.record()
        return _Chunk(indices, outputs, total, done, [arena, planes, batch, output, ab, colours])

    def _collect(self, chunk: _Chunk, prepared: Sequence[Any], results: list[np.ndarray | None]) -> None:
        """Wait for a chunk's downloads and put its images (alpha attached) in their places."""
        chunk.done.synchronize()
        pipeline.check_finite(chunk.total, self.model)
        for index, host in zip(chunk.indices, chunk.outputs, strict=True):
            results[index] = attach_alpha(np.array(host), prepared[index].alpha)
        chunk.keep.clear()


def _pinned_views(
    ops: DeviceOps, arrays: list[tuple[tuple[int, ...], Any]]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(pinned buffer, C-contiguous views of it shaped as ``arrays`` asks).

    One buffer a chunk, its size rounded up to a power of two: CuPy's pinned pool keeps a block of
    every size it was asked for, so a folder of photos of a thousand sizes would otherwise pin a
    thousand blocks.
    """
    sizes = [-(-math.prod(shape) * np.dtype(dtype).itemsize // _ALIGN) * _ALIGN for shape, dtype in arrays]
    buffer = ops.pinned((1 << max(20, (sum(sizes) - 1).bit_length()),), np.uint8)
    views, offset = [], 0
    for (shape, dtype), size in zip(arrays, sizes, strict=True):
        count = math.prod(shape) * np.dtype(dtype).itemsize
        views.append(buffer[offset : offset + count].view(dtype).reshape(shape))
        offset += size
    return buffer, views


def _chunks_by_render_shape(prepared: Sequence[Any], size: int) -> Iterator[Sequence[int]]:
    """Indices of ``prepared`` by render shape (first seen first), in chunks of ``size``, as the CPU path."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, item in enumerate(prepared):
        groups.setdefault(item.render_shape, []).append(index)
    for indices in groups.values():
        for start in range(0, len(indices), size):
            yield indices[start : start + size]
