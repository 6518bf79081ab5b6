"""Array backends of the GPU path: where its arrays live, how they are copied, which kernels run on them.

* :class:`CudaOps`: CuPy arrays on one device, pinned host buffers (CuPy's pinned memory pool),
  non-blocking CUDA streams and events, asynchronous copies (``cudaMemcpyAsync``), the CUDA kernels
  of :mod:`colorrt.kernels.cuda`.
* ``tests/host_ops.py``: the stand-in with which the GPU path is tested on a
  CPU: NumPy arrays, the NumPy reference kernels (or the CUDA kernels' host twins), and streams whose
  copies wait until an event or a synchronize orders them, so a missing wait reads stale data as it
  could on a GPU.

Code written against :class:`DeviceOps` (``runtime.gpu_loop``, ``runtime.gpu_images``, the pages'
panel chroma) runs unchanged on both. Importing this module needs no CuPy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from colorrt.contract import ColorContract
from colorrt.errors import InputError
from colorrt.kernels import cuda
from colorrt.kernels import pipeline as reference

_H2D, _D2H = 1, 2  # cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost
_DLPACK_CUDA = 2  # kDLCUDA, the device type of a CUDA tensor in __dlpack_device__()


class Kernels(Protocol):
    """The pre- and post-processing steps of the GPU path, on one backend's arrays."""

    def preprocess_frames(
        self, frames: Any, contract: ColorContract, dtype: Any, *, out: Any, luminance_out: Any
    ) -> None:
        """Full-res L of ``N x H x W [x C]`` frames into ``luminance_out``, the model input into ``out``."""

    def postprocess_batch(
        self, output: Any, lightness: Any, contract: ColorContract, *, strength: float, out: Any
    ) -> None:
        """uint8 frames into ``out`` from a model output (chroma scaled by ``strength``) and full-res L."""

    def decode_ab(self, output: Any, contract: ColorContract, *, strength: float = 1.0) -> Any:
        """``N x 2 x h x w`` float32 ab of a model output, scaled by ``strength``."""

    def merge_batch(self, lightness: Any, ab: Any, *, out: Any) -> None:
        """uint8 frames into ``out`` from full-res L and ab (not a model output)."""

    def luminance(self, image: Any) -> Any:
        """float32 ``H x W`` L of one image."""

    def preprocess(
        self, planes: Sequence[Any], contract: ColorContract, hints: Sequence[Any] | None, dtype: Any
    ) -> Any:
        """NCHW model input from L planes of one render shape (and per-image hints or None)."""

    def merge(self, lightness: Any, ab: Any) -> Any:
        """uint8 ``H x W x 3`` of one image from its full-res L and ``2 x h x w`` ab."""


class CudaKernels:
    """:mod:`colorrt.kernels.cuda` through one launcher (CuPy's; the tests pass the host twins')."""

    def __init__(self, launcher: cuda.Launcher) -> None:
        self.launcher = launcher

    def preprocess_frames(
        self, frames: Any, contract: ColorContract, dtype: Any, *, out: Any, luminance_out: Any
    ) -> None:
        cuda.preprocess_frames(
            frames, contract, dtype, out=out, luminance_out=luminance_out, launcher=self.launcher
        )

    def postprocess_batch(
        self, output: Any, lightness: Any, contract: ColorContract, *, strength: float, out: Any
    ) -> None:
        cuda.postprocess_batch(
            output, lightness, contract, strength=strength, out=out, launcher=self.launcher
        )

    def decode_ab(self, output: Any, contract: ColorContract, *, strength: float = 1.0) -> Any:
        return cuda.decode_ab(output, contract, strength=strength, launcher=self.launcher)

    def merge_batch(self, lightness: Any, ab: Any, *, out: Any) -> None:
        cuda.merge_batch(lightness, ab, out=out, launcher=self.launcher)

    def luminance(self, image: Any) -> Any:
        return cuda.luminance(image, launcher=self.launcher)

    def preprocess(
        self, planes: Sequence[Any], contract: ColorContract, hints: Sequence[Any] | None, dtype: Any
    ) -> Any:
        return cuda.preprocess(planes, contract, hints, dtype, launcher=self.launcher)

    def merge(self, lightness: Any, ab: Any) -> Any:
        return cuda.merge(lightness, ab, launcher=self.launcher)


class ReferenceKernels:
    """The NumPy reference kernels (:mod:`colorrt.kernels.pipeline`), image by image, into the buffers."""

    def preprocess_frames(
        self, frames: Any, contract: ColorContract, dtype: Any, *, out: Any, luminance_out: Any
    ) -> None:
        for i, frame in enumerate(frames):
            luminance_out[i] = reference.luminance(frame)
        out[...] = reference.preprocess(list(luminance_out), contract, dtype=dtype)

    def postprocess_batch(
        self, output: Any, lightness: Any, contract: ColorContract, *, strength: float, out: Any
    ) -> None:
        for i, rgb in enumerate(reference.postprocess(output, list(lightness), contract, strength=strength)):
            out[i] = rgb

    def decode_ab(self, output: Any, contract: ColorContract, *, strength: float = 1.0) -> Any:
        return reference.decode_ab(output, contract, strength=strength)

    def merge_batch(self, lightness: Any, ab: Any, *, out: Any) -> None:
        for i in range(len(lightness)):
            out[i] = reference.merge(lightness[i], ab[i])

    def luminance(self, image: Any) -> Any:
        return reference.luminance(image)

    def preprocess(
        self, planes: Sequence[Any], contract: ColorContract, hints: Sequence[Any] | None, dtype: Any
    ) -> Any:
        return reference.preprocess(planes, contract, hints=hints, dtype=dtype)

    def merge(self, lightness: Any, ab: Any) -> Any:
        return reference.merge(lightness, ab)


class DeviceOps(Protocol):
    """Where the GPU path's arrays live and how they move (see the module docstring).

    Streams follow CuPy's: ``record()`` returns an event, ``wait_event(event)`` orders later work
    after it, ``synchronize()`` waits on the host, ``with stream:`` makes it current (kernels and
    engine calls inside run on it). Events: ``record(stream)``, ``synchronize()``.
    """

    name: str
    xp: Any  # the array module of device arrays
    kernels: Kernels

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """Make the device current (for the calling thread)."""

    def stream(self) -> Any:
        """A new non-blocking stream."""

    def event(self) -> Any:
        """A new event (no timing)."""

    def current_stream(self) -> Any:
        """The calling thread's current stream."""

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """An uninitialized device array."""

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A device array of zeros."""

    def pinned(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A page-locked host array (asynchronous copies need one)."""

    def upload(self, dst: Any, src: np.ndarray, stream: Any) -> None:
        """Queue a copy of host ``src`` (pinned) into the device array ``dst`` on ``stream``."""

    def download(self, dst: np.ndarray, src: Any, stream: Any) -> None:
        """Queue a copy of device ``src`` into host ``dst`` (pinned) on ``stream``."""

    def on_device(self, array: Any) -> bool:
        """True for this backend's device arrays."""

    def as_array(self, frame: Any) -> Any:
        """A NumPy or device array of ``frame``; other GPU arrays are shared without a copy."""

    def to_device(self, array: Any) -> Any:
        """A device array of ``array``, copied on the current stream."""

    def to_host(self, array: Any) -> np.ndarray:
        """A NumPy copy of ``array`` (waits for the current stream)."""

    def errors(self, what: str) -> contextlib.AbstractContextManager[Any]:
        """Out-of-memory errors turned into colorrt's, saying ``what`` was being done."""


class CudaOps:
    """The GPU backend: CuPy on CUDA device ``device_id`` (see the module docstring).

    Raises MissingDependencyError without CuPy and CudaUnavailableError without a usable device,
    naming ``purpose``.
    """

    name = "cuda"

    def __init__(self, device_id: int = 0, purpose: str = "colorrt's GPU path") -> None:
        self.xp = cuda.require_cuda(purpose, device_id)
        self.device_id = device_id
        self.kernels: Kernels = CudaKernels(cuda.launcher_for(device_id))

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return self.xp.cuda.Device(self.device_id)

    def stream(self) -> Any:
        with self.activate():
            return self.xp.cuda.Stream(non_blocking=True)

    def event(self) -> Any:
        with self.activate():
            return self.xp.cuda.Event(disable_timing=True)

    def current_stream(self) -> Any:
        return self.xp.cuda.get_current_stream()

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.xp.zeros(shape, dtype=dtype)

    def pinned(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        import cupyx  # in the CuPy wheel, imported already by require_cuda

        return cupyx.empty_pinned(shape, dtype=dtype)

    def upload(self, dst: Any, src: np.ndarray, stream: Any) -> None:
        check_copy(dst, src)
        self.xp.cuda.runtime.memcpyAsync(dst.data.ptr, src.ctypes.data, src.nbytes, _H2D, stream.ptr)

    def download(self, dst: np.ndarray, src: Any, stream: Any) -> None:
        check_copy(dst, src)
        self.xp.cuda.runtime.memcpyAsync(dst.ctypes.data, src.data.ptr, src.nbytes, _D2H, stream.ptr)

    def on_device(self, array: Any) -> bool:
        return isinstance(array, self.xp.ndarray)

    def as_array(self, frame: Any) -> Any:
        cp = self.xp
        if isinstance(frame, (np.ndarray, cp.ndarray)):
            return frame
        dlpack_device = getattr(frame, "__dlpack_device__", None)
        if dlpack_device is not None and dlpack_device()[0] == _DLPACK_CUDA:
            return cp.from_dlpack(frame)  # the producer's stream is ordered before CuPy's current one
        if hasattr(frame, "__cuda_array_interface__"):
            return cp.asarray(frame)
        return np.asarray(frame)

    def to_device(self, array: Any) -> Any:
        return self.xp.asarray(array)

    def to_host(self, array: Any) -> np.ndarray:
        return self.xp.asnumpy(array)

    def errors(self, what: str) -> contextlib.AbstractContextManager[Any]:
        return cuda.gpu_errors(what)


def check_copy(dst: Any, src: Any) -> None:
    """A raw copy needs two C-contiguous arrays of the same size."""
    if dst.nbytes != src.nbytes or not (dst.flags.c_contiguous and src.flags.c_contiguous):
        raise InputError(
            f"a device copy needs two C-contiguous arrays of one size, got {src.nbytes} bytes "
            f"{tuple(src.shape)} into {dst.nbytes} bytes {tuple(dst.shape)}"
        )


# Contract fields the CUDA kernels implement only at these values (the NumPy kernels know the rest).
_KERNEL_DEFAULTS = {
    "merge": "chroma",
    "line_art": "none",
    "binarize_above": None,
    "layout": "NCHW",
    "channel_scale": None,
    "channel_offset": None,
    "extra_inputs": (),
}


def kernels_cannot_run(contract: ColorContract) -> str | None:
    """Why the CUDA kernels cannot pre- and post-process for ``contract``, or None when they can."""
    if contract.input_space not in ("L", "gray_rgb", "L_hints"):
        return f"input space {contract.input_space!r}"
    if contract.output_kind not in ("ab", "rgb", "ab_bins"):
        return f"output kind {contract.output_kind!r}"
    for name, default in _KERNEL_DEFAULTS.items():
        value = getattr(contract, name, default)
        if value != default and not (default == () and not value):
            return f"{name}={value!r}"
    return None


def input_dtype_of(engine: Any) -> np.dtype:
    """float16 when an engine takes half input (the preprocess kernel writes it directly), else float32."""
    wanted = getattr(engine, "input_dtype", None)
    if wanted is None:
        io = getattr(engine, "_io", None)  # TensorRTEngine keeps its tensor types there
        wanted = getattr(io, "input_dtype", np.float32)
    return np.dtype(np.float16) if np.dtype(wanted) == np.float16 else np.dtype(np.float32)


def panel_chroma(
    ops: DeviceOps,
    engine: Any,
    planes: Sequence[np.ndarray],
    contract: ColorContract,
    hints: Sequence[np.ndarray | None] | None = None,
) -> np.ndarray:
    """Host ``N x 2 x h x w`` ab of L planes of one render shape: preprocess, ``engine.infer`` and decode
    on the device; only the planes go up and the ab comes down (not the model's output, which for
    ``ab_bins`` models is over a hundred times larger)."""
    with ops.activate(), ops.errors(f"colorizing a batch of {len(planes)} panels"):
        planes_on_device = [ops.to_device(plane) for plane in planes]
        batch = ops.kernels.preprocess(planes_on_device, contract, hints, input_dtype_of(engine))
        output = engine.infer(batch)
        reference.check_finite(output, reference.model_label(engine))
        return ops.to_host(ops.kernels.decode_ab(output, contract))
